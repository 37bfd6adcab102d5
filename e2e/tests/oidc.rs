//! The app against a real OpenID Provider (panva's `oidc-provider`, e2e/oidc): sign-in through
//! its login form and back to the page that sent the user; several tabs over several access-token
//! lifetimes under rotation with NO grace (a second use of any refresh token revokes the grant):
//! 0 `invalid_grant`, 0 logouts, about one refresh per lifetime; bursts in tabs that wake after
//! another refreshed; the refresh token's end; sign-out with revocation at the provider; a reload.
//! The app is session-api's release build (dist/) with an OIDC config.json; its API calls go to
//! the provider's resource server.

use std::time::{Duration, Instant};

use e2e::oidc::{self, Provider, ProviderOptions};
use e2e::{dist_with_config, wait_for, Browser, Page, Server, ServerOptions};
use serde_json::{json, Value};

/// Access-token lifetime at the provider.
const TTL: Duration = Duration::from_secs(5);

struct World {
    provider: Provider,
    server: Server,
    browser: Browser,
    _dist: tempfile::TempDir,
}

/// session-api serving the app, the provider (which needs the app's origin, so it starts second)
/// and the app's config.json naming the provider.
async fn world(tweak: impl FnOnce(&mut ProviderOptions)) -> World {
    let dist = dist_with_config(&json!({}));
    let server = Server::start(ServerOptions {
        static_dir: Some(dist.path().to_path_buf()),
        ..ServerOptions::default()
    })
    .await;
    let mut options = ProviderOptions {
        app_origin: server.url(),
        access_ttl_s: TTL.as_secs(),
        ..ProviderOptions::default()
    };
    tweak(&mut options);
    let provider = Provider::start(options).await;
    provider.write_app_config(dist.path());
    World {
        provider,
        server,
        browser: Browser::start().await,
        _dist: dist,
    }
}

/// On the app's sign-in page: "remember me" as asked, the provider's button, its login form,
/// back in the app signed in.
async fn sign_in(page: &Page, provider: &Provider, login: &str, remember: bool) {
    page.wait_text("[data-testid=provider-sign-in]", Duration::from_secs(15))
        .await;
    if remember {
        page.click("input#remember").await;
    }
    page.click("[data-testid=provider-sign-in]").await;
    oidc::sign_in_at_provider(page, provider, login, "any password").await;
    let what = format!("{login} to be signed in after the provider's redirect");
    wait_for(&what, Duration::from_secs(15), || async {
        if let Some(e) = page.text_of("[data-testid=callback-error]").await {
            panic!("the callback failed: {e}\n{}", provider.log());
        }
        page.nav_signed_in().await.then_some(())
    })
    .await;
}

/// The refresh token the app keeps for a remembered session (localStorage `user`).
async fn stored_refresh_token(page: &Page) -> Option<String> {
    let v = page
        .js("return localStorage.getItem('user');", vec![])
        .await;
    let user: Value = serde_json::from_str(v.as_str()?).ok()?;
    user["refreshToken"].as_str().map(str::to_owned)
}

async fn content(page: &Page) -> String {
    page.wait_text("[data-testid=content]", Duration::from_secs(15))
        .await
}

