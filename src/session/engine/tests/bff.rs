//! Backend for frontend: the engine's "refresh" is a read of the server-side session. What each
//! answer of `GET /api/bff/session` does, and that nothing proactive or token-shaped is left.

use super::super::bff::{self, parse_session};
use super::*;
use crate::session::types::BffSession;

fn fresh_bff() -> State {
    State::new(Tab {
        id: TAB.into(),
        compat: false,
        margin_cap: None,
        bff: true,
    })
}

/// The session endpoint's answer: signed in at `T0 - 60 s`, ends an hour after `T0`, its
/// upstream access token valid 5 s more, refreshed twice.
const SESSION: &str = r#"{"user":{"sub":"u-1","name":"ann","email":"ann@example.com","roles":[]},
    "createdAt":940000,"expiresAt":4600000,"accessTokenExpiresAt":1005000,
    "lastRefreshedAt":1000000,"refreshCount":2}"#;

fn session_answer(at: f64) -> Answer {
    let (server_user, s) = parse_session(SESSION).expect("the endpoint's JSON");
    let timing = bff::timing(&s, at - 10.0, at, Some(at));
    Answer {
        result: Ok((
            Fresh {
                user: Some(server_user),
                bff: Some(SESSION.into()),
                ..Fresh::default()
            },
            timing,
        )),
        // A profile hint left by another mode on this origin must not win over the server.
        profile: Some(UserInfo {
            username: "stale".into(),
            ..user()
        }),
        remembered: true,
        stored_generation: 0,
        jitter: 0.5,
    }
}

/// Signed in from a first read of the session.
fn signed_in_bff() -> State {
    let mut st = fresh_bff();
    assert_eq!(reply(&mut st, session_answer(T0), T0).0, Ok(1));
    st
}

fn refused(code: &str) -> Answer {
    answer(Err(FailureKind::Rejected {
        status: 401,
        message: "Not signed in.".into(),
        code: Some(code.into()),
    }))
}

