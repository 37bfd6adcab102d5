//! Backend for frontend (`"backend": "bff"`): session-api signs in at the provider, holds every
//! token and refreshes them itself; the browser has only an HttpOnly session cookie. This is
//! another way to obtain and keep a session, not another engine: the engine's "refresh" here
//! is a read of the server-side session (`GET /api/bff/session`) through the same single flight,
//! cross-tab lock and adoption, classified in the same place, so a restore, a session that
//! ended on the server (one logout in every tab, with the reason) and a server that cannot be
//! reached (session kept, degraded, backoff) follow the rules the other backends follow.
//!
//! When the session is read, and why so rarely: the server refreshes the upstream token itself,
//! before a proxied call needs it, so nothing in the browser depends on the access token's
//! expiry and there is no proactive timer (`schedule::next_due`). The read happens at load (the
//! cookie is HttpOnly: only the server knows), after a proxied 401 (did the session end, or was
//! it the API's own refusal?), and on a wake trigger at most once per [`REREAD_MIN_MS`] (a
//! laptop that slept may come back to a session ended meanwhile; the inspector's timeline
//! catches up). Reading it around every access-token expiry would add one request per lifetime
//! per browser for the inspector's sake alone; a proxied call's answer already says when the
//! session is gone.

use std::rc::Rc;

use futures::FutureExt;
use serde_json::Value;

use api_types::{codes, headers, paths};

use super::super::error::{error_code, error_message, map_status, ClientError, FailureKind};
use super::super::oidc;
use super::super::policy::TokenTiming;
use super::super::ports::{HttpRequest, Method};
use super::super::time::parse_http_date;
use super::super::types::{BffSession, LogoutReason, UserInfo};
use super::logout::Tell;
use super::refresh::{family_ended, Fresh};
use super::state::{Got, Obtained};
use super::{Engine, Inner};

/// A wake trigger re-reads the server-side session only when the last read is at least this
/// old (focus and visibility come in bursts).
pub const REREAD_MIN_MS: f64 = 30_000.0;

/// How the server signs users in, from its 401 `bff_no_session` answer's `login`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginKind {
    /// The provider's own pages: `/api/bff/login` (the default; `login` absent).
    Redirect,
    /// A username/password form posted to `/api/bff/signin` (a tutorial-kind upstream).
    Password,
}

/// The login kind a 401 body states, if it is a BFF refusal.
pub fn login_kind(body: &str) -> Option<LoginKind> {
    let v: Value = serde_json::from_str(body).ok()?;
    match v.get("login").and_then(Value::as_str) {
        Some("password") => Some(LoginKind::Password),
        _ => Some(LoginKind::Redirect),
    }
}

/// Whether an answer's `code` says the BFF session is over (or there is none).
pub fn ends_session(code: Option<&str>) -> bool {
    matches!(code, Some(codes::BFF_NO_SESSION | codes::BFF_SESSION_ENDED))
}

/// Reads `GET /api/bff/session`'s answer (and `POST /api/bff/signin`'s, the same shape): the
/// user and the server-side session. Read key by key through `serde_json::Value`, like
/// config.json (no serde derive for a document read this rarely).
pub fn parse_session(body: &str) -> Result<(UserInfo, BffSession), String> {
    let v: Value = serde_json::from_str(body).map_err(|e| e.to_string())?;
    let ms = |key: &str| {
        v.get(key)
            .and_then(Value::as_f64)
            .ok_or_else(|| format!("\"{key}\" must be a number of ms"))
    };
    let u = v.get("user").ok_or("no \"user\"")?;
    let text = |key: &str| u.get(key).and_then(Value::as_str).map(str::to_owned);
    let sub = text("sub")
        .filter(|s| !s.is_empty())
        .ok_or("no user \"sub\"")?;
    let mut roles: Vec<String> = u
        .get("roles")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|r| r.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    if roles.is_empty() {
        // As with an OpenID provider that asserts no roles: every user is a user.
        roles.push(api_types::roles::USER.into());
    }
    let user = UserInfo {
        username: text("name").unwrap_or_else(|| sub.clone()),
        id: sub,
        email: text("email").unwrap_or_default(),
        roles,
    };
    let session = BffSession {
        created_at_ms: ms("createdAt")?,
        expires_at_ms: ms("expiresAt")?,
        access_token_expires_at_ms: ms("accessTokenExpiresAt")?,
        last_refreshed_at_ms: v.get("lastRefreshedAt").and_then(Value::as_f64),
        refresh_count: v.get("refreshCount").and_then(Value::as_u64).unwrap_or(0),
    };
    Ok((user, session))
}

