//! Tabs opened the ways people open them — a typed URL or bookmark, Ctrl+click on a link,
//! `window.open` — share the session in cookie and compatibility modes whether "remember me" was
//! on or off, and sign out together with the first tab within 1 s (SECURITY.md).

use std::time::{Duration, Instant};

use e2e::{dist_with_config, wait_for, Browser, Page, Server, ServerOptions, DEMO_PASSWORD};

/// Waits until `page` is signed in on a protected page and shows its content.
async fn signed_in_on_user_board(page: &Page, who: &str) {
    wait_for(
        &format!("{who} to be signed in on /user"),
        Duration::from_secs(15),
        || async {
            let ok = page.path().await == "/user"
                && page.nav_signed_in().await
                && page.text_of("[data-testid=content]").await.as_deref() == Some("User Content.");
            ok.then_some(())
        },
    )
    .await;
}

async fn every_way_of_opening_a_tab_shares_the_session(remember: bool, compat: bool) {
    // Compatibility mode: the same build with another config.json (tokens in web storage).
    let dist = compat.then(|| {
        dist_with_config(&serde_json::json!({
            "apiBase": "",
            "tokenHeader": "x-access-token",
            "storageMode": "compat",
        }))
    });
    let server = Server::start(ServerOptions {
        static_dir: dist.as_ref().map(|d| d.path().to_path_buf()),
        ..ServerOptions::default()
    })
    .await;
    let browser = Browser::start().await;
    let first = browser.session(&server.url()).await;
    first.sign_in("user", DEMO_PASSWORD, remember).await;
    let signins = server.metrics().await.signins("ok");

    // A typed URL (or a bookmark): a new tab whose sessionStorage starts empty.
    let typed = first.new_tab("/user").await;
    signed_in_on_user_board(&typed, "the typed-URL tab").await;
    // Ctrl+click on the navigation's "User" link, with real input events.
    let ctrl = first.ctrl_click_nav("User").await;
    signed_in_on_user_board(&ctrl, "the Ctrl+click tab").await;
    // window.open from the page.
    let opened = first.window_open("/user").await;
    signed_in_on_user_board(&opened, "the window.open window").await;
    assert_eq!(
        server.metrics().await.signins("ok"),
        signins,
        "no tab signed in again (no second refresh-token family)"
    );

    // Sign out in the first tab: every tab is out within 1 s.
    first.focus().await;
    let clicked = Instant::now();
    first.click_logout().await;
    for (name, tab) in [("typed", &typed), ("ctrl", &ctrl), ("opened", &opened)] {
        let left = Duration::from_secs(1).saturating_sub(clicked.elapsed());
        wait_for(
            &format!("the {name} tab to sign out within 1 s of the click"),
            left,
            || async { (!tab.nav_signed_in().await).then_some(()) },
        )
        .await;
    }
    let took = clicked.elapsed();
    eprintln!(
        "remember {remember}, compat {compat}: three new tabs shared the session; all out {took:?} after the click"
    );
}

#[tokio::test]
async fn new_tabs_share_a_session_that_is_not_remembered() {
    every_way_of_opening_a_tab_shares_the_session(false, false).await;
}

#[tokio::test]
async fn new_tabs_share_a_remembered_session() {
    every_way_of_opening_a_tab_shares_the_session(true, false).await;
}

#[tokio::test]
async fn compat_mode_new_tabs_share_a_session_that_is_not_remembered() {
    every_way_of_opening_a_tab_shares_the_session(false, true).await;
}

#[tokio::test]
async fn compat_mode_new_tabs_share_a_remembered_session() {
    every_way_of_opening_a_tab_shares_the_session(true, true).await;
}
