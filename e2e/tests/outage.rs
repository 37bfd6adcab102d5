//! End-to-end scenario 5 of issue 7: the server goes away during the session and comes back
//! 10 s later on the same port with the same data; the app says it is offline, keeps the
//! session meanwhile, and carries on without a new sign-in.

use std::time::{Duration, Instant};

use e2e::{wait_for, Browser, Server, ServerOptions, DEMO_PASSWORD};

const TTL: Duration = Duration::from_secs(4);

#[tokio::test]
async fn the_session_survives_a_server_restart_and_the_app_shows_it_is_offline() {
    let mut server = Server::start(ServerOptions::default()).await;
    let browser = Browser::start().await;
    let page = browser.session(&server.url()).await;
    page.sign_in("user", DEMO_PASSWORD, true).await;
    page.click_nav("User").await;
    page.wait_text("[data-testid=content]", Duration::from_secs(10))
        .await;
    page.open_inspector().await;

    server.stop();
    let stopped = Instant::now();
    // The next proactive refresh (within one lifetime) fails: the banner must say so.
    let banner = page
        .wait_text("[data-testid=offline-banner]", TTL + Duration::from_secs(5))
        .await;
    assert!(!banner.trim().is_empty());
    // Down for 10 s: the access token expires meanwhile, the session must be kept all along.
    while stopped.elapsed() < Duration::from_secs(10) {
        assert_eq!(page.path().await, "/user", "{}", page.diagnostics().await);
        assert!(page.nav_signed_in().await, "{}", page.diagnostics().await);
        let status = page.inspector_status().await;
        assert!(
            status.starts_with("Signed in"),
            "session not kept while the server is down: {status}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        page.exists("[data-testid=offline-banner]").await,
        "the banner went away while the server was still down"
    );
    // Calls made meanwhile fail (nothing answers) but must not end the session.
    let during = page.fire(10).await;
    assert_eq!(during, "10 calls: 0 ok, 10 failed");
    assert!(page.nav_signed_in().await, "{}", page.diagnostics().await);
    assert!(page.inspector_status().await.starts_with("Signed in"));

    server.restart().await;
    let restarted = Instant::now();
    // Retries back off (with jitter) while the server is down; the next one must get through.
    wait_for(
        "the app to recover after the restart",
        Duration::from_secs(45),
        || async {
            let status = page.inspector_status().await;
            let banner = page.exists("[data-testid=offline-banner]").await;
            (status == "Signed in" && !banner).then_some(())
        },
    )
    .await;
    let recovered_after = restarted.elapsed();

    let result = page.fire(10).await;
    assert_eq!(
        result,
        "10 calls: 10 ok, 0 failed",
        "{}",
        page.diagnostics().await
    );
    assert_eq!(page.path().await, "/user");
    let m = server.metrics().await;
    assert_eq!(m.signins("ok"), 0, "a new sign-in happened: {m:?}");
    assert!(
        m.refreshes("ok") >= 1,
        "the session carried on by refreshing: {m:?}"
    );
    assert_eq!(
        m.refreshes_all(),
        m.refreshes_answered(),
        "a refresh was refused after the restart: {m:?}"
    );
    eprintln!("scenario 5: recovered {recovered_after:?} after the restart");
}
