//! The app in `"backend": "bff"` mode against the real OpenID Provider (panva's
//! `oidc-provider`, e2e/oidc, its confidential client `yew-session-bff`, 5 s access tokens,
//! refresh tokens rotated on every use with no grace): session-api's release binary signs in at
//! the provider, keeps every token and proxies `/api/rs/...` to the provider's resource server;
//! the release build of the app holds none. Real Chromium over WebDriver: sign-in through the
//! provider's login form back to the page that sent the user; four tabs over five lifetimes each
//! using protected pages (0 `invalid_grant`, 0 logouts, about one upstream refresh per
//! lifetime); no token the provider issued anywhere a script can read; sign-out (revoked at the
//! provider, every tab out) and sign-out everywhere (a second browser profile out too); a grant
//! revoked at the provider signs every tab out once, with the reason.

use std::time::{Duration, Instant};

use e2e::bff::{jwt_shaped, SCRIPT_VIEW};
use e2e::oidc::{self, Provider, ProviderOptions};
use e2e::{
    dist_with_config, fire_bursts_for, free_port, wait_for, Browser, Page, Server, ServerOptions,
};
use serde_json::{json, Value};

/// Access-token lifetime at the provider.
const TTL: Duration = Duration::from_secs(5);

struct World {
    provider: Provider,
    server: Server,
    browser: Browser,
    _dist: tempfile::TempDir,
    _secret: tempfile::TempDir,
}

/// The provider first (it registers the app's origin, so the server's port is chosen before),
/// then session-api in BFF mode (it discovers the provider at start) serving the app with
/// `{"backend": "bff", "apiBase": "/api/rs"}`.
async fn world() -> World {
    let port = free_port();
    let origin = format!("http://127.0.0.1:{port}");
    let provider = Provider::start(ProviderOptions {
        app_origin: origin.clone(),
        access_ttl_s: TTL.as_secs(),
        ..ProviderOptions::default()
    })
    .await;
    let dist = dist_with_config(&json!({ "backend": "bff", "apiBase": "/api/rs" }));
    let secret = tempfile::tempdir().expect("temp dir");
    let server = Server::start(ServerOptions {
        static_dir: Some(dist.path().to_path_buf()),
        port: Some(port),
        extra_args: provider.bff_server_args(&origin, &secret.path().join("bff-client.secret")),
        ..ServerOptions::default()
    })
    .await;
    World {
        provider,
        server,
        browser: Browser::start().await,
        _dist: dist,
        _secret: secret,
    }
}

/// On the app's sign-in page: its one button, the provider's login form (unless the provider
/// still has a login session of this browser), back in the app signed in.
async fn sign_in(page: &Page, provider: &Provider, login: &str) {
    page.wait_text("[data-testid=provider-sign-in]", Duration::from_secs(15))
        .await;
    page.click("[data-testid=provider-sign-in]").await;
    let issuer = provider.issuer();
    let form = wait_for(
        "the provider's login form, or the app again",
        Duration::from_secs(15),
        || async {
            let at = oidc::href(page).await;
            if at.starts_with(&issuer) && page.exists("input[name=login]").await {
                return Some(true);
            }
            (!at.starts_with(&issuer) && page.nav_signed_in().await).then_some(false)
        },
    )
    .await;
    if form {
        oidc::sign_in_at_provider(page, provider, login, "any password").await;
    }
    let what = format!("{login} to be signed in after the server's redirect");
    wait_for(&what, Duration::from_secs(15), || async {
        if let Some(e) = page.text_of("[data-testid=login-error]").await {
            panic!("the sign-in failed: {e}\n{}", provider.log());
        }
        page.nav_signed_in().await.then_some(())
    })
    .await;
}

async fn content(page: &Page) -> String {
    page.wait_text("[data-testid=content]", Duration::from_secs(15))
        .await
}

/// Asserts that nothing `page`'s scripts can read carries a token the provider issued (nor
/// anything shaped like a JWT); returns what was read, for more checks.
async fn assert_no_token_readable(page: &Page, provider: &Provider, who: &str) -> Value {
    let issued = provider.stats().await.issued_bff;
    assert!(
        issued.len() >= 3,
        "the provider issued no access, refresh and ID token to the BFF client: {issued:?}"
    );
    let view = page.js(SCRIPT_VIEW, vec![]).await;
    let places = view.as_object().expect("the script's view");
    for (place, text) in places {
        let text = text.as_str().unwrap_or_default();
        for token in &issued {
            assert!(
                !text.contains(token.as_str()),
                "{who}: {place} carries a token the provider issued: {text}"
            );
        }
        assert_eq!(jwt_shaped(text), None, "{who}: {place}: {text}");
    }
    view
}