#[test]
fn the_session_json_gives_the_user_and_the_server_side_timeline() {
    let (user, s) = parse_session(SESSION).unwrap();
    assert_eq!(
        (user.id.as_str(), user.username.as_str(), user.roles.clone()),
        ("u-1", "ann", vec!["ROLE_USER".to_string()]),
        "no roles asserted: every user is a user"
    );
    assert_eq!(
        s,
        BffSession {
            created_at_ms: 940_000.0,
            expires_at_ms: 4_600_000.0,
            access_token_expires_at_ms: 1_005_000.0,
            last_refreshed_at_ms: Some(1_000_000.0),
            refresh_count: 2,
        }
    );
    for (doc, says) in [
        ("[]", "no \"user\""),
        (r#"{"user":{"name":"x"}}"#, "no user \"sub\""),
        (
            r#"{"user":{"sub":"u"},"createdAt":"now"}"#,
            "\"createdAt\" must be a number",
        ),
    ] {
        let e = parse_session(doc).unwrap_err();
        assert!(e.contains(says), "{doc}: {e}");
    }
}

#[test]
fn a_restore_answered_200_signs_in_with_the_servers_user_and_no_token() {
    let mut st = fresh_bff();
    let (r, effects) = reply(&mut st, session_answer(T0), T0);
    assert_eq!(r, Ok(1));
    let t = token(&st);
    assert_eq!(t.access, "", "no token in the browser");
    assert_eq!(t.refresh, None);
    assert_eq!(
        t.user.username, "ann",
        "the server's user, not a stored hint"
    );
    assert_eq!(
        t.bff.as_deref(),
        Some(SESSION),
        "kept as the server said it"
    );
    let tl = t.timeline.clone().expect("the server session's timeline");
    // The Date header said T0 (whole seconds, so +500 ms centres it, less half the round trip):
    // server times are shown on the browser's clock; the session's end drives the session-end
    // notice.
    assert_eq!(tl.clock_offset_ms, 505.0);
    assert_eq!(tl.expires_at_ms, 1_005_000.0 - 505.0);
    assert_eq!(tl.family_ends_at_ms, Some(T0 + 3_600_000.0));
    assert_eq!(
        events(&effects),
        [&SessionEvent::Restored {
            username: "ann".into()
        }]
    );
    // The other tabs hear of it (as a sign-in: a signed-out tab takes it) without a token.
    match broadcasts(&effects)[..] {
        [TabMessage::TokenUpdated {
            access_token,
            refresh_token: None,
            id_token: None,
            login: true,
            bff: Some(_),
            ..
        }] => assert!(access_token.is_empty()),
        ref other => panic!("{other:?}"),
    }
}

#[test]
fn a_restore_without_a_cookie_signs_out_silently_and_tells_no_tab() {
    let mut st = fresh_bff();
    let (_, effects) = reply(&mut st, refused("bff_no_session"), T0);
    assert!(effects.is_empty(), "{effects:?}");
    assert_eq!(st.status(), SessionStatus::SignedOut { reason: None });
    assert_eq!(st.message(), None);
}

#[test]
fn a_session_ended_at_the_server_ends_here_once_and_tells_every_tab_once() {
    // At restore: the cookie named a session that has ended.
    let mut st = fresh_bff();
    let (_, effects) = reply(&mut st, refused("bff_session_ended"), T0);
    assert_eq!(
        st.status(),
        SessionStatus::SignedOut {
            reason: Some(LogoutReason::RefreshRejected)
        }
    );
    assert!(matches!(
        broadcasts(&effects)[..],
        [TabMessage::LoggedOut {
            reason: LogoutReason::RefreshRejected,
            ..
        }]
    ));
    // Signed in, a re-read says it ended: one logout, one broadcast; a second answer: nothing.
    let mut st = signed_in_bff();
    let epoch = st.epoch;
    let (_, effects) = reply(&mut st, refused("bff_session_ended"), T0 + 1_000.0);
    assert_eq!(broadcasts(&effects).len(), 1);
    assert_eq!(
        events(&effects)
            .iter()
            .filter(|e| matches!(e, SessionEvent::LoggedOut { .. }))
            .count(),
        1
    );
    assert!(
        !effects
            .iter()
            .any(|e| matches!(e, Effect::SignOutOnServer(_))),
        "the server ended it already"
    );
    // A second read that was in flight under the ended session's epoch changes nothing.
    let (_, again) = answered(&mut st, refused("bff_session_ended"), epoch, T0 + 2_000.0);
    assert!(again.is_empty(), "{again:?}");
}

#[test]
fn an_unreachable_provider_keeps_the_session_degraded_and_retries_with_backoff() {
    let mut st = signed_in_bff();
    let (_, effects) = reply(
        &mut st,
        answer(Err(FailureKind::Server { status: 503 })),
        T0 + 1_000.0,
    );
    assert_eq!(st.status(), SessionStatus::SignedIn, "kept");
    assert!(st.degraded());
    assert!(events(&effects).contains(&&SessionEvent::Degraded));
    assert!(broadcasts(&effects).is_empty());
    let retry = st.trouble().and_then(|t| t.retry_at).expect("a backoff");
    assert_eq!(schedule::next_due(&st), Some(retry));
    assert_eq!(schedule::tick(&st, retry, false), Tick::Refresh(1));
}

#[test]
fn nothing_is_proactive_and_no_request_waits_whatever_the_upstream_tokens_expiry() {
    let st = signed_in_bff();
    // The upstream token expires 5 s after T0: the server refreshes it, not the browser.
    assert_eq!(schedule::next_due(&st), None);
    let later = T0 + 600_000.0;
    assert_eq!(schedule::tick(&st, later, false), Tick::Idle);
    assert_eq!(before_send(&st, later, false), BeforeSend::Ready);
}

#[test]
fn another_tabs_session_read_is_adopted_though_it_carries_no_token() {
    let mut other = fresh_bff();
    other.tab.id = "tab-b".into();
    let (_, effects) = reply(&mut other, session_answer(T0), T0);
    assert_eq!(other.status(), SessionStatus::SignedIn);
    let msg = broadcasts(&effects)[0].clone();
    let mut st = fresh_bff();
    st.phase = Phase::SignedOut {
        reason: Some(LogoutReason::UserAction),
        message: None,
    };
    let Received::Adopt(news) = received(&mut st, msg.clone()) else {
        panic!("adopted");
    };
    let e = adopt(&mut st, news, T0, None);
    assert!(events(&e).contains(&&SessionEvent::LoggedIn {
        username: "ann".into()
    }));
    let kept = token(&st).bff.as_deref().map(parse_session);
    assert_eq!(kept.map(|r| r.unwrap().1.refresh_count), Some(2));
    // Cookie mode still ignores a token-less message (its storage-event fallback).
    assert_eq!(received(&mut signed_in(), msg), Received::Ignore);
}

#[test]
fn the_login_kind_is_read_from_the_refusal_and_is_the_redirect_without_one() {
    use crate::session::engine::bff::{login_kind, LoginKind};
    assert_eq!(
        login_kind(r#"{"code":"bff_no_session","login":"password"}"#),
        Some(LoginKind::Password)
    );
    // An OpenID upstream says "redirect"; a server before the field said nothing: both redirect.
    for body in [
        r#"{"code":"bff_no_session","login":"redirect"}"#,
        r#"{"code":"bff_no_session"}"#,
    ] {
        assert_eq!(login_kind(body), Some(LoginKind::Redirect), "{body}");
    }
    assert_eq!(login_kind("not json"), None);
}
