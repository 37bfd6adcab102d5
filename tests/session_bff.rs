//! The engine and the interceptor in `"backend": "bff"` mode, tabs of one browser against the
//! real session-api in BFF mode in front of the tutorial fake (tests/common/real_bff.rs): the session restored
//! from `GET /api/bff/session` (or not), every request with `x-csrf: 1` and no token header, no
//! token anywhere, a session ended at the server -> one logout in every tab with one broadcast,
//! an upstream 401 -> one session read and one logout (no retry loop), a provider outage ->
//! the session kept, sign-out (everywhere) at the server, the password kind of sign-in.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use api_types::paths;
use common::real_bff::PASSWORD;
use common::*;
use yew_session::config::AppConfig;
use yew_session::session::engine::LoginKind;
use yew_session::session::ports::HttpRequest;
use yew_session::session::{ClientError, LogoutReason, SessionStatus, TabMessage};

fn bff_config() -> AppConfig {
    AppConfig::from_json(r#"{"backend":"bff","apiBase":"/api/rs"}"#).expect("bff config")
}

fn all_sent(tabs: &[&Tab]) -> Vec<HttpRequest> {
    tabs.iter()
        .flat_map(|t| t.transport.sent.borrow().clone())
        .collect()
}

/// Fires `k` concurrent calls of the user board from `tab`; their results.
fn burst(w: &World, tab: &Tab, k: usize) -> Vec<Result<String, ClientError>> {
    let slots: Vec<_> = (0..k)
        .map(|_| {
            let api = tab.api.clone();
            w.spawn(async move { api.get_text(paths::TEST_USER).await })
        })
        .collect();
    w.run_until(|| slots.iter().all(|s| s.borrow().is_some()), 30_000.0);
    slots
        .iter()
        .map(|s| s.borrow_mut().take().unwrap())
        .collect()
}

fn logged_out_broadcasts(w: &World) -> usize {
    w.net
        .posted
        .borrow()
        .iter()
        .filter(|m| matches!(m, TabMessage::LoggedOut { .. }))
        .count()
}

#[test]
fn every_request_carries_the_csrf_header_and_no_token_and_no_token_is_kept_anywhere() {
    let w = World::new(Flavor::Bff);
    w.bff_signed_in_at_server("ann");
    let a = w.open_tab(bff_config());
    let b = w.open_tab(bff_config());
    for t in [&a, &b] {
        assert_eq!(t.engine.status(), SessionStatus::SignedIn);
        assert_eq!(t.engine.user().unwrap().username, "ann");
    }
    for r in burst(&w, &a, 3).into_iter().chain(burst(&w, &b, 2)) {
        assert_eq!(r.as_deref(), Ok("User Content."));
    }
    // The tokens the BFF holds for this session (the backend's access and refresh tokens).
    let held = w.bff().held_tokens();
    assert_eq!(held.len(), 2, "{held:?}");
    let e = a.engine.clone();
    // The tutorial-kind upstream has no end-session page (e2e/tests/bff.rs: the provider's).
    assert_eq!(
        w.block_on(async move { e.bff_logout(false).await }, 10_000.0),
        None
    );
    let sent = all_sent(&[&a, &b]);
    assert!(sent.len() >= 8, "{sent:?}");
    for req in &sent {
        assert_eq!(req.header("x-csrf"), Some("1"), "{req:?}");
        assert_eq!(req.header("authorization"), None, "{req:?}");
        assert_eq!(req.header("x-access-token"), None, "{req:?}");
        assert!(
            req.url.starts_with("/api/bff/") || req.url.starts_with("/api/rs/api/test/"),
            "same origin, BFF endpoints or the proxy prefix only: {}",
            req.url
        );
    }
    // The session id is the only secret the browser has: the HttpOnly cookie, never in storage
    // or in a message between tabs; the messages carry no token at all.
    let secret = w.jar().history.clone();
    assert_eq!(secret.len(), 1);
    let stored: Vec<String> = w.local.borrow().values().cloned().collect();
    let messages = format!("{:?}", w.net.posted.borrow());
    for place in stored.iter().chain([&messages]) {
        assert!(!place.contains(&secret[0]), "{place}");
    }
    // Nor any token the BFF held for it.
    let sent = format!("{:?}", all_sent(&[&a, &b]));
    for t in &held {
        for place in stored.iter().chain([&messages, &sent]) {
            assert!(
                !place.contains(t.as_str()),
                "a held token reached the browser: {place}"
            );
        }
    }
    for m in w.net.posted.borrow().iter() {
        if let TabMessage::TokenUpdated {
            access_token,
            refresh_token,
            id_token,
            ..
        } = m
        {
            assert!(access_token.is_empty() && refresh_token.is_none() && id_token.is_none());
        }
    }
}

#[test]
fn a_restore_signs_in_or_out_by_the_servers_answer_and_keeps_trying_when_it_is_unreachable() {
    // No cookie: one read, signed out with nothing to say, no tab told.
    let w = World::new(Flavor::Bff);
    let t = w.open_tab(bff_config());
    assert_eq!(t.engine.status(), SessionStatus::SignedOut { reason: None });
    assert_eq!(w.bff().session_reads, 1);
    assert_eq!(logged_out_broadcasts(&w), 0);
    assert_eq!(t.logged_out_count(), 0);
    // The server does not know the cookie any more: signed out, saying so.
    w.bff_signed_in_at_server("ann");
    w.bff().end_all();
    let t = w.open_tab(bff_config());
    assert_eq!(
        t.engine.status(),
        SessionStatus::SignedOut {
            reason: Some(LogoutReason::RefreshRejected)
        }
    );
    assert_eq!(
        t.engine.message().as_deref(),
        Some(LogoutReason::RefreshRejected.describe())
    );
    // The provider down does not hold a restore up: the session endpoint asks nobody.
    let w = World::new(Flavor::Bff);
    w.bff_signed_in_at_server("ann");
    w.bff().unavailable = true;
    let t = w.open_tab(bff_config());
    assert_eq!(t.engine.status(), SessionStatus::SignedIn);
    // The server unreachable (no answer at all): not signed out; retried with backoff until it
    // answers.
    let w = World::new(Flavor::Bff);
    w.bff_signed_in_at_server("ann");
    for _ in 0..3 {
        w.script_refresh(Scripted::Network);
    }
    let t = w.open_tab_unsettled(bff_config());
    w.advance(500.0);
    assert_eq!(t.engine.status(), SessionStatus::Restoring);
    assert!(t.engine.is_degraded());
    let e = t.engine.clone();
    w.run_until(move || e.status() == SessionStatus::SignedIn, 30_000.0);
    assert_eq!(t.logged_out_count(), 0);
    assert_eq!(w.bff().session_reads, 1, "the one read that got through");
}

#[test]
fn a_session_ended_at_the_server_signs_every_tab_out_once_with_one_broadcast() {
    let w = World::new(Flavor::Bff);
    w.bff_signed_in_at_server("ann");
    let tabs: Vec<Tab> = (0..4).map(|_| w.open_tab(bff_config())).collect();
    let reads = w.bff().session_reads;
    w.bff().end_all();
    for r in burst(&w, &tabs[0], 10) {
        assert_eq!(r, Err(ClientError::Unauthorized));
    }
    w.advance(1_000.0);
    for (i, t) in tabs.iter().enumerate() {
        assert_eq!(t.logged_out_count(), 1, "tab {i}");
        assert!(
            matches!(
                t.engine.status(),
                SessionStatus::SignedOut { reason: Some(_) }
            ),
            "tab {i}"
        );
    }
    assert_eq!(
        tabs[0].engine.status(),
        SessionStatus::SignedOut {
            reason: Some(LogoutReason::RefreshRejected)
        }
    );
    assert_eq!(logged_out_broadcasts(&w), 1);
    // The server said it ended: no sign-out request of ours, no extra session read.
    assert!(w.bff().logouts.is_empty());
    assert_eq!(w.bff().session_reads, reads);
}

#[test]
fn an_upstream_refusal_reads_the_session_once_and_ends_it_once_without_retrying_the_calls() {
    let w = World::new(Flavor::Bff);
    w.bff_signed_in_at_server("ann");
    let a = w.open_tab(bff_config());
    let b = w.open_tab(bff_config());
    let reads = w.bff().session_reads;
    w.bff().upstream_401 = true;
    for r in burst(&w, &a, 10) {
        assert_eq!(r, Err(ClientError::Unauthorized));
    }
    w.advance(1_000.0);
    let fake = w.bff();
    assert_eq!(
        fake.proxied, 10,
        "each call once: the server retried already"
    );
    assert_eq!(
        fake.session_reads,
        reads + 1,
        "one read for the ten refusals"
    );
    assert_eq!(
        fake.logouts,
        vec![String::new()],
        "the live session ended at the server too"
    );
    drop(fake);
    assert_eq!(
        a.engine.status(),
        SessionStatus::SignedOut {
            reason: Some(LogoutReason::TokenRejected)
        }
    );
    assert_eq!((a.logged_out_count(), b.logged_out_count()), (1, 1));
    assert_eq!(logged_out_broadcasts(&w), 1);
}

#[test]
fn an_unreachable_provider_fails_the_call_and_keeps_the_session() {
    let w = World::new(Flavor::Bff);
    w.bff_signed_in_at_server("ann");
    let a = w.open_tab(bff_config());
    w.bff().unavailable = true;
    // The API's own 503, relayed; then, past the access token's lifetime, the BFF's own (it must
    // refresh first and cannot): the calls fail, the session stays.
    for r in burst(&w, &a, 3) {
        assert_eq!(r, Err(ClientError::Server { status: 503 }));
    }
    w.advance((common::real_bff::ACCESS_TTL_S * 1000 + 1000) as f64);
    for r in burst(&w, &a, 3) {
        assert_eq!(r, Err(ClientError::Server { status: 503 }));
    }
    assert_eq!(a.engine.status(), SessionStatus::SignedIn);
    assert_eq!(w.bff().upstream_refreshes(), 0);
    // A wake's session read that gets no answer: kept and degraded, until one comes.
    w.script_refresh(Scripted::Network);
    w.advance(40_000.0);
    a.engine.wake(yew_session::session::WakeReason::Visible);
    w.advance(100.0);
    assert_eq!(a.engine.status(), SessionStatus::SignedIn);
    assert!(a.engine.is_degraded());
    let e = a.engine.clone();
    w.run_until(move || !e.is_degraded(), 70_000.0);
    // The provider back: one refresh, and the calls go through.
    w.bff().unavailable = false;
    for r in burst(&w, &a, 3) {
        assert_eq!(r.as_deref(), Ok("User Content."));
    }
    assert_eq!(w.bff().upstream_refreshes(), 1);
    assert_eq!(a.logged_out_count(), 0);
}

#[test]
fn signing_out_asks_the_server_once_and_everywhere_ends_every_session_of_the_user() {
    let w = World::new(Flavor::Bff);
    w.bff_signed_in_at_server("ann");
    let a = w.open_tab(bff_config());
    let b = w.open_tab(bff_config());
    let e = a.engine.clone();
    let url = w.block_on(async move { e.bff_logout(false).await }, 10_000.0);
    assert_eq!(url, None, "no end-session page at a tutorial-kind upstream");
    assert_eq!(w.bff().logouts, vec![String::new()]);
    assert_eq!(w.bff().live_sessions(), 0);
    assert!(matches!(
        b.engine.status(),
        SessionStatus::SignedOut {
            reason: Some(LogoutReason::OtherTab)
        }
    ));
    // Another browser's session of the same user (started outside this world's jar) ends too.
    w.bff().start_session("ann");
    w.bff_signed_in_at_server("ann");
    let c = w.open_tab(bff_config());
    assert_eq!(w.bff().live_sessions(), 2);
    let e = c.engine.clone();
    w.block_on(async move { e.bff_logout(true).await }, 10_000.0);
    assert_eq!(w.bff().logouts[1], "everywhere=1");
    assert_eq!(w.bff().live_sessions(), 0);
    assert_eq!(
        c.engine.status(),
        SessionStatus::SignedOut {
            reason: Some(LogoutReason::SignedOutEverywhere)
        }
    );
    assert_eq!(w.bff().csrf_refused, 0);
    // "Everywhere" asked of a tab already signed out reaches nobody, and is not left behind for
    // the engine's next sign-out at the server (here the retried-call rule's, once the tab is
    // signed in again by another tab's restore).
    let e = c.engine.clone();
    assert_eq!(
        w.block_on(async move { e.bff_logout(true).await }, 10_000.0),
        None
    );
    assert_eq!(
        w.bff().logouts.len(),
        2,
        "signed out already: nothing to tell the server"
    );
    w.bff().start_session("ann");
    w.bff_signed_in_at_server("ann");
    let _d = w.open_tab(bff_config());
    assert_eq!(c.engine.status(), SessionStatus::SignedIn, "adopted");
    w.bff().upstream_401 = true;
    burst(&w, &c, 1);
    w.settle();
    assert_eq!(w.bff().logouts[2], "", "this browser's session only");
    assert_eq!(w.bff().live_sessions(), 1, "the other browser's stays");
}

#[test]
fn the_password_kind_is_learnt_from_the_401_and_signs_in_every_tab() {
    // The real BFF in front of a tutorial-kind backend says "password".
    let w = World::new(Flavor::Bff);
    w.bff().add_user("ann");
    let a = w.open_tab(bff_config());
    let b = w.open_tab(bff_config());
    assert_eq!(a.engine.bff_login_kind(), LoginKind::Password);
    let e = a.engine.clone();
    let wrong = w.block_on(
        async move { e.bff_sign_in("ann".into(), "wrong".into()).await },
        10_000.0,
    );
    assert_eq!(
        wrong,
        Err(ClientError::Http {
            status: 401,
            message: "Invalid username or password.".into()
        })
    );
    w.bff().unavailable = true;
    let e = a.engine.clone();
    let later = w.block_on(
        async move { e.bff_sign_in("ann".into(), PASSWORD.into()).await },
        10_000.0,
    );
    assert!(
        matches!(&later, Err(ClientError::Http { status: 503, message }) if message.contains("try again")),
        "{later:?}"
    );
    w.bff().unavailable = false;
    let e = a.engine.clone();
    w.block_on(
        async move { e.bff_sign_in("ann".into(), PASSWORD.into()).await },
        10_000.0,
    )
    .expect("signed in");
    w.settle();
    for t in [&a, &b] {
        assert_eq!(t.engine.status(), SessionStatus::SignedIn);
        assert_eq!(t.engine.user().unwrap().username, "ann");
    }
    assert!(
        w.refresh_cookie().is_some(),
        "the server's cookie is in the jar"
    );
    // A tab that was signed in at load never saw a 401: its sign-in page asks once.
    let w = World::new(Flavor::Bff);
    w.bff_signed_in_at_server("ann");
    let t = w.open_tab(bff_config());
    assert!(!t.engine.bff_login_kind_known());
    let e = t.engine.clone();
    w.block_on(async move { e.bff_logout(false).await }, 10_000.0);
    let reads = w.bff().session_reads;
    let e = t.engine.clone();
    w.block_on(async move { e.bff_probe().await }, 10_000.0);
    assert_eq!(t.engine.bff_login_kind(), LoginKind::Password);
    let e = t.engine.clone();
    w.block_on(async move { e.bff_probe().await }, 10_000.0);
    assert_eq!(w.bff().session_reads, reads + 1, "asked once");
    // Without `login` the kind is the provider's redirect (the engine's decision tests), and its
    // URL carries the page to come back to.
    assert_eq!(
        t.engine.bff_login_url("/admin?x=1"),
        "/api/bff/login?return=%2Fadmin%3Fx%3D1"
    );
}
