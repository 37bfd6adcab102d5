//! Backend-for-frontend mode (issue 15, server side): session-api is a confidential client of an
//! upstream OpenID Provider and keeps that provider's tokens itself, sealed in the database; the
//! browser holds one `__Host-bff` cookie with a random session id and never a token.
//!
//! - `GET /api/bff/login?return=/path` -> the provider (code + PKCE S256 + state + nonce; the
//!   sign-in is a `bff_logins` row, bound to the browser by a short `__Host-bff-login` cookie).
//! - `GET /api/bff/callback` -> checks, code exchange (client_secret_basic), ID token checks,
//!   a `bff_sessions` row, the cookie, and a redirect back to the path; any failure redirects to
//!   `/login?bff_error=<reason>`.
//! - `GET /api/bff/session` -> the user and the session's timeline, never a token.
//! - `POST /api/bff/logout[?everywhere=1]` -> revocation at the provider, the row(s) deleted, the
//!   cookie cleared, and the provider's end-session URL for the app to navigate to.
//! - `/api/PREFIX/...` for each `--upstream-api PREFIX=URL` -> [`proxy`].
//!
//! Every state-changing request (any method but GET/HEAD/OPTIONS) needs `x-csrf: 1` (a header a
//! cross-site form cannot send and a cross-site fetch cannot send without a CORS preflight that
//! this server does not grant) and an allowed Origin (RFC 10017's custom-header rule).

pub mod config;
pub mod proxy;
pub mod store;
pub mod tutorial;
pub mod upstream;

use std::collections::HashMap;
use std::sync::{Arc, Weak};

use axum::extract::{Query, State};
use axum::http::header::{CACHE_CONTROL, COOKIE, LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use cookie::{Cookie, SameSite};
use serde::Deserialize;
use serde_json::json;

use crate::auth::extract::origin_allowed;
use crate::db::Db;
use crate::error::CROSS_SITE;
use crate::keys::random_id;
use crate::state::AppState;

pub use config::BffConfig;
use store::{hash_id, SessionRow, Store, Tokens};
use upstream::Upstream;

/// The session cookie: a random id (256 bits); the server stores only its hash.
pub const SESSION_COOKIE: &str = "__Host-bff";
/// The sign-in binding cookie (SameSite=Lax: it must come back on the provider's redirect).
pub const LOGIN_COOKIE: &str = "__Host-bff-login";
/// The custom header every state-changing BFF request carries (value [`CSRF_VALUE`]).
pub const CSRF_HEADER: &str = "x-csrf";
/// Its value.
pub const CSRF_VALUE: &str = "1";
/// A sign-in must come back within this long (ms).
pub const LOGIN_TTL_MS: i64 = 10 * 60 * 1000;

/// Codes of the BFF's JSON refusals (`{"message": ..., "code": ...}`).
pub mod codes {
    /// No session cookie.
    pub const NO_SESSION: &str = "bff_no_session";
    /// The cookie names no live session (ended, expired, refresh refused): sign in again.
    pub const SESSION_ENDED: &str = "bff_session_ended";
    /// A state-changing request without `x-csrf: 1` or from another origin.
    pub const CSRF: &str = "bff_csrf";
    /// The provider could not be reached for a refresh: retry (503 with Retry-After).
    pub const UPSTREAM_UNAVAILABLE: &str = "bff_upstream_unavailable";
    /// The proxied API could not be reached.
    pub const API_UNREACHABLE: &str = "bff_api_unreachable";
    /// The path is not a destination of the allowlist.
    pub const BAD_DESTINATION: &str = "bff_bad_destination";
}

/// The BFF: the discovered provider, the token store and the in-process single flights.
pub struct Bff {
    upstream: Upstream,
    store: Store,
    /// One mutex per session being refreshed in this process (weak: gone when unused).
    flights: std::sync::Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>,
}

impl std::fmt::Debug for Bff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bff")
            .field("login", &self.upstream.login_kind())
            .finish_non_exhaustive()
    }
}

