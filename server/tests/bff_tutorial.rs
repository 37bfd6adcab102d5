//! Backend-for-frontend mode in front of a backend with the tutorial's contract
//! (`--upstream-tutorial URL`, issue 15): the workspace's one fake of that contract
//! (`tutorial-fake`, checked row by row against ../shared/TUTORIAL-BACKEND.md) served on
//! 127.0.0.1 and sharing the test's clock, and session-api as the BFF in front of it. The browser's
//! side is played by requests with the session cookie only: it never sees a token.

mod common;

use std::sync::Arc;

use axum::body::Body;
use axum::http::StatusCode;
use axum::Router;
use common::{fresh_database, futures_join, Backend, Resp};
use serde_json::{json, Value};
use session_api::bff::store::hash_id;
use session_api::bff::{Bff, BffConfig};
use session_api::clock::{Clock, ManualClock};
use session_api::db::Db;
use session_api::{app, AppState, Settings};
use tutorial_fake::{Counters, Fake, Lifetimes};

on_both_backends!(
    a_password_sign_in_gives_only_the_cookie_and_the_user,
    proxied_calls_carry_x_access_token_and_refresh_once_when_due,
    a_refused_refresh_ends_the_session_and_clears_the_cookie,
    failed_sign_ins_are_throttled_and_an_unreachable_backend_is_503,
    logout_ends_the_session_and_the_routes_of_the_other_kind_are_404,
    a_public_prefix_forwards_anonymous_reads_without_a_token_and_nothing_else,
);

const ORIGIN: &str = "http://127.0.0.1:8080";
const PREFIX: &str = "tut";
const SECRET: [u8; 32] = [7u8; 32];
// Not 60: that is what the BFF assumes when a token gives no lifetime.
const ACCESS_TTL_S: u64 = 300;

/// The test's clock, read by the fake too.
struct Shared(Arc<ManualClock>);

impl tutorial_fake::Clock for Shared {
    fn now_ms(&self) -> u64 {
        self.0.now_ms() as u64
    }
}

struct App {
    router: Router,
    state: AppState,
    clock: Arc<ManualClock>,
    fake: Fake,
    _dir: Option<tempfile::TempDir>,
}

/// The fake on a free 127.0.0.1 port (with users `alice`, and `mod` as a moderator) and the BFF
/// in front of it; `base` overrides the upstream's URL (an unreachable one, say).
async fn started(b: &Backend, base: Option<&str>) -> App {
    started_with(b, base, &[]).await
}

