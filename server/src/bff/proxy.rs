//! `/api/PREFIX/...` -> `--upstream-api PREFIX=URL`, with the session's upstream access token,
//! and the refresh that keeps it valid — single-flight per session:
//!
//! 1. In this process, one tokio mutex per session ([`Bff::flight`]): concurrent requests of one
//!    session queue behind one refresh.
//! 2. Across instances on PostgreSQL, the session row is read `FOR UPDATE` in the transaction
//!    that calls the provider and writes the new tokens: a second instance waits for the row,
//!    then sees a `version` other than the one it found stale, and uses the tokens already
//!    stored instead of presenting the (now rotated) refresh token again.
//! 3. On SQLite (one process) the row is read without holding a transaction over the network
//!    call (a WAL read snapshot upgraded to a write after another commit fails at once), and the
//!    write is a compare-and-set on `version`.
//!
//! A refresh is started when the access token is due (expiry minus a quarter of its lifetime, at
//! most 30 s) and on an upstream 401 — once per request, followed by one retry. `invalid_grant`
//! ends the session (401 `bff_session_ended`, row deleted, cookie cleared); a provider that
//! cannot be reached gives 503 with Retry-After and the session is kept.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::header::{self, RETRY_AFTER};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::Response;

use super::store::{spawn, SessionRow, Tokens};
use super::upstream::TokenError;
use super::{
    codes, cookie_value, csrf_ok, csrf_refusal, current_session, refusal, session_ended, Bff,
};
use crate::db::Backend;
use crate::state::AppState;

/// The most a proxied answer may carry (it is read whole before it is passed on).
pub const MAX_RESPONSE_BYTES: usize = 8 * 1024 * 1024;

/// What a refresh gave.
#[derive(Debug)]
pub enum Refreshed {
    /// Tokens to use: ours, or another request's / instance's that refreshed first.
    Fresh(Box<SessionRow>),
    /// The provider refused the refresh token (or the session is gone): the session is over.
    Ended,
    /// Try again later (provider or database unavailable); the session is kept.
    Unavailable(String),
}

/// Headers never passed on in either direction (RFC 9110 7.6.1 hop-by-hop, plus what this hop
/// owns: the browser's cookies and credentials, the CSRF header, the host and the length).
const DROPPED: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
    "cookie",
    "set-cookie",
    "authorization",
    "x-access-token",
    super::CSRF_HEADER,
];

fn copy_headers(from: &HeaderMap, to: &mut HeaderMap) {
    // Headers the Connection header names are hop-by-hop too.
    let named: Vec<String> = from
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_ascii_lowercase())
        .collect();
    for (name, value) in from {
        let n = name.as_str();
        if DROPPED.contains(&n) || named.iter().any(|x| x == n) {
            continue;
        }
        to.append(name.clone(), value.clone());
    }
}

