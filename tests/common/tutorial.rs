//! A fake of the tutorial's Express backend, as recorded in ../shared/TUTORIAL-BACKEND.md: no
//! `expiresIn`, no rotation, `x-access-token` only, 404 on sign-out, 403 on a bad refresh token,
//! text/plain and HTML errors, byte-identical tokens within one second. It stands for the
//! tutorial's contract only (our own server is tested for real, see `real.rs`), and
//! `tutorial_fake_matches_the_record` checks it row by row against the record.

use std::collections::HashMap;
use std::rc::Rc;

use api_types::{headers, messages, paths};
use yew_session::session::ports::{Clock, HttpRequest, HttpResponse, Method};

use super::{FakeClock, PASSWORD};

/// The one origin the tutorial's CORS setup names, whatever the request's Origin.
pub const CORS_ORIGIN: &str = "http://localhost:8081";
/// The headers its /api routes allow.
pub const CORS_ALLOW_HEADERS: &str = "x-access-token, Origin, Content-Type, Accept";

struct User {
    id: u64,
    username: String,
    email: String,
    password: String,
    roles: Vec<String>,
}

pub struct TutorialServer {
    clock: Rc<FakeClock>,
    /// Server clock minus browser clock.
    pub server_offset_ms: f64,
    /// `jwtExpiration` (s).
    pub access_ttl_s: u64,
    /// `jwtRefreshExpiration` (s).
    pub family_ttl_s: u64,
    users: Vec<User>,
    /// Refresh token -> (user id, expiry on the server clock).
    refresh: HashMap<String, (u64, f64)>,
    next_token: u64,
}

fn b64url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn b64url_decode(s: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .ok()
}

/// The JWT header jsonwebtoken writes.
const JWT_HEADER: &[u8] = br#"{"alg":"HS256","typ":"JWT"}"#;

/// A JWT with a signature nobody checks (for tokens a test plants in storage).
pub fn make_jwt(payload: &serde_json::Value) -> String {
    format!(
        "{}.{}.{}",
        b64url(JWT_HEADER),
        b64url(payload.to_string().as_bytes()),
        b64url(b"not-a-real-signature")
    )
}

/// SplitMix64: deterministic pseudo-random bits.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The fake's "HMAC": deterministic in the signed bytes (two tokens of the same second are
/// byte-identical, as with jsonwebtoken) and different for any other input or key.
fn signature(signing_input: &str) -> String {
    let mut h = 0x6a09_e667_f3bc_c908u64;
    for b in b"tutorial-secret".iter().chain(signing_input.as_bytes()) {
        h = mix(h ^ *b as u64);
    }
    let mut bytes = Vec::with_capacity(32);
    for i in 0..4u64 {
        bytes.extend_from_slice(&mix(h ^ i).to_be_bytes());
    }
    b64url(&bytes)
}

fn express(status: u16, content_type: &str, body: String) -> HttpResponse {
    HttpResponse {
        status,
        headers: vec![
            ("x-powered-by".into(), "Express".into()),
            ("access-control-allow-origin".into(), CORS_ORIGIN.into()),
            ("vary".into(), "Origin".into()),
            (
                "access-control-allow-headers".into(),
                CORS_ALLOW_HEADERS.into(),
            ),
            ("content-type".into(), content_type.into()),
        ],
        body,
    }
}

fn json(status: u16, body: serde_json::Value) -> Option<HttpResponse> {
    Some(express(
        status,
        "application/json; charset=utf-8",
        body.to_string(),
    ))
}

fn html(status: u16, body: &str) -> Option<HttpResponse> {
    Some(express(status, "text/html; charset=utf-8", body.into()))
}

fn message(status: u16, m: &str) -> Option<HttpResponse> {
    json(status, serde_json::json!({ "message": m }))
}

impl TutorialServer {
    pub fn new(clock: Rc<FakeClock>) -> Self {
        Self {
            clock,
            server_offset_ms: 0.0,
            access_ttl_s: 60,
            family_ttl_s: 86_400,
            users: Vec::new(),
            refresh: HashMap::new(),
            next_token: 1,
        }
    }

    /// Loses every refresh token (a wiped table).
    pub fn forget_refresh_tokens(&mut self) {
        self.refresh.clear();
    }

