//! The cross-tab protocol. One tab refreshes (under the lock) and broadcasts the result; the
//! others adopt it instead of refreshing. Logout is broadcast with its reason.

use serde::{Deserialize, Serialize};

use super::types::{LogoutReason, Timeline, UserInfo};

/// A message between tabs of the same origin.
/// Externally tagged (`{"LoggedOut":{...}}`), serde's default: an internally tagged enum
/// (`tag = "type"`) buffers each message through serde's `Content` first, 8.2 KB gzip of wasm
/// (README, size section).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
// Messages live for one post or one receipt, one at a time: their size does not matter.
#[allow(clippy::large_enum_variant)]
pub enum TabMessage {
    /// A new access token (after sign-in or refresh).
    TokenUpdated {
        /// Sender's tab id.
        from: String,
        /// The engine generation of this token (shared, monotonic across tabs).
        generation: u64,
        /// The access token itself (BroadcastChannel is same-origin and in memory only).
        access_token: String,
        /// Its lifetime in browser wall-clock ms.
        timeline: Option<Timeline>,
        /// Who is signed in.
        user: UserInfo,
        /// True for a sign-in (signed-out tabs adopt only these, never a stray refresh).
        login: bool,
        /// Compat mode: the refresh token that goes with it (it lives in script-readable
        /// storage there anyway), so tabs whose session is in their own sessionStorage ("remember
        /// me" off) keep presenting the newest one instead of an ancestor.
        #[serde(default)]
        refresh_token: Option<String>,
        /// Compat mode: the session lives in each tab's sessionStorage (not remembered).
        #[serde(default)]
        session_only: bool,
        /// OpenID Connect: the ID token that goes with it (for the end-session request).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id_token: Option<String>,
        /// Backend for frontend: the server-side session, as the server's JSON (no token at all:
        /// `access_token` is empty).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        bff: Option<String>,
    },
    /// A tab that starts without a session asks whether an open tab has one it keeps only in its
    /// own storage (compat mode, "remember me" off); such a tab answers with `TokenUpdated`.
    SessionWanted {
        /// Sender's tab id.
        from: String,
    },
    /// The session ended in the sender tab.
    LoggedOut {
        /// Sender's tab id.
        from: String,
        /// Why it ended there.
        reason: LogoutReason,
    },
}

impl TabMessage {
    /// The sending tab.
    pub fn from(&self) -> &str {
        match self {
            TabMessage::TokenUpdated { from, .. }
            | TabMessage::LoggedOut { from, .. }
            | TabMessage::SessionWanted { from } => from,
        }
    }
}
