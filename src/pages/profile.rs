//! The signed-in user's profile: who they are, the current session's token timeline and
//! transport, the account's actions (change the password, sign out the other devices or
//! everywhere, delete the account: session-api only, each confirmed first), and every active
//! session of the account, each with a button naming its device.

use std::rc::Rc;

use api_types::{paths, DeleteAccountRequest, SessionInfo, SessionsResponse};
use web_sys::HtmlInputElement;
use yew::prelude::*;
use yew_router::prelude::*;

use crate::api::Refusal;
use crate::components::buttons::{confirm_box, small_button};
use crate::components::guard::RequireAuth;
use crate::components::inspector::relative;
use crate::hooks::use_api::use_api;
use crate::hooks::use_session::use_session;
use crate::hooks::use_submission::{use_submission, Failure};
use crate::pages::password::{password_field, refusal_words};
use crate::route::Route;
use crate::session::ports::Method;
use crate::session::{ClientError, LogoutReason};

/// `id` of the password input that confirms the account's deletion.
pub const DELETE_PASSWORD: &str = "delete-password";

/// `/profile`.
#[function_component]
pub fn ProfilePage() -> Html {
    html! { <RequireAuth><Profile /></RequireAuth> }
}

#[function_component]
fn Profile() -> Html {
    let session = use_session();
    // Bumped by the account's actions that change the sessions list.
    let version = use_state(|| 0u32);
    let Some(user) = session.user() else {
        return Html::default();
    };
    let now = session.engine().now_ms();
    let timeline = session.timeline();
    // The account's endpoints are session-api's; the tutorial's backend (compat mode) has none.
    let account = session.transport() == "cookie";
    let bff = session.engine().config().bff();
    let everywhere = {
        let session = session.clone();
        Callback::from(move |_: MouseEvent| session.bff_logout(true))
    };
    let changed = {
        let version = version.clone();
        Callback::from(move |()| version.set(*version + 1))
    };
    html! {
        <>
            <section class="card">
                <h1 data-testid="profile-username">{ format!("{} — profile", user.username) }</h1>
                <dl class="kv">
                    <dt>{ "Id" }</dt><dd>{ user.id.clone() }</dd>
                    <dt>{ "Email" }</dt><dd>{ if user.email.is_empty() { "—".to_string() } else { user.email.clone() } }</dd>
                    <dt>{ "Roles" }</dt>
                    <dd data-testid="profile-roles">{ for user.roles.iter().map(|r| html! { <span class="badge badge-blue">{ r.clone() }</span> }) }</dd>
                </dl>
            </section>
            <section class="card">
                <h2>{ "This session" }</h2>
                <dl class="kv">
                    <dt>{ "Refresh token kept in" }</dt>
                    <dd data-testid="profile-transport">{ match session.transport() {
                        _ if bff => "nowhere in this browser: the server (backend for frontend) holds the access, refresh and ID tokens; this browser has only an HttpOnly session cookie that scripts cannot read",
                        "cookie" => "an HttpOnly cookie (scripts cannot read it); the access token only in memory",
                        "provider" => "browser storage, as your sign-in provider issued it: scripts on this page can read it, so a cross-site scripting flaw could take the session away (a backend-for-frontend keeps tokens out of the browser)",
                        _ => "browser storage (compatibility mode: readable by scripts on this page)",
                    } }</dd>
                    if let Some(t) = timeline.as_ref().filter(|_| !bff) {
                        <dt>{ "Access token expires" }</dt><dd>{ relative(t.expires_at_ms, now) }</dd>
                        <dt>{ "Next background refresh" }</dt><dd>{ relative(t.refresh_at_ms, now) }</dd>
                        <dt>{ "Session ends" }</dt>
                        <dd>{ t.family_ends_at_ms.map(|end| relative(end, now)).unwrap_or_else(|| "unknown (the server did not say)".into()) }</dd>
                    }
                </dl>
            </section>
            if account {
                <Account on_change={changed} />
            }
            if bff {
                <section class="card">
                    <h2>{ "Account" }</h2>
                    <p>{ small_button("btn-danger", Some("bff-signout-everywhere"), "Sign out everywhere".into(), false, everywhere) }</p>
                </section>
            }
            // The list of sessions is session-api's; an OpenID provider has its own account pages.
            if session.engine().config().backend == crate::config::Backend::Api { <Sessions version={*version} /> }
        </>
    }
}

/// Which of the account's actions waits for its confirmation (one at a time).
#[derive(Clone, Copy, PartialEq)]
enum Asking {
    Nothing,
    SignOutOthers,
    SignOutEverywhere,
    DeleteAccount,
}

/// A confirmed action, as sent.
enum Call {
    SignOutOthers,
    SignOutEverywhere,
    /// With the password that confirms it.
    DeleteAccount(String),
}

/// Props of [`Account`].
#[derive(Properties, PartialEq)]
struct AccountProps {
    /// Called when the sessions list changed (the other devices were signed out).
    on_change: Callback<()>,
}

/// A refusal in words: a wrong password and the throttle's wait go next to the deletion's
/// password (the sign-outs check none).
fn account_refusal(r: &Refusal) -> Failure {
    refusal_words(r, DELETE_PASSWORD)
}