/// [`started`], with more server flags.
async fn started_with(b: &Backend, base: Option<&str>, extra: &[&str]) -> App {
    let clock = Arc::new(ManualClock::new());
    let fake = Fake::new(
        Arc::new(Shared(clock.clone())),
        Lifetimes {
            access_ttl_s: ACCESS_TTL_S,
            refresh_ttl_s: 24 * 3600,
        },
    );
    assert!(fake.add_user("alice", "alice@example.com", "alice-pass-1", &["user"]));
    assert!(fake.add_user(
        "mod",
        "mod@example.com",
        "mod-pass-1",
        &["user", "moderator"]
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = fake.router();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let upstream = base.map_or_else(|| format!("http://{addr}"), str::to_owned);
    let api = format!("{PREFIX}={upstream}");
    let mut args = vec![
        "session-api",
        "--upstream-tutorial",
        &upstream,
        "--upstream-api",
        &api,
    ];
    args.extend_from_slice(extra);
    let c = <session_api::config::Config as clap::Parser>::try_parse_from(args).unwrap();
    let cfg = BffConfig::from_config(&c).unwrap().unwrap();
    let (url, dir) = fresh_database(b).await;
    let settings = Settings {
        allowed_origins: vec![ORIGIN.to_owned()],
        hash_concurrency: 1,
        ..Settings::default()
    };
    let db = Db::connect(&url, 16).await.expect("database");
    let state = AppState::with_clock(settings, db.clone(), &SECRET, clock.clone());
    let bff = Bff::start(cfg, &SECRET, db).await.expect("bff start");
    state.set_bff(bff).unwrap();
    App {
        router: app(state.clone()),
        state,
        clock,
        fake,
        _dir: dir,
    }
}

impl App {
    async fn call(&self, method: &str, path: &str, headers: &[(&str, &str)], body: Body) -> Resp {
        common::oneshot(&self.router, method, path, headers, body).await
    }

    /// `POST /api/bff/signin` as the app sends it (x-csrf, its Origin, JSON).
    async fn sign_in(&self, username: &str, password: &str) -> Resp {
        self.call(
            "POST",
            "/api/bff/signin",
            &[
                ("x-csrf", "1"),
                ("origin", ORIGIN),
                ("content-type", "application/json"),
            ],
            Body::from(json!({"username": username, "password": password}).to_string()),
        )
        .await
    }

    /// A signed-in cookie (`__Host-bff=<v>`) for alice.
    async fn alice(&self) -> String {
        let r = self.sign_in("alice", "alice-pass-1").await;
        assert_eq!(r.status, 200, "{}", r.text());
        session_cookie(&r).expect("a session cookie")
    }

    /// `POST /api/bff/logout` as the app sends it.
    async fn logout(&self, cookie: &str) -> Resp {
        self.call(
            "POST",
            "/api/bff/logout",
            &[("cookie", cookie), ("x-csrf", "1"), ("origin", ORIGIN)],
            Body::empty(),
        )
        .await
    }

    async fn get(&self, path: &str, cookie: &str) -> Resp {
        self.call("GET", path, &[("cookie", cookie)], Body::empty())
            .await
    }

    /// The tokens the BFF keeps for a cookie.
    async fn tokens(&self, cookie: &str) -> (String, Option<String>) {
        let v = cookie.strip_prefix("__Host-bff=").unwrap();
        let s = self
            .state
            .bff()
            .unwrap()
            .store()
            .session(&hash_id(v), self.state.now_ms())
            .await
            .unwrap()
            .expect("a stored session");
        (s.tokens.access_token, s.tokens.refresh_token)
    }

    fn advance_secs(&self, s: i64) {
        self.clock.advance_ms(s * 1000);
    }
}

/// The `name=value` of a non-empty `__Host-bff` cookie the answer sets.
fn session_cookie(r: &Resp) -> Option<String> {
    r.set_cookies()
        .into_iter()
        .map(|c| c.split(';').next().unwrap().to_owned())
        .find(|c| c.starts_with("__Host-bff=") && c.len() > "__Host-bff=".len())
}

fn count(c: &std::sync::atomic::AtomicU64) -> u64 {
    Counters::get(c)
}

async fn a_password_sign_in_gives_only_the_cookie_and_the_user(b: Backend) {
    let app = started(&b, None).await;
    // Not signed in: the app is told how to sign in here.
    let r = app
        .call("GET", "/api/bff/session", &[], Body::empty())
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["code"], "bff_no_session");
    assert_eq!(r.json()["login"], "password");
    // Without the CSRF header nothing happens.
    let r = app
        .call(
            "POST",
            "/api/bff/signin",
            &[("origin", ORIGIN), ("content-type", "application/json")],
            Body::from(json!({"username": "alice", "password": "alice-pass-1"}).to_string()),
        )
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["code"], "bff_csrf");
    assert_eq!(count(&app.fake.counters.signins), 0);
    // Wrong password and unknown user: one answer, so nobody learns which accounts exist.
    let wrong = app.sign_in("alice", "not-her-password").await;
    let unknown = app.sign_in("nobody", "whatever-1").await;
    for r in [&wrong, &unknown] {
        assert_eq!(r.status, 401, "{}", r.text());
        assert_eq!(r.json()["code"], "bff_bad_credentials");
        assert!(session_cookie(r).is_none());
    }
    assert_eq!(wrong.json()["message"], unknown.json()["message"]);
    // Bad input: a clear error, and nothing sent to the backend.
    for body in [
        "{}",
        "not json",
        r#"{"username":"alice"}"#,
        r#"{"username":1,"password":2}"#,
    ] {
        let r = app
            .call(
                "POST",
                "/api/bff/signin",
                &[("x-csrf", "1"), ("origin", ORIGIN)],
                Body::from(body),
            )
            .await;
        assert_eq!(r.status, 400, "{body}: {}", r.text());
        assert_eq!(r.json()["code"], "bff_bad_request");
    }
    // The sign-in: the user and the session's timeline; the tokens stay on the server.
    let r = app.sign_in("mod", "mod-pass-1").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let cookie = session_cookie(&r).unwrap();
    let set = r.set_cookies().join("\n");
    for attr in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(attr), "{set}");
    }
    let v = r.json();
    assert_eq!(v["user"]["name"], "mod");
    assert_eq!(v["user"]["email"], "mod@example.com");
    assert_eq!(v["user"]["roles"], json!(["ROLE_USER", "ROLE_MODERATOR"]));
    assert_eq!(
        v["accessTokenExpiresAt"].as_i64().unwrap() - v["createdAt"].as_i64().unwrap(),
        ACCESS_TTL_S as i64 * 1000,
        "the lifetime read from the token's exp and iat"
    );
    let (access, refresh) = app.tokens(&cookie).await;
    let refresh = refresh.expect("the backend's refresh token is kept");
    let session = app.get("/api/bff/session", &cookie).await;
    assert_eq!(session.status, 200);
    assert_eq!(session.json()["user"], v["user"]);
    for (what, body) in [("sign-in", r.text()), ("session", session.text())] {
        assert!(
            !body.contains(&access) && !body.contains(&refresh),
            "the {what} answer carries a token: {body}"
        );
    }
    assert!(!set.contains(&access) && !set.contains(&refresh));
}