impl Bff {
    /// Discovers the provider (an error names what is wrong) and opens the store on `db`, with
    /// the sealing key derived from `secret` (the bytes of `--secret-file`).
    pub async fn start(cfg: BffConfig, secret: &[u8], db: Db) -> Result<Arc<Bff>, String> {
        let upstream = Upstream::discover(cfg).await?;
        let bff = Arc::new(Bff {
            upstream,
            store: Store::new(db, store::Sealer::new(secret)),
            flights: Default::default(),
        });
        // Hourly, expired rows go (an expired session is also deleted when its cookie comes
        // back). The task ends with the last handle on this Bff.
        let weak = Arc::downgrade(&bff);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
            loop {
                tick.tick().await;
                let Some(bff) = weak.upgrade() else { return };
                let now = crate::clock::Clock::now_ms(&crate::clock::SystemClock);
                match bff.store.purge_expired(now).await {
                    Ok((0, 0)) => {}
                    Ok((s, l)) => {
                        tracing::info!(sessions = s, logins = l, "purged expired bff rows")
                    }
                    Err(e) => tracing::warn!(error = %e, "purge of bff rows failed"),
                }
            }
        });
        Ok(bff)
    }

    /// The provider.
    pub fn upstream(&self) -> &Upstream {
        &self.upstream
    }

    /// The token store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The in-process single-flight mutex of one session.
    fn flight(&self, id_hash: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = self.flights.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(m) = map.get(id_hash).and_then(Weak::upgrade) {
            return m;
        }
        map.retain(|_, w| w.strong_count() > 0);
        let m = Arc::new(tokio::sync::Mutex::new(()));
        map.insert(id_hash.to_owned(), Arc::downgrade(&m));
        m
    }
}

/// The BFF's routes, when the mode is configured (else none).
pub fn router(state: &AppState) -> Router<AppState> {
    let Some(bff) = state.bff() else {
        return Router::new();
    };
    let mut r = Router::new()
        .route("/api/bff/login", get(login))
        .route("/api/bff/callback", get(callback))
        .route("/api/bff/session", get(session))
        .route("/api/bff/signin", post(signin))
        .route("/api/bff/logout", post(logout));
    for (i, api) in bff.upstream.config().apis.iter().enumerate() {
        r = r.route(
            &format!("/api/{}/{{*rest}}", api.prefix),
            any(move |State(st): State<AppState>, req| proxy::handle(st, i, req)),
        );
    }
    r
}

// ---- small helpers -----------------------------------------------------------------------------

/// The value of the one cookie `name` (none when absent or sent more than once: something
/// injected one, so trust neither).
pub fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    let found: Vec<String> = headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .filter(|c| c.name() == name)
        .map(|c| c.value().to_owned())
        .collect();
    match found.as_slice() {
        [one] if !one.is_empty() && one.len() <= 128 => Some(one.clone()),
        _ => None,
    }
}

/// `Set-Cookie` of a `__Host-` cookie: HttpOnly, Secure, Path=/, no Domain. Like the cookie
/// mode's refresh cookie, Secure is set on http://127.0.0.1 too (browsers treat loopback as a
/// secure context and keep it).
pub fn host_cookie(name: &str, value: &str, same_site: SameSite, max_age_s: Option<i64>) -> String {
    let mut c = Cookie::build((name, value))
        .path("/")
        .http_only(true)
        .secure(true)
        .same_site(same_site);
    if let Some(s) = max_age_s {
        c = c.max_age(cookie::time::Duration::seconds(s.max(0)));
    }
    c.build().to_string()
}

fn add_cookie(res: &mut Response, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        res.headers_mut().append(SET_COOKIE, v);
    }
}

fn no_store(res: &mut Response) {
    res.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// The session cookie's removal.
pub fn cleared_session_cookie() -> String {
    host_cookie(SESSION_COOKIE, "", SameSite::Strict, Some(0))
}

/// A JSON refusal with a code.
pub fn refusal(status: StatusCode, message: &str, code: &str) -> Response {
    let mut res = (status, Json(json!({ "message": message, "code": code }))).into_response();
    no_store(&mut res);
    res
}

/// The session has ended: 401 with the code, and the cookie cleared.
pub fn session_ended() -> Response {
    let mut res = refusal(
        StatusCode::UNAUTHORIZED,
        "The session has ended: sign in again.",
        codes::SESSION_ENDED,
    );
    add_cookie(&mut res, &cleared_session_cookie());
    res
}

/// Whether a request may change state: safe methods always; others only with `x-csrf: 1` and
/// an allowed Origin (absent Origin passes, as for the cookie mode: only browsers send one, and
/// a browser always sends one on a cross-origin request).
pub fn csrf_ok(method: &Method, headers: &HeaderMap, st: &AppState) -> bool {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return true;
    }
    let header_ok = {
        let mut v = headers.get_all(CSRF_HEADER).iter();
        matches!((v.next(), v.next()), (Some(x), None) if x.as_bytes() == CSRF_VALUE.as_bytes())
    };
    header_ok && origin_allowed(headers, st.settings())
}

