//! The real session-api in backend-for-frontend mode behind the tabs' transport: `app(state)` in
//! process with `--upstream-tutorial` pointing at the workspace's fake of the tutorial's backend
//! (a foreign system: `tutorial-fake`, checked against ../shared/TUTORIAL-BACKEND.md), which is
//! served on a 127.0.0.1 socket by the same current-thread runtime, so the BFF's own HTTP calls
//! (sign-in, refresh, proxied API calls) really travel. Both servers read the world's fake time,
//! set before every request. The upstream API is `/api/rs/...` -> the backend's `/...` (the app's
//! `apiBase` is `/api/rs`, so its `/api/test/user` is `/api/rs/api/test/user`).
//!
//! Knobs stand for what the upstream does, not for what session-api answers: `unavailable` makes
//! the backend answer 503 to everything (the BFF then answers what it answers: 503 on a sign-in
//! or on a refresh it needs, the API's own 503 relayed otherwise, and its session endpoint, which
//! asks nobody, still 200); `upstream_401` makes the backend's API refuse every call with 401
//! (the BFF refreshes once, retries once, and relays the refusal).

use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, Request, StatusCode};
use axum::response::IntoResponse;
use axum::Router;
use http_body_util::BodyExt;
use serde_json::json;
use session_api::bff::config::{check_http_url, parse_upstream_api, UpstreamKind};
use session_api::bff::{Bff, BffConfig};
use session_api::clock::{Clock as _, ManualClock};
use session_api::db::Db;
use session_api::{app, AppState, Settings};
use tower::ServiceExt;
use yew_session::session::ports::{Clock, HttpRequest, Method};

use super::real::{method, to_response, APP_HOST, APP_ORIGIN};
use super::FakeClock;
use yew_session::session::ports::HttpResponse;

/// The session cookie's name.
pub const COOKIE: &str = "__Host-bff";
/// Every backend user's password.
pub const PASSWORD: &str = "right-password";
/// The access token's lifetime at the backend (s): the BFF refreshes once per this.
pub const ACCESS_TTL_S: u64 = 300;

/// The backend's fake time: the world's, as the BFF's clock shows it.
struct Shared(Arc<ManualClock>);

impl tutorial_fake::Clock for Shared {
    fn now_ms(&self) -> u64 {
        self.0.now_ms() as u64
    }
}

/// What the backend is made to do.
#[derive(Default)]
struct Gate {
    unavailable: AtomicBool,
    api_401: AtomicBool,
}

pub struct RealBff {
    rt: tokio::runtime::Runtime,
    router: Router,
    state: AppState,
    clock: Arc<ManualClock>,
    world: Rc<FakeClock>,
    backend: tutorial_fake::Fake,
    gate: Arc<Gate>,
    /// The backend answers 503 to everything.
    pub unavailable: bool,
    /// The backend's API refuses every call with 401.
    pub upstream_401: bool,
    /// `GET /api/bff/session` requests the browser sent.
    pub session_reads: u32,
    /// Proxied calls the browser sent.
    pub proxied: u32,
    /// Logout requests, with their query.
    pub logouts: Vec<String>,
    /// Requests the BFF refused for CSRF.
    pub csrf_refused: u32,
    sessions_started: Cell<u32>,
    _dir: tempfile::TempDir,
}

impl Drop for RealBff {
    fn drop(&mut self) {
        let db = self.state.db().clone();
        self.rt.block_on(db.close());
    }
}