/// The account's actions, each confirmed before anything is sent.
#[function_component]
fn Account(props: &AccountProps) -> Html {
    let session = use_session();
    let api = use_api();
    let asking = use_state(|| Asking::Nothing);
    let password = use_state(String::new);
    let password_missing = use_state(|| false);
    let outcome = use_submission::<String>();

    // One path for the three calls. The sign-out of the other devices changes the list; the
    // sign-out everywhere and the deletion end this session too: every tab of this browser signs
    // out with the reason, without a sign-out call of its own (the server ended the session).
    let act = {
        let (api, engine, outcome, asking) = (
            api.clone(),
            session.engine(),
            outcome.clone(),
            asking.clone(),
        );
        let on_change = props.on_change.clone();
        Rc::new(move |call: Call| {
            let Some(done) = outcome.start_with(account_refusal) else {
                return;
            };
            let (api, engine, asking, on_change) = (
                api.clone(),
                engine.clone(),
                asking.clone(),
                on_change.clone(),
            );
            wasm_bindgen_futures::spawn_local(async move {
                let result = match &call {
                    Call::SignOutOthers => api.post_empty(paths::SIGNOUT_OTHERS).await,
                    Call::SignOutEverywhere => api.post_empty(paths::SIGNOUT_ALL).await,
                    Call::DeleteAccount(password) => {
                        let req = DeleteAccountRequest {
                            current_password: password.clone(),
                        };
                        api.send_json(Method::Delete, paths::ACCOUNT, &req).await
                    }
                };
                let ok = result.is_ok();
                done.emit(result);
                if !ok {
                    return;
                }
                asking.set(Asking::Nothing);
                match call {
                    Call::SignOutOthers => on_change.emit(()),
                    Call::SignOutEverywhere => {
                        engine.ended_on_server(LogoutReason::SignedOutEverywhere)
                    }
                    Call::DeleteAccount(_) => engine.ended_on_server(LogoutReason::AccountDeleted),
                }
            });
        })
    };

    let ask = |what: Asking| {
        let (asking, outcome, password) = (asking.clone(), outcome.clone(), password.clone());
        let password_missing = password_missing.clone();
        Callback::from(move |_: MouseEvent| {
            if outcome.busy() {
                return;
            }
            outcome.reset();
            password.set(String::new());
            password_missing.set(false);
            asking.set(what);
        })
    };

    let sign_out = |everywhere: bool| {
        let act = act.clone();
        Callback::from(move |_: MouseEvent| {
            act(if everywhere {
                Call::SignOutEverywhere
            } else {
                Call::SignOutOthers
            })
        })
    };

    let delete = {
        let act = act.clone();
        let (password, password_missing) = (password.clone(), password_missing.clone());
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            if password.is_empty() {
                password_missing.set(true);
                return;
            }
            act(Call::DeleteAccount((*password).clone()));
        })
    };

    let on_password = {
        let (password, password_missing, outcome) =
            (password.clone(), password_missing.clone(), outcome.clone());
        Callback::from(move |e: InputEvent| {
            password.set(e.target_unchecked_into::<HtmlInputElement>().value());
            password_missing.set(false);
            if !outcome.busy() {
                outcome.reset();
            }
        })
    };

    let cancel = ask(Asking::Nothing);
    let busy = outcome.busy();
    let confirm = |testid, question, yes, everywhere| {
        confirm_box(
            testid,
            question,
            yes,
            busy,
            sign_out(everywhere),
            cancel.clone(),
        )
    };
    let deleting = *asking == Asking::DeleteAccount;
    let delete_error = password_missing
        .then(|| "Enter your password to confirm.".to_owned())
        .or_else(|| outcome.error_on(DELETE_PASSWORD).map(str::to_owned));
    // Outside the deletion form, a refusal placed at its password is the whole card's.
    let error = outcome
        .error()
        .map(str::to_owned)
        .or_else(|| delete_error.clone().filter(|_| !deleting));

    html! {
        <section class="card" data-testid="account">
            <h2>{ "Account" }</h2>
            <div class="actions">
                <Link<Route> to={Route::ChangePassword} classes="btn btn-secondary btn-sm">{ "Change password" }</Link<Route>>
                { small_button("btn-secondary", Some("sign-out-others"), "Sign out other devices".into(), false, ask(Asking::SignOutOthers)) }
                { small_button("btn-secondary", Some("sign-out-everywhere"), "Sign out everywhere".into(), false, ask(Asking::SignOutEverywhere)) }
                { small_button("btn-danger", Some("delete-account"), "Delete account".into(), false, ask(Asking::DeleteAccount)) }
            </div>
            { match *asking {
                Asking::Nothing => Html::default(),
                Asking::SignOutOthers => confirm("confirm-sign-out-others",
                    "Sign out every other device? Their sessions end at once; this one stays signed in.",
                    "Sign out other devices", false),
                Asking::SignOutEverywhere => confirm("confirm-sign-out-everywhere",
                    "Sign out everywhere, this browser included? Every session of your account ends.",
                    "Sign out everywhere", true),
                Asking::DeleteAccount => html! {
                    <form class="confirm" onsubmit={delete} novalidate=true data-testid="confirm-delete-account">
                        <p>{ "Deleting your account ends every session and removes the account for good. Enter your password to confirm." }</p>
                        { password_field(DELETE_PASSWORD, "Password", &password, "current-password", delete_error, on_password) }
                        <div class="actions">
                            <button class="btn btn-danger btn-sm" type="submit" disabled={busy} data-testid="confirm-yes">
                                if busy { <span class="spinner" aria-hidden="true"></span> }
                                { "Delete my account" }
                            </button>
                            { small_button("btn-secondary", None, "Cancel".into(), false, cancel) }
                        </div>
                    </form>
                },
            } }
            if let Some(message) = outcome.succeeded() {
                <div class="alert alert-success" role="status" data-testid="account-success">{ message.clone() }</div>
            }
            if let Some(message) = error {
                <div class="alert alert-danger" role="alert" data-testid="account-error">{ message }</div>
            }
        </section>
    }
}