fn csrf_refusal() -> Response {
    refusal(StatusCode::FORBIDDEN, CROSS_SITE, codes::CSRF)
}

/// A same-origin path to return to after sign-in: starts with one `/`, no backslash, no
/// control character or space, no scheme or authority however spelled; at most 1024 bytes.
pub fn safe_return_path(p: &str) -> Option<&str> {
    let bytes = p.as_bytes();
    let ok = p.len() <= 1024
        && bytes.first() == Some(&b'/')
        && bytes.get(1) != Some(&b'/')
        && !p.contains('\\')
        && !bytes.iter().any(|b| b.is_ascii_control() || *b == b' ')
        && !p.to_ascii_lowercase().contains("%2f%2f")
        && !p.to_ascii_lowercase().starts_with("/%2f")
        && !p.to_ascii_lowercase().starts_with("/%5c");
    if !ok {
        return None;
    }
    // Resolved against any origin, it stays on that origin.
    let base = url::Url::parse("https://bff.invalid/").expect("static");
    let u = base.join(p).ok()?;
    (u.origin() == base.origin()).then_some(p)
}

fn redirect(to: &str) -> Response {
    let mut res = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        res.headers_mut().insert(LOCATION, v);
    }
    no_store(&mut res);
    res
}

/// The app's page for a failed sign-in: `/login?bff_error=<reason>`, the binding cookie gone.
fn login_failed(reason: &str) -> Response {
    tracing::info!(reason, "bff sign-in failed");
    let mut res = redirect(&format!("/login?bff_error={reason}"));
    add_cookie(
        &mut res,
        &host_cookie(LOGIN_COOKIE, "", SameSite::Lax, Some(0)),
    );
    res
}

// ---- handlers ----------------------------------------------------------------------------------

#[derive(Deserialize)]
struct LoginQuery {
    #[serde(rename = "return")]
    return_to: Option<String>,
}

/// The refusal of a route that belongs to the other kind of upstream.
fn other_login_kind(bff: &Bff) -> Response {
    let (message, code) = match bff.upstream.login_kind() {
        "password" => (
            "This server signs in with a password: POST /api/bff/signin.",
            "bff_password_login",
        ),
        _ => (
            "This server signs in at its OpenID Provider: GET /api/bff/login.",
            "bff_redirect_login",
        ),
    };
    refusal(StatusCode::NOT_FOUND, message, code)
}

async fn login(State(st): State<AppState>, Query(q): Query<LoginQuery>) -> Response {
    let bff = st.bff().expect("route exists only with bff");
    let Some(oidc) = bff.upstream.oidc() else {
        return other_login_kind(bff);
    };
    let return_to = match q.return_to.as_deref() {
        None | Some("") => "/",
        Some(p) => match safe_return_path(p) {
            Some(p) => p,
            None => {
                return refusal(
                    StatusCode::BAD_REQUEST,
                    "return must be a path on this site, like /profile",
                    "bff_bad_return",
                )
            }
        },
    };
    let (state, binding, verifier, nonce) =
        (random_id(32), random_id(32), random_id(32), random_id(32));
    let now = st.now_ms();
    if let Err(e) = bff
        .store
        .put_login(store::NewLogin {
            state_hash: &hash_id(&state),
            binding_hash: &hash_id(&binding),
            code_verifier: &verifier,
            nonce: &nonce,
            return_to,
            now,
            expires_at: now + LOGIN_TTL_MS,
        })
        .await
    {
        return crate::ApiError::from(e).into_response();
    }
    let mut res = redirect(&oidc.authorization_url(&state, &nonce, &verifier));
    add_cookie(
        &mut res,
        &host_cookie(
            LOGIN_COOKIE,
            &binding,
            SameSite::Lax,
            Some(LOGIN_TTL_MS / 1000),
        ),
    );
    res
}

#[derive(Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    iss: Option<String>,
    error: Option<String>,
}

