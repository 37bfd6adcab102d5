//! `/api/auth/*`: sign-up, sign-in, refresh (rotation with reuse detection) and sign-out,
//! over the body transport (the tutorial's) or the HttpOnly-cookie transport.

pub mod extract;
pub mod validate;

use api_types::{
    codes, messages, paths, roles, MessageResponse, RefreshRequest, RefreshResponse, SigninRequest,
    SigninResponse, SignupRequest,
};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, PRAGMA, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};

use crate::db::{CreateUserError, NewFamily, RotateOutcome, Rotation, Transport};
use crate::error::{ApiError, CROSS_SITE};
use crate::keys::{hash_refresh_token, new_refresh_token, plausible_refresh_token, random_id};
use crate::metrics::{RefreshOutcome, SigninOutcome};
use crate::state::AppState;
use extract::{
    client_ip, device, expired_refresh_cookie, is_json, origin_allowed, refresh_cookie,
    refresh_cookies, wants_cookie, wants_session_cookie, ApiJson,
};

/// The auth routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(paths::SIGNUP, post(signup))
        .route(paths::SIGNIN, post(signin))
        .route(paths::REFRESH, post(refresh))
        .route(paths::SIGNOUT, post(signout))
}

/// How many successors a refresh may walk past to reach the family's active token.
const MAX_WALK: usize = 8;

/// Message of a failed sign-in: the same for an unknown user and a wrong password.
pub const INVALID_CREDENTIALS: &str = "Invalid username or password!";
/// Message of a successful sign-out.
pub const SIGNED_OUT: &str = "You've been signed out!";

pub(crate) fn no_store(res: &mut Response) {
    res.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res.headers_mut()
        .insert(PRAGMA, HeaderValue::from_static("no-cache"));
}

pub(crate) fn set_cookie(res: &mut Response, value: &str) -> Result<(), ApiError> {
    let v = HeaderValue::from_str(value)
        .map_err(|e| ApiError::Internal(format!("cookie header: {e}")))?;
    res.headers_mut().append(SET_COOKIE, v);
    Ok(())
}

async fn signup(
    State(st): State<AppState>,
    ApiJson(req): ApiJson<SignupRequest>,
) -> Result<Response, ApiError> {
    validate::username(&req.username).map_err(ApiError::BadRequest)?;
    validate::email(&req.email).map_err(ApiError::BadRequest)?;
    validate::password(&req.password).map_err(ApiError::BadRequest)?;
    let granted = if st.settings().open_role_signup {
        validate::requested_roles(req.roles.as_deref().unwrap_or_default())
            .map_err(ApiError::BadRequest)?
    } else {
        vec![roles::USER.to_owned()]
    };
    let hash = st.passwords().hash(req.password).await?;
    match st
        .db()
        .create_user(&req.username, &req.email, &hash, &granted, st.now_ms())
        .await
    {
        Ok(id) => {
            tracing::info!(user_id = id, "user registered");
            Ok(Json(MessageResponse::new(messages::REGISTERED)).into_response())
        }
        Err(CreateUserError::UsernameTaken) => {
            Err(ApiError::BadRequest(messages::USERNAME_TAKEN.into()))
        }
        Err(CreateUserError::EmailTaken) => Err(ApiError::BadRequest(messages::EMAIL_TAKEN.into())),
        Err(CreateUserError::Db(e)) => Err(e.into()),
    }
}

