//! A notice some minutes before the session's absolute end (the refresh-token family's lifetime,
//! which no refresh extends): it says when the session ends and offers "Sign in again" in place,
//! so the page — and whatever form is half filled on it — stays where it is.

use web_sys::HtmlInputElement;
use yew::prelude::*;

use crate::hooks::use_session::use_session;
use crate::hooks::use_submission::use_submission;
use crate::session::{ClientError, SessionStatus};

/// Milliseconds left when the notice is due: `Some(left)` once `now` is within `notice_ms` of
/// `ends_at` (0 when already past), `None` before that or when the notice is off.
pub fn session_end_notice(now_ms: f64, ends_at_ms: Option<f64>, notice_ms: f64) -> Option<f64> {
    let ends_at = ends_at_ms?;
    (notice_ms > 0.0 && now_ms >= ends_at - notice_ms).then(|| (ends_at - now_ms).max(0.0))
}

/// "4 min 05 s", "45 s".
pub fn left_text(ms: f64) -> String {
    let s = (ms / 1000.0).ceil() as u64;
    if s >= 60 {
        format!("{} min {:02} s", s / 60, s % 60)
    } else {
        format!("{s} s")
    }
}

/// The notice, shown to a signed-in user near the session's end.
#[function_component]
pub fn SessionEndNotice() -> Html {
    let session = use_session();
    let now = use_state(js_sys::Date::now);
    let notice_ms = session.engine().config().session_end_notice_secs * 1000.0;
    let ends_at = session.timeline().and_then(|t| t.family_ends_at_ms);
    {
        // One timer at a time: each second while the notice counts down, else one wake-up when
        // it is due (at most an hour ahead, then again), none when there is no end to announce.
        let now = now.clone();
        use_effect_with(
            (ends_at, notice_ms, *now),
            move |&(ends_at, notice_ms, at)| {
                let delay = match (ends_at, session_end_notice(at, ends_at, notice_ms)) {
                    (_, Some(_)) => Some(1_000.0),
                    (Some(end), None) if notice_ms > 0.0 => {
                        Some((end - notice_ms - at).clamp(1_000.0, 3_600_000.0))
                    }
                    _ => None,
                };
                let timer = delay.map(|ms| {
                    gloo_timers::callback::Timeout::new(ms as u32, move || {
                        now.set(js_sys::Date::now())
                    })
                });
                move || drop(timer)
            },
        );
    }
    let open = use_state(|| false);
    let submission = use_submission::<()>();
    let password = use_node_ref();
    let (Some(left), SessionStatus::SignedIn, Some(user)) = (
        session_end_notice(*now, ends_at, notice_ms),
        session.status(),
        session.user(),
    ) else {
        return Html::default();
    };
    let onsubmit = {
        let (session, submission, password) =
            (session.clone(), submission.clone(), password.clone());
        let open = open.clone();
        let username = user.username.clone();
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let pass = password
                .cast::<HtmlInputElement>()
                .map(|i| i.value())
                .unwrap_or_default();
            if pass.is_empty() {
                return;
            }
            let Some(done) = submission.start() else {
                return;
            };
            let open = open.clone();
            // A new session with the same "remember me" as the one ending.
            let remember = session.engine().remembered();
            session.login(
                username.clone(),
                pass,
                remember,
                Callback::from(move |result: Result<(), ClientError>| {
                    if result.is_ok() {
                        open.set(false);
                    }
                    done.emit(result);
                }),
            );
        })
    };
    // Backend for frontend with the provider's own sign-in pages: nothing can be typed here;
    // the page is left for the provider's and comes back to it.
    let at_server = {
        let e = session.engine();
        e.config().bff() && e.bff_login_kind() == crate::session::engine::LoginKind::Redirect
    };
    let show_form = {
        let (open, session) = (open.clone(), session.clone());
        Callback::from(move |_: MouseEvent| {
            if at_server {
                let path = web_sys::window()
                    .and_then(|w| w.location().pathname().ok())
                    .unwrap_or_else(|| "/".into());
                return session.sign_in_at_server(&path);
            }
            open.set(true)
        })
    };
    html! {
        <div class="banner banner-warning" role="status" data-testid="session-end-notice">
            <span>
                { format!("Your session ends in {} — sign in again to keep working; this page stays as it is.", left_text(left)) }
            </span>
            if *open {
                <form class="inline-form" onsubmit={onsubmit} data-testid="session-end-form">
                    <label for="session-end-password">{ format!("Password for {}", user.username) }</label>
                    <input id="session-end-password" name="password" type="password" ref={password}
                        autocomplete="current-password" required=true />
                    <button class="btn btn-sm btn-primary" type="submit" disabled={submission.busy()}>
                        { if submission.busy() { "Signing in…" } else { "Sign in" } }
                    </button>
                    if let Some(message) = submission.error() {
                        <span class="alert alert-danger" role="alert">{ message }</span>
                    }
                </form>
            } else {
                <button class="btn btn-sm" type="button" onclick={show_form} data-testid="session-end-sign-in">
                    { "Sign in again" }
                </button>
            }
        </div>
    }
}
