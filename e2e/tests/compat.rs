//! End-to-end scenario 7 of issue 7: compatibility mode (body transport, the tutorial's `user`
//! object in localStorage) against our session-api, and against a fake of the tutorial's
//! backend (no expiresIn, no rotation, x-access-token only, no sign-out, text error bodies):
//! sign in, refresh, reload and log out all work.

use std::time::Duration;

use e2e::tutorial::{Counters, TutorialBackend};
use e2e::{dist_with_config, wait_for, Browser, Page, Server, ServerOptions, DEMO_PASSWORD};
use serde_json::{json, Value};

const TTL: Duration = Duration::from_secs(4);

fn compat_config() -> Value {
    json!({
        "apiBase": "",
        "tokenHeader": "x-access-token",
        "storageMode": "compat",
        "refreshMarginSecs": null,
        "debugToasts": false
    })
}

/// The tutorial's `user` object in localStorage, if any.
async fn stored_user(page: &Page) -> Option<Value> {
    let v = page
        .js("return localStorage.getItem('user');", vec![])
        .await;
    v.as_str().and_then(|s| serde_json::from_str(s).ok())
}

/// Signs in with "remember me", checks the stored `user` object, reaches /user and opens the
/// inspector. Returns the stored object.
async fn sign_in_compat(page: &Page) -> Value {
    page.sign_in("user", DEMO_PASSWORD, true).await;
    let user = stored_user(page)
        .await
        .expect("compat mode keeps the tutorial's `user` object in localStorage");
    assert_eq!(user["username"], "user");
    assert!(user["accessToken"]
        .as_str()
        .is_some_and(|t| t.starts_with("eyJ")));
    assert!(user["refreshToken"].as_str().is_some_and(|t| !t.is_empty()));
    page.click_nav("User").await;
    assert_eq!(
        page.wait_text("[data-testid=content]", Duration::from_secs(10))
            .await,
        "User Content."
    );
    page.open_inspector().await;
    user
}

