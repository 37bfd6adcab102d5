//! The engine's storage: what it reads before a decision and how a [`Save`] is written. The
//! formats and keys are in `session::persist`; this is the only engine file that calls the
//! storage port.

use super::super::persist::{id_value, keys, parse_profile, StoredUser};
use super::super::ports::{Area, KeyValueStore};
use super::super::types::UserInfo;
use super::state::{Save, Token};

/// Highest generation any tab has written.
pub(crate) fn stored_generation(s: &dyn KeyValueStore) -> u64 {
    s.get(Area::Local, keys::GENERATION)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The compat `user` object in `area`, if readable.
pub(crate) fn stored_user(s: &dyn KeyValueStore, area: Area) -> Option<StoredUser> {
    s.get(area, keys::USER)
        .and_then(|t| StoredUser::parse(&t).ok())
}

/// Cookie mode: whether the session being kept was signed in with "remember me" off. Such a
/// session ends with the browser, never with a tab: its profile sits in localStorage like a
/// remembered one (every tab sees it), flagged, and counts only while the browser-session marker
/// is there. (A profile in sessionStorage was written by an older version for the same purpose.)
pub(crate) fn not_remembered(s: &dyn KeyValueStore) -> bool {
    s.get(Area::Local, keys::NOT_REMEMBERED).is_some()
        || s.get(Area::Session, keys::PROFILE).is_some()
}

/// Cookie mode: the profile hint of the session a silent refresh restores.
pub(crate) fn profile(s: &dyn KeyValueStore) -> Option<UserInfo> {
    [Area::Local, Area::Session]
        .into_iter()
        .find_map(|a| s.get(a, keys::PROFILE).and_then(|t| parse_profile(&t).ok()))
}

/// Writes `save`.
pub(crate) fn write(s: &dyn KeyValueStore, save: &Save) {
    match save {
        Save::Obtained { token, remember } => {
            if token.area != Some(Area::Session) {
                s.set(Area::Local, keys::GENERATION, &token.generation.to_string());
            }
            if token.bff.is_some() {
                // Backend for frontend: only the server knows the session (every tab asks it
                // on load); no profile hint to keep.
                return;
            }
            match token.area {
                None => write_profile(s, &token.user, *remember),
                Some(area) => {
                    let other = if area == Area::Local {
                        Area::Session
                    } else {
                        Area::Local
                    };
                    s.remove(other, keys::USER);
                    write_user(s, token, area);
                }
            }
        }
        Save::Adopted { token } => {
            if let Some(area @ Area::Session) = token.area {
                write_user(s, token, area);
            }
        }
        Save::Ended { area: Some(area) } => s.remove(*area, keys::USER),
        Save::Ended { area: None } | Save::BrowserClosed => forget_profile(s),
        Save::Corrupt => {
            for area in [Area::Local, Area::Session] {
                s.remove(area, keys::USER);
            }
            forget_profile(s);
        }
    }
}

/// Cookie mode: a profile hint, never a token. Every tab of the browser shares the session;
/// "remember me" only decides whether it outlives the browser (see [`not_remembered`]).
fn write_profile(s: &dyn KeyValueStore, user: &UserInfo, remember: bool) {
    s.remove(Area::Session, keys::PROFILE);
    if remember {
        s.remove(Area::Local, keys::NOT_REMEMBERED);
        s.remove(Area::BrowserSession, keys::BROWSER_SESSION);
    } else {
        s.set(Area::Local, keys::NOT_REMEMBERED, "1");
        s.set(Area::BrowserSession, keys::BROWSER_SESSION, "1");
    }
    if let Ok(text) = serde_json::to_string(user) {
        s.set(Area::Local, keys::PROFILE, &text);
    }
}

fn forget_profile(s: &dyn KeyValueStore) {
    s.remove(Area::Local, keys::PROFILE);
    s.remove(Area::Session, keys::PROFILE);
    s.remove(Area::Local, keys::NOT_REMEMBERED);
    s.remove(Area::BrowserSession, keys::BROWSER_SESSION);
}

/// Compat mode: the session as the tutorial's `user` object in `area`.
fn write_user(s: &dyn KeyValueStore, t: &Token, area: Area) {
    let stored = StoredUser {
        id: id_value(&t.user.id),
        username: t.user.username.clone(),
        email: t.user.email.clone(),
        roles: t.user.roles.clone(),
        access_token: t.access.clone(),
        refresh_token: t.refresh.clone(),
        generation: Some(t.generation),
        timeline: t.timeline.clone(),
        id_token: t.id_token.clone(),
    };
    if let Ok(text) = serde_json::to_string(&stored) {
        s.set(area, keys::USER, &text);
    }
}
