//! Test harness: builds an app on a fresh SQLite file or a fresh PostgreSQL database (when
//! `SESSION_API_TEST_PG_URL` is set) with a manual clock, and drives it through `oneshot`.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use serde_json::Value;
use session_api::clock::ManualClock;
use session_api::db::Db;
use session_api::{app, AppState, Settings};
use sqlx::Connection;
use tower::ServiceExt;

/// The password every test user gets.
pub const PASSWORD: &str = "correct-horse-battery";
/// An origin the test apps allow.
pub const APP_ORIGIN: &str = "http://app.test";

/// Where a test's database lives.
#[derive(Debug, Clone)]
pub enum Backend {
    Sqlite,
    Postgres(String),
}

impl Backend {
    /// The PostgreSQL backend, or None (with a notice) when no server was given.
    pub fn postgres() -> Option<Backend> {
        match std::env::var("SESSION_API_TEST_PG_URL") {
            Ok(u) if !u.is_empty() => Some(Backend::Postgres(u)),
            // ./scripts/test sets this: there, a missing PostgreSQL fails the run instead of
            // letting every PostgreSQL case pass without running.
            _ if std::env::var_os("SESSION_API_TEST_REQUIRE_PG").is_some() => panic!(
                "SESSION_API_TEST_REQUIRE_PG is set but SESSION_API_TEST_PG_URL is not: \
                 run the suite through scripts/with-postgres"
            ),
            _ => {
                // Written to the real stderr (not eprintln!, which the test harness captures),
                // once per test binary, so a skipped PostgreSQL suite is visible.
                static NOTICE: std::sync::Once = std::sync::Once::new();
                NOTICE.call_once(|| {
                    use std::io::Write;
                    let _ = writeln!(
                        std::io::stderr(),
                        "NOTICE: SESSION_API_TEST_PG_URL is not set: the PostgreSQL tests pass without running \
                         (run them with scripts/with-postgres cargo test -p session-api)"
                    );
                });
                None
            }
        }
    }
}

/// A fresh database URL for one test (+ the temp dir keeping a SQLite file alive).
pub async fn fresh_database(backend: &Backend) -> (String, Option<tempfile::TempDir>) {
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().unwrap();
            let url = format!("sqlite://{}", dir.path().join("test.db").display());
            (url, Some(dir))
        }
        Backend::Postgres(base) => {
            sqlx::any::install_default_drivers();
            let name = format!(
                "t_{}",
                session_api::keys::random_id(9)
                    .to_lowercase()
                    .replace(['-', '_'], "x")
            );
            let mut conn = sqlx::AnyConnection::connect(base)
                .await
                .expect("connect to test PostgreSQL");
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&mut conn)
                .await
                .unwrap();
            conn.close().await.ok();
            let (head, _) = base.rsplit_once('/').expect("URL with a database path");
            (format!("{head}/{name}"), None)
        }
    }
}

/// A response read into memory.
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn message(&self) -> String {
        self.json()["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    }
    /// Every `Set-Cookie` of this response, in order.
    pub fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    }
    /// The value of the refresh cookie set by this response.
    pub fn refresh_cookie(&self) -> Option<String> {
        self.set_cookies()
            .into_iter()
            .find(|c| c.starts_with("__Host-refresh="))
    }
    pub fn refresh_cookie_value(&self) -> Option<String> {
        self.refresh_cookie().and_then(|c| {
            c.split(';')
                .next()
                .map(|kv| kv["__Host-refresh=".len()..].to_owned())
        })
    }
}

/// One app under test.
pub struct TestApp {
    pub state: AppState,
    pub clock: Arc<ManualClock>,
    pub router: Router,
    pub url: String,
    pub secret: Vec<u8>,
    _dir: Option<tempfile::TempDir>,
}

pub fn test_settings() -> Settings {
    Settings {
        allowed_origins: vec![APP_ORIGIN.to_owned()],
        hash_concurrency: 2,
        ..Settings::default()
    }
}

impl TestApp {
    pub async fn new(backend: &Backend) -> Self {
        Self::with(backend, |_| {}).await
    }

    pub async fn with(backend: &Backend, tweak: impl FnOnce(&mut Settings)) -> Self {
        let (url, dir) = fresh_database(backend).await;
        let mut settings = test_settings();
        tweak(&mut settings);
        let secret = vec![42u8; 32];
        let db = Db::connect(&url, 8).await.expect("database");
        let clock = Arc::new(ManualClock::new());
        let state = AppState::with_clock(settings, db, &secret, clock.clone());
        let router = app(state.clone());
        Self {
            state,
            clock,
            router,
            url,
            secret,
            _dir: dir,
        }
    }

