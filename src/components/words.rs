//! What the UI says about the session: its states, why it ended and why a refresh failed, in
//! sentences (never Rust's `Debug` output), and what the sign-in forms say when signing in fails.
//! Plain functions, so their wording is tested on the host.

use crate::components::numbers::whole;
use crate::session::{ClientError, FailureKind, LogoutReason, SessionEvent, SessionStatus};

/// The session's status as the inspector shows it: "Restoring the session…", "Signed in",
/// "Signed out — the server ended the session", …
pub fn status_words(status: &SessionStatus, degraded: bool) -> String {
    match status {
        SessionStatus::Restoring => "Restoring the session…".into(),
        SessionStatus::SignedIn if degraded => {
            "Signed in — degraded: offline or refreshes failing, the session is kept".into()
        }
        SessionStatus::SignedIn => "Signed in".into(),
        SessionStatus::SignedOut { reason: None } => "Signed out".into(),
        SessionStatus::SignedOut {
            reason: Some(reason),
        } => format!("Signed out — {}", reason_words(reason)),
    }
}

/// Why the session ended, as the end of "Signed out — …".
pub fn reason_words(reason: &LogoutReason) -> &'static str {
    match reason {
        LogoutReason::UserAction => "you signed out",
        LogoutReason::Expired => "the session reached its end",
        LogoutReason::RefreshRejected => "the server ended the session",
        LogoutReason::ReuseDetected => {
            "the server saw a refresh token used twice and ended the session"
        }
        LogoutReason::TokenRejected => "the server refused the refreshed token",
        LogoutReason::OtherTab => "signed out in another tab",
        LogoutReason::CorruptStorage => "the stored session could not be read",
        LogoutReason::SignedOutEverywhere => "you signed out on every device",
        LogoutReason::AccountDeleted => "the account was deleted",
    }
}

/// Why a refresh failed, as the end of "Refresh failed: …".
pub fn failure_words(kind: &FailureKind) -> String {
    match kind {
        FailureKind::Network => "no answer (network)".into(),
        FailureKind::Timeout => "no answer in time (timeout)".into(),
        FailureKind::Server { status } if *status >= 500 => format!("server error (HTTP {status})"),
        FailureKind::Server { status } => format!("unexpected answer (HTTP {status})"),
        FailureKind::RateLimited {
            retry_after_ms: Some(ms),
        } => format!("rate limited, retrying in {} s", whole(ms / 1000.0)),
        FailureKind::RateLimited {
            retry_after_ms: None,
        } => "rate limited".into(),
        FailureKind::Decode => "unreadable answer".into(),
        FailureKind::Rejected {
            status, message, ..
        } if message.is_empty() => format!("refused by the server (HTTP {status})"),
        FailureKind::Rejected {
            status, message, ..
        } => format!("refused by the server (HTTP {status}): {message}"),
        FailureKind::NoSession => "there was no session to refresh".into(),
    }
}

/// A line of the inspector's event log. Failures and endings say their kind and reason in the
/// words above; the other events already read as sentences.
pub fn event_words(event: &SessionEvent) -> String {
    match event {
        SessionEvent::RefreshFailed(kind) => format!("Refresh failed: {}", failure_words(kind)),
        SessionEvent::LoggedOut { reason } => format!("Signed out — {}", reason_words(reason)),
        other => other.describe(),
    }
}

/// What the sign-in forms (the login page, the session-end notice, sign-up's errors) say for a
/// failed call.
pub fn login_error_message(e: &ClientError) -> String {
    match e {
        ClientError::Http { message, .. } | ClientError::Forbidden { message } => message.clone(),
        ClientError::RateLimited {
            retry_after: Some(s),
        } => format!("Too many attempts. Try again in {} s.", s.ceil() as u64),
        ClientError::RateLimited { retry_after: None } => {
            "Too many attempts. Try again later.".into()
        }
        ClientError::Network | ClientError::Timeout => {
            "The server could not be reached. Check your connection and try again.".into()
        }
        ClientError::Server { status } => {
            format!("The server had a problem (HTTP {status}). Try again in a moment.")
        }
        other => other.to_string(),
    }
}

/// Backend for frontend: what a failed sign-in at the server (`/login?bff_error=<reason>`, the
/// reasons of server/README "Endpoints") means, in words. Anything else is the provider's own
/// OAuth `error` (e.g. `access_denied`), named as it said it.
pub fn bff_error_words(reason: &str) -> String {
    let why = match reason {
        "login_unknown" => "This sign-in was already completed or is unknown.",
        "login_other_browser" => "This sign-in was started in another browser.",
        "login_expired" => "The sign-in took too long (more than 10 minutes).",
        "state_missing"
        | "code_missing"
        | "iss_mismatch"
        | "iss_missing"
        | "id_token_missing"
        | "id_token_invalid"
        | "token_exchange_failed" => "The sign-in provider's answer could not be used.",
        "provider_unavailable" | "unavailable" => {
            return "The sign-in could not be completed right now. Please try again in a moment."
                .into()
        }
        other => return format!("The sign-in provider did not sign you in ({other})."),
    };
    [why, " Please sign in again."].concat()
}