    pub fn server_now(&self) -> f64 {
        self.clock.now_ms() + self.server_offset_ms
    }

    /// Creates `username` (password [`PASSWORD`], `ROLE_USER`) unless it exists.
    pub fn ensure_user(&mut self, username: &str) {
        if !self.users.iter().any(|u| u.username == username) {
            self.add_user(username, &format!("{username}@x.io"), PASSWORD, &["user"]);
        }
    }

    fn add_user(&mut self, username: &str, email: &str, password: &str, roles: &[&str]) {
        let id = self.users.len() as u64 + 1;
        self.users.push(User {
            id,
            username: username.into(),
            email: email.into(),
            password: password.into(),
            roles: roles
                .iter()
                .map(|r| format!("ROLE_{}", r.to_ascii_uppercase()))
                .collect(),
        });
    }

    /// A signed access token: `{"id","iat","exp"}` only, `exp` = floored `iat` + ttl (so the
    /// token may live up to 1 s less than the ttl), nothing random.
    pub fn access_token(&self, user_id: u64) -> String {
        let iat = (self.server_now() / 1000.0).floor() as i64;
        let payload = format!(
            r#"{{"id":{user_id},"iat":{iat},"exp":{}}}"#,
            iat + self.access_ttl_s as i64
        );
        let input = format!("{}.{}", b64url(JWT_HEADER), b64url(payload.as_bytes()));
        let sig = signature(&input);
        format!("{input}.{sig}")
    }

    /// A uuid v4 (deterministic per server).
    fn new_refresh_token(&mut self) -> String {
        let n = self.next_token;
        self.next_token += 1;
        let a = mix(n);
        let b = mix(a);
        format!(
            "{:08x}-{:04x}-4{:03x}-{:x}{:03x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            8 + (b >> 62),
            (b >> 48) & 0xfff,
            b & 0xffff_ffff_ffff
        )
    }

    /// Checks an access token the way `jsonwebtoken.verify` does: signature, then `exp`.
    fn verify(&self, token: &str) -> Result<u64, Option<HttpResponse>> {
        let unauthorized = || {
            Some(express(
                401,
                "text/plain; charset=utf-8",
                "Unauthorized".into(),
            ))
        };
        let parts: Vec<&str> = token.split('.').collect();
        let [h, p, s] = parts.as_slice() else {
            return Err(unauthorized());
        };
        if b64url_decode(h).as_deref() != Some(JWT_HEADER) || *s != signature(&format!("{h}.{p}")) {
            return Err(unauthorized());
        }
        let Some(payload) =
            b64url_decode(p).and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        else {
            return Err(unauthorized());
        };
        let (Some(id), Some(exp)) = (payload["id"].as_u64(), payload["exp"].as_f64()) else {
            return Err(unauthorized());
        };
        if exp * 1000.0 <= self.server_now() {
            return Err(message(401, messages::ACCESS_EXPIRED));
        }
        Ok(id)
    }