async fn proxied_calls_carry_x_access_token_and_refresh_once_when_due(b: Backend) {
    let app = started(&b, None).await;
    let cookie = app.alice().await;
    // The tutorial's API reads only x-access-token: the proxy sends the kept token there.
    let r = app
        .get(&format!("/api/{PREFIX}/api/test/user"), &cookie)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), "User Content.");
    let r = app
        .get(&format!("/api/{PREFIX}/api/test/mod"), &cookie)
        .await;
    assert_eq!(
        r.status, 403,
        "alice is no moderator: the backend's own answer"
    );
    assert_eq!(
        r.json(),
        json!({"message": "Require Moderator Role!"}),
        "the backend's own refusal, as it gave it"
    );
    // An answer that is not JSON passes untouched too (Express's HTML 404 page).
    let r = app
        .get(&format!("/api/{PREFIX}/no/such/route"), &cookie)
        .await;
    assert_eq!(r.status, 404);
    assert!(
        r.text().contains("Cannot GET /no/such/route"),
        "rewritten on the way: {}",
        r.text()
    );
    assert!(r.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    // A token the browser sends is never what reaches the API.
    let r = app
        .call(
            "GET",
            &format!("/api/{PREFIX}/api/test/user"),
            &[("x-access-token", "forged"), ("cookie", &cookie)],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(count(&app.fake.counters.refresh_ok), 0);
    // Past the access token's end: 20 calls at once -> one refresh at the backend, all answered.
    app.advance_secs(ACCESS_TTL_S as i64 + 1);
    let path = format!("/api/{PREFIX}/api/test/user");
    let calls: Vec<_> = (0..20).map(|_| app.get(&path, &cookie)).collect();
    for r in futures_join(calls).await {
        assert_eq!(r.status, 200, "{}", r.text());
    }
    assert_eq!(count(&app.fake.counters.refresh_ok), 1);
    assert_eq!(
        count(&app.fake.counters.unauthorized),
        0,
        "no call went out with a dead token"
    );
    let s = app.get("/api/bff/session", &cookie).await.json();
    assert_eq!(s["refreshCount"], 1);
    assert!(s["lastRefreshedAt"].is_i64());
    // Without a session: no call is forwarded.
    let before = count(&app.fake.counters.content_ok);
    let r = app
        .call(
            "GET",
            &format!("/api/{PREFIX}/api/test/user"),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["code"], "bff_no_session");
    assert_eq!(count(&app.fake.counters.content_ok), before);
}

async fn a_refused_refresh_ends_the_session_and_clears_the_cookie(b: Backend) {
    let app = started(&b, None).await;
    let cookie = app.alice().await;
    let other = app.alice().await;
    // The backend loses its refresh tokens (a wiped table): the next refresh is a 403 there.
    app.fake.forget_refresh_tokens();
    app.advance_secs(ACCESS_TTL_S as i64 + 1);
    let r = app
        .get(&format!("/api/{PREFIX}/api/test/user"), &cookie)
        .await;
    assert_eq!(r.status, 401, "{}", r.text());
    assert_eq!(r.json()["code"], "bff_session_ended");
    let set = r.set_cookies().join("\n");
    assert!(
        set.contains("__Host-bff=;") && set.contains("Max-Age=0"),
        "{set}"
    );
    assert_eq!(count(&app.fake.counters.refresh_rejected), 1);
    let r = app.get("/api/bff/session", &cookie).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["code"], "bff_session_ended");
    // Only that session: the other one is refused by the backend when it refreshes, not before.
    let r = app.get("/api/bff/session", &other).await;
    assert_eq!(r.status, 200, "{}", r.text());
}