impl RealBff {
    pub fn new(world: Rc<FakeClock>) -> Self {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        let clock = Arc::new(ManualClock::new());
        clock.set_ms(world.now_ms().floor() as i64);
        let backend = tutorial_fake::Fake::new(
            Arc::new(Shared(clock.clone())),
            tutorial_fake::Lifetimes {
                access_ttl_s: ACCESS_TTL_S,
                refresh_ttl_s: 24 * 3600,
            },
        );
        let gate = Arc::new(Gate::default());
        let g = gate.clone();
        let backend_router = backend.router().layer(axum::middleware::from_fn(
            move |req: Request<Body>, next: axum::middleware::Next| {
                let g = g.clone();
                async move {
                    if g.unavailable.load(Ordering::SeqCst) {
                        return StatusCode::SERVICE_UNAVAILABLE.into_response();
                    }
                    if g.api_401.load(Ordering::SeqCst)
                        && req.uri().path().starts_with("/api/test/")
                    {
                        return (
                            StatusCode::UNAUTHORIZED,
                            axum::Json(json!({"message": "Unauthorized!"})),
                        )
                            .into_response();
                    }
                    next.run(req).await
                }
            },
        ));
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("backend socket");
        let addr = listener.local_addr().unwrap();
        rt.spawn(async move { axum::serve(listener, backend_router).await });
        let base = format!("http://{addr}");
        let api = format!("rs={base}");
        // As `--upstream-tutorial <base> --upstream-api <api>` would give.
        let cfg = BffConfig {
            kind: UpstreamKind::Tutorial {
                base: check_http_url("--upstream-tutorial", &base).expect("base"),
            },
            apis: vec![parse_upstream_api(&api).expect("api")],
        };
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("bff.db").display());
        let db = rt.block_on(Db::connect(&url, 8)).expect("database");
        let secret = [42u8; 32];
        let settings = Settings {
            allowed_origins: vec![APP_ORIGIN.to_owned()],
            hash_concurrency: 1,
            ..Settings::default()
        };
        let state = AppState::with_clock(settings, db.clone(), &secret, clock.clone());
        let bff = rt
            .block_on(Bff::start(cfg, &secret, db))
            .expect("bff start");
        state.set_bff(bff).expect("bff once");
        RealBff {
            rt,
            router: app(state.clone()),
            state,
            clock,
            world,
            backend,
            gate,
            unavailable: false,
            upstream_401: false,
            session_reads: 0,
            proxied: 0,
            logouts: Vec::new(),
            csrf_refused: 0,
            sessions_started: Cell::new(0),
            _dir: dir,
        }
    }

    fn exchange(&self, mut req: Request<Body>) -> HttpResponse {
        self.clock.set_ms(self.world.now_ms().floor() as i64);
        self.gate
            .unavailable
            .store(self.unavailable, Ordering::SeqCst);
        self.gate.api_401.store(self.upstream_401, Ordering::SeqCst);
        req.extensions_mut()
            .insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 50_000))));
        let router = self.router.clone();
        self.rt.block_on(async move {
            let res = router.oneshot(req).await.expect("infallible");
            let status = res.status().as_u16();
            let headers = res.headers().clone();
            let body = res.into_body().collect().await.expect("body").to_bytes();
            to_response(status, &headers, &body)
        })
    }

    /// A request of the browser whose jar sent `cookie` (the `__Host-bff` value): the engine's
    /// method, path, headers and body, plus Host and, on non-GET requests, the app's Origin.
    pub fn handle(&mut self, req: &HttpRequest, cookie: Option<&str>) -> HttpResponse {
        let path = super::path_of(&req.url).to_owned();
        let bare = path.split('?').next().unwrap_or_default();
        match (req.method, bare) {
            (Method::Get, "/api/bff/session") => self.session_reads += 1,
            (Method::Post, "/api/bff/logout") => self
                .logouts
                .push(path.split_once('?').map_or("", |(_, q)| q).to_owned()),
            (_, p) if p.starts_with("/api/rs/") => self.proxied += 1,
            _ => {}
        }
        let mut b = Request::builder()
            .method(method(req.method))
            .uri(&path)
            .header(header::HOST, APP_HOST);
        for (k, v) in &req.headers {
            b = b.header(k.as_str(), v.as_str());
        }
        if req.method != Method::Get {
            b = b.header(header::ORIGIN, APP_ORIGIN);
        }
        if let Some(c) = cookie {
            b = b.header(header::COOKIE, format!("{COOKIE}={c}"));
        }
        let res = self.exchange(
            b.body(Body::from(req.body.clone().unwrap_or_default()))
                .expect("request"),
        );
        if res.status == 403 && res.body.contains("bff_csrf") {
            self.csrf_refused += 1;
        }
        res
    }

    /// Signs `sub` in at the BFF from outside the tabs (a sign-in the test set up): the
    /// `Set-Cookie` of the new session. The backend gets the account on first use.
    pub fn start_session(&mut self, sub: &str) -> String {
        self.backend
            .add_user(sub, &format!("{sub}@example.com"), PASSWORD, &["user"]);
        self.sessions_started.set(self.sessions_started.get() + 1);
        let req = Request::builder()
            .method("POST")
            .uri("/api/bff/signin")
            .header(header::HOST, APP_HOST)
            .header(header::ORIGIN, APP_ORIGIN)
            .header(header::CONTENT_TYPE, "application/json")
            .header("x-csrf", "1")
            .body(Body::from(
                json!({"username": sub, "password": PASSWORD}).to_string(),
            ))
            .expect("request");
        let res = self.exchange(req);
        assert_eq!(res.status, 200, "sign-in of {sub} at the BFF: {}", res.body);
        res.headers
            .iter()
            .find(|(k, v)| k == "set-cookie" && v.starts_with(&format!("{COOKIE}=")))
            .map(|(_, v)| v.clone())
            .expect("a session cookie")
    }

    /// Adds an account at the backend (for a sign-in the tabs make).
    pub fn add_user(&self, username: &str) {
        self.backend.add_user(
            username,
            &format!("{username}@example.com"),
            PASSWORD,
            &["user"],
        );
    }

    /// Ends every session at the server (an administrator deleting them).
    pub fn end_all(&mut self) {
        self.rt
            .block_on(sqlx::query("DELETE FROM bff_sessions").execute(self.state.db().pool()))
            .expect("delete sessions");
    }

    /// Sessions the server holds.
    pub fn live_sessions(&self) -> usize {
        let row = self
            .rt
            .block_on(
                sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM bff_sessions")
                    .fetch_one(self.state.db().pool()),
            )
            .expect("count sessions");
        row as usize
    }

    /// Refreshes the BFF made at the backend (successful ones).
    pub fn upstream_refreshes(&self) -> u64 {
        tutorial_fake::Counters::get(&self.backend.counters.refresh_ok)
    }

    /// Tokens the BFF holds (to look for them where scripts read): every session's access and
    /// refresh token.
    pub fn held_tokens(&self) -> Vec<String> {
        let rows: Vec<(String,)> = self
            .rt
            .block_on(
                sqlx::query_as::<_, (String,)>("SELECT id_hash FROM bff_sessions")
                    .fetch_all(self.state.db().pool()),
            )
            .expect("sessions");
        let store = self.state.bff().expect("bff").store();
        let now = self.state.now_ms();
        rows.into_iter()
            .filter_map(|(h,)| self.rt.block_on(store.session(&h, now)).ok().flatten())
            .flat_map(|s| {
                [Some(s.tokens.access_token), s.tokens.refresh_token]
                    .into_iter()
                    .flatten()
            })
            .collect()
    }
}
