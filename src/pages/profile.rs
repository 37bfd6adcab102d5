//! The signed-in user's profile: who they are, the current session's token timeline and
//! transport, and every active session of the account with "end this session".

use api_types::{paths, SessionInfo, SessionsResponse};
use yew::prelude::*;

use crate::components::guard::RequireAuth;
use crate::components::inspector::relative;
use crate::hooks::use_api::use_api;
use crate::hooks::use_session::use_session;
use crate::session::ClientError;

/// `/profile`.
#[function_component]
pub fn ProfilePage() -> Html {
    html! { <RequireAuth><Profile /></RequireAuth> }
}

#[function_component]
fn Profile() -> Html {
    let session = use_session();
    let Some(user) = session.user() else {
        return Html::default();
    };
    let now = session.engine().now_ms();
    let timeline = session.timeline();
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
                        "cookie" => "an HttpOnly cookie (scripts cannot read it); the access token only in memory",
                        "provider" => "browser storage, as your sign-in provider issued it: scripts on this page can read it, so a cross-site scripting flaw could take the session away (a backend-for-frontend keeps tokens out of the browser)",
                        _ => "browser storage (compatibility mode: readable by scripts on this page)",
                    } }</dd>
                    if let Some(t) = &timeline {
                        <dt>{ "Access token expires" }</dt><dd>{ relative(t.expires_at_ms, now) }</dd>
                        <dt>{ "Next background refresh" }</dt><dd>{ relative(t.refresh_at_ms, now) }</dd>
                        <dt>{ "Session ends" }</dt>
                        <dd>{ t.family_ends_at_ms.map(|end| relative(end, now)).unwrap_or_else(|| "unknown (the server did not say)".into()) }</dd>
                    }
                </dl>
            </section>
            // The list of sessions is session-api's; an OpenID provider has its own account pages.
            if !session.engine().config().oidc() { <Sessions /> }
        </>
    }
}

#[derive(Clone, PartialEq)]
enum Listing {
    Loading,
    Loaded(Vec<SessionInfo>),
    Failed(ClientError),
}

/// The account's active sessions, from `GET /api/auth/sessions`.
#[function_component]
fn Sessions() -> Html {
    let api = use_api();
    let session = use_session();
    let listing = use_state(|| Listing::Loading);
    let reload = use_state(|| 0u32);
    {
        let (api, listing) = (api.clone(), listing.clone());
        use_effect_with(*reload, move |_| {
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
        let (api, session, reload) = (api.clone(), session.clone(), reload.clone());
        let (id, current) = (s.id.clone(), s.current);
        Callback::from(move |_| {
            if current {
                // Ending this very session is signing out.
                session.logout();
                return;
            }
            let (api, reload, id) = (api.clone(), reload.clone(), id.clone());
            wasm_bindgen_futures::spawn_local(async move {
                let _ = api.delete(&format!("{}/{}", paths::SESSIONS, id)).await;
                reload.set(*reload + 1);
            });
        })
    };
    let fmt_time = |secs: i64| {
        let d = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(secs as f64 * 1000.0));
        String::from(d.to_locale_string("en-GB", &wasm_bindgen::JsValue::UNDEFINED))
    };
    html! {
        <section class="card">
            <h2>{ "Active sessions" }</h2>
            { match &*listing {
                Listing::Loading => html! { <p class="muted">{ "Loading…" }</p> },
                Listing::Failed(ClientError::Http { status: 404, .. }) => html! {
                    <p class="muted">{ "This server does not list sessions." }</p>
                },
                Listing::Failed(e) => html! { <div class="alert alert-danger" role="alert">{ e.to_string() }</div> },
                Listing::Loaded(items) if items.is_empty() => html! { <p class="muted">{ "No active sessions." }</p> },
                Listing::Loaded(items) => html! {
                    <table data-testid="sessions">
                        <thead><tr><th>{ "Device" }</th><th>{ "Signed in" }</th><th>{ "Last used" }</th><th>{ "Transport" }</th><th></th></tr></thead>
                        <tbody>
                            { for items.iter().map(|s| html! {
                                <tr key={s.id.clone()}>
                                    <td>{ s.device.clone() }{ if s.current { html! { <> {" "}<span class="badge">{ "this session" }</span></> } } else { Html::default() } }</td>
                                    <td>{ fmt_time(s.created_at) }</td>
                                    <td>{ fmt_time(s.last_used_at) }</td>
                                    <td>{ s.transport.clone() }</td>
                                    <td><button class="btn btn-danger btn-sm" type="button" onclick={end(s)}>{ "End this session" }</button></td>
                                </tr>
                            }) }
                        </tbody>
                    </table>
                },
            } }
        </section>
    }
}
