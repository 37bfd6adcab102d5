//! The one fake of the tutorial's Express backend, as recorded in ../shared/TUTORIAL-BACKEND.md:
//! no `expiresIn`, a refresh token that never rotates, only `x-access-token` read, no sign-out
//! endpoint (Express's HTML 404, for every unknown route or method), `text/plain` "Unauthorized"
//! on a closed connection for bad tokens, HS256 access tokens `{id, iat, exp}` that are
//! byte-identical within one second, 403 for missing, unknown or expired refresh tokens, a
//! sign-up that never answers without a username or email, and Express's headers on every
//! answer. It stands for the tutorial's contract only (our own server is tested for real).
//!
//! It is one axum [`Router`] ([`Fake::router`]), parameterised by a [`Clock`] and the
//! [`Lifetimes`]: the host tests drive it in process with `oneshot` on their fake clock
//! (tests/common/tutorial.rs), the end-to-end tests serve it on 127.0.0.1 with the system clock
//! beside the app's files (e2e/src/tutorial.rs), and `tutorial_fake_matches_the_record`
//! (tests/session_engine.rs) checks it row by row against the record.

mod express;
mod token;

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use api_types::{headers, messages, paths, roles};
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::Router;
use serde_json::{json, Value};

use express::{error_page, express_headers, html, json_response, message};
pub use express::{CORS_ALLOW_HEADERS, CORS_ORIGIN};
pub use token::unsigned as unsigned_token;
use token::Refusal;

/// The tutorial's `config.secret`.
const SECRET: &[u8] = b"bezkoder-secret-key";

/// The server's clock, in Unix milliseconds.
pub trait Clock: Send + Sync + 'static {
    fn now_ms(&self) -> u64;
}

/// The machine's clock (a fake served to a real browser).
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    }
}

/// A clock that shows what it was last set to (a test's fake time).
#[derive(Default)]
pub struct ManualClock(AtomicU64);

impl ManualClock {
    pub fn set_ms(&self, ms: u64) {
        self.0.store(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// The tutorial's `jwtExpiration` and `jwtRefreshExpiration`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetimes {
    /// Of an access token (s).
    pub access_ttl_s: u64,
    /// Of a refresh token from its sign-in (s); it never rotates, so this is the session's end.
    pub refresh_ttl_s: u64,
}

/// What the fake answered, by kind.
#[derive(Debug, Default)]
pub struct Counters {
    /// Successful sign-ins.
    pub signins: AtomicU64,
    /// Successful refreshes.
    pub refresh_ok: AtomicU64,
    /// Refreshes answered 403.
    pub refresh_rejected: AtomicU64,
    /// Responses with status 401 (expired or bad access tokens).
    pub unauthorized: AtomicU64,
    /// `POST /api/auth/signout` attempts (answered 404, as the real one does).
    pub signout_attempts: AtomicU64,
    /// Successful `GET /api/test/*` with a token.
    pub content_ok: AtomicU64,
}

impl Counters {
    /// Reads one counter.
    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::SeqCst)
    }
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::SeqCst);
}

struct User {
    id: u64,
    username: String,
    email: String,
    password: String,
    roles: Vec<String>,
}

struct Inner {
    lifetimes: Lifetimes,
    users: Vec<User>,
    /// Refresh token -> (user id, expires at, Unix ms).
    refresh: HashMap<String, (u64, u64)>,
}

/// The fake's state; clones share it. Build its [`Router`] with [`Fake::router`].
#[derive(Clone)]
pub struct Fake {
    inner: Arc<Mutex<Inner>>,
    clock: Arc<dyn Clock>,
    /// What it answered.
    pub counters: Arc<Counters>,
}