async fn callback(
    State(st): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<CallbackQuery>,
) -> Response {
    let bff = st.bff().expect("route exists only with bff").clone();
    let Some(oidc) = bff.upstream.oidc() else {
        return other_login_kind(&bff);
    };
    let now = st.now_ms();
    // The sign-in is taken first whatever the answer: a state is good for one callback.
    let login = match &q.state {
        Some(s) if !s.is_empty() && s.len() <= 128 => match bff.store.take_login(&hash_id(s)).await
        {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "bff sign-in lookup failed");
                return login_failed("unavailable");
            }
        },
        _ => None,
    };
    if let Some(err) = &q.error {
        let safe = !err.is_empty()
            && err.len() <= 40
            && err.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
        return login_failed(if safe { err } else { "provider_error" });
    }
    let Some(login) = login else {
        return login_failed(if q.state.is_none() {
            "state_missing"
        } else {
            "login_unknown"
        });
    };
    let bound =
        cookie_value(&headers, LOGIN_COOKIE).is_some_and(|b| hash_id(&b) == login.binding_hash);
    if !bound {
        return login_failed("login_other_browser");
    }
    if login.expires_at <= now {
        return login_failed("login_expired");
    }
    let issuer = &oidc.client().issuer;
    match &q.iss {
        Some(iss) if iss != issuer => return login_failed("iss_mismatch"),
        None if oidc
            .discovery
            .authorization_response_iss_parameter_supported =>
        {
            return login_failed("iss_missing")
        }
        _ => {}
    }
    let Some(code) = q.code.as_deref().filter(|c| !c.is_empty()) else {
        return login_failed("code_missing");
    };
    let answer = match oidc.exchange_code(code, &login.code_verifier).await {
        Ok(a) => a,
        Err(upstream::TokenError::Transient(e)) => {
            tracing::warn!(error = %e, "bff code exchange: provider unavailable");
            return login_failed("provider_unavailable");
        }
        Err(e) => {
            tracing::warn!(error = %e, "bff code exchange refused");
            return login_failed("token_exchange_failed");
        }
    };
    let Some(id_token) = answer.id_token.clone() else {
        return login_failed("id_token_missing");
    };
    let claims = match oidc.check_id_token(&id_token, Some(&login.nonce), now) {
        Ok(c) => c,
        Err(why) => {
            tracing::warn!(why, "bff ID token refused");
            return login_failed("id_token_invalid");
        }
    };
    let tokens = Tokens {
        access_token: answer.access_token,
        refresh_token: answer.refresh_token,
        id_token: Some(id_token),
    };
    let (id, _row) =
        match start_session(&st, &bff, &headers, claims.user, tokens, answer.expires_in).await {
            Ok(started) => started,
            Err(e) => {
                tracing::warn!(error = %e, "bff session could not be stored");
                return login_failed("unavailable");
            }
        };
    let mut res = redirect(&login.return_to);
    add_cookie(&mut res, &session_cookie(&st, &id));
    add_cookie(
        &mut res,
        &host_cookie(LOGIN_COOKIE, "", SameSite::Lax, Some(0)),
    );
    res
}

/// Stores a new session for `user` with the upstream's `tokens` (the access token good for
/// `expires_in` s; 60 when unknown), replacing the one the browser's old cookie named (a
/// browser has one BFF session). The new cookie's value and the row.
async fn start_session(
    st: &AppState,
    bff: &Bff,
    headers: &HeaderMap,
    user: store::BffUser,
    tokens: Tokens,
    expires_in: Option<i64>,
) -> Result<(String, SessionRow), sqlx::Error> {
    if let Some(old) = cookie_value(headers, SESSION_COOKIE) {
        let _ = bff.store.delete_session(&hash_id(&old)).await;
    }
    let now = st.now_ms();
    let id = random_id(32);
    let lifetime_ms = expires_in.unwrap_or(60).max(0) * 1000;
    let row = SessionRow {
        id_hash: hash_id(&id),
        user,
        tokens,
        version: 0,
        access_expires_at: now + lifetime_ms,
        access_issued_at: now,
        created_at: now,
        refreshed_at: None,
        refresh_count: 0,
        expires_at: now.saturating_add(st.settings().refresh_ttl_ms),
    };
    bff.store.create_session(&row).await?;
    tracing::info!(sub = %row.user.sub, "bff session started");
    Ok((id, row))
}

