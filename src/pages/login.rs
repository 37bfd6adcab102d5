//! Sign-in page: labelled inputs, "remember me", submit on Enter, a spinner while waiting, the
//! server's message on failure, and on success back to the page that sent the user here.

use serde::Deserialize;
use web_sys::HtmlInputElement;
use yew::prelude::*;
use yew_router::prelude::*;

use crate::components::words::login_error_message;
use crate::hooks::use_session::use_session;
use crate::route::{after_login_target, Route};
use crate::session::{ClientError, SessionStatus};

#[derive(Deserialize, Default)]
struct LoginQuery {
    redirect: Option<String>,
}

/// `/login`.
#[function_component]
pub fn LoginPage() -> Html {
    let session = use_session();
    let navigator = use_navigator();
    let location = use_location();
    let username = use_node_ref();
    let password = use_node_ref();
    let remember = use_node_ref();
    let busy = use_state(|| false);
    let error = use_state(|| None::<String>);

    let target = {
        let query = location
            .and_then(|l| l.query::<LoginQuery>().ok())
            .unwrap_or_default();
        after_login_target(query.redirect.as_deref())
    };

    // Already signed in (or just signed in): go on.
    {
        let navigator = navigator.clone();
        let target = target.clone();
        use_effect_with(session.status(), move |status| {
            if *status == SessionStatus::SignedIn {
                if let Some(nav) = navigator {
                    nav.replace(&target);
                }
            }
        });
    }

    let onsubmit = {
        let (session, busy, error) = (session.clone(), busy.clone(), error.clone());
        let (username, password, remember) = (username.clone(), password.clone(), remember.clone());
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            if *busy {
                return;
            }
            let value = |r: &NodeRef| {
                r.cast::<HtmlInputElement>()
                    .map(|i| i.value())
                    .unwrap_or_default()
            };
            let (user, pass) = (value(&username).trim().to_string(), value(&password));
            if user.is_empty() || pass.is_empty() {
                error.set(Some("Please enter your username and password.".into()));
                return;
            }
            let keep = remember
                .cast::<HtmlInputElement>()
                .is_some_and(|i| i.checked());
            busy.set(true);
            error.set(None);
            let (busy, error) = (busy.clone(), error.clone());
            session.login(
                user,
                pass,
                keep,
                Callback::from(move |result: Result<(), ClientError>| {
                    busy.set(false);
                    if let Err(e) = result {
                        error.set(Some(login_error_message(&e)));
                    }
                }),
            );
        })
    };

    let notice = match (&*error, session.message()) {
        (Some(_), _) => None,
        (None, message) => message,
    };
    html! {
        <section class="card card-narrow">
            <div class="avatar" aria-hidden="true">{ crate::components::icons::lock() }</div>
            <h1>{ "Sign in" }</h1>
            if let Some(message) = notice {
                <div class="alert alert-info" role="status" data-testid="login-notice">{ message }</div>
            }
            <form onsubmit={onsubmit} novalidate=true aria-describedby="login-error">
                <div class="field">
                    <label for="username">{ "Username" }</label>
                    <input id="username" name="username" type="text" ref={username}
                        autocomplete="username" autocapitalize="none" spellcheck="false" required=true />
                </div>
                <div class="field">
                    <label for="password">{ "Password" }</label>
                    <input id="password" name="password" type="password" ref={password}
                        autocomplete="current-password" required=true />
                </div>
                <div class="field">
                    <label class="check" for="remember">
                        <input id="remember" name="remember" type="checkbox" ref={remember} />
                        { "Remember me on this device" }
                    </label>
                </div>
                <button class="btn btn-primary btn-block" type="submit" disabled={*busy} aria-busy={busy.to_string()}>
                    if *busy { <span class="spinner" aria-hidden="true"></span> }
                    { if *busy { "Signing in…" } else { "Login" } }
                </button>
                <div id="login-error" aria-live="assertive">
                    if let Some(message) = &*error {
                        <div class="alert alert-danger" role="alert" data-testid="login-error">{ message.clone() }</div>
                    }
                </div>
            </form>
            <p class="muted">{ "No account yet? " }<Link<Route> to={Route::Register}>{ "Sign up" }</Link<Route>></p>
        </section>
    }
}
