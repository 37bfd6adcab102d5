//! The session's public value types: what the UI reads.

use serde::{Deserialize, Serialize};

/// Why the session ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LogoutReason {
    /// The user pressed "log out".
    UserAction,
    /// The refresh-token family reached its end (or the server said the refresh token expired).
    Expired,
    /// The server refused the refresh token.
    RefreshRejected,
    /// The server saw a rotated refresh token presented again and revoked the family.
    ReuseDetected,
    /// A freshly refreshed access token was refused again (the retried call got 401).
    TokenRejected,
    /// Another tab of the app ended the session (see the engine's message for its reason).
    OtherTab,
    /// The stored session could not be read (hand-edited or corrupt storage).
    CorruptStorage,
    /// The user signed out on every device, this one included (the server ended every session).
    SignedOutEverywhere,
    /// The user deleted their account (the server ended every session with it).
    AccountDeleted,
}

impl LogoutReason {
    /// A sentence for the UI.
    pub fn describe(&self) -> &'static str {
        match self {
            LogoutReason::UserAction => "You signed out.",
            LogoutReason::Expired => "Your session expired. Please sign in again.",
            LogoutReason::RefreshRejected => "The server ended your session. Please sign in again.",
            LogoutReason::ReuseDetected => {
                "This session was used from somewhere else and was ended to protect your account. Please sign in again."
            }
            LogoutReason::TokenRejected => {
                "The server refused your credentials. Please sign in again."
            }
            LogoutReason::OtherTab => "You were signed out in another tab.",
            LogoutReason::CorruptStorage => {
                "The saved session could not be read, so you were signed out. Please sign in again."
            }
            LogoutReason::SignedOutEverywhere => "You signed out on every device.",
            LogoutReason::AccountDeleted => "Your account was deleted.",
        }
    }
}

/// Where the session stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionStatus {
    /// Page just loaded: the engine does not know yet (silent refresh in flight).
    Restoring,
    /// No session; `reason` is set when one just ended.
    SignedOut {
        /// Why the last session ended, if one did.
        reason: Option<LogoutReason>,
    },
    /// A session is active (possibly degraded: see `is_degraded`).
    SignedIn,
}

/// The signed-in user, as shown by the UI.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserInfo {
    /// User id (stringified: the tutorial uses numbers).
    pub id: String,
    /// Username.
    pub username: String,
    /// Email (empty when unknown, e.g. restored from a token only).
    pub email: String,
    /// Roles such as `ROLE_USER`.
    pub roles: Vec<String>,
}

impl UserInfo {
    /// Whether the user has `role`.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }
}

/// The current token's lifetime, in BROWSER wall-clock ms (already corrected by the offset).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Timeline {
    /// When the token was issued.
    pub issued_at_ms: f64,
    /// When the engine will refresh proactively.
    pub refresh_at_ms: f64,
    /// When the server will stop accepting it.
    pub expires_at_ms: f64,
    /// End of the refresh-token family's absolute lifetime, when the server said.
    pub family_ends_at_ms: Option<f64>,
    /// Estimated server clock minus browser clock.
    pub clock_offset_ms: f64,
}

/// Backend for frontend: the server-side session as `GET /api/bff/session` states it (server
/// clock, Unix ms). The tokens themselves never leave the server; these are their times.
#[derive(Debug, Clone, PartialEq)]
pub struct BffSession {
    /// When the sign-in created it.
    pub created_at_ms: f64,
    /// Its absolute end.
    pub expires_at_ms: f64,
    /// When the server's upstream access token expires (the server refreshes it before a
    /// proxied call needs it, so a time in the past only means no call needed it since).
    pub access_token_expires_at_ms: f64,
    /// The server's last refresh at the provider, if any.
    pub last_refreshed_at_ms: Option<f64>,
    /// Refreshes the server made for this session.
    pub refresh_count: u64,
}
