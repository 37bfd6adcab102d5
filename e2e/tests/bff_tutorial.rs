//! The app in `"backend": "bff"` mode in front of a backend with the tutorial's contract (issue
//! 15, as in the Next.js case: a separate API with its own sign-in and refresh routes): the fake
//! of the tutorial's backend (`tutorial-fake`, checked against ../shared/TUTORIAL-BACKEND.md) on
//! 127.0.0.1 with 5 s access tokens; session-api's release binary with `--upstream-tutorial` and
//! `--upstream-api rs=` pointing at it; the release app with `{"backend": "bff", "apiBase":
//! "/api/rs"}` in real Chromium. The sign-in page learns from the server that it signs in with a
//! password, the server signs in at the backend and keeps its tokens, four tabs use protected
//! pages over five lifetimes, and nothing a script can read carries a token.

use std::time::{Duration, Instant};

use e2e::bff::{jwt_shaped, uuid_shaped, SCRIPT_VIEW};
use e2e::tutorial::{Counters, TutorialBackend};
use e2e::{dist_with_config, fire_bursts_for, Browser, Server, ServerOptions};
use serde_json::json;

/// Access-token lifetime at the backend.
const TTL: Duration = Duration::from_secs(5);
const PASSWORD: &str = "tutorial-pass-1";

#[tokio::test]
async fn four_tabs_over_five_lifetimes_in_front_of_the_tutorial_backend_with_no_token_readable() {
    let dist = dist_with_config(&json!({ "backend": "bff", "apiBase": "/api/rs" }));
    // The backend serves a copy of the app too (unused here: the browser talks to session-api).
    let backend =
        TutorialBackend::start(dist.path().to_path_buf(), PASSWORD, TTL.as_secs(), 3600).await;
    let server = Server::start(ServerOptions {
        static_dir: Some(dist.path().to_path_buf()),
        extra_args: vec![
            "--upstream-tutorial".into(),
            backend.url(),
            "--upstream-api".into(),
            format!("rs={}", backend.url()),
            // The home page's public content, read through the proxy without a session.
            "--upstream-public".into(),
            "rs".into(),
        ],
        ..ServerOptions::default()
    })
    .await;
    let browser = Browser::start().await;
    let first = browser.session(&server.url()).await;
    // Signed out, the home page's public content comes through the proxy (a public prefix).
    first.goto("/").await;
    let public = first
        .wait_text("[data-testid=content]", Duration::from_secs(15))
        .await;
    assert_eq!(public, "Public Content.", "{}", first.diagnostics().await);
    // The app's own password form, posted to the server (which asks the backend).
    first.sign_in("user", PASSWORD, false).await;
    assert_eq!(Counters::get(&backend.counters.signins), 1);
    let mut tabs = vec![first.clone()];
    for _ in 0..3 {
        tabs.push(first.new_tab("/user").await);
    }
    first.goto("/user").await;
    for (i, tab) in tabs.iter().enumerate() {
        let content = tab
            .wait_text("[data-testid=content]", Duration::from_secs(15))
            .await;
        assert_eq!(
            content,
            "User Content.",
            "tab {i}: {}",
            tab.diagnostics().await
        );
        tab.open_inspector().await;
    }
    let start = Instant::now();
    let bursts = fire_bursts_for(&tabs, TTL * 5)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let refreshes = Counters::get(&backend.counters.refresh_ok);
    eprintln!(
        "bff tutorial: {bursts} bursts of 10 over {:.1} s, {refreshes} refreshes at the backend, \
         {} refused, {} calls answered 401",
        start.elapsed().as_secs_f64(),
        Counters::get(&backend.counters.refresh_rejected),
        Counters::get(&backend.counters.unauthorized)
    );
    // The server refreshes when a quarter of the lifetime is left: about 6.7 in 25 s, for the
    // whole browser, not per tab.
    assert!(
        (4..=10).contains(&refreshes),
        "{refreshes} refreshes in 5 lifetimes of 4 busy tabs"
    );
    assert_eq!(Counters::get(&backend.counters.refresh_rejected), 0);
    assert_eq!(
        Counters::get(&backend.counters.unauthorized),
        0,
        "a call reached the backend with a dead token"
    );
    for (i, tab) in tabs.iter().enumerate() {
        assert_eq!(
            tab.logouts_logged().await,
            0,
            "tab {i}: {}",
            tab.diagnostics().await
        );
        assert_eq!(tab.inspector_status().await, "Signed in", "tab {i}");
    }
    // Nothing a script can read carries a token: the backend's access tokens are JWTs, its
    // refresh tokens UUIDs.
    for (i, tab) in tabs.iter().enumerate() {
        let view = tab.js(SCRIPT_VIEW, vec![]).await;
        for (place, text) in view.as_object().expect("the script's view") {
            let text = text.as_str().unwrap_or_default();
            assert_eq!(jwt_shaped(text), None, "tab {i}: {place}: {text}");
            assert_eq!(uuid_shaped(text), None, "tab {i}: {place}: {text}");
        }
        let session = view["/api/bff/session"].as_str().unwrap_or_default();
        assert!(session.starts_with("200"), "tab {i}: {session}");
    }
    // Log out in one tab: every tab signs out.
    first.click_logout().await;
    let deadline = Instant::now() + Duration::from_secs(2);
    let notice = tabs[1].signed_out_notice(deadline, "tab 1").await;
    assert!(notice.contains("another tab"), "{notice}");
}