/// Sign-in through the provider's own login form returns to the page that sent the user, the
/// protected pages work through the server's proxy, the profile says where the tokens are, and
/// no token the provider issued is anywhere a script can read: web storage, `document.cookie`,
/// the bodies and readable headers of the session endpoint and of proxied calls.
#[tokio::test]
async fn signing_in_through_the_server_reaches_protected_pages_with_no_token_readable() {
    let w = world().await;
    let page = w.browser.session(&w.server.url()).await;
    page.goto("/user").await;
    wait_for(
        "the guard to send to /login",
        Duration::from_secs(15),
        || async { page.path().await.starts_with("/login").then_some(()) },
    )
    .await;
    sign_in(&page, &w.provider, "ann").await;
    wait_for("back on /user", Duration::from_secs(15), || async {
        (page.path().await == "/user").then_some(())
    })
    .await;
    assert_eq!(
        content(&page).await,
        "User Content.",
        "{}",
        page.diagnostics().await
    );
    let stats = w.provider.stats().await;
    assert_eq!(
        stats.token("authorization_code", "ok"),
        1,
        "the server's code exchange: {stats:?}"
    );
    assert!(
        stats.api.ok >= 1,
        "the resource server was called: {stats:?}"
    );

    page.goto("/profile").await;
    let kept = page
        .wait_text("[data-testid=profile-transport]", Duration::from_secs(10))
        .await;
    assert!(kept.starts_with("nowhere in this browser"), "{kept}");
    page.open_inspector().await;
    let refreshed = page
        .wait_text(
            "[data-testid=insp-bff-refresh-count]",
            Duration::from_secs(10),
        )
        .await;
    assert_eq!(refreshed, "0", "no upstream refresh yet");

    // Let the server refresh the upstream tokens once (so refreshed ones are issued too).
    tokio::time::sleep(TTL).await;
    page.click_nav("User").await;
    assert_eq!(content(&page).await, "User Content.");
    assert!(w.provider.stats().await.refreshes_ok() >= 1);
    let view = assert_no_token_readable(&page, &w.provider, "the signed-in tab").await;
    let session = view["/api/bff/session"].as_str().unwrap_or_default();
    assert!(
        session.starts_with("200") && session.contains("\"refreshCount\""),
        "{session}"
    );
    assert!(view["/api/rs/api/test/user"]
        .as_str()
        .unwrap_or_default()
        .ends_with("User Content."));
}

/// Four tabs of one browser over five access-token lifetimes, each firing calls at a protected
/// route through the proxy: 0 `invalid_grant` under no-grace rotation, 0 failed calls, 0
/// logouts, and the server's refreshes about one per lifetime (it refreshes when a quarter of
/// the lifetime is left, so 25 s of calls make about 6.7) — not four tabs' worth.
#[tokio::test]
async fn four_tabs_over_five_lifetimes_make_no_invalid_grant_and_no_logout() {
    let w = world().await;
    let first = w.browser.session(&w.server.url()).await;
    first.goto("/login?redirect=%2Fuser").await;
    sign_in(&first, &w.provider, "ann").await;
    assert_eq!(content(&first).await, "User Content.");
    let mut tabs = vec![first.clone()];
    for _ in 0..3 {
        tabs.push(first.new_tab("/user").await);
    }
    for (i, tab) in tabs.iter().enumerate() {
        assert_eq!(content(tab).await, "User Content.", "tab {i}");
        tab.open_inspector().await;
    }
    w.provider.reset().await;
    let start = Instant::now();
    let bursts = fire_bursts_for(&tabs, TTL * 5)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", w.provider.log()));
    let stats = w.provider.stats().await;
    assert_eq!(stats.invalid_grant, 0, "{stats:?}\n{}", w.provider.log());
    assert_eq!(stats.grants_revoked, 0, "{stats:?}");
    let refreshes = stats.refreshes_all();
    assert!(
        (4..=10).contains(&refreshes),
        "{refreshes} upstream refreshes in 5 lifetimes of 4 busy tabs ({bursts} bursts of 10): {stats:?}"
    );
    assert_eq!(stats.refreshes_ok(), refreshes, "{stats:?}");
    let calls = stats.api.ok;
    eprintln!(
        "bff four tabs: {bursts} bursts of 10 ({calls} calls at the resource server) over {:.1} s, \
         {refreshes} upstream refreshes, {} invalid_grant",
        start.elapsed().as_secs_f64(),
        stats.invalid_grant
    );
    assert_eq!(stats.api.unauthorized, 0, "{stats:?}");
    for (i, tab) in tabs.iter().enumerate() {
        assert_eq!(
            tab.logouts_logged().await,
            0,
            "tab {i}: {}",
            tab.diagnostics().await
        );
        assert_eq!(tab.inspector_status().await, "Signed in", "tab {i}");
        assert_eq!(tab.inspector_number("insp-401").await, 0, "tab {i}");
        // The app reads the server-side session at load (and on a wake, at most every 30 s),
        // not per lifetime: the server refreshes, the browser has nothing to schedule.
        let reads = tab.inspector_number("insp-refreshes").await;
        eprintln!("bff four tabs: tab {i} read the session {reads} time(s)");
        assert!(reads <= 2, "tab {i} read the session {reads} times");
    }
    for (i, tab) in tabs.iter().enumerate() {
        assert_no_token_readable(tab, &w.provider, &format!("tab {i}")).await;
    }
}