impl Fake {
    /// A backend with no users and no refresh tokens.
    pub fn new(clock: Arc<dyn Clock>, lifetimes: Lifetimes) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Inner {
                lifetimes,
                users: Vec::new(),
                refresh: HashMap::new(),
            })),
            clock,
            counters: Arc::default(),
        }
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().expect("the fake's state")
    }

    /// Changes the lifetimes of the tokens issued from now on (a refresh token already issued
    /// keeps its end).
    pub fn set_lifetimes(&self, lifetimes: Lifetimes) {
        self.inner().lifetimes = lifetimes;
    }

    /// Adds an account, as a sign-up with these `roles` (`user`, `moderator`, `admin`) would;
    /// `false` (and nothing changes) when the username is taken.
    pub fn add_user(&self, username: &str, email: &str, password: &str, roles: &[&str]) -> bool {
        let mut inner = self.inner();
        if inner.users.iter().any(|u| u.username == username) {
            return false;
        }
        let id = inner.users.len() as u64 + 1;
        inner.users.push(User {
            id,
            username: username.into(),
            email: email.into(),
            password: password.into(),
            roles: roles
                .iter()
                .map(|r| format!("ROLE_{}", r.to_ascii_uppercase()))
                .collect(),
        });
        true
    }

    /// Loses every refresh token (a wiped table).
    pub fn forget_refresh_tokens(&self) {
        self.inner().refresh.clear();
    }

    /// The API, answering Express's 404 page on every other path.
    pub fn router(&self) -> Router {
        self.router_with_fallback(axum::routing::any(cannot).with_state(self.clone()))
    }

    /// The API, and `others` (e.g. the app's files) for every path outside `/api`.
    pub fn router_with_fallback<S>(&self, others: S) -> Router
    where
        S: tower_service::Service<Request, Error = Infallible> + Clone + Send + Sync + 'static,
        S::Response: IntoResponse,
        S::Future: Send + 'static,
    {
        let board = |role: Option<(&'static str, &'static str)>, content: &'static str| {
            express_route(get(
                move |State(fake): State<Fake>, headers: HeaderMap| async move {
                    fake.board(&headers, role, content)
                },
            ))
        };
        Router::new()
            .route(paths::SIGNUP, express_route(post(signup)))
            .route(paths::SIGNIN, express_route(post(signin)))
            .route(paths::REFRESH, express_route(post(refresh)))
            .route(
                paths::TEST_ALL,
                express_route(get(|| async {
                    html(StatusCode::OK, messages::PUBLIC_CONTENT)
                })),
            )
            .route(paths::TEST_USER, board(None, messages::USER_CONTENT))
            .route(
                paths::TEST_MOD,
                board(
                    Some((roles::MODERATOR, messages::REQUIRE_MODERATOR)),
                    messages::MODERATOR_CONTENT,
                ),
            )
            .route(
                paths::TEST_ADMIN,
                board(
                    Some((roles::ADMIN, messages::REQUIRE_ADMIN)),
                    messages::ADMIN_CONTENT,
                ),
            )
            .route("/api/{*rest}", axum::routing::any(cannot))
            .fallback_service(others)
            .layer(middleware::from_fn(express_headers))
            .with_state(self.clone())
    }

    /// `GET /api/test/user|mod|admin`: the token (x-access-token only), then the role.
    fn board(&self, headers: &HeaderMap, role: Option<(&str, &str)>, content: &str) -> Response {
        // A Bearer header counts as no token.
        let Some(token) = headers
            .get(headers::ACCESS_TOKEN)
            .and_then(|v| v.to_str().ok())
        else {
            return message(StatusCode::FORBIDDEN, messages::NO_TOKEN);
        };
        let id = match token::verify(SECRET, token, self.clock.now_ms()) {
            Ok(id) => id,
            Err(refusal) => {
                bump(&self.counters.unauthorized);
                return match refusal {
                    Refusal::Expired => message(StatusCode::UNAUTHORIZED, messages::ACCESS_EXPIRED),
                    Refusal::Invalid => (
                        StatusCode::UNAUTHORIZED,
                        [
                            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
                            (header::CONNECTION, "close"),
                        ],
                        "Unauthorized",
                    )
                        .into_response(),
                };
            }
        };
        if let Some((role, refusal)) = role {
            let inner = self.inner();
            // Each role stands alone: admin does not imply moderator.
            if !inner
                .users
                .iter()
                .any(|u| u.id == id && u.roles.iter().any(|r| r == role))
            {
                return message(StatusCode::FORBIDDEN, refusal);
            }
        }
        bump(&self.counters.content_ok);
        html(StatusCode::OK, content)
    }
}

/// Express answers its 404 page for a method a route does not have.
fn express_route(route: MethodRouter<Fake>) -> MethodRouter<Fake> {
    route.fallback(cannot)
}

/// Express's 404 for routes that do not exist (the tutorial has no sign-out).
async fn cannot(State(fake): State<Fake>, req: Request) -> Response {
    let path = req.uri().path();
    if path == paths::SIGNOUT {
        bump(&fake.counters.signout_attempts);
    }
    error_page(
        StatusCode::NOT_FOUND,
        &format!("Cannot {} {path}", req.method()),
    )
}