/// The times a session read gives the timeline: the upstream access token's expiry as `exp`,
/// its issue (the last refresh, else the sign-in) as `iat`, the session's end as the family's.
/// The `Date` header anchors the server clock (same origin: always readable); without it the
/// offset is left as it was rather than guessed from `iat`, which was not stamped just now.
pub(crate) fn timing(
    s: &BffSession,
    sent_at: f64,
    received_at: f64,
    date: Option<f64>,
) -> TokenTiming {
    let server_now = date.unwrap_or(received_at);
    TokenTiming {
        sent_at_ms: sent_at,
        received_at_ms: received_at,
        date_header_ms: date,
        iat_ms: date.map(|_| s.last_refreshed_at_ms.unwrap_or(s.created_at_ms)),
        exp_ms: Some(s.access_token_expires_at_ms),
        expires_in_s: None,
        refresh_expires_in_s: Some(((s.expires_at_ms - server_now).max(0.0) / 1000.0) as u64),
    }
}

impl Inner {
    /// A request to one of session-api's BFF endpoints: same origin (not `apiBase`, which is
    /// the proxy's prefix), with the CSRF header.
    pub(super) fn bff_request(&self, method: Method, path: &str) -> HttpRequest {
        let mut req = HttpRequest::new(method, path);
        self.mark(&mut req);
        req
    }

    /// Backend for frontend: every request carries `x-csrf: 1` (the server needs it on every
    /// state-changing one; on a GET it costs nothing) and never a token (there is none).
    pub(super) fn mark(&self, req: &mut HttpRequest) {
        if self.cfg.bff() && req.header(headers::CSRF).is_none() {
            req.headers
                .push((headers::CSRF.into(), headers::CSRF_VALUE.into()));
        }
    }

    /// Notes the login kind a 401 of the server states.
    pub(super) fn note_login_kind(&self, body: &str) {
        if let Some(kind) = login_kind(body) {
            self.login_kind.set(Some(kind));
        }
    }

    /// The engine's "refresh" in this mode: the server-side session, read (never a token).
    pub(super) async fn read_bff_session(
        self: &Rc<Self>,
    ) -> Result<(Fresh, TokenTiming), FailureKind> {
        let req = self.bff_request(Method::Get, paths::BFF_SESSION);
        let sent = self.send_refresh_request(req).await?;
        let (user, session) = parse_session(&sent.resp.body).map_err(|_| FailureKind::Decode)?;
        let timing = timing(&session, sent.sent_at, sent.received_at, sent.date);
        let fresh = Fresh {
            user: Some(user),
            bff: Some(sent.resp.body),
            ..Fresh::default()
        };
        Ok((fresh, timing))
    }

    /// Ends the session at the server (`POST /api/bff/logout`, `everywhere`: every session of
    /// the user): the server revokes at the provider, deletes it and clears the cookie. The
    /// answer's `endSessionUrl` is kept for [`Engine::bff_logout`].
    pub(super) fn bff_logout_on_server(self: &Rc<Self>, everywhere: bool) {
        let path = if everywhere {
            [paths::BFF_LOGOUT, "?everywhere=1"].concat()
        } else {
            paths::BFF_LOGOUT.to_owned()
        };
        let send = self
            .ports
            .transport
            .send(self.bff_request(Method::Post, &path));
        let weak = Rc::downgrade(self);
        let fut = async move {
            let url = match send.await {
                Ok(r) if r.status == 200 => serde_json::from_str::<Value>(&r.body)
                    .ok()
                    .and_then(|v| v.get("endSessionUrl")?.as_str().map(str::to_owned)),
                _ => None,
            };
            if let Some(inner) = weak.upgrade() {
                *inner.end_session_url.borrow_mut() = url;
            }
        }
        .boxed_local()
        .shared();
        self.flight.borrow_mut().signout = Some(fut.clone());
        self.ports.spawner.spawn(Box::pin(fut));
    }
}

impl Engine {
    /// The URL that starts a sign-in at the server (`/api/bff/login?return=<path>`); the server
    /// accepts only a path of this site as `return` (no open redirect), and `return_to` comes
    /// from `route::after_login_target` anyway.
    pub fn bff_login_url(&self, return_to: &str) -> String {
        format!(
            "{}?{}",
            paths::BFF_LOGIN,
            oidc::form(&[("return", return_to)])
        )
    }

    /// How the server signs users in, as its last 401 said (`Redirect` until one did).
    pub fn bff_login_kind(&self) -> LoginKind {
        self.0.login_kind.get().unwrap_or(LoginKind::Redirect)
    }

    /// Whether a 401 of the server has said how it signs users in.
    pub fn bff_login_kind_known(&self) -> bool {
        self.0.login_kind.get().is_some()
    }

    /// Asks the server how it signs users in (one `GET /api/bff/session`, for a sign-in page
    /// shown without a 401 seen yet, e.g. after a sign-out in this tab). A 200 (a session
    /// started in another tab meanwhile) changes nothing here: that tab's broadcast signs this
    /// one in.
    pub async fn bff_probe(&self) {
        let inner = self.0.clone();
        if inner.login_kind.get().is_some() {
            return;
        }
        let req = inner.bff_request(Method::Get, paths::BFF_SESSION);
        if let Ok(resp) = inner.ports.transport.send(req).await {
            if resp.status == 401 {
                inner.note_login_kind(&resp.body);
            }
        }
        inner.changes.notify();
    }