async fn signin(
    State(st): State<AppState>,
    req: Request<axum::body::Body>,
) -> Result<Response, ApiError> {
    let (parts, body) = req.into_parts();
    let ip = client_ip(&parts.extensions, &parts.headers, st.settings());
    let headers = parts.headers.clone();
    if !origin_allowed(&headers, st.settings()) {
        return Err(ApiError::Forbidden(CROSS_SITE.into()));
    }
    let ApiJson(req) =
        <ApiJson<SigninRequest> as axum::extract::FromRequest<AppState>>::from_request(
            Request::from_parts(parts, body),
            &st,
        )
        .await?;
    let now = st.now_ms();
    if let Some(wait) = st.throttle().retry_after(&req.username, &ip, now).await? {
        st.metrics().signin(SigninOutcome::Throttled);
        tracing::warn!(ip, "sign-in throttled");
        return Err(ApiError::TooManyRequests(wait));
    }
    let user = if req.username.len() <= 64 {
        st.db().user_by_username(&req.username).await?
    } else {
        None
    };
    let password_ok = req.password.chars().count() <= validate::MAX_PASSWORD;
    let password = if password_ok {
        req.password
    } else {
        String::new()
    };
    let ok = st
        .passwords()
        .verify(password, user.as_ref().map(|u| u.password_hash.clone()))
        .await?
        && password_ok;
    let user = match (ok, user) {
        (true, Some(u)) => u,
        _ => {
            st.throttle()
                .record_failure(&req.username, &ip, st.now_ms())
                .await?;
            st.metrics().signin(SigninOutcome::Invalid);
            return Err(ApiError::Unauthorized(INVALID_CREDENTIALS));
        }
    };
    st.throttle().record_success(&req.username, &ip).await?;
    let transport = if wants_cookie(&headers) {
        Transport::Cookie
    } else {
        Transport::Body
    };
    let now = st.now_ms();
    // A browser holds one refresh cookie: signing in again (the session-end notice, another
    // account) replaces the family the old cookie belongs to, which would otherwise live on,
    // orphaned, until it expired.
    if transport == Transport::Cookie {
        if let [old] = refresh_cookies(&headers).as_slice() {
            if plausible_refresh_token(old) {
                if let Some(family) = st
                    .db()
                    .revoke_family_of_token(&hash_refresh_token(old), Transport::Cookie, now)
                    .await?
                {
                    tracing::info!(family, "family replaced by a new sign-in");
                }
            }
        }
    }
    let family_id = random_id(16);
    let token = new_refresh_token();
    let expires_at = now.saturating_add(st.settings().refresh_ttl_ms);
    st.db()
        .create_family(NewFamily {
            id: family_id.clone(),
            user_id: user.id,
            transport,
            device: device(&headers),
            now,
            expires_at,
            token_hash: hash_refresh_token(&token),
        })
        .await?;
    st.metrics().signin(SigninOutcome::Ok);
    let ttl = st.settings().access_ttl_secs;
    let access = st
        .keys()
        .issue_access(user.id, &user.roles, &family_id, now, ttl);
    let refresh_expires_in = ((expires_at - now) / 1000).max(0);
    let body = SigninResponse {
        id: serde_json::json!(user.id),
        username: user.username,
        email: user.email,
        roles: user.roles,
        access_token: access,
        refresh_token: (transport == Transport::Body).then(|| token.clone()),
        token_type: Some("Bearer".into()),
        expires_in: Some(ttl as u64),
        refresh_expires_in: Some(refresh_expires_in as u64),
    };
    token_response(body, transport, &token, refresh_expires_in, &headers)
}

/// A token response (sign-in or refresh): never cached, and in cookie mode the refresh token
/// goes into the `__Host-` cookie (a browser-session cookie when the client asked for one).
fn token_response(
    body: impl serde::Serialize,
    transport: Transport,
    refresh_token: &str,
    refresh_expires_in: i64,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let mut res = Json(body).into_response();
    no_store(&mut res);
    if transport == Transport::Cookie {
        let max_age = (!wants_session_cookie(headers)).then_some(refresh_expires_in);
        set_cookie(&mut res, &refresh_cookie(refresh_token, max_age))?;
    }
    Ok(res)
}

/// Where the presented refresh token came from, after the CSRF checks.
enum Presented {
    Token(String, Transport),
    Missing,
}