/// "Log out" in one tab: the server revokes the refresh token at the provider, every tab of the
/// browser shows the sign-in page within 2 s, and the tab goes to the provider's end-session
/// page. "Sign out everywhere" ends the same user's session in a second browser profile too.
#[tokio::test]
async fn signing_out_revokes_at_the_provider_and_everywhere_reaches_another_browser() {
    let w = world().await;
    let a = w.browser.session(&w.server.url()).await;
    a.goto("/login?redirect=%2Fuser").await;
    sign_in(&a, &w.provider, "ann").await;
    let b = a.new_tab("/user").await;
    assert_eq!(content(&b).await, "User Content.");
    w.provider.reset().await;

    a.click_logout().await;
    let deadline = Instant::now() + Duration::from_secs(2);
    let notice = b.signed_out_notice(deadline, "the other tab").await;
    assert!(notice.contains("another tab"), "{notice}");
    // This tab goes to the provider's end-session page (its confirmation, then back here).
    let issuer = w.provider.issuer();
    wait_for(
        "the provider's end-session page",
        Duration::from_secs(10),
        || async { oidc::href(&a).await.starts_with(&issuer).then_some(()) },
    )
    .await;
    oidc::confirm_sign_out_at_provider(&a, &w.provider).await;
    let stats = w.provider.stats().await;
    assert_eq!(stats.revocations_ok, 1, "{stats:?}");
    assert_eq!(stats.end_session_ok, 1, "{stats:?}");
    // The session is gone at the server: a reload stays signed out.
    b.reload().await;
    b.goto("/user").await;
    wait_for("tab b at /login", Duration::from_secs(10), || async {
        b.path().await.starts_with("/login").then_some(())
    })
    .await;

    // Sign out everywhere: the same user in browser 1 and in browser 2 (another profile).
    a.goto("/login?redirect=%2Fuser").await;
    sign_in(&a, &w.provider, "ann").await;
    let other = w.browser.session(&w.server.url()).await;
    other.goto("/login?redirect=%2Fuser").await;
    sign_in(&other, &w.provider, "ann").await;
    assert_eq!(content(&other).await, "User Content.");
    w.provider.reset().await;
    a.goto("/profile").await;
    a.click("[data-testid=bff-signout-everywhere]").await;
    let deadline = Instant::now() + Duration::from_secs(2);
    let notice = b.signed_out_notice(deadline, "browser 1's other tab").await;
    assert!(notice.contains("every device"), "{notice}");
    wait_for(
        "the provider to count both revocations",
        Duration::from_secs(10),
        || async { (w.provider.stats().await.revocations_ok == 2).then_some(()) },
    )
    .await;
    // Browser 2 finds its session ended at its next request (here a load of /user).
    other.goto("/user").await;
    let notice = other
        .signed_out_notice(Instant::now() + Duration::from_secs(5), "browser 2")
        .await;
    assert!(notice.contains("server ended your session"), "{notice}");
}

/// The grant revoked at the provider (as an administrator would): the server's next refresh is
/// refused (`invalid_grant`), it ends the session, and every tab signs out exactly once, each
/// saying why.
#[tokio::test]
async fn a_refresh_refused_at_the_provider_signs_every_tab_out_once_with_the_reason() {
    let w = world().await;
    let first = w.browser.session(&w.server.url()).await;
    first.goto("/login?redirect=%2Fuser").await;
    sign_in(&first, &w.provider, "ann").await;
    let mut tabs = vec![first.clone()];
    for _ in 0..3 {
        tabs.push(first.new_tab("/user").await);
    }
    for tab in &tabs {
        assert_eq!(content(tab).await, "User Content.");
        tab.open_inspector().await;
    }
    let issued = w.provider.stats().await.issued_bff;
    // The token endpoint's answer lists access, refresh, ID token: the refresh token is second.
    let refresh = issued
        .get(issued.len() - 2)
        .expect("a refresh token")
        .clone();
    assert_eq!(w.provider.revoke_bff(&refresh, "refresh_token").await, 200);
    w.provider.reset().await;
    // The upstream access token may outlive the revocation until it expires: calls succeed
    // until the server has to refresh, which the provider refuses.
    let start = Instant::now();
    let result = loop {
        let r = first.fire(10).await;
        if r != "10 calls: 10 ok, 0 failed" || start.elapsed() > TTL * 3 {
            break r;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(
        result.ends_with("10 failed") || !result.contains(" 0 failed"),
        "the calls kept succeeding after the grant was revoked: {result}\n{}",
        w.provider.log()
    );
    let deadline = Instant::now() + Duration::from_secs(2);
    for (i, tab) in tabs.iter().enumerate() {
        let notice = tab.signed_out_notice(deadline, &format!("tab {i}")).await;
        assert!(
            notice.contains("server ended your session"),
            "tab {i}: {notice}"
        );
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    for (i, tab) in tabs.iter().enumerate() {
        assert_eq!(
            tab.logouts_logged().await,
            1,
            "tab {i}: {}",
            tab.diagnostics().await
        );
    }
    let stats = w.provider.stats().await;
    assert!(stats.invalid_grant >= 1, "{stats:?}");
}
