//! What the interceptor (`crate::api`) asks of the engine: the token for a request (refreshing
//! first when it is due), the token to retry a 401 with, and the one logout when a retried call
//! is refused again.

use super::super::error::ClientError;
use super::super::policy;
use super::super::ports::{HttpRequest, HttpResponse, TransportError};
use super::super::types::LogoutReason;
use super::logout::Tell;
use super::state::{Phase, State};
use super::{Engine, Inner};
use crate::config::TokenHeader;

use futures::future::LocalBoxFuture;

/// How a request about to be sent at `now` gets its token.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum BeforeSend {
    /// Send with the current token (or without one when signed out).
    Ready,
    /// Refresh the token of this generation first.
    Refresh(u64),
    /// Fail now: the session is still unknown after a failed restore, or the token is due while
    /// the server asked us to wait (do not hammer it).
    Fail(ClientError),
}

/// Decides for a request at `now`; `refreshing`: a refresh is in flight in this tab (joining it
/// costs the server nothing, even while backing off).
pub(crate) fn before_send(st: &State, now: f64, refreshing: bool) -> BeforeSend {
    let failed = || {
        st.last_failure()
            .map_or(ClientError::Network, |k| k.to_client_error())
    };
    match &st.phase {
        Phase::Restoring { .. } => BeforeSend::Fail(failed()),
        Phase::SignedOut { .. } => BeforeSend::Ready,
        // The server refreshes what the proxy sends upstream; nothing is due here.
        Phase::SignedIn { .. } if st.tab.bff => BeforeSend::Ready,
        Phase::SignedIn { token, .. } => {
            let due = token
                .timeline
                .as_ref()
                .is_some_and(|tl| policy::must_refresh_before_send(tl, token.obtained_at, now));
            match due {
                false => BeforeSend::Ready,
                true if st.backing_off(now) && !refreshing => BeforeSend::Fail(failed()),
                true => BeforeSend::Refresh(token.generation),
            }
        }
    }
}

impl Engine {
    /// The token to send with a request and its generation, refreshing first when it is expired
    /// or about to be. `None` when signed out (the request goes without a token).
    pub async fn access_for_request(&self) -> Result<Option<(String, u64)>, ClientError> {
        let inner = &self.0;
        let restore = inner.flight.borrow().restore.clone();
        if let Some(r) = restore {
            r.await;
        }
        let decision = before_send(&inner.st.borrow(), inner.now(), inner.refreshing());
        match decision {
            BeforeSend::Ready => {}
            BeforeSend::Fail(e) => return Err(e),
            BeforeSend::Refresh(gen) => {
                Inner::refresh_from(inner, gen)
                    .await
                    .map_err(|k| k.to_client_error())?;
            }
        }
        Ok(inner.current())
    }

    /// After a 401 for a request sent under generation `sent_gen`: the token to retry with.
    /// A newer generation already exists -> replay with it, no refresh; otherwise join or start
    /// the single refresh.
    pub async fn token_after_401(&self, sent_gen: u64) -> Result<(String, u64), ClientError> {
        let inner = &self.0;
        match inner.current() {
            None => return Err(ClientError::SignedOut),
            Some((tok, gen)) if gen > sent_gen => return Ok((tok, gen)),
            Some(_) => {}
        }
        Inner::refresh_from(inner, sent_gen)
            .await
            .map_err(|k| k.to_client_error())?;
        inner.current().ok_or(ClientError::SignedOut)
    }

    /// The retried request got 401 again: one clean logout (unless a newer token has appeared
    /// meanwhile, in which case this call just fails).
    pub fn retried_401(&self, retried_gen: u64) {
        if self.generation() == retried_gen {
            let tell = Tell {
                server: false,
                tabs: true,
            };
            self.0.end(LogoutReason::TokenRejected, tell);
        }
    }

    /// Sends a request through the engine's transport (used by the interceptor).
    pub fn send(
        &self,
        mut req: HttpRequest,
    ) -> LocalBoxFuture<'static, Result<HttpResponse, TransportError>> {
        self.0.mark(&mut req);
        self.0.ports.transport.send(req)
    }

    /// Attaches the access token to `req` the configured way (`x-access-token` or Bearer).
    pub fn authorize(&self, req: HttpRequest, token: &str) -> HttpRequest {
        self.0.authorize(req, token)
    }
}

impl Inner {
    pub(super) fn authorize(&self, mut req: HttpRequest, token: &str) -> HttpRequest {
        if self.cfg.bff() {
            // No token in the browser: the cookie (sent by the browser) is the credential, and
            // the CSRF header goes on in `Engine::send`, signed in or not.
            return req;
        }
        match self.cfg.token_header {
            TokenHeader::XAccessToken => req
                .headers
                .push((api_types::headers::ACCESS_TOKEN.into(), token.to_string())),
            TokenHeader::Bearer => req
                .headers
                .push(("authorization".into(), format!("Bearer {token}"))),
        }
        req
    }

    /// The token in use and its generation.
    pub(super) fn current(&self) -> Option<(String, u64)> {
        self.st
            .borrow()
            .token()
            .map(|t| (t.access.clone(), t.generation))
    }
}
