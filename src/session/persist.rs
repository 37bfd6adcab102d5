//! What the engine keeps in web storage, under namespaced keys defined in one place.
//!
//! Compat mode keeps the tutorial's `user` object (sign-in response with both tokens) so the
//! app can share storage with the tutorial's client, plus our own optional fields. Cookie mode
//! stores no token at all: only a non-secret profile hint that tells a reload "a session may
//! exist, try the silent refresh" and what to display meanwhile.

use serde::{Deserialize, Serialize};

use super::claims::read_claims;
use super::types::{Timeline, UserInfo};

/// Storage keys.
pub mod keys {
    /// Compat mode: the tutorial's key for the sign-in response (local or session storage).
    pub const USER: &str = "user";
    /// Cookie mode: the signed-in user's profile, no token (localStorage, so every tab of the
    /// browser sees that a session exists however it was opened).
    pub const PROFILE: &str = "yew-session.profile";
    /// Cookie mode, "remember me" off: `"1"` beside the profile (localStorage)...
    pub const NOT_REMEMBERED: &str = "yew-session.not-remembered";
    /// ... and this marker in [`Area::BrowserSession`](super::ports::Area::BrowserSession): the
    /// profile counts only while the marker is there, i.e. until the browser closes (when the
    /// browser-session refresh cookie goes too).
    pub const BROWSER_SESSION: &str = "yew-session.browser-session";
    /// Highest token generation issued by any tab (not secret; lets a tab that just took the
    /// lock see that another tab refreshed before its broadcast arrived).
    pub const GENERATION: &str = "yew-session.generation";
    /// Storage-lease fallback of the cross-tab lock.
    pub const LEASE: &str = "yew-session.refresh-lease";
    /// Storage-event fallback of the cross-tab channel.
    pub const TAB_MESSAGE: &str = "yew-session.tab-message";
    /// OpenID Connect: the sign-in round trip in progress (sessionStorage, until the callback).
    pub const OIDC_PENDING: &str = "yew-session.oidc-pending";
}

/// The compat-mode `user` object: the tutorial's fields plus our optional ones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredUser {
    /// Tutorial: user id (a number there).
    pub id: serde_json::Value,
    /// Tutorial: username.
    pub username: String,
    /// Tutorial: email.
    #[serde(default)]
    pub email: String,
    /// Tutorial: roles.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Tutorial: the access token.
    pub access_token: String,
    /// Tutorial: the refresh token.
    #[serde(default)]
    pub refresh_token: Option<String>,
    /// Ours: engine generation of `access_token`.
    #[serde(default)]
    pub generation: Option<u64>,
    /// Ours: the token's timeline (browser ms), so a reload keeps the clock-offset estimate.
    #[serde(default)]
    pub timeline: Option<Timeline>,
    /// Ours, OpenID Connect: the ID token (the end-session request's hint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}

/// Why a stored session was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("stored session is unreadable: {0}")]
pub struct CorruptStorage(pub String);

impl StoredUser {
    /// Parses and sanity-checks a stored `user` value: a hand-edited object must not get past
    /// this point (names must be present; the access token must decode and carry an expiry,
    /// unless our timeline says when it expires: an OpenID provider's access token is opaque).
    pub fn parse(text: &str) -> Result<StoredUser, CorruptStorage> {
        let u: StoredUser =
            serde_json::from_str(text).map_err(|e| CorruptStorage(e.to_string()))?;
        if u.username.trim().is_empty() {
            return Err(CorruptStorage("empty username".into()));
        }
        if u.refresh_token
            .as_deref()
            .is_none_or(|t| t.trim().is_empty())
        {
            return Err(CorruptStorage("no refresh token".into()));
        }
        if u.access_token.trim().is_empty() {
            return Err(CorruptStorage("no access token".into()));
        }
        if u.timeline.is_none() {
            let facts = read_claims(&u.access_token).map_err(|e| CorruptStorage(e.to_string()))?;
            if facts.exp_ms.is_none() {
                return Err(CorruptStorage("access token without expiry".into()));
            }
        }
        if let Some(tl) = &u.timeline {
            let finite = [
                tl.issued_at_ms,
                tl.refresh_at_ms,
                tl.expires_at_ms,
                tl.clock_offset_ms,
            ]
            .iter()
            .all(|v| v.is_finite());
            if !finite || tl.expires_at_ms < tl.issued_at_ms {
                return Err(CorruptStorage("impossible timeline".into()));
            }
        }
        Ok(u)
    }

    /// The user part.
    pub fn user_info(&self) -> UserInfo {
        UserInfo {
            id: id_string(&self.id),
            username: self.username.clone(),
            email: self.email.clone(),
            roles: self.roles.clone(),
        }
    }
}

/// Parses the cookie-mode profile hint.
pub fn parse_profile(text: &str) -> Result<UserInfo, CorruptStorage> {
    let u: UserInfo = serde_json::from_str(text).map_err(|e| CorruptStorage(e.to_string()))?;
    if u.username.trim().is_empty() {
        return Err(CorruptStorage("empty username".into()));
    }
    Ok(u)
}

/// The JSON value to store for a display id: the tutorial's client and backend use numeric ids,
/// so an id that is the canonical text of an integer goes back as a number (`"1"` -> `1`), any
/// other id as a string. (Inverse of [`id_string`], exact for numeric and non-numeric ids.)
pub fn id_value(id: &str) -> serde_json::Value {
    match id.parse::<i64>() {
        Ok(n) if n.to_string() == id => serde_json::Value::from(n),
        _ => serde_json::Value::String(id.to_string()),
    }
}

/// A JSON id as display text (`1` rather than `"1"`).
pub fn id_string(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}
