//! End-to-end scenarios of issue 14, a person's account, with two browsers (two WebDriver
//! sessions: two profiles with their own cookies and storage, like two devices) and two tabs in
//! the first: a password change in tab A of browser 1 signs browser 2 out on its next request
//! and keeps both tabs of browser 1 in; "Sign out everywhere" signs out both tabs of browser 1 at
//! once and browser 2 on its next request, each saying why; deleting the account signs out and
//! the old password no longer signs in.
//!
//! Access tokens live 60 s here, so no background refresh happens during a scenario: browser 2
//! can only find out from the request the test makes it send, and that request's answer (its
//! access token refused at once, the refresh rejected) is what must sign it out within 1 s.

use std::time::{Duration, Instant};

use e2e::{wait_for, Browser, Page, Server, ServerOptions, DEMO_PASSWORD};
use serde_json::json;

const NEW_PASSWORD: &str = "a-brand-new-password";

fn options() -> ServerOptions {
    ServerOptions {
        access_ttl: "60s".into(),
        ..ServerOptions::default()
    }
}

/// Whether `page` shows the user board's content, signed in.
async fn on_user_board(page: &Page, who: &str) {
    wait_for(
        &format!("{who} to show the user board, signed in"),
        Duration::from_secs(15),
        || async {
            let ok = page.nav_signed_in().await
                && page.text_of("[data-testid=content]").await.as_deref() == Some("User Content.");
            ok.then_some(())
        },
    )
    .await;
}

/// The user board again by the navigation (Home, then User): one request with the access token
/// the page holds. Returns when the click on "User" was made.
async fn next_request(page: &Page) -> Instant {
    page.click_nav("Home").await;
    page.wait_text("[data-testid=content]", Duration::from_secs(10))
        .await;
    page.click_nav("User").await;
    Instant::now()
}

/// Browser 1 (tab A, and tab B on the user board) and browser 2 (on the user board), all
/// signed in as the demo user.
async fn two_browsers(browser: &Browser, server: &Server) -> (Page, Page, Page) {
    let a = browser.session(&server.url()).await;
    a.sign_in("user", DEMO_PASSWORD, true).await;
    let b = a.new_window("/user").await;
    on_user_board(&b, "browser 1, tab B").await;
    let other = browser.session(&server.url()).await;
    other.sign_in("user", DEMO_PASSWORD, true).await;
    other.click_nav("User").await;
    on_user_board(&other, "browser 2").await;
    (a, b, other)
}

#[tokio::test]
async fn a_password_change_signs_out_the_other_browser_on_its_next_request_and_keeps_this_one() {
    let server = Server::start(options()).await;
    let browser = Browser::start().await;
    let (a, b, other) = two_browsers(&browser, &server).await;

    // Tab A: from the profile to the change-password page, typed and clicked like a person.
    a.focus().await;
    a.goto("/profile").await;
    a.click("[data-testid=account] a[href='/profile/password']")
        .await;
    a.type_into("#current-password", DEMO_PASSWORD).await;
    a.type_into("#new-password", NEW_PASSWORD).await;
    a.type_into("#confirm-password", NEW_PASSWORD).await;
    a.click("[data-testid=password-form] button[type=submit]")
        .await;
    let success = a
        .wait_text("[data-testid=password-success]", Duration::from_secs(15))
        .await;
    assert_eq!(
        success,
        "Password changed. Your other sessions were signed out.",
        "{}",
        a.diagnostics().await
    );

    // Browser 2 has not heard of it yet (no request since): it still shows the board.
    other.focus().await;
    assert!(other.nav_signed_in().await, "{}", other.diagnostics().await);
    let sent = next_request(&other).await;
    let notice = other
        .signed_out_notice(sent + Duration::from_secs(1), "browser 2")
        .await;
    let took = sent.elapsed();
    assert!(!notice.trim().is_empty(), "browser 2 shows no reason");
    assert!(!other.nav_signed_in().await);

    // Browser 1: both tabs still in, with working calls, and a reload restores the kept session.
    for (tab, who) in [(&a, "tab A"), (&b, "tab B")] {
        tab.focus().await;
        next_request(tab).await;
        on_user_board(tab, who).await;
    }
    b.reload().await;
    on_user_board(&b, "tab B after a reload").await;
    a.open_inspector().await;
    assert_eq!(a.inspector_status().await, "Signed in");

    // The new password signs in (in browser 2), the old one no longer does.
    let old = server
        .http()
        .post(format!("{}/api/auth/signin", server.url()))
        .json(&json!({ "username": "user", "password": DEMO_PASSWORD }))
        .send()
        .await
        .expect("POST signin");
    assert_eq!(
        old.status().as_u16(),
        401,
        "the old password still signs in"
    );
    other.sign_in("user", NEW_PASSWORD, false).await;
    eprintln!("password change: browser 2 signed out {took:?} after its request: {notice:?}");
}

