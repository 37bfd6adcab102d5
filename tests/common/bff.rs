//! A fake of session-api's backend-for-frontend endpoints, as server/README.md "Backend for
//! frontend" states them (the real ones are tested against the real provider in
//! server/tests/bff.rs, and the app against them in e2e/tests/bff.rs): `GET /api/bff/session`,
//! `POST /api/bff/logout[?everywhere=1]`, `POST /api/bff/signin` (the password kind), and the
//! proxy `/api/rs/...`. Sessions are keyed by the `__Host-bff` cookie the browser's jar sends;
//! every non-GET without `x-csrf: 1` is refused 403 as the server does. Knobs make the server
//! end a session, the provider unreachable (503) or the upstream API refuse (401 without code).

use std::collections::HashMap;
use std::rc::Rc;

use serde_json::json;
use yew_session::session::ports::{Clock, HttpRequest, HttpResponse, Method};

use super::FakeClock;

/// The session cookie's name.
pub const COOKIE: &str = "__Host-bff";
/// The provider's end-session URL the logout answers.
pub const END_SESSION_URL: &str =
    "http://127.0.0.1:9/session/end?client_id=yew-session-bff&post_logout_redirect_uri=x";
/// The password `POST /api/bff/signin` accepts.
pub const PASSWORD: &str = "right-password";

struct Session {
    sub: String,
    created_at: f64,
    refresh_count: u64,
}

/// The fake server.
pub struct FakeBff {
    clock: Rc<FakeClock>,
    sessions: HashMap<String, Session>,
    next_id: u32,
    /// `"password"`: the 401 `bff_no_session` says `"login": "password"`.
    pub login_kind: Option<&'static str>,
    /// The provider cannot be reached: session reads and proxied calls answer 503.
    pub unavailable: bool,
    /// The upstream API refuses every call (401 without a BFF code: the server's retry failed).
    pub upstream_401: bool,
    /// `GET /api/bff/session` requests.
    pub session_reads: u32,
    /// Proxied calls that reached the server.
    pub proxied: u32,
    /// Logout requests, with their query.
    pub logouts: Vec<String>,
    /// Requests refused for a missing CSRF header.
    pub csrf_refused: u32,
}

fn answer(status: u16, body: serde_json::Value) -> HttpResponse {
    HttpResponse {
        status,
        headers: vec![("content-type".into(), "application/json".into())],
        body: body.to_string(),
    }
}

fn refusal(status: u16, code: &str) -> HttpResponse {
    answer(status, json!({ "message": code, "code": code }))
}

impl FakeBff {
    pub fn new(clock: Rc<FakeClock>) -> Self {
        FakeBff {
            clock,
            sessions: HashMap::new(),
            next_id: 0,
            login_kind: None,
            unavailable: false,
            upstream_401: false,
            session_reads: 0,
            proxied: 0,
            logouts: Vec::new(),
            csrf_refused: 0,
        }
    }

    /// A session for `sub` (what the sign-in's callback stores); returns the `Set-Cookie`.
    pub fn start_session(&mut self, sub: &str) -> String {
        self.next_id += 1;
        let id = format!("bff-session-id-{}-{sub}", self.next_id);
        self.sessions.insert(
            id.clone(),
            Session {
                sub: sub.into(),
                created_at: self.clock.now_ms(),
                refresh_count: 0,
            },
        );
        format!("{COOKIE}={id}; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age=3600")
    }

    /// Ends every session at the server (an administrator, a refusal at the provider).
    pub fn end_all(&mut self) {
        self.sessions.clear();
    }

    /// Every session id ever handed out is still a secret the browser must not show scripts.
    pub fn live_sessions(&self) -> usize {
        self.sessions.len()
    }