/// Sign-in through the provider's own login form returns to the page that sent the user (with
/// the roles of the ID token's `realm_access.roles`), the API calls carry the provider's token,
/// the round trip's secrets are gone afterwards; a provider's error is shown as it said it.
#[tokio::test]
async fn signing_in_at_the_provider_returns_to_the_page_that_sent_you() {
    let w = world(|_| {}).await;
    let page = w.browser.session(&w.server.url()).await;
    page.goto("/admin").await;
    wait_for(
        "the guard to send to /login",
        Duration::from_secs(15),
        || async { page.path().await.starts_with("/login").then_some(()) },
    )
    .await;
    sign_in(&page, &w.provider, "admin-ann", false).await;
    wait_for("back on /admin", Duration::from_secs(15), || async {
        (page.path().await == "/admin").then_some(())
    })
    .await;
    assert_eq!(
        content(&page).await,
        "Admin Content.",
        "{}",
        page.diagnostics().await
    );
    let stats = w.provider.stats().await;
    assert!(stats.api.ok >= 1, "{stats:?}");
    assert_eq!(stats.token("authorization_code", "ok"), 1, "{stats:?}");
    let pending = page
        .js(
            "return sessionStorage.getItem('yew-session.oidc-pending');",
            vec![],
        )
        .await;
    assert_eq!(
        pending,
        Value::Null,
        "the PKCE verifier outlived the callback"
    );
    // Not remembered: nothing in localStorage, the session is this tab's.
    assert_eq!(stored_refresh_token(&page).await, None);

    // A provider's error on the redirect URI, shown with its description.
    page.goto(
        "/callback?error=access_denied&error_description=End-User%20aborted%20interaction&state=x",
    )
    .await;
    let shown = page
        .wait_text("[data-testid=callback-error]", Duration::from_secs(10))
        .await;
    assert!(
        shown.contains("access_denied") && shown.contains("End-User aborted interaction"),
        "{shown}"
    );
    // A replayed callback (the code used already, no sign-in pending) is refused, not retried.
    page.goto("/callback?code=used&state=x").await;
    let shown = page
        .wait_text("[data-testid=callback-error]", Duration::from_secs(10))
        .await;
    assert!(shown.contains("No sign-in was started"), "{shown}");
}