/// The session cookie for the id.
fn session_cookie(st: &AppState, id: &str) -> String {
    host_cookie(
        SESSION_COOKIE,
        id,
        SameSite::Strict,
        Some(st.settings().refresh_ttl_ms / 1000),
    )
}

#[derive(Deserialize)]
struct SignInBody {
    username: Option<String>,
    password: Option<String>,
}

/// `POST /api/bff/signin {username, password}` (a tutorial-kind upstream): the backend's sign-in,
/// made by this server; the browser gets the session cookie and the session's JSON, never a
/// token. Failed attempts count in the same throttle as session-api's own sign-in (per account
/// and per IP, shared by every instance), under the account key `bff:<username>`.
async fn signin(State(st): State<AppState>, req: axum::extract::Request) -> Response {
    let (parts, body) = req.into_parts();
    if !csrf_ok(&parts.method, &parts.headers, &st) {
        return csrf_refusal();
    }
    let bff = st.bff().expect("bff routes only").clone();
    let Some(tutorial) = bff.upstream.tutorial() else {
        return other_login_kind(&bff);
    };
    let bad_request = |m: &str| refusal(StatusCode::BAD_REQUEST, m, "bff_bad_request");
    let body = match axum::body::to_bytes(body, 16 * 1024).await {
        Ok(b) => b,
        Err(_) => return bad_request("The body must be JSON of at most 16 KiB."),
    };
    let (username, password) = match serde_json::from_slice::<SignInBody>(&body) {
        Ok(SignInBody {
            username: Some(u),
            password: Some(p),
        }) if !u.is_empty() && !p.is_empty() && u.len() <= 256 && p.len() <= 1024 => (u, p),
        _ => return bad_request("username and password are required (JSON strings)."),
    };
    let ip = crate::auth::extract::client_ip(&parts.extensions, &parts.headers, st.settings());
    let account = format!("bff:{username}");
    let now = st.now_ms();
    match st.throttle().retry_after(&account, &ip, now).await {
        Ok(None) => {}
        Ok(Some(wait)) => return crate::ApiError::TooManyRequests(wait).into_response(),
        Err(e) => return crate::ApiError::from(e).into_response(),
    }
    let (user, answer) = match tutorial.sign_in(&username, &password).await {
        Ok(ok) => ok,
        Err(tutorial::SignInError::BadCredentials) => {
            if let Err(e) = st.throttle().record_failure(&account, &ip, now).await {
                return crate::ApiError::from(e).into_response();
            }
            return refusal(
                StatusCode::UNAUTHORIZED,
                "Invalid username or password.",
                "bff_bad_credentials",
            );
        }
        Err(e @ tutorial::SignInError::Unavailable(_)) => {
            tracing::warn!(error = %e, "bff sign-in: backend unavailable");
            let mut res = refusal(
                StatusCode::SERVICE_UNAVAILABLE,
                "The sign-in service could not be reached: try again in a moment.",
                codes::UPSTREAM_UNAVAILABLE,
            );
            res.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                HeaderValue::from_static("2"),
            );
            return res;
        }
        Err(e @ tutorial::SignInError::Rejected(..)) => {
            tracing::warn!(error = %e, "bff sign-in refused by the backend");
            return refusal(
                StatusCode::BAD_GATEWAY,
                "The sign-in service refused the request.",
                "bff_signin_rejected",
            );
        }
    };
    if let Err(e) = st.throttle().record_success(&account, &ip).await {
        return crate::ApiError::from(e).into_response();
    }
    let tokens = Tokens {
        access_token: answer.access_token,
        refresh_token: answer.refresh_token,
        id_token: None,
    };
    match start_session(&st, &bff, &parts.headers, user, tokens, answer.expires_in).await {
        Ok((id, row)) => {
            let mut res = Json(session_json(&row)).into_response();
            no_store(&mut res);
            add_cookie(&mut res, &session_cookie(&st, &id));
            res
        }
        Err(e) => crate::ApiError::from(e).into_response(),
    }
}

