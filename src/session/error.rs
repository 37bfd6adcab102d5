//! The error taxonomy. Two audiences: the UI gets a typed [`ClientError`] per call; the engine
//! classifies refresh failures as [`FailureKind`] — transient ones keep the session (backoff,
//! "degraded"), and only an explicit rejection of the refresh token ends it.

use serde::{Deserialize, Serialize};

use super::ports::{HttpResponse, TransportError};
use super::time::{parse_retry_after, parse_seconds};

/// What an API call through the interceptor can fail with.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ClientError {
    /// No response (offline, connection dropped, CORS refused).
    #[error("network error: the server could not be reached")]
    Network,
    /// No response in time.
    #[error("the request timed out")]
    Timeout,
    /// 401 that survived the single refresh-and-retry: the session has been ended.
    #[error("not authorized: please sign in again")]
    Unauthorized,
    /// 403: authenticated but not allowed (e.g. missing role).
    #[error("forbidden: {message}")]
    Forbidden {
        /// The server's message.
        message: String,
    },
    /// Another 4xx (or a 401 on sign-in, carrying "Invalid Password!").
    #[error("{message} (HTTP {status})")]
    Http {
        /// Status code.
        status: u16,
        /// The server's message or a short excerpt of its body.
        message: String,
    },
    /// 5xx.
    #[error("server error (HTTP {status})")]
    Server {
        /// Status code.
        status: u16,
    },
    /// 429; `retry_after` in seconds when the server said.
    #[error("too many requests")]
    RateLimited {
        /// Seconds to wait, from `Retry-After`.
        retry_after: Option<f64>,
    },
    /// The call needs a session and there is none (or it just ended).
    #[error("signed out")]
    SignedOut,
    /// A 2xx body that is not what was expected.
    #[error("unexpected response: {0}")]
    Decode(String),
}

impl ClientError {
    /// True for failures worth retrying later (the session is not in question).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            ClientError::Network
                | ClientError::Timeout
                | ClientError::Server { .. }
                | ClientError::RateLimited { .. }
        )
    }
}

impl From<TransportError> for ClientError {
    fn from(e: TransportError) -> Self {
        match e {
            TransportError::Network(_) => ClientError::Network,
            TransportError::Timeout => ClientError::Timeout,
        }
    }
}

/// Why a refresh did not produce a token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum FailureKind {
    /// No response.
    Network,
    /// No response in time.
    Timeout,
    /// 5xx (including the tutorial's HTML stack traces).
    Server {
        /// Status code.
        status: u16,
    },
    /// 429, with the delay the server asked for (ms).
    RateLimited {
        /// `Retry-After` in ms.
        retry_after_ms: Option<f64>,
    },
    /// 200 with a body that is not a refresh response.
    Decode,
    /// The server explicitly refused the refresh token (401/403, or an OAuth 400
    /// `invalid_grant`): the only kind that ends the session at once.
    Rejected {
        /// Status code.
        status: u16,
        /// The server's message.
        message: String,
        /// The machine-readable reason, when the server gives one (`refresh_token_reused`...).
        code: Option<String>,
    },
    /// There was no session to refresh (signed out meanwhile).
    NoSession,
}

impl FailureKind {
    /// Transient failures keep the session and are retried with backoff.
    pub fn is_transient(&self) -> bool {
        !matches!(self, FailureKind::Rejected { .. } | FailureKind::NoSession)
    }

    /// An answer that will not change by retrying the same request: an unreadable 200, or a
    /// 4xx other than 401/403 (refusals), 408 and 429 (which say "later"). Retried a few times
    /// (a proxy or a deploy can answer oddly for a moment), then it ends the session: see
    /// [`crate::session::policy::MAX_UNEXPECTED_ANSWERS`].
    pub fn is_unexpected_answer(&self) -> bool {
        match self {
            FailureKind::Decode => true,
            FailureKind::Server { status } => (400..500).contains(status) && *status != 408,
            _ => false,
        }
    }

    /// Short human description.
    pub fn describe(&self) -> String {
        match self {
            FailureKind::Network => "network error".into(),
            FailureKind::Timeout => "timeout".into(),
            FailureKind::Server { status } => format!("server error {status}"),
            FailureKind::RateLimited { retry_after_ms } => match retry_after_ms {
                Some(ms) => format!("rate limited, retry after {:.0} s", ms / 1000.0),
                None => "rate limited".into(),
            },
            FailureKind::Decode => "unreadable refresh response".into(),
            FailureKind::Rejected {
                status, message, ..
            } => {
                format!("refresh rejected ({status}): {message}")
            }
            FailureKind::NoSession => "no session".into(),
        }
    }

