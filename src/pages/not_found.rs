//! Page for unknown routes — and OpenID Connect's redirect URI, which is whatever path
//! config.json names (`redirectPath`, never one of the app's routes: `AppConfig` refuses that).

use yew::prelude::*;
use yew_router::prelude::*;

use crate::hooks::use_session::use_session;
use crate::pages::callback::CallbackPage;
use crate::route::Route;

/// Any path no route matches.
#[function_component]
pub fn NotFoundPage() -> Html {
    let session = use_session();
    let location = use_location();
    let engine = session.engine();
    let cfg = engine.config();
    if cfg.oidc() && location.is_some_and(|l| l.path() == cfg.redirect_path) {
        return html! { <CallbackPage /> };
    }
    html! {
        <section class="card">
            <h1>{ "Page not found" }</h1>
            <p>{ "There is nothing at this address." }</p>
            <Link<Route> to={Route::Home} classes="btn btn-secondary">{ "Go home" }</Link<Route>>
        </section>
    }
}
