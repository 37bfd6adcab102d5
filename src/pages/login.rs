//! Sign-in page: labelled inputs, "remember me", submit on Enter, a spinner while waiting, the
//! server's message on failure, and on success back to the page that sent the user here.

use web_sys::HtmlInputElement;
use yew::prelude::*;
use yew_router::prelude::*;

use crate::browser::query::redirect_of;
use crate::hooks::use_session::use_session;
use crate::hooks::use_submission::use_submission;
use crate::route::{after_login_target, Route};
use crate::session::SessionStatus;

/// `/login`.
#[function_component]
pub fn LoginPage() -> Html {
    let session = use_session();
    let navigator = use_navigator();
    let location = use_location();
    let username = use_node_ref();
    let password = use_node_ref();
    let remember = use_node_ref();
    let submission = use_submission::<()>();

    let target = {
        let redirect = location.and_then(|l| redirect_of(l.query_str()));
        after_login_target(redirect.as_deref())
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
        let (session, submission) = (session.clone(), submission.clone());
        let (username, password, remember) = (username.clone(), password.clone(), remember.clone());
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            if submission.busy() {
                return;
            }
            let value = |r: &NodeRef| {
                r.cast::<HtmlInputElement>()
                    .map(|i| i.value())
                    .unwrap_or_default()
            };
            let (user, pass) = (value(&username).trim().to_string(), value(&password));
            if user.is_empty() || pass.is_empty() {
                submission.fail("Please enter your username and password.");
                return;
            }
            let keep = remember
                .cast::<HtmlInputElement>()
                .is_some_and(|i| i.checked());
            if let Some(done) = submission.start() {
                session.login(user, pass, keep, done);
            }
        })
    };

    let notice = match submission.error() {
        Some(_) => None,
        None => session.message(),
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
                <button class="btn btn-primary btn-block" type="submit" disabled={submission.busy()} aria-busy={submission.busy().to_string()}>
                    if submission.busy() { <span class="spinner" aria-hidden="true"></span> }
                    { if submission.busy() { "Signing in…" } else { "Login" } }
                </button>
                <div id="login-error" aria-live="assertive">
                    if let Some(message) = submission.error() {
                        <div class="alert alert-danger" role="alert" data-testid="login-error">{ message }</div>
                    }
                </div>
            </form>
            <p class="muted">{ "No account yet? " }<Link<Route> to={Route::Register}>{ "Sign up" }</Link<Route>></p>
        </section>
    }
}