fn body_json(body: &Bytes) -> Value {
    serde_json::from_slice(body).unwrap_or(Value::Null)
}

async fn signup(State(fake): State<Fake>, body: Bytes) -> Response {
    let v = body_json(&body);
    // verifySignUp looks the username and email up first: without them Sequelize throws inside
    // the middleware and the request never gets an answer.
    let (Some(username), Some(email)) = (v["username"].as_str(), v["email"].as_str()) else {
        return std::future::pending().await;
    };
    {
        let inner = fake.inner();
        if inner.users.iter().any(|u| u.username == username) {
            return message(StatusCode::BAD_REQUEST, messages::USERNAME_TAKEN);
        }
        if inner.users.iter().any(|u| u.email == email) {
            return message(StatusCode::BAD_REQUEST, messages::EMAIL_TAKEN);
        }
    }
    let asked: Vec<&str> = match v["roles"].as_array() {
        Some(a) => a.iter().filter_map(Value::as_str).collect(),
        None => vec!["user"],
    };
    if let Some(bad) = asked
        .iter()
        .find(|r| !["user", "moderator", "admin"].contains(r))
    {
        return message(
            StatusCode::BAD_REQUEST,
            &format!("Failed! Role does not exist = {bad}"),
        );
    }
    let Some(password) = v["password"].as_str() else {
        // bcrypt.hashSync(undefined, 8) throws; Express's default handler answers.
        return error_page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Error: Illegal arguments: undefined, number<br> &nbsp; &nbsp;at _async (/app/node_modules/bcryptjs/dist/bcrypt.js:214:46)<br> &nbsp; &nbsp;at Object.bcrypt.hashSync (/app/node_modules/bcryptjs/dist/bcrypt.js:155:16)",
        );
    };
    fake.add_user(username, email, password, &asked);
    message(StatusCode::OK, messages::REGISTERED)
}

async fn signin(State(fake): State<Fake>, body: Bytes) -> Response {
    let v = body_json(&body);
    let username = v["username"].as_str().unwrap_or_default();
    let now = fake.clock.now_ms();
    let mut inner = fake.inner();
    let Some(user) = inner.users.iter().find(|u| u.username == username) else {
        return message(StatusCode::NOT_FOUND, "User Not found.");
    };
    if v["password"].as_str() != Some(user.password.as_str()) {
        return json_response(
            StatusCode::UNAUTHORIZED,
            json!({ "accessToken": null, "message": "Invalid Password!" }),
        );
    }
    let refresh_token = uuid::Builder::from_random_bytes(rand::random())
        .into_uuid()
        .to_string();
    let body = json!({
        "id": user.id,
        "username": user.username,
        "email": user.email,
        "roles": user.roles,
        "accessToken": token::sign(SECRET, user.id, now, inner.lifetimes.access_ttl_s),
        "refreshToken": refresh_token,
    });
    let session = (user.id, now + inner.lifetimes.refresh_ttl_s * 1000);
    inner.refresh.insert(refresh_token, session);
    bump(&fake.counters.signins);
    json_response(StatusCode::OK, body)
}

async fn refresh(State(fake): State<Fake>, body: Bytes) -> Response {
    let v = body_json(&body);
    let reject = |text: &str| {
        bump(&fake.counters.refresh_rejected);
        message(StatusCode::FORBIDDEN, text)
    };
    // `if (requestToken == null)`: an empty string is looked up (and not found).
    let Some(presented) = v["refreshToken"].as_str() else {
        return reject(messages::REFRESH_REQUIRED);
    };
    let now = fake.clock.now_ms();
    let mut inner = fake.inner();
    let Some(&(user_id, ends)) = inner.refresh.get(presented) else {
        return reject(messages::REFRESH_NOT_IN_DB);
    };
    if ends < now {
        // The row is deleted on that first use.
        inner.refresh.remove(presented);
        return reject(messages::REFRESH_EXPIRED);
    }
    let access = token::sign(SECRET, user_id, now, inner.lifetimes.access_ttl_s);
    bump(&fake.counters.refresh_ok);
    json_response(
        StatusCode::OK,
        json!({ "accessToken": access, "refreshToken": presented }),
    )
}
