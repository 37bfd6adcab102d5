//! Sign-in page: labelled inputs, "remember me", submit on Enter, a spinner while waiting, the
//! server's message on failure, and on success back to the page that sent the user here.

use web_sys::HtmlInputElement;
use yew::prelude::*;
use yew_router::prelude::*;

use crate::browser::query::{param_of, redirect_of};
use crate::components::words::bff_error_words;
use crate::hooks::use_session::use_session;
use crate::hooks::use_submission::use_submission;
use crate::route::{after_login_target, Route};
use crate::session::engine::LoginKind;
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

    let query = location
        .map(|l| l.query_str().to_owned())
        .unwrap_or_default();
    let target = after_login_target(redirect_of(&query).as_deref());
    let engine = session.engine();
    let bff = engine.config().bff();
    // Backend for frontend: a failed sign-in comes back as `?bff_error=<reason>`.
    let bff_error = param_of(&query, "bff_error")
        .filter(|_| bff)
        .map(|r| bff_error_words(&r));
    // Backend for frontend: how the server signs users in is in its 401 answers; a page shown
    // before any (signed out in this tab) asks once.
    let probed = use_state(|| false);
    {
        let (engine, probed) = (engine.clone(), probed.clone());
        use_effect_with((), move |_| {
            if engine.config().bff() && !engine.bff_login_kind_known() {
                wasm_bindgen_futures::spawn_local(async move {
                    engine.bff_probe().await;
                    probed.set(true);
                });
            }
        });
    }

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
    let password_form = bff && engine.bff_login_kind() == LoginKind::Password;
    if engine.config().oidc() || (bff && !password_form) {
        return html! {
            <ProviderSignIn return_to={target.to_path()} notice={notice} problem={bff_error} />
        };
    }
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
                // Backend for frontend: the server's cookie lasts as long as its session.
                if !bff {
                    <div class="field">
                        <label class="check" for="remember">
                            <input id="remember" name="remember" type="checkbox" ref={remember} />
                            { "Remember me on this device" }
                        </label>
                    </div>
                }
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
            if !bff {
                <p class="muted">{ "No account yet? " }<Link<Route> to={Route::Register}>{ "Sign up" }</Link<Route>></p>
            }
        </section>
    }
}

/// Props of [`ProviderSignIn`].
#[derive(Properties, PartialEq)]
pub struct ProviderSignInProps {
    /// The app path to come back to.
    pub return_to: String,
    /// Why the last session ended, if it just did.
    pub notice: Option<String>,
    /// Backend for frontend: why the last sign-in failed, in words.
    #[prop_or_default]
    pub problem: Option<String>,
}

/// OpenID Connect: the sign-in page is a button that sends the browser to the provider (where
/// the password is typed), and "remember me", carried through the round trip. Backend for
/// frontend: the same button, to the server's `/api/bff/login` (which sends the browser on to
/// the provider), without "remember me" (the server's cookie lasts as long as its session).
#[function_component]
pub fn ProviderSignIn(props: &ProviderSignInProps) -> Html {
    let session = use_session();
    let remember = use_node_ref();
    let busy = use_state(|| false);
    let error = use_state(|| None::<String>);
    let cfg = session.engine().config().clone();
    let bff = cfg.bff();
    let unavailable = cfg.endpoints.is_none() && !bff;
    let provider = cfg
        .issuer
        .split("://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or(&cfg.issuer)
        .to_string();
    let onclick = {
        let (session, remember, busy, error) = (
            session.clone(),
            remember.clone(),
            busy.clone(),
            error.clone(),
        );
        let return_to = props.return_to.clone();
        Callback::from(move |_: MouseEvent| {
            if *busy {
                return;
            }
            if bff {
                busy.set(true);
                return session.sign_in_at_server(&return_to);
            }
            let keep = remember
                .cast::<HtmlInputElement>()
                .is_some_and(|i| i.checked());
            busy.set(true);
            error.set(None);
            let (busy, error) = (busy.clone(), error.clone());
            session.sign_in_at_provider(
                return_to.clone(),
                keep,
                Callback::from(move |why: String| {
                    busy.set(false);
                    error.set(Some(why));
                }),
            );
        })
    };
    let problem = (*error).clone().or(props.problem.clone()).or_else(|| {
        cfg.discovery_error.as_ref().map(|why| {
            format!("The sign-in provider is unavailable: {why}. Reload the page to try again.")
        })
    });
    html! {
        <section class="card card-narrow">
            <div class="avatar" aria-hidden="true">{ crate::components::icons::lock() }</div>
            <h1>{ "Sign in" }</h1>
            if let Some(message) = props.notice.clone() {
                <div class="alert alert-info" role="status" data-testid="login-notice">{ message }</div>
            }
            if bff {
                <p class="muted">{ "You sign in at your sign-in provider, and come back here. This app keeps no token: the server holds them." }</p>
            } else {
                <p class="muted">{ format!("You sign in at {provider}, and come back here.") }</p>
                <div class="field">
                    <label class="check" for="remember">
                        <input id="remember" name="remember" type="checkbox" ref={remember} />
                        { "Remember me on this device" }
                    </label>
                </div>
            }
            <button class="btn btn-primary btn-block" type="button" data-testid="provider-sign-in"
                onclick={onclick} disabled={*busy || unavailable} aria-busy={busy.to_string()}>
                if *busy { <span class="spinner" aria-hidden="true"></span> }
                { if *busy { "Going to the provider…" } else { "Sign in with your provider" } }
            </button>
            <div aria-live="assertive">
                if let Some(message) = problem {
                    <div class="alert alert-danger" role="alert" data-testid="login-error">{ message }</div>
                }
            </div>
        </section>
    }
}