#[derive(Clone, PartialEq)]
enum Listing {
    Loading,
    Loaded(Vec<SessionInfo>),
    Failed(ClientError),
}

/// Props of [`Sessions`].
#[derive(Properties, PartialEq)]
struct SessionsProps {
    /// Changes when the list should be read again.
    version: u32,
}

/// The account's active sessions, from `GET /api/auth/sessions`.
#[function_component]
fn Sessions(props: &SessionsProps) -> Html {
    let api = use_api();
    let session = use_session();
    let listing = use_state(|| Listing::Loading);
    let reload = use_state(|| 0u32);
    // Ending this very session signs out: it waits for a confirmation.
    let confirming = use_state(|| false);
    {
        let (api, listing) = (api.clone(), listing.clone());
        use_effect_with((*reload, props.version), move |_| {
            wasm_bindgen_futures::spawn_local(async move {
                listing.set(
                    match api.get_json::<SessionsResponse>(paths::SESSIONS).await {
                        Ok(r) => Listing::Loaded(r.sessions),
                        Err(e) => Listing::Failed(e),
                    },
                );
            });
        });
    }
    let end = |s: &SessionInfo| {
        let (api, reload, confirming) = (api.clone(), reload.clone(), confirming.clone());
        let (id, current) = (s.id.clone(), s.current);
        Callback::from(move |_| {
            if current {
                confirming.set(true);
                return;
            }
            let (api, reload, id) = (api.clone(), reload.clone(), id.clone());
            wasm_bindgen_futures::spawn_local(async move {
                let _ = api.delete(&[paths::SESSIONS, "/", &id].concat()).await;
                reload.set(*reload + 1);
            });
        })
    };
    let end_current = {
        let session = session.clone();
        Callback::from(move |_: MouseEvent| session.logout())
    };
    let keep_current = {
        let confirming = confirming.clone();
        Callback::from(move |_: MouseEvent| confirming.set(false))
    };
    let fmt_time = |secs: i64| {
        let d = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(secs as f64 * 1000.0));
        String::from(d.to_locale_string("en-GB", &wasm_bindgen::JsValue::UNDEFINED))
    };
    html! {
        <section class="card sessions-card">
            <h2>{ "Active sessions" }</h2>
            { match &*listing {
                Listing::Loading => html! { <p class="muted">{ "Loading…" }</p> },
                Listing::Failed(ClientError::Http { status: 404, .. }) => html! {
                    <p class="muted">{ "This server does not list sessions." }</p>
                },
                Listing::Failed(e) => html! { <div class="alert alert-danger" role="alert">{ e.to_string() }</div> },
                Listing::Loaded(items) if items.is_empty() => html! { <p class="muted">{ "No active sessions." }</p> },
                Listing::Loaded(items) => html! {
                    <table class="sessions" data-testid="sessions">
                        <thead><tr><th>{ "Device" }</th><th>{ "Signed in" }</th><th>{ "Last used" }</th><th>{ "Transport" }</th><th></th></tr></thead>
                        <tbody>
                            { for items.iter().map(|s| html! {
                                <tr key={s.id.clone()}>
                                    <td data-label="Device">{ s.device.clone() }{ if s.current { html! { <> {" "}<span class="badge">{ "this session" }</span></> } } else { Html::default() } }</td>
                                    <td data-label="Signed in">{ fmt_time(s.created_at) }</td>
                                    <td data-label="Last used">{ fmt_time(s.last_used_at) }</td>
                                    <td data-label="Transport">{ s.transport.clone() }</td>
                                    <td>
                                        if s.current && *confirming {
                                            { confirm_box("confirm-end-current",
                                                "This is the session you are using: ending it signs you out here.",
                                                "End it and sign out", false, end_current.clone(), keep_current.clone()) }
                                        } else {
                                            { small_button("btn-danger", Some("end-session"),
                                                ["End session on ", s.device.as_str()].concat().into(), false, end(s)) }
                                        }
                                    </td>
                                </tr>
                            }) }
                        </tbody>
                    </table>
                },
            } }
        </section>
    }
}