    fn session_json(&self, s: &Session) -> serde_json::Value {
        let now = self.clock.now_ms();
        json!({
            "user": { "sub": s.sub, "name": s.sub, "email": null, "roles": ["ROLE_USER"] },
            "createdAt": s.created_at,
            "expiresAt": s.created_at + 3_600_000.0,
            "accessTokenExpiresAt": now + 5_000.0,
            "lastRefreshedAt": null,
            "refreshCount": s.refresh_count,
        })
    }

    fn no_session(&self) -> HttpResponse {
        let mut body = json!({ "message": "Not signed in.", "code": "bff_no_session" });
        if let Some(kind) = self.login_kind {
            body["login"] = json!(kind);
        }
        answer(401, body)
    }

    fn ended() -> HttpResponse {
        let mut r = refusal(401, "bff_session_ended");
        r.headers
            .push(("set-cookie".into(), format!("{COOKIE}=; Path=/; Max-Age=0")));
        r
    }

    /// Handles `req` from the browser whose jar sent `cookie`.
    pub fn handle(&mut self, req: &HttpRequest, cookie: Option<&str>) -> HttpResponse {
        let (path, query) = req.url.split_once('?').unwrap_or((&req.url, ""));
        if req.method != Method::Get && req.header("x-csrf") != Some("1") {
            self.csrf_refused += 1;
            return refusal(403, "bff_csrf");
        }
        let session = cookie.and_then(|c| self.sessions.get(c).map(|s| (c.to_owned(), s)));
        match (req.method, path) {
            (Method::Get, "/api/bff/session") => {
                self.session_reads += 1;
                if self.unavailable {
                    return refusal(503, "bff_upstream_unavailable");
                }
                match (cookie, session) {
                    (None, _) => self.no_session(),
                    (Some(_), None) => Self::ended(),
                    (Some(_), Some((_, s))) => answer(200, self.session_json(s)),
                }
            }
            (Method::Post, "/api/bff/logout") => {
                self.logouts.push(query.to_owned());
                let mut ended = 0;
                if let Some((id, s)) = session {
                    let sub = s.sub.clone();
                    let before = self.sessions.len();
                    if query.contains("everywhere=1") {
                        self.sessions.retain(|_, s| s.sub != sub);
                    } else {
                        self.sessions.remove(&id);
                    }
                    ended = before - self.sessions.len();
                }
                let mut r = answer(
                    200,
                    json!({ "ended": ended, "endSessionUrl": END_SESSION_URL }),
                );
                r.headers
                    .push(("set-cookie".into(), format!("{COOKIE}=; Path=/; Max-Age=0")));
                r
            }
            (Method::Post, "/api/bff/signin") => {
                let body: serde_json::Value =
                    serde_json::from_str(req.body.as_deref().unwrap_or("")).unwrap_or_default();
                if self.unavailable {
                    return refusal(503, "bff_upstream_unavailable");
                }
                if body["password"] != PASSWORD {
                    return answer(
                        401,
                        json!({ "code": "bff_bad_credentials", "message": "Wrong username or password." }),
                    );
                }
                let sub = body["username"].as_str().unwrap_or("?").to_owned();
                let set_cookie = self.start_session(&sub);
                let s =
                    &self.sessions[&set_cookie[COOKIE.len() + 1..set_cookie.find(';').unwrap()]];
                let mut r = answer(200, self.session_json(s));
                r.headers.push(("set-cookie".into(), set_cookie));
                r
            }
            (_, p) if p.starts_with("/api/rs/") => {
                self.proxied += 1;
                match (cookie, session) {
                    (None, _) => self.no_session(),
                    (Some(_), None) => Self::ended(),
                    _ if self.unavailable => refusal(503, "bff_upstream_unavailable"),
                    _ if self.upstream_401 => answer(401, json!({ "message": "Unauthorized!" })),
                    _ => HttpResponse {
                        status: 200,
                        headers: Vec::new(),
                        body: "User Content.".into(),
                    },
                }
            }
            _ => refusal(404, "not_found"),
        }
    }
}