impl Bff {
    /// The destination of `path` (raw, as received) under allowlist entry `api`, or why not.
    /// Refused: anything that is not plainly a path below the base (dot segments, encoded
    /// slashes, backslashes or dots, `//`, `@`, control characters).
    pub fn destination(
        &self,
        api: usize,
        path: &str,
        query: Option<&str>,
    ) -> Result<url::Url, &'static str> {
        let api = &self.upstream().config().apis[api];
        let rest = path
            .strip_prefix(&format!("/api/{}/", api.prefix))
            .ok_or("not under the prefix")?;
        let lower = rest.to_ascii_lowercase();
        if rest.is_empty()
            || rest.starts_with('/')
            || rest.contains("//")
            || rest.contains('\\')
            || rest.contains('@')
            || ["%2e", "%2f", "%5c", "%40", "%00"]
                .iter()
                .any(|e| lower.contains(e))
            || rest.split('/').any(|seg| seg == "." || seg == "..")
            || rest.bytes().any(|b| b.is_ascii_control() || b == b' ')
        {
            return Err("path refused");
        }
        let base = api.base.as_str().trim_end_matches('/');
        let mut s = format!("{base}/{rest}");
        if let Some(q) = query {
            s.push('?');
            s.push_str(q);
        }
        let u = url::Url::parse(&s).map_err(|_| "not a URL")?;
        let base_path = api.base.path().trim_end_matches('/');
        if u.origin() != api.base.origin()
            || !u.username().is_empty()
            || u.password().is_some()
            || !u.path().starts_with(&format!("{base_path}/"))
        {
            return Err("outside the base");
        }
        Ok(u)
    }

    /// Fresh tokens for the session `id_hash`, which the caller found at `seen` (its `version`):
    /// one refresh at the provider however many requests and instances ask at once.
    pub async fn refresh(self: &Arc<Self>, id_hash: &str, seen: i64, now: i64) -> Refreshed {
        let me = self.clone();
        let id = id_hash.to_owned();
        // The whole refresh runs in a task: a request dropped while it waits (client gone,
        // timeout) never cuts a refresh between the provider's answer and the write.
        let task = tokio::spawn(async move {
            let flight = me.flight(&id);
            let _one = flight.lock().await;
            match me.store().backend() {
                Backend::Postgres => me.refresh_locked_pg(&id, seen, now).await,
                Backend::Sqlite => me.refresh_sqlite(&id, seen, now).await,
            }
        });
        match task.await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => Refreshed::Unavailable(format!("database: {e}")),
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => Refreshed::Unavailable(format!("refresh task: {e}")),
        }
    }

    /// Calls the provider with the row's refresh token; the new tokens (not yet stored).
    async fn call_provider(&self, s: &SessionRow, now: i64) -> Result<(Tokens, i64), Refreshed> {
        let Some(rt) = s.tokens.refresh_token.as_deref() else {
            return Err(Refreshed::Ended);
        };
        match self.upstream().refresh(rt).await {
            Ok(a) => {
                // A new ID token must be about the same user (OpenID Connect Core 12.2).
                let id_token = match a.id_token {
                    Some(t) => match self
                        .upstream()
                        .oidc()
                        .ok_or_else(|| "an ID token from a backend that has none".to_owned())
                        .and_then(|o| o.check_id_token(&t, None, now))
                    {
                        Ok(c) if c.user.sub == s.user.sub => Some(t),
                        Ok(_) => {
                            tracing::warn!("bff refresh: the new ID token is about another user");
                            return Err(Refreshed::Ended);
                        }
                        Err(why) => {
                            tracing::warn!(why, "bff refresh: new ID token ignored");
                            s.tokens.id_token.clone()
                        }
                    },
                    None => s.tokens.id_token.clone(),
                };
                let lifetime_ms = a.expires_in.unwrap_or(60).max(0) * 1000;
                Ok((
                    Tokens {
                        access_token: a.access_token,
                        // A provider that does not rotate sends none: keep the one we have.
                        refresh_token: a.refresh_token.or_else(|| s.tokens.refresh_token.clone()),
                        id_token,
                    },
                    now + lifetime_ms,
                ))
            }
            Err(TokenError::Refused(e)) => {
                tracing::info!(error = %e, sub = %s.user.sub, "bff refresh refused: session ends");
                Err(Refreshed::Ended)
            }
            Err(e) => {
                tracing::warn!(error = %e, "bff refresh failed; session kept");
                Err(Refreshed::Unavailable(e.to_string()))
            }
        }
    }

    fn refreshed_row(s: SessionRow, tokens: Tokens, expires_at: i64, now: i64) -> SessionRow {
        SessionRow {
            tokens,
            version: s.version + 1,
            access_expires_at: expires_at,
            access_issued_at: now,
            refreshed_at: Some(now),
            refresh_count: s.refresh_count + 1,
            ..s
        }
    }

    const UPDATE: &'static str = "UPDATE bff_sessions SET sealed = $1, version = version + 1, \
         access_expires_at = $2, access_issued_at = $3, refreshed_at = $3, \
         refresh_count = refresh_count + 1 WHERE id_hash = $4 AND version = $5";

    async fn refresh_locked_pg(
        &self,
        id: &str,
        seen: i64,
        now: i64,
    ) -> Result<Refreshed, sqlx::Error> {
        let mut tx = self.store().db().pool().begin().await?;
        let row = sqlx::query(
            "SELECT id_hash, sub, claims, sealed, version, access_expires_at, access_issued_at, \
             created_at, refreshed_at, refresh_count, expires_at FROM bff_sessions \
             WHERE id_hash = $1 FOR UPDATE",
        )
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            tx.commit().await?;
            return Ok(Refreshed::Ended);
        };
        let s = self.store().open_row(&row)?;
        if s.version != seen {
            tx.commit().await?;
            return Ok(Refreshed::Fresh(Box::new(s)));
        }
        match self.call_provider(&s, now).await {
            Ok((tokens, expires_at)) => {
                let sealed = self.store().seal_tokens(id, &tokens);
                sqlx::query(Self::UPDATE)
                    .bind(sealed)
                    .bind(expires_at)
                    .bind(now)
                    .bind(id)
                    .bind(seen)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(Refreshed::Fresh(Box::new(Self::refreshed_row(
                    s, tokens, expires_at, now,
                ))))
            }
            Err(Refreshed::Ended) => {
                sqlx::query("DELETE FROM bff_sessions WHERE id_hash = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(Refreshed::Ended)
            }
            Err(other) => {
                tx.rollback().await?;
                Ok(other)
            }
        }
    }

    async fn refresh_sqlite(
        &self,
        id: &str,
        seen: i64,
        now: i64,
    ) -> Result<Refreshed, sqlx::Error> {
        let Some(s) = self.store().session(id, now).await? else {
            return Ok(Refreshed::Ended);
        };
        if s.version != seen {
            return Ok(Refreshed::Fresh(Box::new(s)));
        }
        match self.call_provider(&s, now).await {
            Ok((tokens, expires_at)) => {
                let sealed = self.store().seal_tokens(id, &tokens);
                let (pool, key) = (self.store().db().pool().clone(), id.to_owned());
                let n = spawn(async move {
                    let r = sqlx::query(Self::UPDATE)
                        .bind(sealed)
                        .bind(expires_at)
                        .bind(now)
                        .bind(key)
                        .bind(seen)
                        .execute(&pool)
                        .await?;
                    Ok(r.rows_affected())
                })
                .await?;
                if n == 0 {
                    // Another process wrote first (outside this design's SQLite scope): ours are
                    // the newest tokens the provider issued, but the row says otherwise; read it.
                    tracing::warn!("bff refresh: the session row changed under a refresh");
                    return Ok(match self.store().session(id, now).await? {
                        Some(s) => Refreshed::Fresh(Box::new(s)),
                        None => Refreshed::Ended,
                    });
                }
                Ok(Refreshed::Fresh(Box::new(Self::refreshed_row(
                    s, tokens, expires_at, now,
                ))))
            }
            Err(Refreshed::Ended) => {
                self.store().delete_session(id).await?;
                Ok(Refreshed::Ended)
            }
            Err(other) => Ok(other),
        }
    }
}

