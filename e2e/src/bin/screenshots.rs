//! Takes the README's screenshots: the real session-api and release build, driven in headless
//! Chromium over WebDriver like the end-to-end tests (run `scripts/build-release` first).
//!
//! `cargo run -p e2e --bin screenshots -- docs/screenshots`

use std::path::PathBuf;
use std::time::Duration;

use e2e::{Browser, Page, Server, ServerOptions, DEMO_PASSWORD};

async fn shoot(page: &Page, dir: &std::path::Path, name: &str) {
    // Let the inspector's bar move and fonts settle.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let png = page.client.screenshot().await.expect("screenshot");
    let path = dir.join(name);
    std::fs::write(&path, png).expect("write screenshot");
    eprintln!("wrote {}", path.display());
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "docs/screenshots".into()),
    );
    std::fs::create_dir_all(&dir).expect("output folder");
    // 20 s tokens: the inspector is shot after one background refresh, mid-way through the next.
    let server = Server::start(ServerOptions {
        access_ttl: "20s".into(),
        ..ServerOptions::default()
    })
    .await;
    let browser = Browser::start().await;
    let page = browser.session(&server.url()).await;

    page.goto("/login").await;
    page.wait_text("button[type=submit]", Duration::from_secs(10))
        .await;
    shoot(&page, &dir, "login.png").await;

    page.sign_in("admin", DEMO_PASSWORD, true).await;
    page.click_nav("Admin").await;
    page.wait_text("[data-testid=content]", Duration::from_secs(10))
        .await;
    shoot(&page, &dir, "admin-board.png").await;

    // A second device of the same account, so the sessions table has two rows.
    let _other = server.sign_in_direct("admin", DEMO_PASSWORD).await;
    page.click_nav("admin").await;
    page.wait_text("[data-testid=sessions]", Duration::from_secs(10))
        .await;
    shoot(&page, &dir, "profile.png").await;

    page.click_nav("User").await;
    page.wait_text("[data-testid=content]", Duration::from_secs(10))
        .await;
    page.open_inspector().await;
    page.click_instrument("[data-testid=fire-10]").await;
    page.wait_text("[data-testid=burst-result]", Duration::from_secs(10))
        .await;
    tokio::time::sleep(Duration::from_secs(25)).await;
    page.js("window.scrollTo(0, document.body.scrollHeight);", vec![])
        .await;
    shoot(&page, &dir, "inspector.png").await;
}