    /// The same database and secret, as after a restart.
    pub async fn restarted(&self) -> Self {
        let db = Db::connect(&self.url, 8).await.expect("database");
        let clock = Arc::new(ManualClock::new());
        clock.advance_ms(self.clock_offset());
        let state = AppState::with_clock(
            self.state.settings().clone(),
            db,
            &self.secret,
            clock.clone(),
        );
        let router = app(state.clone());
        Self {
            state,
            clock,
            router,
            url: self.url.clone(),
            secret: self.secret.clone(),
            _dir: None,
        }
    }

    /// A second instance on the same database: its own pool, state and router, the same
    /// secret and settings, and the same clock (so time moves for both at once).
    pub async fn another_instance(&self) -> Self {
        let db = Db::connect(&self.url, 8).await.expect("database");
        let state = AppState::with_clock(
            self.state.settings().clone(),
            db,
            &self.secret,
            self.clock.clone(),
        );
        let router = app(state.clone());
        Self {
            state,
            clock: self.clock.clone(),
            router,
            url: self.url.clone(),
            secret: self.secret.clone(),
            _dir: None,
        }
    }

    fn clock_offset(&self) -> i64 {
        use session_api::clock::{Clock, SystemClock};
        self.state.now_ms() - SystemClock.now_ms()
    }

    pub fn advance_secs(&self, s: i64) {
        self.clock.advance_ms(s * 1000);
    }

    pub async fn call(&self, req: Request<Body>) -> Resp {
        read(self.router.clone().oneshot(req).await.expect("infallible")).await
    }