/// One proxied request (see the module docs).
pub async fn handle(st: AppState, api: usize, req: Request) -> Response {
    let bff = st.bff().expect("bff routes only").clone();
    let (parts, body) = req.into_parts();
    if !csrf_ok(&parts.method, &parts.headers, &st) {
        return csrf_refusal();
    }
    let target = match bff.destination(api, parts.uri.path(), parts.uri.query()) {
        Ok(u) => u,
        Err(why) => {
            tracing::info!(
                why,
                path = parts.uri.path(),
                "bff proxy destination refused"
            );
            return refusal(
                StatusCode::BAD_REQUEST,
                "This path is not a destination of the proxy.",
                codes::BAD_DESTINATION,
            );
        }
    };
    // A public prefix's anonymous reads: no session cookie at all (a cookie naming an ended
    // session still gets its 401, so the app learns the session is over), forwarded as they
    // are, without a token.
    let anonymous = matches!(parts.method, Method::GET | Method::HEAD)
        && cookie_value(&parts.headers, super::SESSION_COOKIE).is_none();
    if anonymous && bff.upstream().config().apis[api].public {
        return match forward(&bff, &parts, &target, Bytes::new(), None).await {
            Ok(answer) => relayed(answer),
            Err(res) => res,
        };
    }
    let mut s = match current_session(&st, &parts.headers).await {
        Ok(s) => s,
        Err(res) => return res,
    };
    let body = match axum::body::to_bytes(body, st.settings().max_body).await {
        Ok(b) => b,
        Err(_) => {
            return refusal(
                StatusCode::PAYLOAD_TOO_LARGE,
                "Request body too large.",
                "bff_body_too_large",
            )
        }
    };
    let mut refreshed = false;
    if st.now_ms() >= s.refresh_due_at() {
        s = match bff.refresh(&s.id_hash, s.version, st.now_ms()).await {
            Refreshed::Fresh(s) => *s,
            other => return refresh_failed(other),
        };
        refreshed = true;
    }
    let mut answer = match forward(
        &bff,
        &parts,
        &target,
        body.clone(),
        Some(&s.tokens.access_token),
    )
    .await
    {
        Ok(a) => a,
        Err(res) => return res,
    };
    if answer.0 == StatusCode::UNAUTHORIZED && !refreshed {
        s = match bff.refresh(&s.id_hash, s.version, st.now_ms()).await {
            Refreshed::Fresh(s) => *s,
            other => return refresh_failed(other),
        };
        answer = match forward(&bff, &parts, &target, body, Some(&s.tokens.access_token)).await {
            Ok(a) => a,
            Err(res) => return res,
        };
    }
    relayed(answer)
}

