//! The tutorial's backend behind the tabs' transport: THE fake of it (the `tutorial-fake` crate,
//! which the end-to-end tests serve on a socket too), its `Router` driven by `oneshot` on a
//! current-thread tokio runtime the world owns, on the world's fake clock (plus a skew). As in
//! `real.rs`, each request is run to its end the moment it leaves a tab; the knobs below are
//! handed to the fake before every request. `tutorial_fake_matches_the_record` checks it row by
//! row against ../shared/TUTORIAL-BACKEND.md (`record.rs`).

use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use axum::Router;
use http_body_util::BodyExt;
use tower::ServiceExt;

use tutorial_fake::{Fake, Lifetimes, ManualClock};
use yew_session::session::ports::{Clock, HttpRequest, HttpResponse};

use super::real::{method, to_response};
use super::{FakeClock, PASSWORD};

pub use tutorial_fake::unsigned_token as make_jwt;

/// Every answer of the fake is computed without waiting on anything, so a request still open
/// after this long (real time) is one it never answers.
const NO_ANSWER_AFTER: Duration = Duration::from_millis(200);

pub struct TutorialServer {
    world: Rc<FakeClock>,
    /// Server clock minus browser clock.
    pub server_offset_ms: f64,
    /// `jwtExpiration` (s).
    pub access_ttl_s: u64,
    /// `jwtRefreshExpiration` (s).
    pub family_ttl_s: u64,
    fake: Fake,
    clock: Arc<ManualClock>,
    router: Router,
    rt: tokio::runtime::Runtime,
}

impl TutorialServer {
    pub fn new(world: Rc<FakeClock>) -> Self {
        let clock = Arc::new(ManualClock::default());
        let (access_ttl_s, family_ttl_s) = (60, 86_400);
        let fake = Fake::new(
            clock.clone(),
            Lifetimes {
                access_ttl_s,
                refresh_ttl_s: family_ttl_s,
            },
        );
        Self {
            world,
            server_offset_ms: 0.0,
            access_ttl_s,
            family_ttl_s,
            router: fake.router(),
            fake,
            clock,
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .expect("tokio runtime"),
        }
    }

    /// Loses every refresh token (a wiped table).
    pub fn forget_refresh_tokens(&mut self) {
        self.fake.forget_refresh_tokens();
    }

    /// Creates `username` (password [`PASSWORD`], `ROLE_USER`) unless it exists.
    pub fn ensure_user(&mut self, username: &str) {
        self.fake
            .add_user(username, &format!("{username}@x.io"), PASSWORD, &["user"]);
    }

    /// Answers a request at the world's current time; `None` when the backend never answers.
    pub fn handle(&mut self, req: &HttpRequest) -> Option<HttpResponse> {
        self.fake.set_lifetimes(Lifetimes {
            access_ttl_s: self.access_ttl_s,
            refresh_ttl_s: self.family_ttl_s,
        });
        self.clock
            .set_ms((self.world.now_ms() + self.server_offset_ms).floor() as u64);
        let mut b = Request::builder()
            .method(method(req.method))
            .uri(super::path_of(&req.url));
        for (k, v) in &req.headers {
            b = b.header(k.as_str(), v.as_str());
        }
        let request = b
            .body(Body::from(req.body.clone().unwrap_or_default()))
            .expect("request");
        let router = self.router.clone();
        self.rt.block_on(async move {
            let res = tokio::time::timeout(NO_ANSWER_AFTER, router.oneshot(request))
                .await
                .ok()?
                .expect("infallible");
            let (parts, body) = res.into_parts();
            let body = body.collect().await.expect("body").to_bytes();
            Some(to_response(parts.status.as_u16(), &parts.headers, &body))
        })
    }
}