    pub async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> Resp {
        let mut b = Request::builder().method(method).uri(path);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let req = match body {
            Some(v) => b
                .header("content-type", "application/json")
                .body(Body::from(serde_json::to_vec(&v).unwrap()))
                .unwrap(),
            None => b.body(Body::empty()).unwrap(),
        };
        self.call(req).await
    }

    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Body>,
    ) -> Resp {
        let mut b = Request::builder().method(method).uri(path);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        self.call(b.body(body.into()).unwrap()).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Resp {
        self.send("POST", path, &[], Some(body)).await
    }

    pub async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Resp {
        self.send("GET", path, headers, None).await
    }

    pub async fn get_with_token(&self, path: &str, token: &str) -> Resp {
        self.get(path, &[("x-access-token", token)]).await
    }

    pub async fn signup(&self, username: &str) -> Resp {
        self.signup_with_roles(username, None).await
    }

    pub async fn signup_with_roles(&self, username: &str, roles: Option<Vec<&str>>) -> Resp {
        let mut body = serde_json::json!({
            "username": username,
            "email": format!("{username}@example.com"),
            "password": PASSWORD,
        });
        if let Some(r) = roles {
            body["roles"] = serde_json::json!(r);
        }
        self.post("/api/auth/signup", body).await
    }

    pub async fn signin(&self, username: &str) -> Resp {
        self.post(
            "/api/auth/signin",
            serde_json::json!({"username": username, "password": PASSWORD}),
        )
        .await
    }

    pub async fn signin_from(&self, username: &str, password: &str, ip: [u8; 4]) -> Resp {
        let mut req = Request::builder()
            .method("POST")
            .uri("/api/auth/signin")
            .header("content-type", "application/json")
            .body(Body::from(
                serde_json::to_vec(
                    &serde_json::json!({"username": username, "password": password}),
                )
                .unwrap(),
            ))
            .unwrap();
        req.extensions_mut()
            .insert(ConnectInfo(SocketAddr::from((ip, 40000))));
        self.call(req).await
    }

    /// Signs up and signs in (body transport): the sign-in response JSON.
    pub async fn user(&self, username: &str) -> Value {
        let r = self.signup(username).await;
        assert_eq!(r.status, 200, "{}", r.text());
        let r = self.signin(username).await;
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()
    }

    /// Signs in with the cookie transport: the response.
    pub async fn signin_cookie(&self, username: &str) -> Resp {
        self.send(
            "POST",
            "/api/auth/signin",
            &[("x-refresh-transport", "cookie")],
            Some(serde_json::json!({"username": username, "password": PASSWORD})),
        )
        .await
    }

    pub async fn refresh(&self, token: &str) -> Resp {
        self.post(
            "/api/auth/refreshtoken",
            serde_json::json!({"refreshToken": token}),
        )
        .await
    }

    pub async fn refresh_cookie(&self, cookie: &str, extra: &[(&str, &str)]) -> Resp {
        let c = format!("__Host-refresh={cookie}");
        let mut h: Vec<(&str, &str)> =
            vec![("cookie", c.as_str()), ("x-refresh-transport", "cookie")];
        h.extend_from_slice(extra);
        self.send(
            "POST",
            "/api/auth/refreshtoken",
            &h,
            Some(serde_json::json!({})),
        )
        .await
    }

    /// Serves the app on a real socket on 127.0.0.1 the way the binary does
    /// ([`session_api::server::serve`]: peer address, lingering close).
    pub async fn serve(&self) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = self.router.clone();
        tokio::spawn(async move {
            session_api::server::serve(listener, router, std::future::pending())
                .await
                .unwrap();
        });
        addr
    }

    /// Connections of this test's database that sit inside a transaction, seen from outside
    /// the pool: PostgreSQL sessions `idle in transaction` (aborted or not); on SQLite 1 when
    /// another connection holds the write lock (a `BEGIN IMMEDIATE` from here cannot start).
    pub async fn connections_in_transaction(&self) -> i64 {
        use sqlx::Row;
        sqlx::any::install_default_drivers();
        let mut conn = sqlx::AnyConnection::connect(&self.url)
            .await
            .expect("outside connection");
        let n = if self.url.starts_with("postgres") {
            sqlx::query(
                "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() \
                 AND state LIKE 'idle in transaction%'",
            )
            .fetch_one(&mut conn)
            .await
            .unwrap()
            .try_get::<i64, _>(0)
            .unwrap()
        } else {
            sqlx::query("PRAGMA busy_timeout = 0")
                .execute(&mut conn)
                .await
                .unwrap();
            match sqlx::query("BEGIN IMMEDIATE").execute(&mut conn).await {
                Ok(_) => {
                    sqlx::query("ROLLBACK").execute(&mut conn).await.unwrap();
                    0
                }
                Err(_) => 1,
            }
        };
        conn.close().await.ok();
        n
    }

    /// The invariant: every live family has exactly one active (unused) refresh token.
    pub async fn assert_one_active_token_per_family(&self, ctx: &str) {
        let bad = self
            .state
            .db()
            .families_without_exactly_one_active_token()
            .await
            .unwrap();
        assert_eq!(bad, 0, "families without exactly one active token ({ctx})");
    }

    /// Waits (up to `within`) until no connection is inside a transaction; panics otherwise.
    pub async fn assert_no_connection_left_in_a_transaction(&self, within: std::time::Duration) {
        let deadline = std::time::Instant::now() + within;
        loop {
            let n = self.connections_in_transaction().await;
            if n == 0 {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{n} connection(s) still inside a transaction after {within:?}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    pub async fn metrics(&self) -> String {
        self.get("/metrics", &[]).await.text()
    }

    pub async fn metric(&self, series: &str) -> u64 {
        let text = self.metrics().await;
        text.lines()
            .find_map(|l| {
                l.strip_prefix(series)
                    .and_then(|rest| rest.trim().parse().ok())
            })
            .unwrap_or(0)
    }
}

pub fn s(v: &Value, k: &str) -> String {
    v[k].as_str()
        .unwrap_or_else(|| panic!("no string {k} in {v}"))
        .to_owned()
}

/// Runs each listed `async fn name(backend: Backend)` once on SQLite and once on PostgreSQL.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(b) = $crate::common::Backend::postgres() {
                        super::$name(b).await
                    }
                }
            )*
        }
    };
}

/// Runs the futures together in this task and gives their outputs in order (the app's own work
/// runs in tasks of its own).
pub async fn futures_join<F: std::future::Future>(futs: Vec<F>) -> Vec<F::Output> {
    // Polled together in this task (the app's own work runs in tasks of its own).
    let mut out = Vec::new();
    let mut pinned: Vec<_> = futs.into_iter().map(Box::pin).collect();
    let mut done: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in pinned.iter_mut().enumerate() {
            if done[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => done[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.extend(done.into_iter().map(Option::unwrap));
    out
}

/// One request through `router` (`oneshot`), the answer read whole.
pub async fn oneshot(
    router: &axum::Router,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Body,
) -> Resp {
    let mut b = Request::builder().method(method).uri(path);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let req = b.body(body).expect("request");
    read(router.clone().oneshot(req).await.expect("infallible")).await
}

/// An answer read whole.
pub async fn read(res: axum::response::Response) -> Resp {
    let status = res.status();
    let headers = res.headers().clone();
    let body = res
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes()
        .to_vec();
    Resp {
        status,
        headers,
        body,
    }
}