/// An upstream's answer as the app gets it: status, headers (as filtered) and body untouched.
fn relayed((status, headers, bytes): (StatusCode, HeaderMap, Bytes)) -> Response {
    let mut res = Response::new(Body::from(bytes));
    *res.status_mut() = status;
    *res.headers_mut() = headers;
    res.extensions_mut().insert(crate::web::Relayed);
    res
}

fn refresh_failed(r: Refreshed) -> Response {
    match r {
        Refreshed::Ended => session_ended(),
        Refreshed::Unavailable(why) => {
            tracing::warn!(why, "bff: no fresh upstream token");
            let mut res = refusal(
                StatusCode::SERVICE_UNAVAILABLE,
                "The sign-in provider is unavailable, please retry.",
                codes::UPSTREAM_UNAVAILABLE,
            );
            res.headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from_static("2"));
            res
        }
        Refreshed::Fresh(_) => unreachable!("not a failure"),
    }
}

async fn forward(
    bff: &Bff,
    parts: &axum::http::request::Parts,
    target: &url::Url,
    body: Bytes,
    access_token: Option<&str>,
) -> Result<(StatusCode, HeaderMap, Bytes), Response> {
    let unreachable = |e: String| {
        tracing::warn!(error = %e, "bff proxy: upstream API unreachable");
        refusal(
            StatusCode::BAD_GATEWAY,
            "The API could not be reached.",
            codes::API_UNREACHABLE,
        )
    };
    let mut headers = HeaderMap::new();
    copy_headers(&parts.headers, &mut headers);
    if let Some(token) = access_token {
        let (name, value) = bff
            .upstream()
            .access_header(token)
            .map_err(|e| unreachable(e.to_string()))?;
        headers.insert(name, value);
    }
    let mut r = bff
        .upstream()
        .http()
        .request(parts.method.clone(), target.as_str())
        .headers(headers)
        .body(body)
        .send()
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    let status = r.status();
    let mut out = HeaderMap::new();
    copy_headers(r.headers(), &mut out);
    let mut bytes = Vec::new();
    while let Some(chunk) = r.chunk().await.map_err(|e| unreachable(e.to_string()))? {
        if bytes.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(unreachable("answer larger than the proxy's limit".into()));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok((status, out, Bytes::from(bytes)))
}