    /// Answers a request; `None` when the backend never answers.
    pub fn handle(&mut self, req: &HttpRequest) -> Option<HttpResponse> {
        let body: serde_json::Value = req
            .body
            .as_deref()
            .and_then(|b| serde_json::from_str(b).ok())
            .unwrap_or(serde_json::Value::Null);
        let path = super::path_of(&req.url);
        match (req.method, path) {
            (Method::Post, paths::SIGNUP) => {
                // verifySignUp looks the username and email up first: without them Sequelize
                // throws inside the middleware and the request never gets an answer.
                let (Some(username), Some(email)) =
                    (body["username"].as_str(), body["email"].as_str())
                else {
                    return None;
                };
                if self.users.iter().any(|u| u.username == username) {
                    return message(400, messages::USERNAME_TAKEN);
                }
                if self.users.iter().any(|u| u.email == email) {
                    return message(400, messages::EMAIL_TAKEN);
                }
                let roles: Vec<String> = body["roles"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|r| r.as_str().map(String::from))
                            .collect()
                    })
                    .unwrap_or_else(|| vec!["user".into()]);
                if let Some(bad) = roles
                    .iter()
                    .find(|r| !["user", "moderator", "admin"].contains(&r.as_str()))
                {
                    return message(400, &format!("Failed! Role does not exist = {bad}"));
                }
                let Some(password) = body["password"].as_str() else {
                    // bcrypt.hashSync(undefined, 8) throws; Express's default handler answers.
                    return html(
                        500,
                        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>Error</title>\n</head>\n<body>\n<pre>Error: Illegal arguments: undefined, number<br> &nbsp; &nbsp;at _async (/app/node_modules/bcryptjs/dist/bcrypt.js:214:46)<br> &nbsp; &nbsp;at Object.bcrypt.hashSync (/app/node_modules/bcryptjs/dist/bcrypt.js:155:16)</pre>\n</body>\n</html>\n",
                    );
                };
                let roles: Vec<&str> = roles.iter().map(String::as_str).collect();
                self.add_user(username, email, password, &roles);
                message(200, messages::REGISTERED)
            }
            (Method::Post, paths::SIGNIN) => {
                let username = body["username"].as_str().unwrap_or_default();
                let Some(user) = self.users.iter().find(|u| u.username == username) else {
                    return message(404, "User Not found.");
                };
                if body["password"].as_str() != Some(user.password.as_str()) {
                    return json(
                        401,
                        serde_json::json!({"accessToken": null, "message": "Invalid Password!"}),
                    );
                }
                let (id, username, email, roles) = (
                    user.id,
                    user.username.clone(),
                    user.email.clone(),
                    user.roles.clone(),
                );
                let access = self.access_token(id);
                let refresh = self.new_refresh_token();
                let ends = self.server_now() + self.family_ttl_s as f64 * 1000.0;
                self.refresh.insert(refresh.clone(), (id, ends));
                json(
                    200,
                    serde_json::json!({
                        "id": id, "username": username, "email": email, "roles": roles,
                        "accessToken": access, "refreshToken": refresh,
                    }),
                )
            }
            (Method::Post, paths::REFRESH) => {
                let Some(token) = body["refreshToken"].as_str().map(String::from) else {
                    return message(403, messages::REFRESH_REQUIRED);
                };
                let Some(&(user_id, ends)) = self.refresh.get(&token) else {
                    return message(403, messages::REFRESH_NOT_IN_DB);
                };
                if ends < self.server_now() {
                    self.refresh.remove(&token);
                    return message(403, messages::REFRESH_EXPIRED);
                }
                let access = self.access_token(user_id);
                json(
                    200,
                    serde_json::json!({"accessToken": access, "refreshToken": token}),
                )
            }
            (Method::Get, paths::TEST_ALL) => html(200, messages::PUBLIC_CONTENT),
            (Method::Get, paths::TEST_USER | paths::TEST_MOD | paths::TEST_ADMIN) => {
                // Only x-access-token is read (a Bearer header counts as no token).
                let Some(token) = req.header(headers::ACCESS_TOKEN) else {
                    return message(403, messages::NO_TOKEN);
                };
                let id = match self.verify(token) {
                    Ok(id) => id,
                    Err(answer) => return answer,
                };
                let roles = self
                    .users
                    .iter()
                    .find(|u| u.id == id)
                    .map(|u| u.roles.clone())
                    .unwrap_or_default();
                let has = |r: &str| roles.iter().any(|x| x == r);
                match path {
                    paths::TEST_MOD if !has("ROLE_MODERATOR") => {
                        message(403, messages::REQUIRE_MODERATOR)
                    }
                    paths::TEST_MOD => html(200, messages::MODERATOR_CONTENT),
                    paths::TEST_ADMIN if !has("ROLE_ADMIN") => {
                        message(403, messages::REQUIRE_ADMIN)
                    }
                    paths::TEST_ADMIN => html(200, messages::ADMIN_CONTENT),
                    _ => html(200, messages::USER_CONTENT),
                }
            }
            (m, p) => {
                // Express's default 404 page (the tutorial has no sign-out endpoint).
                let verb = match m {
                    Method::Get => "GET",
                    Method::Post => "POST",
                    Method::Delete => "DELETE",
                };
                html(
                    404,
                    &format!(
                        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>Error</title>\n</head>\n<body>\n<pre>Cannot {verb} {p}</pre>\n</body>\n</html>\n"
                    ),
                )
            }
        }
    }
}