/// Waits for one background refresh by this tab, then checks calls work with the new token.
async fn refreshes_and_keeps_working(page: &Page) {
    page.open_inspector().await;
    let sent = page.inspector_number("insp-refreshes").await;
    let deadline = std::time::Instant::now() + TTL + Duration::from_secs(4);
    while page.inspector_number("insp-refreshes").await <= sent {
        assert!(
            std::time::Instant::now() < deadline,
            "no background refresh within {:?}: {}",
            TTL + Duration::from_secs(4),
            page.diagnostics().await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        page.fire(10).await,
        "10 calls: 10 ok, 0 failed",
        "{}",
        page.diagnostics().await
    );
    assert_eq!(page.inspector_status().await, "Signed in");
}

/// Reloads /user and checks the session came back from storage.
async fn reload_keeps_session(page: &Page) {
    page.reload().await;
    assert_eq!(
        page.wait_text("[data-testid=content]", Duration::from_secs(10))
            .await,
        "User Content.",
        "{}",
        page.diagnostics().await
    );
    assert!(page.nav_signed_in().await);
    assert!(stored_user(page).await.is_some());
}

/// Logs out and checks the local state is gone.
async fn log_out(page: &Page) {
    page.open_inspector().await;
    page.click_logout().await;
    wait_for("the sign-out", Duration::from_secs(5), || async {
        (!page.nav_signed_in().await).then_some(())
    })
    .await;
    assert!(
        stored_user(page).await.is_none(),
        "the `user` object survived the logout"
    );
    let status = page.inspector_status().await;
    assert!(status.starts_with("Signed out"), "{status}");
}

#[tokio::test]
async fn compatibility_mode_works_against_our_server() {
    let dist = dist_with_config(&compat_config());
    let server = Server::start(ServerOptions {
        static_dir: Some(dist.path().to_path_buf()),
        ..ServerOptions::default()
    })
    .await;
    let browser = Browser::start().await;
    let page = browser.session(&server.url()).await;

    let first = sign_in_compat(&page).await;
    refreshes_and_keeps_working(&page).await;
    let rotated = stored_user(&page).await.expect("user object");
    assert_ne!(
        rotated["refreshToken"], first["refreshToken"],
        "our server rotates refresh tokens; the stored one must follow"
    );
    reload_keeps_session(&page).await;
    let m = server.metrics().await;
    assert_eq!(m.signins("ok"), 1, "{m:?}");
    assert_eq!(m.responses(401), 0, "{m:?}");
    assert_eq!(m.refreshes_all(), m.refreshes_answered(), "{m:?}");

    let last = stored_user(&page).await.expect("user object");
    log_out(&page).await;
    // Our server has a sign-out: the refresh token must be dead now.
    let token = last["refreshToken"]
        .as_str()
        .expect("refresh token")
        .to_string();
    wait_for(
        "the server-side sign-out",
        Duration::from_secs(5),
        || async {
            let r = server
                .http()
                .post(format!("{}/api/auth/refreshtoken", server.url()))
                .json(&json!({ "refreshToken": token }))
                .send()
                .await
                .ok()?;
            (r.status().as_u16() == 403).then_some(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compatibility_mode_works_against_the_tutorial_backend() {
    let dist = dist_with_config(&compat_config());
    let fake = TutorialBackend::start(
        dist.path().to_path_buf(),
        DEMO_PASSWORD,
        TTL.as_secs(),
        3600,
    )
    .await;
    let c = fake.counters.clone();
    let browser = Browser::start().await;
    let page = browser.session(&fake.url()).await;

    let first = sign_in_compat(&page).await;
    refreshes_and_keeps_working(&page).await;
    let after = stored_user(&page).await.expect("user object");
    assert_eq!(
        after["refreshToken"], first["refreshToken"],
        "the tutorial's refresh token never rotates"
    );
    assert_ne!(after["accessToken"], first["accessToken"]);
    reload_keeps_session(&page).await;
    refreshes_and_keeps_working(&page).await;

    assert_eq!(Counters::get(&c.signins), 1, "only the one sign-in");
    assert!(Counters::get(&c.refresh_ok) >= 2);
    assert_eq!(Counters::get(&c.refresh_rejected), 0);
    assert_eq!(
        Counters::get(&c.unauthorized),
        0,
        "a call was sent with an expired token"
    );

    // A token the backend refuses (bad signature): its text/plain 401 on a closed connection
    // must lead to one refresh and a retry, not to a logout.
    let refreshed = Counters::get(&c.refresh_ok);
    page.js(
        "const u = JSON.parse(localStorage.getItem('user')); \
         const t = u.accessToken; \
         u.accessToken = t.slice(0, -4) + (t.endsWith('AAAA') ? 'BBBB' : 'AAAA'); \
         localStorage.setItem('user', JSON.stringify(u));",
        vec![],
    )
    .await;
    reload_keeps_session(&page).await;
    assert_eq!(
        Counters::get(&c.unauthorized),
        1,
        "{}",
        page.diagnostics().await
    );
    assert_eq!(Counters::get(&c.refresh_ok), refreshed + 1);
    assert_eq!(Counters::get(&c.signins), 1);

    // A second tab shares the stored session; the logout (404 on the server) ends both.
    let other = page.new_tab("/user").await;
    assert_eq!(
        other
            .wait_text("[data-testid=content]", Duration::from_secs(10))
            .await,
        "User Content."
    );
    log_out(&page).await;
    let notice = wait_for(
        "the other tab to be signed out too",
        Duration::from_secs(2),
        || async {
            if other.nav_signed_in().await {
                return None;
            }
            other.text_of("[data-testid=login-notice]").await
        },
    )
    .await;
    assert!(notice.contains("another tab"), "{notice:?}");
    // Best effort sign-out: the tutorial has none (404); the app must not care, nor loop.
    tokio::time::sleep(TTL).await;
    assert!(Counters::get(&c.signout_attempts) <= 1);
    let refreshes = Counters::get(&c.refresh_ok) + Counters::get(&c.refresh_rejected);
    tokio::time::sleep(TTL).await;
    assert_eq!(
        Counters::get(&c.refresh_ok) + Counters::get(&c.refresh_rejected),
        refreshes,
        "refreshes after the logout"
    );
    assert!(page.text_of("[data-testid=login-error]").await.is_none());
}

/// The engine's claim (issue 5): a browser clock that is 10 minutes off still refreshes at the
/// right moment, here against the backend that sends no `expiresIn` (expiry from `exp` and the
/// clock offset). `Date.now` of the page is shifted before any script runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_clock_ten_minutes_fast_still_refreshes_in_time_against_the_tutorial_backend() {
    let dist = dist_with_config(&compat_config());
    let fake = TutorialBackend::start(
        dist.path().to_path_buf(),
        DEMO_PASSWORD,
        TTL.as_secs(),
        3600,
    )
    .await;
    let c = fake.counters.clone();
    let browser = Browser::start().await;
    let page = browser.session(&fake.url()).await;
    page.cdp(
        "Page.addScriptToEvaluateOnNewDocument",
        json!({ "source": "(() => { const now = Date.now.bind(Date); Date.now = () => now() + 600000; })();" }),
    )
    .await;

    let t0 = std::time::Instant::now();
    sign_in_compat(&page).await;
    let skew = page
        .js("return Date.now() - new Date().getTime();", vec![])
        .await;
    assert!(
        skew.as_f64().is_some_and(|s| s >= 599_000.0),
        "clock not shifted: {skew}"
    );
    let window = TTL * 3;
    while t0.elapsed() + Duration::from_millis(1500) < window {
        assert_eq!(
            page.fire(10).await,
            "10 calls: 10 ok, 0 failed",
            "{}",
            page.diagnostics().await
        );
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    tokio::time::sleep(window.saturating_sub(t0.elapsed())).await;
    // exp and iat have a 1 s resolution: these tokens really live 3 to 4 s, so up to one more
    // refresh than lifetimes is right; a storm (one per call, or per second) is not.
    let refreshes = Counters::get(&c.refresh_ok);
    assert!(
        (2..=5).contains(&refreshes),
        "{refreshes} refreshes in 3 lifetimes with a clock 10 min fast: {}",
        page.diagnostics().await
    );
    assert_eq!(
        Counters::get(&c.unauthorized),
        0,
        "calls sent with an expired token"
    );
    assert_eq!(Counters::get(&c.refresh_rejected), 0);
    assert_eq!(page.inspector_status().await, "Signed in");
}

/// Compatibility mode keeps "the tutorial's `user` object" so that the tutorial's own client can
/// share the storage (src/session/persist.rs, src/browser/storage.rs: "byte-compatible"): the
/// fields the backend sent keep their JSON types.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stored_user_object_keeps_the_id_type_the_tutorial_backend_sent() {
    let dist = dist_with_config(&compat_config());
    let fake = TutorialBackend::start(
        dist.path().to_path_buf(),
        DEMO_PASSWORD,
        TTL.as_secs(),
        3600,
    )
    .await;
    let browser = Browser::start().await;
    let page = browser.session(&fake.url()).await;
    let stored = sign_in_compat(&page).await;
    assert_eq!(stored["id"], json!(1), "stored user: {stored}");
}