async fn failed_sign_ins_are_throttled_and_an_unreachable_backend_is_503(b: Backend) {
    let app = started(&b, None).await;
    let mut statuses = Vec::new();
    for _ in 0..8 {
        statuses.push(app.sign_in("alice", "wrong-password").await.status.as_u16());
    }
    assert!(
        statuses.contains(&429),
        "8 failures in a row were never throttled: {statuses:?}"
    );
    let sent = count(&app.fake.counters.signins);
    let r = app.sign_in("alice", "alice-pass-1").await;
    assert_eq!(r.status, 429, "the right password waits too: {}", r.text());
    assert!(r.headers.get("retry-after").is_some());
    assert_eq!(count(&app.fake.counters.signins), sent);
    // Another account is not held up.
    assert_eq!(app.sign_in("mod", "mod-pass-1").await.status, 200);

    // A backend that does not answer: 503 with Retry-After, no session, the app may try again.
    let down = started(&b, Some("http://127.0.0.1:9")).await;
    let r = down.sign_in("alice", "alice-pass-1").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text());
    assert_eq!(r.json()["code"], "bff_upstream_unavailable");
    assert!(r.headers.get("retry-after").is_some());
    assert!(session_cookie(&r).is_none());
}

async fn logout_ends_the_session_and_the_routes_of_the_other_kind_are_404(b: Backend) {
    let app = started(&b, None).await;
    let cookie = app.alice().await;
    let r = app.logout(&cookie).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v: Value = r.json();
    assert_eq!(v["ended"], 1);
    assert_eq!(
        v["endSessionUrl"],
        Value::Null,
        "the tutorial's backend has no sign-out page"
    );
    assert!(r.set_cookies().join("\n").contains("Max-Age=0"));
    assert_eq!(
        app.get("/api/bff/session", &cookie).await.json()["code"],
        "bff_session_ended"
    );
    // The OpenID routes do not exist for this kind of upstream, and say which way to go.
    for path in [
        "/api/bff/login?return=/",
        "/api/bff/callback?code=x&state=y",
    ] {
        let r = app.get(path, "").await;
        assert_eq!(r.status, 404, "{path}: {}", r.text());
        assert_eq!(r.json()["code"], "bff_password_login");
    }
}

async fn a_public_prefix_forwards_anonymous_reads_without_a_token_and_nothing_else(b: Backend) {
    let app = started_with(&b, None, &["--upstream-public", PREFIX]).await;
    let path = |p: &str| format!("/api/{PREFIX}{p}");
    // No cookie: a GET goes through as it came, with no token (the backend's public route, and
    // its own refusal on a protected one).
    let r = app.get(&path("/api/test/all"), "").await;
    assert_eq!(
        (r.status.as_u16(), r.text()),
        (200, "Public Content.".to_owned())
    );
    let r = app.get(&path("/api/test/user"), "").await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(r.json(), json!({"message": "No token provided!"}));
    // A write needs a session (and the CSRF header) as before.
    let r = app
        .call(
            "POST",
            &path("/api/test/all"),
            &[("x-csrf", "1"), ("origin", ORIGIN)],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, 401, "{}", r.text());
    assert_eq!(r.json()["code"], "bff_no_session");
    // A cookie naming an ended session is still told so, not forwarded anonymously.
    let cookie = app.alice().await;
    let r = app.get(&path("/api/test/user"), &cookie).await;
    assert_eq!(r.text(), "User Content.");
    let r = app.logout(&cookie).await;
    assert_eq!(r.status, 200);
    let r = app.get(&path("/api/test/all"), &cookie).await;
    assert_eq!(r.status, 401, "{}", r.text());
    assert_eq!(r.json()["code"], "bff_session_ended");
}
