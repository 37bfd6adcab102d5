//! The real session-api behind the tabs' transport: `session_api::app(state)` in process, on a
//! fresh SQLite file per world, driven by `oneshot` on a current-thread tokio runtime the world
//! owns. The engine side is single-threaded on fake time, so each request is run to completion
//! synchronously the moment it leaves a tab (`Runtime::block_on`); the wire delivers the answer
//! after the tab's latency. The server's clock is the world's fake clock (plus a skew), set
//! before every request.

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, Request};
use axum::Router;
use http_body_util::BodyExt;
use tower::ServiceExt;

use api_types::{headers, paths};
use session_api::clock::ManualClock;
use session_api::db::Db;
use session_api::metrics::RefreshOutcome;
use session_api::{app, AppState, Settings};
use yew_session::session::ports::{Clock, HttpRequest, HttpResponse, Method};

use super::{FakeClock, PASSWORD};

/// The app's host and origin (the SPA and the API share it: `api_base` is empty).
pub const APP_HOST: &str = "app.test";
pub const APP_ORIGIN: &str = "http://app.test";
/// The browser's User-Agent (the server names the device after it).
const USER_AGENT: &str =
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/130.0 Safari/537.36";

struct Running {
    state: AppState,
    router: Router,
    /// Serves the content routes when the deployment's instances disagree on the key.
    content_router: RefCell<Option<Router>>,
}

pub struct RealServer {
    running: Option<Running>,
    rt: tokio::runtime::Runtime,
    clock: Arc<ManualClock>,
    world: Rc<FakeClock>,
    /// Server clock minus browser clock.
    pub offset_ms: Cell<f64>,
    users: RefCell<HashSet<String>>,
    secret: Vec<u8>,
    _dir: tempfile::TempDir,
}

impl Drop for RealServer {
    fn drop(&mut self) {
        // The pool closes inside the runtime that opened it.
        if let Some(r) = self.running.take() {
            let db = r.state.db().clone();
            drop(r);
            self.rt.block_on(db.close());
        }
    }
}

/// A response read into memory, header names lowercase, `Set-Cookie` included.
pub fn to_response(status: u16, headers: &axum::http::HeaderMap, body: &[u8]) -> HttpResponse {
    HttpResponse {
        status,
        headers: headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: String::from_utf8_lossy(body).into_owned(),
    }
}

/// The value of the refresh cookie a response sets, if any.
pub fn set_refresh_cookie(resp: &HttpResponse) -> Option<String> {
    let prefix = format!("{}=", headers::REFRESH_COOKIE);
    resp.headers
        .iter()
        .filter(|(k, _)| k == "set-cookie")
        .find_map(|(_, v)| v.strip_prefix(prefix.as_str()))
        .and_then(|rest| rest.split(';').next())
        .filter(|v| !v.is_empty())
        .map(String::from)
}

pub fn method(m: Method) -> axum::http::Method {
    match m {
        Method::Get => axum::http::Method::GET,
        Method::Post => axum::http::Method::POST,
        Method::Delete => axum::http::Method::DELETE,
    }
}

