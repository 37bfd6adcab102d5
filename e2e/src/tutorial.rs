//! A small in-process fake of the tutorial's Node backend (see /work/shared/TUTORIAL-BACKEND.md),
//! for the compatibility-mode scenario: it serves the app and the tutorial's contract, quirks
//! included — no `expiresIn`, a refresh token that never rotates, only `x-access-token` read,
//! no sign-out endpoint (Express's HTML 404), `text/plain` "Unauthorized" for bad tokens, access
//! tokens `{id, iat, exp}` (HS256) that are byte-identical within one second, and 403 for
//! missing, unknown or expired refresh tokens. It counts what it answered, for the assertions.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use tower_http::services::{ServeDir, ServeFile};

type HmacSha256 = Hmac<Sha256>;

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

struct User {
    id: u64,
    username: String,
    email: String,
    password: String,
    roles: Vec<&'static str>,
}

struct Inner {
    users: Vec<User>,
    /// refresh token -> (user id, expires at, Unix ms)
    refresh: HashMap<String, (u64, u128)>,
}

#[derive(Clone)]
struct Fake {
    inner: Arc<Mutex<Inner>>,
    counters: Arc<Counters>,
    secret: Arc<Vec<u8>>,
    access_ttl_s: u64,
    refresh_ttl_ms: u128,
}

/// The running fake; stops when dropped.
pub struct TutorialBackend {
    port: u16,
    /// What it answered.
    pub counters: Arc<Counters>,
    task: tokio::task::JoinHandle<()>,
}

