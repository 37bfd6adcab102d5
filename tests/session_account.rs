//! Host tests of the account's calls through the interceptor against the real session-api in
//! process: sign-out everywhere and account deletion end every tab of the browser with their
//! reason (the server already ended the session: no sign-out request follows), a password change
//! keeps every tab of the browser signed in, and a refusal keeps its machine-readable code.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use api_types::{codes, paths, ChangePasswordRequest, DeleteAccountRequest};
use common::*;
use yew_session::config::StorageMode;
use yew_session::session::ports::Method;
use yew_session::session::{ClientError, LogoutReason, SessionStatus};

fn two_signed_in_tabs() -> (World, Tab, Tab) {
    let w = World::new(Flavor::SessionApi);
    let a = w.open_tab(config(StorageMode::Cookie));
    let b = w.open_tab(config(StorageMode::Cookie));
    w.login(&a, "alice");
    w.advance(10.0);
    assert_eq!(b.engine.status(), SessionStatus::SignedIn);
    (w, a, b)
}

/// Tab A's call, then what the page does on success.
fn ended_by(w: &World, a: &Tab, path: &'static str, reason: LogoutReason) {
    let api = a.api.clone();
    let answer = if path == paths::ACCOUNT {
        let req = DeleteAccountRequest {
            current_password: PASSWORD.into(),
        };
        w.block_on(
            async move { api.send_json(Method::Delete, path, &req).await },
            10_000.0,
        )
    } else {
        w.block_on(async move { api.post_empty(path).await }, 10_000.0)
    };
    answer.unwrap_or_else(|r| panic!("{path}: {r:?}"));
    a.engine.ended_on_server(reason);
    w.advance(500.0);
}

#[test]
fn signing_out_everywhere_ends_every_tab_with_the_reason_and_no_second_sign_out() {
    let (w, a, b) = two_signed_in_tabs();
    ended_by(
        &w,
        &a,
        paths::SIGNOUT_ALL,
        LogoutReason::SignedOutEverywhere,
    );
    assert_eq!(
        a.engine.status(),
        SessionStatus::SignedOut {
            reason: Some(LogoutReason::SignedOutEverywhere)
        }
    );
    assert_eq!(
        a.engine.message().as_deref(),
        Some("You signed out on every device.")
    );
    assert_eq!(
        b.engine.status(),
        SessionStatus::SignedOut {
            reason: Some(LogoutReason::OtherTab)
        }
    );
    let msg = b.engine.message().unwrap();
    assert!(
        msg.contains("another tab") && msg.contains("every device"),
        "{msg}"
    );
    assert_eq!((a.logged_out_count(), b.logged_out_count()), (1, 1));
    assert_eq!(
        w.counts().signout,
        0,
        "the server had ended the session already"
    );
    assert_eq!(w.refresh_cookie(), None, "the server expired the cookie");
    w.advance(600_000.0);
    assert_eq!(w.counts().refresh, 0, "a signed-out tab refreshed");
}

#[test]
fn deleting_the_account_ends_every_tab_with_the_reason() {
    let (w, a, b) = two_signed_in_tabs();
    ended_by(&w, &a, paths::ACCOUNT, LogoutReason::AccountDeleted);
    assert_eq!(
        a.engine.message().as_deref(),
        Some("Your account was deleted.")
    );
    let msg = b.engine.message().unwrap();
    assert!(msg.contains("Your account was deleted."), "{msg}");
    assert_eq!(w.counts().signout, 0);
    // The account is gone: its password signs nobody in.
    let e = a.engine.clone();
    let again = w.block_on(
        async move { e.login("alice".into(), PASSWORD.into(), true).await },
        10_000.0,
    );
    assert!(
        matches!(again, Err(ClientError::Http { status: 401, .. })),
        "{again:?}"
    );
}

#[test]
fn changing_the_password_keeps_every_tab_of_this_browser_signed_in() {
    let (w, a, b) = two_signed_in_tabs();
    let api = a.api.clone();
    let req = ChangePasswordRequest {
        current_password: PASSWORD.into(),
        new_password: "a-brand-new-password".into(),
    };
    let answer = w.block_on(
        async move { api.send_json(Method::Post, paths::PASSWORD, &req).await },
        10_000.0,
    );
    assert!(answer.is_ok(), "{answer:?}");
    // Five minutes of 60 s tokens: both tabs keep refreshing the kept session.
    w.advance(5.0 * 60_000.0);
    assert_eq!(a.engine.status(), SessionStatus::SignedIn);
    assert_eq!(b.engine.status(), SessionStatus::SignedIn);
    assert!(w.counts().refresh >= 4 && w.counts().refresh == w.counts().refresh_ok);
    let api = b.api.clone();
    let r = w.block_on(
        async move { api.get_text(paths::TEST_USER).await },
        10_000.0,
    );
    assert!(r.is_ok(), "{r:?}");
}

#[test]
fn a_wrong_current_password_is_refused_with_its_code_and_the_session_kept() {
    let (w, a, _b) = two_signed_in_tabs();
    let api = a.api.clone();
    let req = ChangePasswordRequest {
        current_password: "not-the-password".into(),
        new_password: "a-brand-new-password".into(),
    };
    let answer = w.block_on(
        async move { api.send_json(Method::Post, paths::PASSWORD, &req).await },
        10_000.0,
    );
    let refusal = answer.expect_err("a wrong password was accepted");
    assert_eq!(refusal.code.as_deref(), Some(codes::WRONG_PASSWORD));
    assert!(
        matches!(refusal.error, ClientError::Forbidden { .. }),
        "{refusal:?}"
    );
    assert_eq!(a.engine.status(), SessionStatus::SignedIn);
}