impl RealServer {
    pub fn new(world: Rc<FakeClock>, settings: Settings) -> Self {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("session.db").display());
        let db = rt.block_on(Db::connect(&url, 8)).expect("database");
        let clock = Arc::new(ManualClock::new());
        let secret = vec![42u8; 32];
        let state = AppState::with_clock(settings, db, &secret, clock.clone());
        let router = app(state.clone());
        let s = Self {
            running: Some(Running {
                state,
                router,
                content_router: RefCell::new(None),
            }),
            rt,
            clock,
            world,
            offset_ms: Cell::new(0.0),
            users: RefCell::new(HashSet::new()),
            secret,
            _dir: dir,
        };
        s.sync_clock();
        s
    }

    fn running(&self) -> &Running {
        self.running.as_ref().expect("server running")
    }

    /// The server's state (settings, database, metrics).
    pub fn state(&self) -> &AppState {
        &self.running().state
    }

    /// Server time = world time + skew, in whole milliseconds.
    fn sync_clock(&self) {
        self.clock
            .set_ms((self.world.now_ms() + self.offset_ms.get()).floor() as i64);
    }

    /// Runs one request through `router` to its end, at the world's current time.
    fn exchange(&self, router: &Router, mut req: Request<Body>) -> HttpResponse {
        self.sync_clock();
        req.extensions_mut()
            .insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 50_000))));
        let router = router.clone();
        self.rt.block_on(async move {
            let res = router.oneshot(req).await.expect("infallible");
            let status = res.status().as_u16();
            let headers = res.headers().clone();
            let body = res.into_body().collect().await.expect("body").to_bytes();
            to_response(status, &headers, &body)
        })
    }

    /// A request of the browser: the engine's method, path, headers and body, plus what the
    /// browser adds (Host, User-Agent, Origin on non-GET requests, the refresh cookie).
    pub fn handle(&self, req: &HttpRequest, cookie: Option<&str>) -> HttpResponse {
        let path = super::path_of(&req.url);
        let mut b = Request::builder()
            .method(method(req.method))
            .uri(path)
            .header(header::HOST, APP_HOST)
            .header(header::USER_AGENT, USER_AGENT);
        for (k, v) in &req.headers {
            b = b.header(k.as_str(), v.as_str());
        }
        if req.method != Method::Get {
            b = b.header(header::ORIGIN, APP_ORIGIN);
        }
        if let Some(c) = cookie {
            b = b.header(header::COOKIE, format!("{}={c}", headers::REFRESH_COOKIE));
        }
        let request = b
            .body(Body::from(req.body.clone().unwrap_or_default()))
            .expect("request");
        let r = self.running();
        let router = match &*r.content_router.borrow() {
            Some(c) if path.starts_with("/api/test/") => c.clone(),
            _ => r.router.clone(),
        };
        self.exchange(&router, request)
    }

    /// A request from outside the browser (another device, an attacker, the test's own set-up):
    /// not counted, no cookie jar.
    pub fn call(
        &self,
        m: Method,
        path: &str,
        hdrs: &[(&str, &str)],
        body: Option<serde_json::Value>,
    ) -> HttpResponse {
        let mut b = Request::builder()
            .method(method(m))
            .uri(path)
            .header(header::HOST, APP_HOST)
            .header(header::USER_AGENT, "curl/8.5.0");
        for (k, v) in hdrs {
            b = b.header(*k, *v);
        }
        let request = match body {
            Some(v) => b
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(v.to_string())),
            None => b.body(Body::empty()),
        }
        .expect("request");
        self.exchange(&self.running().router, request)
    }

    /// Signs `username` up through the real API (password [`PASSWORD`]) unless done already.
    pub fn ensure_user(&self, username: &str) {
        if !self.users.borrow_mut().insert(username.to_owned()) {
            return;
        }
        let r = self.call(
            Method::Post,
            paths::SIGNUP,
            &[],
            Some(serde_json::json!({
                "username": username,
                "email": format!("{username}@example.com"),
                "password": PASSWORD,
            })),
        );
        assert_eq!(r.status, 200, "sign-up of {username}: {}", r.body);
    }

    /// `username` signs in on another device (body transport): the sign-in answer.
    pub fn sign_in_elsewhere(&self, username: &str) -> serde_json::Value {
        self.ensure_user(username);
        let r = self.call(
            Method::Post,
            paths::SIGNIN,
            &[],
            Some(serde_json::json!({"username": username, "password": PASSWORD})),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        serde_json::from_str(&r.body).expect("JSON")
    }

    /// `username`, on another device, ends every other session from the sessions list
    /// (`DELETE /api/auth/sessions/{id}`); returns how many were ended.
    pub fn end_other_sessions(&self, username: &str) -> usize {
        let me = self.sign_in_elsewhere(username);
        let token = me["accessToken"].as_str().expect("access token").to_owned();
        let auth = [(headers::ACCESS_TOKEN, token.as_str())];
        let list = self.call(Method::Get, paths::SESSIONS, &auth, None);
        assert_eq!(list.status, 200, "{}", list.body);
        let list: serde_json::Value = serde_json::from_str(&list.body).expect("JSON");
        let mut ended = 0;
        for s in list["sessions"].as_array().expect("sessions") {
            if s["current"] == true {
                continue;
            }
            let id = s["id"].as_str().expect("id");
            let r = self.call(
                Method::Delete,
                &format!("{}/{id}", paths::SESSIONS),
                &auth,
                None,
            );
            assert_eq!(r.status, 200, "{}", r.body);
            ended += 1;
        }
        ended
    }

    /// Someone outside the browser presents the refresh cookie `token` (a thief with a copy of
    /// it): the server's answer.
    pub fn refresh_with_cookie(&self, token: &str) -> HttpResponse {
        let cookie = format!("{}={token}", headers::REFRESH_COOKIE);
        self.call(
            Method::Post,
            paths::REFRESH,
            &[
                (header::COOKIE.as_str(), cookie.as_str()),
                (
                    headers::REFRESH_TRANSPORT,
                    headers::REFRESH_TRANSPORT_COOKIE,
                ),
            ],
            Some(serde_json::json!({})),
        )
    }

    /// From now on the content routes (`/api/test/*`) are served by an instance of the same
    /// deployment (same database) that was given another secret: it refuses every access token
    /// the auth routes issue, while refreshing keeps working.
    pub fn split_keys(&self) {
        let mut other = self.secret.clone();
        other[0] ^= 0xff;
        let r = self.running();
        let state = AppState::with_clock(
            r.state.settings().clone(),
            r.state.db().clone(),
            &other,
            self.clock.clone(),
        );
        *r.content_router.borrow_mut() = Some(app(state));
    }

    /// How many refreshes the server answered with this outcome (its own metrics).
    pub fn refreshes(&self, outcome: RefreshOutcome) -> u64 {
        self.state().metrics().refresh_count(outcome)
    }
}