    /// The error an API call waiting on this refresh reports.
    pub fn to_client_error(&self) -> ClientError {
        match self {
            FailureKind::Network => ClientError::Network,
            FailureKind::Timeout => ClientError::Timeout,
            FailureKind::Server { status } => ClientError::Server { status: *status },
            FailureKind::RateLimited { retry_after_ms } => ClientError::RateLimited {
                retry_after: retry_after_ms.map(|ms| ms / 1000.0),
            },
            FailureKind::Decode => ClientError::Decode("refresh response".into()),
            FailureKind::Rejected { .. } | FailureKind::NoSession => ClientError::SignedOut,
        }
    }
}

impl From<TransportError> for FailureKind {
    fn from(e: TransportError) -> Self {
        match e {
            TransportError::Network(_) => FailureKind::Network,
            TransportError::Timeout => FailureKind::Timeout,
        }
    }
}

/// Classifies a non-2xx answer to the refresh endpoint. `server_now_ms` anchors an HTTP-date
/// `Retry-After`.
///
/// Ends the session: 401 and 403 (the tutorial's and our refusals), and 400 with the OAuth
/// `"error": "invalid_grant"`. Transient (session kept, retried with backoff): 408, 429 (after
/// its `Retry-After`) and 5xx, like no answer at all. Any other status is an unexpected answer
/// ([`FailureKind::is_unexpected_answer`]).
pub fn classify_refresh_status(resp: &HttpResponse, server_now_ms: f64) -> FailureKind {
    let rejected = || FailureKind::Rejected {
        status: resp.status,
        message: error_message(&resp.body),
        code: error_code(&resp.body),
    };
    match resp.status {
        401 | 403 => rejected(),
        400 if oauth_error(&resp.body).as_deref() == Some("invalid_grant") => rejected(),
        429 => FailureKind::RateLimited {
            retry_after_ms: resp
                .header("retry-after")
                .and_then(|v| parse_retry_after(v, server_now_ms)),
        },
        s => FailureKind::Server { status: s },
    }
}

/// The `code` of a JSON error body (ours: `refresh_token_reused`, `session_ended`, ...).
pub fn error_code(body: &str) -> Option<String> {
    json_field(body, "code")
}

/// The OAuth 2.0 `error` of a JSON error body (`invalid_grant`, ...).
fn oauth_error(body: &str) -> Option<String> {
    json_field(body, "error")
}

fn json_field(body: &str, name: &str) -> Option<String> {
    let v = serde_json::from_str::<serde_json::Value>(body).ok()?;
    v.get(name)?.as_str().map(str::to_owned)
}

/// Maps a non-2xx answer of an ordinary API call (401 is handled by the interceptor first).
pub fn map_status(resp: &HttpResponse) -> ClientError {
    match resp.status {
        401 => ClientError::Unauthorized,
        403 => ClientError::Forbidden {
            message: error_message(&resp.body),
        },
        429 => ClientError::RateLimited {
            retry_after: resp
                .header("retry-after")
                .and_then(|v| parse_seconds(v.trim())),
        },
        s if s >= 500 => ClientError::Server { status: s },
        s => ClientError::Http {
            status: s,
            message: error_message(&resp.body),
        },
    }
}

/// The `message` of a JSON error body (OAuth 2.0's: `error_description`, else `error`), else a
/// short plain-text excerpt (tags stripped: the tutorial's backend answers some errors with an
/// HTML page).
pub fn error_message(body: &str) -> String {
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(body) {
        let field = |n: &str| v.get(n).and_then(|m| m.as_str()).filter(|m| !m.is_empty());
        if let Some(m) = field("message")
            .or(field("error_description"))
            .or(field("error"))
        {
            return m.to_string();
        }
    }
    let mut text = String::with_capacity(body.len().min(256));
    let mut in_tag = false;
    for c in body.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                text.push(' ');
            }
            _ if !in_tag => text.push(c),
            _ => {}
        }
    }
    let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if collapsed.is_empty() {
        return "no details".into();
    }
    let short: String = collapsed.chars().take(160).collect();
    if short.len() < collapsed.len() {
        format!("{short}…")
    } else {
        short
    }
}
