//! End-to-end scenario 8 of issue 7: role boards. The demo admin sees /admin; a plain user gets
//! the not-allowed page on /admin and stays signed in.

use std::time::Duration;

use e2e::{Browser, Server, ServerOptions, DEMO_PASSWORD};

#[tokio::test]
async fn the_admin_sees_the_admin_board_and_a_plain_user_is_not_allowed_but_stays_signed_in() {
    let server = Server::start(ServerOptions::default()).await;
    let browser = Browser::start().await;
    let page = browser.session(&server.url()).await;

    page.sign_in("admin", DEMO_PASSWORD, false).await;
    page.click_nav("Admin").await;
    assert_eq!(
        page.wait_text("[data-testid=content]", Duration::from_secs(10))
            .await,
        "Admin Content."
    );
    assert_eq!(page.path().await, "/admin");
    page.click_logout().await;
    page.wait_text("[data-testid=login-notice]", Duration::from_secs(5))
        .await;

    page.sign_in("user", DEMO_PASSWORD, false).await;
    // A plain user's nav has no Admin link: type the address, as a curious user would.
    page.goto("/admin").await;
    page.wait_text("[data-testid=not-allowed]", Duration::from_secs(10))
        .await;
    assert_eq!(page.path().await, "/admin");
    assert!(page.nav_signed_in().await, "{}", page.diagnostics().await);
    assert!(!page.exists("[data-testid=content]").await);
    page.open_inspector().await;
    assert_eq!(page.inspector_status().await, "Signed in");

    // Still signed in: the user board works.
    page.click_nav("User").await;
    assert_eq!(
        page.wait_text("[data-testid=content]", Duration::from_secs(10))
            .await,
        "User Content."
    );
    let m = server.metrics().await;
    assert_eq!(m.responses(401), 0, "{m:?}");
    assert_eq!(m.refreshes_all(), m.refreshes_answered(), "{m:?}");
}