/// Four tabs over five lifetimes with a provider that rotates with no grace: no `invalid_grant`,
/// no tab signed out, about one refresh per lifetime (what one tab makes, not four times it).
#[tokio::test]
async fn four_tabs_over_five_lifetimes_refresh_about_once_per_lifetime_and_never_twice() {
    let w = world(|_| {}).await;
    let first = w.browser.session(&w.server.url()).await;
    first.goto("/login?redirect=%2Fuser").await;
    sign_in(&first, &w.provider, "ann", true).await;
    assert_eq!(content(&first).await, "User Content.");
    let mut tabs = vec![first.clone()];
    for _ in 0..3 {
        tabs.push(first.new_tab("/user").await);
    }
    for (i, tab) in tabs.iter().enumerate() {
        assert_eq!(content(tab).await, "User Content.", "tab {i}");
    }
    w.provider.reset().await;
    tokio::time::sleep(TTL * 5).await;
    let stats = w.provider.stats().await;
    assert_eq!(stats.invalid_grant, 0, "{stats:?}\n{}", w.provider.log());
    assert_eq!(stats.token("refresh_token", "error"), 0, "{stats:?}");
    let refreshes = stats.refreshes_all();
    assert!(
        (4..=7).contains(&refreshes),
        "{refreshes} refreshes in 5 lifetimes of 4 tabs (about 5 expected): {stats:?}"
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
}

/// Tabs frozen past the token's expiry (a background tab the browser suspended): one wakes and
/// fires 50 calls, then the others wake after it refreshed and fire 50 each: one refresh in all,
/// 200 calls answered, and no tab presents the refresh token the first one rotated.
#[tokio::test]
async fn fifty_calls_in_each_of_four_waking_tabs_make_one_refresh() {
    let w = world(|_| {}).await;
    let first = w.browser.session(&w.server.url()).await;
    first.goto("/login?redirect=%2Fuser").await;
    sign_in(&first, &w.provider, "ann", true).await;
    let mut tabs = vec![first.clone()];
    for _ in 0..3 {
        tabs.push(first.new_tab("/user").await);
    }
    for tab in &tabs {
        content(tab).await;
        tab.open_inspector().await;
    }
    for tab in &tabs {
        tab.set_frozen(true).await;
    }
    w.provider.reset().await;
    tokio::time::sleep(TTL + Duration::from_secs(2)).await;
    assert_eq!(
        w.provider.stats().await.refreshes_all(),
        0,
        "frozen tabs refreshed"
    );
    let mut results = Vec::new();
    for tab in &tabs {
        tab.set_frozen(false).await;
        results.push(tab.fire(50).await);
    }
    let stats = w.provider.stats().await;
    for (i, r) in results.iter().enumerate() {
        assert_eq!(
            r,
            "50 calls: 50 ok, 0 failed",
            "tab {i}: {}",
            tabs[i].diagnostics().await
        );
    }
    assert_eq!(stats.invalid_grant, 0, "{stats:?}\n{}", w.provider.log());
    assert_eq!(stats.refreshes_all(), 1, "{stats:?}");
}

/// Signing out in one tab signs every tab out with the reason, revokes the refresh token at the
/// provider (a replay of it is refused there) and ends the provider's session (RP-initiated
/// logout, back to the app's login page).
#[tokio::test]
async fn signing_out_in_one_tab_signs_out_every_tab_and_revokes_at_the_provider() {
    let w = world(|_| {}).await;
    let first = w.browser.session(&w.server.url()).await;
    first.goto("/login?redirect=%2Fuser").await;
    sign_in(&first, &w.provider, "ann", true).await;
    let tabs = [
        first.clone(),
        first.new_tab("/user").await,
        first.new_tab("/user").await,
    ];
    for tab in &tabs {
        content(tab).await;
    }
    let refresh = stored_refresh_token(&first)
        .await
        .expect("a remembered session keeps its refresh token");
    let before = w.provider.stats().await;
    tabs[2].click_logout().await;
    oidc::confirm_sign_out_at_provider(&tabs[2], &w.provider).await;
    wait_for(
        "the last tab back on the app's login page",
        Duration::from_secs(15),
        || async { tabs[2].path().await.starts_with("/login").then_some(()) },
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(2);
    for (i, tab) in tabs[..2].iter().enumerate() {
        let notice = tab.signed_out_notice(deadline, &format!("tab {i}")).await;
        assert!(notice.contains("another tab"), "tab {i}: {notice}");
    }
    let after = w.provider.stats().await;
    assert_eq!(after.revocations_ok, before.revocations_ok + 1, "{after:?}");
    assert_eq!(after.end_session_ok, before.end_session_ok + 1, "{after:?}");
    let (status, body) = w.provider.refresh_grant(&refresh).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    assert_eq!(stored_refresh_token(&first).await, None);
}

/// Remember me on: a reload, and a tab opened later, restore the session from storage without a
/// second sign-in at the provider.
#[tokio::test]
async fn a_remembered_session_survives_a_reload_without_a_second_sign_in() {
    let w = world(|_| {}).await;
    let page = w.browser.session(&w.server.url()).await;
    page.goto("/login?redirect=%2Fuser").await;
    sign_in(&page, &w.provider, "ann", true).await;
    content(&page).await;
    page.reload().await;
    assert_eq!(content(&page).await, "User Content.");
    assert!(page.nav_signed_in().await);
    let later = page.new_tab("/user").await;
    assert_eq!(content(&later).await, "User Content.");
    let stats = w.provider.stats().await;
    assert_eq!(stats.token("authorization_code", "ok"), 1, "{stats:?}");
    assert_eq!(stats.invalid_grant, 0, "{stats:?}");
}

/// The refresh token's end (its absolute lifetime at the provider): every tab signs out once,
/// saying why, after exactly one refused refresh.
#[tokio::test]
async fn the_refresh_tokens_end_signs_every_tab_out_once_with_the_reason() {
    let w = world(|o| o.refresh_ttl_s = 12).await;
    let first = w.browser.session(&w.server.url()).await;
    first.goto("/login?redirect=%2Fuser").await;
    sign_in(&first, &w.provider, "ann", true).await;
    let tabs = [first.clone(), first.new_tab("/user").await];
    for tab in &tabs {
        content(tab).await;
    }
    for (i, tab) in tabs.iter().enumerate() {
        let deadline = Instant::now() + Duration::from_secs(30);
        let notice = tab.signed_out_notice(deadline, &format!("tab {i}")).await;
        assert!(!notice.trim().is_empty(), "tab {i}");
        assert_eq!(
            tab.logouts_logged().await,
            1,
            "tab {i}: {}",
            tab.diagnostics().await
        );
    }
    let stats = w.provider.stats().await;
    assert_eq!(stats.invalid_grant, 1, "{stats:?}\n{}", w.provider.log());
}
