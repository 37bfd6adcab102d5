//! OpenID Connect's redirect URI (`redirectPath`, `/callback` by default): completes the sign-in
//! the provider sends the browser back with, then goes to the page that sent the user to sign in
//! (the same no-open-redirect rule as the sign-in page), or says why it could not.

use yew::prelude::*;
use yew_router::prelude::*;

use crate::browser::oidc;
use crate::hooks::use_session::use_session;
use crate::route::{after_login_target, Route};

/// The redirect URI's page.
#[function_component]
pub fn CallbackPage() -> Html {
    let session = use_session();
    let navigator = use_navigator();
    let error = use_state(|| None::<String>);
    {
        let (engine, error) = (session.engine(), error.clone());
        use_effect_with((), move |_| {
            let query = oidc::query();
            wasm_bindgen_futures::spawn_local(async move {
                match engine.oidc_complete(&query).await {
                    // `replace`: the code must not stay in the history.
                    Ok(back) => {
                        if let Some(nav) = navigator {
                            nav.replace(&after_login_target(Some(&back)));
                        }
                    }
                    Err(why) => error.set(Some(why)),
                }
            });
        });
    }
    match &*error {
        None => html! {
            <section class="card card-narrow" aria-busy="true">
                <h1>{ "Signing in…" }</h1>
                <p class="muted"><span class="spinner" aria-hidden="true"></span>{ " Finishing the sign-in with your provider." }</p>
            </section>
        },
        Some(why) => html! {
            <section class="card card-narrow">
                <h1>{ "Sign-in failed" }</h1>
                <div class="alert alert-danger" role="alert" data-testid="callback-error">{ why.clone() }</div>
                <Link<Route> to={Route::Login} classes="btn btn-primary">{ "Sign in again" }</Link<Route>>
            </section>
        },
    }
}