/// What `GET /api/bff/session` (and a sign-in) answers about a session: never a token.
fn session_json(s: &SessionRow) -> serde_json::Value {
    json!({
        "user": s.user,
        "createdAt": s.created_at,
        "expiresAt": s.expires_at,
        "accessTokenExpiresAt": s.access_expires_at,
        "lastRefreshedAt": s.refreshed_at,
        "refreshCount": s.refresh_count,
    })
}

/// The session of the request's cookie: `Err` is the answer to give (no cookie, ended, 503).
pub(crate) async fn current_session(
    st: &AppState,
    headers: &HeaderMap,
) -> Result<SessionRow, Response> {
    let bff = st.bff().expect("bff routes only");
    let Some(id) = cookie_value(headers, SESSION_COOKIE) else {
        // `login` tells the app which way to sign in.
        let mut res = (
            StatusCode::UNAUTHORIZED,
            Json(json!({
                "message": "Not signed in.",
                "code": codes::NO_SESSION,
                "login": bff.upstream.login_kind(),
            })),
        )
            .into_response();
        no_store(&mut res);
        return Err(res);
    };
    match bff.store.session(&hash_id(&id), st.now_ms()).await {
        Ok(Some(s)) => Ok(s),
        Ok(None) => Err(session_ended()),
        Err(e) => Err(crate::ApiError::from(e).into_response()),
    }
}

async fn session(State(st): State<AppState>, headers: HeaderMap) -> Response {
    let s = match current_session(&st, &headers).await {
        Ok(s) => s,
        Err(res) => return res,
    };
    let mut res = Json(session_json(&s)).into_response();
    no_store(&mut res);
    res
}

#[derive(Deserialize)]
struct LogoutQuery {
    everywhere: Option<String>,
}

async fn logout(
    State(st): State<AppState>,
    method: Method,
    headers: HeaderMap,
    Query(q): Query<LogoutQuery>,
) -> Response {
    if !csrf_ok(&method, &headers, &st) {
        return csrf_refusal();
    }
    let bff = st.bff().expect("bff routes only").clone();
    let everywhere = matches!(q.everywhere.as_deref(), Some("1" | "true"));
    let mut ended = 0u64;
    let mut end_session_url = None;
    if let Ok(s) = current_session(&st, &headers).await {
        let sessions = if everywhere {
            match bff.store.sessions_of(&s.user.sub).await {
                Ok(all) => all,
                Err(e) => return crate::ApiError::from(e).into_response(),
            }
        } else {
            vec![s]
        };
        for s in sessions {
            // Revoke first: a refresh token that outlives its session at the provider is a
            // credential nobody holds any more, but still a credential.
            let revoked = match &s.tokens.refresh_token {
                Some(rt) => bff.upstream.revoke(rt, "refresh_token").await,
                None => {
                    bff.upstream
                        .revoke(&s.tokens.access_token, "access_token")
                        .await
                }
            };
            match bff.store.delete_session(&s.id_hash).await {
                Ok(true) => ended += 1,
                Ok(false) => {}
                Err(e) => return crate::ApiError::from(e).into_response(),
            }
            tracing::info!(sub = %s.user.sub, revoked, "bff session ended by logout");
        }
        end_session_url = bff.upstream.end_session_url();
    }
    let mut res = Json(json!({ "ended": ended, "endSessionUrl": end_session_url })).into_response();
    no_store(&mut res);
    add_cookie(&mut res, &cleared_session_cookie());
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_paths_stay_on_this_site() {
        for ok in ["/", "/profile", "/a/b?x=1#f", "/user%20x"] {
            assert_eq!(safe_return_path(ok), Some(ok), "{ok}");
        }
        for bad in [
            "//evil.example",
            "/\\evil.example",
            "\\\\evil.example",
            "https://evil.example/",
            "evil.example",
            "/%2f%2fevil.example",
            "/%2F/evil.example",
            "/%5cevil.example",
            "javascript:alert(1)",
            "/a\nb",
            "/\tevil",
            "",
        ] {
            assert_eq!(safe_return_path(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_session_cookie_has_the_host_prefix_attributes() {
        let c = host_cookie(SESSION_COOKIE, "v", SameSite::Strict, None);
        let mut attrs: Vec<&str> = c.split(';').map(str::trim).skip(1).collect();
        attrs.sort();
        assert!(c.starts_with("__Host-bff=v;"), "{c}");
        assert_eq!(attrs, ["HttpOnly", "Path=/", "SameSite=Strict", "Secure"]);
    }
}