    /// The server-side session as last read.
    pub fn bff_session(&self) -> Option<BffSession> {
        let st = self.0.st.borrow();
        let raw = st.token()?.bff.as_deref()?;
        parse_session(raw).ok().map(|(_, s)| s)
    }

    /// Password upstreams: `POST /api/bff/signin`; its 200 is the session's JSON (the server
    /// sets the cookie), and the session starts here and in every open tab. A refusal keeps
    /// the server's words; 503 says to try again.
    pub async fn bff_sign_in(&self, username: String, password: String) -> Result<(), ClientError> {
        let inner = self.0.clone();
        let body = serde_json::to_string(&api_types::SigninRequest { username, password })
            .map_err(|e| ClientError::Decode(e.to_string()))?;
        let mut req = inner.bff_request(Method::Post, paths::BFF_SIGNIN);
        req.headers
            .push(("content-type".into(), "application/json".into()));
        req.body = Some(body);
        let sent_at = inner.now();
        let resp = inner.ports.transport.send(req).await?;
        let received_at = inner.now();
        match resp.status {
            200 => {}
            503 => {
                return Err(ClientError::Http {
                    status: 503,
                    message: "The sign-in service cannot reach the provider right now. Please try again in a moment.".into(),
                })
            }
            400..=499 if resp.status != 429 => {
                return Err(ClientError::Http {
                    status: resp.status,
                    message: error_message(&resp.body),
                })
            }
            _ => return Err(map_status(&resp)),
        }
        let (user, session) = parse_session(&resp.body).map_err(ClientError::Decode)?;
        let date = resp.header("date").and_then(parse_http_date);
        let obtained = Obtained {
            access: String::new(),
            refresh: None,
            id_token: None,
            user,
            timing: timing(&session, sent_at, received_at, date),
            area: None,
            remember: true,
            got: Got::SignIn,
            bff: Some(resp.body),
        };
        inner.install_signed_in(obtained);
        Ok(())
    }

    /// Signs out here and in every tab at once, then waits for the server's answer (it revokes
    /// at the provider and ends the session, or with `everywhere` every session of the user)
    /// and returns the provider's end-session URL to send the browser to, if it has one.
    pub async fn bff_logout(&self, everywhere: bool) -> Option<String> {
        let inner = self.0.clone();
        inner.end_everywhere.set(everywhere);
        let reason = if everywhere {
            LogoutReason::SignedOutEverywhere
        } else {
            LogoutReason::UserAction
        };
        let tell = Tell {
            server: true,
            tabs: true,
        };
        inner.end(reason, tell);
        // Already signed out: `end` told nobody, and the next sign-out must not inherit this.
        inner.end_everywhere.set(false);
        let pending = inner.flight.borrow_mut().signout.take();
        if let Some(p) = pending {
            p.await;
        }
        let url = inner.end_session_url.borrow_mut().take();
        url
    }

    /// A proxied call was answered 401 (`code`: the answer's). `bff_no_session` /
    /// `bff_session_ended`: the session is over, one logout in every tab. Any other 401 is the
    /// upstream API's own answer after the server already refreshed and retried once: the
    /// session is read again (single flight), and if it still lives this is the existing rule
    /// for a retried call refused — one clean logout (and at the server, so a reload does not
    /// bring the session back) — never a retry loop. Unless a newer session read arrived since
    /// the call left (`sent_gen`), or the read failed transiently (session kept).
    pub async fn bff_refused(&self, code: Option<String>, sent_gen: u64) {
        let inner = self.0.clone();
        if ends_session(code.as_deref()) {
            let reason = match family_ended(&inner.st.borrow(), inner.now()) {
                true => LogoutReason::Expired,
                false => LogoutReason::RefreshRejected,
            };
            let tell = Tell {
                server: false,
                tabs: true,
            };
            return inner.end(reason, tell);
        }
        // Ended meanwhile (the read said so: logged out there) or transient: nothing more.
        if Inner::refresh_from(&inner, sent_gen).await.is_ok() {
            let tell = Tell {
                server: true,
                tabs: true,
            };
            inner.end(LogoutReason::TokenRejected, tell);
        }
    }

    /// A wake trigger in this mode: the session is read again when the last read is older
    /// than [`REREAD_MIN_MS`] (see the module doc).
    pub(super) fn bff_wake(&self) {
        let inner = &self.0;
        let due = {
            let st = inner.st.borrow();
            st.token()
                .filter(|t| inner.now() - t.obtained_at >= REREAD_MIN_MS)
                .map(|t| t.generation)
        };
        if let Some(base) = due {
            let inner = inner.clone();
            self.0.ports.spawner.spawn(Box::pin(async move {
                let _ = Inner::refresh_from(&inner, base).await;
            }));
        }
    }

    /// The body's `code` of a proxied answer, for [`Engine::bff_refused`].
    pub fn answer_code(body: &str) -> Option<String> {
        error_code(body)
    }
}