/// Reads the refresh token from the cookie (cookie mode) or the JSON body, applying the
/// cross-site guards: an allowed Origin, the custom header in cookie mode, a JSON body otherwise.
fn presented_token(
    st: &AppState,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Presented, ApiError> {
    let cross_site = || {
        st.metrics().refresh(RefreshOutcome::CsrfRejected);
        ApiError::Forbidden(CROSS_SITE.into())
    };
    if !origin_allowed(headers, st.settings()) {
        return Err(cross_site());
    }
    let cookies = refresh_cookies(headers);
    if wants_cookie(headers) {
        return Ok(match cookies.as_slice() {
            [] => Presented::Missing,
            [one] => Presented::Token(one.clone(), Transport::Cookie),
            // Several refresh cookies: something injected one; use none of them.
            _ => Presented::Token(String::new(), Transport::Cookie),
        });
    }
    // Body transport: only a JSON body, which a cross-site form cannot send without a preflight.
    if !is_json(headers) {
        return Err(cross_site());
    }
    let req: RefreshRequest = serde_json::from_slice(body).map_err(|e| {
        ApiError::BadRequest(format!("Failed to parse the request body as JSON: {e}"))
    })?;
    match req.refresh_token {
        Some(t) => Ok(Presented::Token(t, Transport::Body)),
        // A cookie without the header is what a cross-site request looks like.
        None if !cookies.is_empty() => Err(cross_site()),
        None => Ok(Presented::Missing),
    }
}

async fn refresh(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    // Every refusal of a refresh is the contract's 403 with its message, plus our code.
    let refused = |st: &AppState, outcome, message, code| {
        st.metrics().refresh(outcome);
        ApiError::Refused(StatusCode::FORBIDDEN, message, code)
    };
    let required = |st: &AppState| {
        refused(
            st,
            RefreshOutcome::Invalid,
            messages::REFRESH_REQUIRED,
            codes::REFRESH_REQUIRED,
        )
    };
    let unknown = |st: &AppState| {
        refused(
            st,
            RefreshOutcome::Invalid,
            messages::REFRESH_NOT_IN_DB,
            codes::REFRESH_UNKNOWN,
        )
    };
    let (token, transport) = match presented_token(&st, &headers, &body)? {
        Presented::Token(t, tr) => (t, tr),
        Presented::Missing => return Err(required(&st)),
    };
    if token.is_empty() && transport == Transport::Body {
        return Err(required(&st));
    }
    if !plausible_refresh_token(&token) {
        return Err(unknown(&st));
    }
    let now = st.now_ms();
    let s = st.settings();
    // A token whose successor was presented moments ago (tabs racing) walks on to the family's
    // active token: each step is one atomic unit, and the successor chain is short.
    let mut presented = token;
    let mut walked = 0;
    let (rotated, successor, metric) = loop {
        let successor = st.keys().successor_of(&presented);
        let outcome = st
            .db()
            .rotate(Rotation {
                token_hash: hash_refresh_token(&presented),
                successor_hash: hash_refresh_token(&successor),
                transport,
                now,
                idle_ms: s.refresh_idle_ms,
                grace_ms: s.refresh_grace_ms,
            })
            .await?;
        match outcome {
            RotateOutcome::Rotated(r) if walked == 0 => break (r, successor, RefreshOutcome::Ok),
            RotateOutcome::Repeated(r) if walked == 0 => {
                break (r, successor, RefreshOutcome::Repeated)
            }
            RotateOutcome::Rotated(r) | RotateOutcome::Repeated(r) => {
                break (r, successor, RefreshOutcome::Grace)
            }
            RotateOutcome::Superseded if walked < MAX_WALK => {
                presented = successor;
                walked += 1;
            }
            // The family rotated more than MAX_WALK times within the grace window: a retry
            // settles it.
            RotateOutcome::Superseded => return Err(ApiError::Busy),
            RotateOutcome::Invalid => return Err(unknown(&st)),
            RotateOutcome::Expired => {
                return Err(refused(
                    &st,
                    RefreshOutcome::Expired,
                    messages::REFRESH_EXPIRED,
                    codes::REFRESH_EXPIRED,
                ))
            }
            RotateOutcome::Ended { reason } => {
                let code = if reason == "reuse_detected" {
                    codes::REFRESH_REUSED
                } else {
                    codes::SESSION_ENDED
                };
                return Err(refused(
                    &st,
                    RefreshOutcome::Invalid,
                    messages::REFRESH_NOT_IN_DB,
                    code,
                ));
            }
            RotateOutcome::ReuseDetected { family_id, user_id } => {
                tracing::warn!(
                    user_id,
                    family_id,
                    "refresh-token reuse detected: family revoked"
                );
                return Err(refused(
                    &st,
                    RefreshOutcome::ReuseDetected,
                    messages::REFRESH_NOT_IN_DB,
                    codes::REFRESH_REUSED,
                ));
            }
        }
    };
    st.metrics().refresh(metric);
    let ttl = s.access_ttl_secs;
    let access = st.keys().issue_access(
        rotated.user_id,
        &rotated.roles,
        &rotated.family_id,
        now,
        ttl,
    );
    let refresh_expires_in = ((rotated.expires_at - now) / 1000).max(0);
    let body = RefreshResponse {
        access_token: access,
        refresh_token: (transport == Transport::Body).then(|| successor.clone()),
        token_type: Some("Bearer".into()),
        expires_in: Some(ttl as u64),
        refresh_expires_in: Some(refresh_expires_in as u64),
    };
    token_response(body, transport, &successor, refresh_expires_in, &headers)
}

async fn signout(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (token, transport) = match presented_token(&st, &headers, &body)? {
        Presented::Token(t, tr) => (t, tr),
        Presented::Missing => return Err(ApiError::Forbidden(messages::REFRESH_REQUIRED.into())),
    };
    if plausible_refresh_token(&token) {
        if let Some(family) = st
            .db()
            .revoke_family_of_token(&hash_refresh_token(&token), transport, st.now_ms())
            .await?
        {
            tracing::info!(family, "signed out");
        }
    }
    // Unknown tokens get the same answer: sign-out is idempotent and reveals nothing.
    let mut res = Json(MessageResponse::new(SIGNED_OUT)).into_response();
    no_store(&mut res);
    set_cookie(&mut res, &expired_refresh_cookie())?;
    Ok(res)
}