impl TutorialBackend {
    /// Serves `static_dir` (the app, with a compatibility `config.json`) and the API on a free
    /// port of 127.0.0.1, with demo accounts `user` / `mod` / `admin` (password `password`).
    pub async fn start(
        static_dir: PathBuf,
        password: &str,
        access_ttl_s: u64,
        refresh_ttl_s: u64,
    ) -> TutorialBackend {
        let users = [
            ("user", vec!["ROLE_USER"]),
            ("mod", vec!["ROLE_USER", "ROLE_MODERATOR"]),
            ("admin", vec!["ROLE_USER", "ROLE_ADMIN"]),
        ]
        .into_iter()
        .enumerate()
        .map(|(i, (name, roles))| User {
            id: i as u64 + 1,
            username: name.into(),
            email: format!("{name}@tutorial.invalid"),
            password: password.into(),
            roles,
        })
        .collect();
        let fake = Fake {
            inner: Arc::new(Mutex::new(Inner {
                users,
                refresh: HashMap::new(),
            })),
            counters: Arc::new(Counters::default()),
            secret: Arc::new(b"bezkoder-secret-key-of-the-fake-backend".to_vec()),
            access_ttl_s,
            refresh_ttl_ms: refresh_ttl_s as u128 * 1000,
        };
        let index = static_dir.join("index.html");
        let app = Router::new()
            .route("/api/auth/signup", post(signup))
            .route("/api/auth/signin", post(signin))
            .route("/api/auth/refreshtoken", post(refresh))
            .route("/api/test/all", get(public))
            .route("/api/test/user", get(board_user))
            .route("/api/test/mod", get(board_mod))
            .route("/api/test/admin", get(board_admin))
            .route("/api/{*rest}", any(cannot))
            .fallback_service(ServeDir::new(&static_dir).fallback(ServeFile::new(index)))
            .layer(axum::middleware::map_response(express_headers))
            .with_state(fake.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake tutorial backend");
        let port = listener.local_addr().expect("local addr").port();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        TutorialBackend {
            port,
            counters: fake.counters,
            task,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for TutorialBackend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

/// Every response of the tutorial's Express server carries these.
async fn express_headers(mut res: Response) -> Response {
    let h = res.headers_mut();
    h.insert("x-powered-by", HeaderValue::from_static("Express"));
    h.insert(
        "access-control-allow-origin",
        HeaderValue::from_static("http://localhost:8081"),
    );
    h.insert("vary", HeaderValue::from_static("Origin"));
    res
}

fn message(status: StatusCode, text: &str) -> Response {
    (status, Json(json!({ "message": text }))).into_response()
}

fn html(status: StatusCode, text: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        text,
    )
        .into_response()
}

/// Express's 404 for routes that do not exist (the tutorial has no sign-out).
async fn cannot(State(fake): State<Fake>, req: Request) -> Response {
    if req.uri().path() == "/api/auth/signout" {
        fake.counters
            .signout_attempts
            .fetch_add(1, Ordering::SeqCst);
    }
    let method = req.method().clone();
    html(
        StatusCode::NOT_FOUND,
        format!(
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>Error</title>\n</head>\n<body>\n<pre>Cannot {} {}</pre>\n</body>\n</html>\n",
            method,
            req.uri().path()
        ),
    )
}

impl Fake {
    fn sign(&self, user_id: u64) -> String {
        let iat = (now_ms() / 1000) as u64;
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        let payload = URL_SAFE_NO_PAD.encode(
            json!({ "id": user_id, "iat": iat, "exp": iat + self.access_ttl_s }).to_string(),
        );
        let signing_input = format!("{header}.{payload}");
        let mut mac = HmacSha256::new_from_slice(&self.secret).expect("hmac key");
        mac.update(signing_input.as_bytes());
        let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{signing_input}.{sig}")
    }

    /// `Ok(user id)`, or the response jsonwebtoken's middleware would give.
    fn verify(&self, headers: &HeaderMap) -> Result<u64, Box<Response>> {
        let Some(token) = headers.get("x-access-token").and_then(|v| v.to_str().ok()) else {
            return Err(Box::new(message(
                StatusCode::FORBIDDEN,
                "No token provided!",
            )));
        };
        let unauthorized = || {
            self.counters.unauthorized.fetch_add(1, Ordering::SeqCst);
            Box::new(
                (
                    StatusCode::UNAUTHORIZED,
                    [
                        (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
                        (header::CONNECTION, "close"),
                    ],
                    "Unauthorized",
                )
                    .into_response(),
            )
        };
        let parts: Vec<&str> = token.split('.').collect();
        let [h, p, s] = parts.as_slice() else {
            return Err(unauthorized());
        };
        let header: Value = URL_SAFE_NO_PAD
            .decode(h)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(unauthorized)?;
        if header["alg"] != "HS256" {
            return Err(unauthorized());
        }
        let sig = URL_SAFE_NO_PAD.decode(s).map_err(|_| unauthorized())?;
        let mut mac = HmacSha256::new_from_slice(&self.secret).expect("hmac key");
        mac.update(format!("{h}.{p}").as_bytes());
        mac.verify_slice(&sig).map_err(|_| unauthorized())?;
        let claims: Value = URL_SAFE_NO_PAD
            .decode(p)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(unauthorized)?;
        let exp = claims["exp"].as_u64().ok_or_else(unauthorized)?;
        if (now_ms() / 1000) as u64 >= exp {
            self.counters.unauthorized.fetch_add(1, Ordering::SeqCst);
            return Err(Box::new(message(
                StatusCode::UNAUTHORIZED,
                "Unauthorized! Access Token was expired!",
            )));
        }
        claims["id"].as_u64().ok_or_else(unauthorized)
    }

    fn has_role(&self, id: u64, role: &str) -> bool {
        let inner = self.inner.lock().expect("lock");
        inner
            .users
            .iter()
            .any(|u| u.id == id && u.roles.contains(&role))
    }
}

async fn signup(State(fake): State<Fake>, body: Bytes) -> Response {
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let (Some(username), Some(email), Some(password)) = (
        v["username"].as_str(),
        v["email"].as_str(),
        v["password"].as_str(),
    ) else {
        return html(
            StatusCode::INTERNAL_SERVER_ERROR,
            "<pre>TypeError: Cannot read properties of undefined</pre>".into(),
        );
    };
    let mut inner = fake.inner.lock().expect("lock");
    if inner.users.iter().any(|u| u.username == username) {
        return message(
            StatusCode::BAD_REQUEST,
            "Failed! Username is already in use!",
        );
    }
    if inner.users.iter().any(|u| u.email == email) {
        return message(StatusCode::BAD_REQUEST, "Failed! Email is already in use!");
    }
    let id = inner.users.len() as u64 + 1;
    inner.users.push(User {
        id,
        username: username.into(),
        email: email.into(),
        password: password.into(),
        roles: vec!["ROLE_USER"],
    });
    message(StatusCode::OK, "User registered successfully!")
}

async fn signin(State(fake): State<Fake>, body: Bytes) -> Response {
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let username = v["username"].as_str().unwrap_or_default();
    let password = v["password"].as_str().unwrap_or_default();
    let mut inner = fake.inner.lock().expect("lock");
    let Some(user) = inner.users.iter().find(|u| u.username == username) else {
        return message(StatusCode::NOT_FOUND, "User Not found.");
    };
    if user.password != password {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({ "accessToken": null, "message": "Invalid Password!" })),
        )
            .into_response();
    }
    let body = json!({
        "id": user.id,
        "username": user.username,
        "email": user.email,
        "roles": user.roles,
        "accessToken": fake.sign(user.id),
        "refreshToken": "",
    });
    let user_id = user.id;
    let token = uuid_v4();
    inner
        .refresh
        .insert(token.clone(), (user_id, now_ms() + fake.refresh_ttl_ms));
    let mut body = body;
    body["refreshToken"] = json!(token);
    fake.counters.signins.fetch_add(1, Ordering::SeqCst);
    Json(body).into_response()
}

async fn refresh(State(fake): State<Fake>, body: Bytes) -> Response {
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let reject = |text: &str| {
        fake.counters
            .refresh_rejected
            .fetch_add(1, Ordering::SeqCst);
        message(StatusCode::FORBIDDEN, text)
    };
    let Some(token) = v["refreshToken"].as_str().filter(|t| !t.is_empty()) else {
        return reject("Refresh Token is required!");
    };
    let found = fake.inner.lock().expect("lock").refresh.get(token).copied();
    let Some((user_id, expires_at)) = found else {
        return reject("Refresh token is not in database!");
    };
    if expires_at < now_ms() {
        fake.inner.lock().expect("lock").refresh.remove(token);
        return reject("Refresh token was expired. Please make a new signin request");
    }
    fake.counters.refresh_ok.fetch_add(1, Ordering::SeqCst);
    Json(json!({ "accessToken": fake.sign(user_id), "refreshToken": token })).into_response()
}

async fn public() -> Response {
    html(StatusCode::OK, "Public Content.".into())
}

async fn board(
    fake: &Fake,
    headers: &HeaderMap,
    role: Option<(&str, &str)>,
    text: &str,
) -> Response {
    let id = match fake.verify(headers) {
        Ok(id) => id,
        Err(res) => return *res,
    };
    if let Some((role, refusal)) = role {
        if !fake.has_role(id, role) {
            return message(StatusCode::FORBIDDEN, refusal);
        }
    }
    fake.counters.content_ok.fetch_add(1, Ordering::SeqCst);
    html(StatusCode::OK, text.into())
}

async fn board_user(State(fake): State<Fake>, headers: HeaderMap) -> Response {
    board(&fake, &headers, None, "User Content.").await
}

async fn board_mod(State(fake): State<Fake>, headers: HeaderMap) -> Response {
    board(
        &fake,
        &headers,
        Some(("ROLE_MODERATOR", "Require Moderator Role!")),
        "Moderator Content.",
    )
    .await
}

async fn board_admin(State(fake): State<Fake>, headers: HeaderMap) -> Response {
    board(
        &fake,
        &headers,
        Some(("ROLE_ADMIN", "Require Admin Role!")),
        "Admin Content.",
    )
    .await
}

/// A random UUID v4 string, as the tutorial's `uuidv4()` makes them.
fn uuid_v4() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake(ttl: u64) -> Fake {
        Fake {
            inner: Arc::new(Mutex::new(Inner {
                users: Vec::new(),
                refresh: HashMap::new(),
            })),
            counters: Arc::new(Counters::default()),
            secret: Arc::new(b"k".to_vec()),
            access_ttl_s: ttl,
            refresh_ttl_ms: 0,
        }
    }

    fn with_token(t: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-access-token", HeaderValue::from_str(t).unwrap());
        h
    }

    #[test]
    fn its_tokens_verify_and_tampered_ones_do_not() {
        let f = fake(60);
        let t = f.sign(7);
        assert_eq!(f.verify(&with_token(&t)).ok(), Some(7));
        let mut bad = t.clone();
        bad.push('x');
        let res = f.verify(&with_token(&bad)).unwrap_err();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            res.headers()[header::CONTENT_TYPE],
            "text/plain; charset=utf-8"
        );
        assert_eq!(
            f.verify(&HeaderMap::new()).unwrap_err().status(),
            StatusCode::FORBIDDEN
        );
    }

    #[test]
    fn tokens_carry_only_id_iat_exp() {
        let t = fake(4).sign(3);
        let payload = t.split('.').nth(1).unwrap();
        let v: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["exp", "iat", "id"]);
        assert_eq!(v["exp"].as_u64().unwrap() - v["iat"].as_u64().unwrap(), 4);
    }

    #[test]
    fn expired_tokens_get_the_json_message() {
        let f = fake(0);
        let res = f.verify(&with_token(&f.sign(1))).unwrap_err();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert!(res.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("application/json"));
    }

    #[test]
    fn uuids_look_like_v4() {
        let u = uuid_v4();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
    }
}
