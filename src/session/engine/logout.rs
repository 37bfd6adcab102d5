//! Ending the session: once, whichever of the many paths gets there first (logout button,
//! rejected refresh, retried 401, another tab, corrupt storage).

use std::rc::Rc;

use api_types::{paths, RefreshRequest};

use super::super::events::SessionEvent;
use super::super::ports::Area;
use super::super::tabs::TabMessage;
use super::super::types::LogoutReason;
use super::state::{Effect, Phase, Save, State, Token};
use super::Inner;

/// Who else hears of a logout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tell {
    /// The server (the user pressed "log out": its refresh token family is revoked).
    pub server: bool,
    /// The other tabs (not when the news came from one of them).
    pub tabs: bool,
}

/// Ends the session. A no-op when there is none (and none is being restored), so the paths that
/// can end a session produce one logout between them.
pub(crate) fn end(
    st: &mut State,
    reason: LogoutReason,
    message: Option<String>,
    tell: Tell,
) -> Vec<Effect> {
    let previous = match std::mem::replace(
        &mut st.phase,
        Phase::SignedOut {
            reason: Some(reason.clone()),
            message: Some(message.unwrap_or_else(|| reason.describe().to_string())),
        },
    ) {
        Phase::SignedIn { token, .. } => Some(token),
        Phase::Restoring { .. } => None,
        was @ Phase::SignedOut { .. } => {
            st.phase = was;
            return Vec::new();
        }
    };
    st.epoch += 1;
    let area = match &previous {
        Some(t) => t.area,
        None => st.tab.compat.then_some(Area::Local),
    };
    let mut effects = vec![Effect::Save(Save::Ended { area })];
    if tell.server {
        effects.push(Effect::SignOutOnServer(previous));
    }
    if reason == LogoutReason::Expired {
        effects.push(Effect::Emit(SessionEvent::SessionExpired));
    }
    if tell.tabs {
        effects.push(Effect::Broadcast(TabMessage::LoggedOut {
            from: st.tab.id.clone(),
            reason: reason.clone(),
        }));
    }
    effects.push(Effect::Emit(SessionEvent::LoggedOut { reason }));
    effects.push(Effect::Reschedule);
    effects
}

/// The stored session could not be read: it goes, and the tab is signed out saying why.
pub(crate) fn corrupt(st: &mut State, detail: &str) -> Vec<Effect> {
    let reason = LogoutReason::CorruptStorage;
    st.phase = Phase::SignedOut {
        message: Some(format!("{} ({detail})", reason.describe())),
        reason: Some(reason),
    };
    vec![Effect::Save(Save::Corrupt)]
}

/// No session to restore: signed out, nothing to say.
pub(crate) fn nobody(st: &mut State) {
    st.phase = Phase::SignedOut {
        reason: None,
        message: None,
    };
}

impl Inner {
    /// Best effort: the local logout is complete already; the answer (even the tutorial's 404)
    /// changes nothing.
    pub(super) fn sign_out_on_server(self: &Rc<Self>, previous: Option<&Token>) {
        if self.cfg.oidc() {
            return self.revoke_at_provider(previous);
        }
        if self.cfg.bff() {
            return self.bff_logout_on_server(self.end_everywhere.replace(false));
        }
        let refresh_token = previous.and_then(|t| t.refresh.clone());
        let body = serde_json::to_string(&RefreshRequest { refresh_token }).unwrap_or_default();
        let mut req = self.token_post(paths::SIGNOUT, body, false);
        if let Some(t) = previous {
            req = self.authorize(req, &t.access);
        }
        let send = self.ports.transport.send(req);
        self.ports.spawner.spawn(Box::pin(async move {
            let _ = send.await;
        }));
    }
}