#[tokio::test]
async fn signing_out_everywhere_signs_out_both_tabs_at_once_and_the_other_browser_with_the_reason()
{
    let server = Server::start(options()).await;
    let browser = Browser::start().await;
    let (a, b, other) = two_browsers(&browser, &server).await;

    a.focus().await;
    a.goto("/profile").await;
    a.click("[data-testid=sign-out-everywhere]").await;
    a.wait_text(
        "[data-testid=confirm-sign-out-everywhere]",
        Duration::from_secs(5),
    )
    .await;
    assert!(
        b.nav_signed_in().await,
        "signed out before the confirmation"
    );
    a.focus().await;
    let clicked = Instant::now();
    a.click("[data-testid=confirm-sign-out-everywhere] [data-testid=confirm-yes]")
        .await;
    let deadline = clicked + Duration::from_secs(1);
    let notice_a = a.signed_out_notice(deadline, "tab A").await;
    let notice_b = b.signed_out_notice(deadline, "tab B").await;
    let both = clicked.elapsed();
    assert_eq!(notice_a, "You signed out on every device.");
    assert!(
        notice_b.contains("another tab") && notice_b.contains("every device"),
        "{notice_b:?}"
    );

    other.focus().await;
    let sent = next_request(&other).await;
    let notice = other
        .signed_out_notice(sent + Duration::from_secs(1), "browser 2")
        .await;
    let took = sent.elapsed();
    assert!(
        notice.contains("The server ended your session"),
        "{notice:?}"
    );
    for (tab, who) in [(&a, "tab A"), (&b, "tab B"), (&other, "browser 2")] {
        assert!(!tab.nav_signed_in().await, "{who} still signed in");
    }
    eprintln!(
        "sign-out everywhere: both tabs out {both:?} after the click; browser 2 {took:?} after its request ({notice:?})"
    );
}

#[tokio::test]
async fn deleting_the_account_signs_out_and_the_old_password_no_longer_signs_in() {
    let server = Server::start(options()).await;
    let browser = Browser::start().await;
    let page = browser.session(&server.url()).await;
    page.sign_in("user", DEMO_PASSWORD, true).await;
    page.goto("/profile").await;

    // On a 375 px wide screen the profile, its sessions table included, does not scroll sideways.
    page.client
        .set_window_size(375, 812)
        .await
        .expect("window size");
    page.wait_text("[data-testid=sessions]", Duration::from_secs(10))
        .await;
    let layout = page
        .js(
            "const row = document.querySelector('[data-testid=sessions] tbody tr'); \
             return { inner: window.innerWidth, scroll: document.documentElement.scrollWidth, \
                      row: getComputedStyle(row).display, \
                      button: document.querySelector('[data-testid=end-session]').textContent };",
            vec![],
        )
        .await;
    assert!(
        layout["inner"].as_u64().is_some_and(|w| w <= 375),
        "{layout}"
    );
    assert!(
        layout["scroll"].as_u64() <= layout["inner"].as_u64(),
        "the page scrolls sideways at 375 px: {layout}"
    );
    assert_eq!(layout["row"], "block", "{layout}");
    assert_eq!(
        layout["button"], "End session on Chrome on Linux",
        "{layout}"
    );

    page.click("[data-testid=delete-account]").await;
    page.type_into("#delete-password", DEMO_PASSWORD).await;
    page.click("[data-testid=confirm-delete-account] [data-testid=confirm-yes]")
        .await;
    let notice = page
        .wait_text("[data-testid=login-notice]", Duration::from_secs(10))
        .await;
    assert_eq!(notice, "Your account was deleted.");
    assert!(!page.nav_signed_in().await);

    // The old password on the login form: refused like any unknown account.
    page.type_into("input[name=username]", "user").await;
    page.type_into("input[name=password]", DEMO_PASSWORD).await;
    page.click("button[type=submit]").await;
    let error = page
        .wait_text("[data-testid=login-error]", Duration::from_secs(10))
        .await;
    assert!(error.contains("Invalid username or password"), "{error:?}");
    assert!(!page.nav_signed_in().await);
}
