//! What the engine knows, as one phase enum whose variants carry only what is valid in that
//! phase, and what a decision asks the shell to do ([`Effect`]). Everything here is pure: the
//! transitions in this module and its siblings take the state, an input and the time, change the
//! state and return effects; `super::Inner::run` carries the effects out through the ports.

use super::super::error::FailureKind;
use super::super::events::SessionEvent;
use super::super::policy::{self, TokenTiming};
use super::super::ports::Area;
use super::super::tabs::TabMessage;
use super::super::types::{LogoutReason, SessionStatus, Timeline, UserInfo};
use super::EngineStats;

/// The token in use.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub access: String,
    /// Compat mode only; in cookie mode the refresh token never reaches script.
    pub refresh: Option<String>,
    pub generation: u64,
    pub timeline: Option<Timeline>,
    /// Browser ms when this tab started using it (`-inf` when restored from storage: a stale
    /// token may refresh at once).
    pub obtained_at: f64,
    pub user: UserInfo,
    /// Compat mode: where the `user` object lives. `Session` = "remember me" off: a tab-only
    /// session, shared with other tabs only by message. `None` in cookie mode.
    pub area: Option<Area>,
    /// OpenID Connect: the newest ID token (the end-session request's `id_token_hint`).
    pub id_token: Option<String>,
    /// Backend for frontend: the server-side session as last read, the JSON as the server sent
    /// it (kept and passed between tabs as text, read only for the inspector: no serde derive
    /// for it in the wasm). `access` is empty then: the browser holds no token, only the
    /// server's HttpOnly cookie.
    pub bff: Option<String>,
}

/// Refreshes that failed transiently since the last success: the session is kept, degraded.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Trouble {
    pub failures: u32,
    /// Unexpected answers among them (see `FailureKind::is_unexpected_answer`).
    pub unexpected: u32,
    /// No proactive retry before this (backoff; `None` once the user or the network says "now").
    pub retry_at: Option<f64>,
    pub last: FailureKind,
}

/// Where the session stands.
#[derive(Debug, Clone, PartialEq)]
// One per tab, never moved in bulk: boxing the token would buy nothing.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Phase {
    /// Looking for a session (storage, other tabs, the silent refresh); `trouble` when the
    /// silent refresh failed transiently and will be retried.
    Restoring { trouble: Option<Trouble> },
    /// A token is in use.
    SignedIn {
        token: Token,
        trouble: Option<Trouble>,
    },
    /// No session; `reason` and `message` when one just ended.
    SignedOut {
        reason: Option<LogoutReason>,
        message: Option<String>,
    },
}

/// What is fixed for the tab's life and its decisions depend on.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Tab {
    pub id: String,
    /// Compatibility mode (the tutorial's `user` object in web storage), not cookie mode.
    pub compat: bool,
    /// The configured cap of the refresh margin, ms.
    pub margin_cap: Option<f64>,
    /// Backend for frontend: the server refreshes; the engine only reads the session.
    pub bff: bool,
}

/// The engine's whole decision state.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct State {
    pub tab: Tab,
    pub phase: Phase,
    /// Highest generation this tab has used or seen.
    pub generation: u64,
    /// Bumped by every sign-in and sign-out: an async result started under another epoch is
    /// void.
    pub epoch: u64,
    pub online: bool,
    /// Estimated server clock minus browser clock.
    pub clock_offset: f64,
    pub stats: EngineStats,
}

/// What a transition asks the shell to do, in order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Effect {
    /// Publish on the event bus.
    Emit(SessionEvent),
    /// Tell the other tabs.
    Broadcast(TabMessage),
    /// Write or clear web storage (see `super::persist`).
    Save(Save),
    /// Tell the server the session ended (best effort), with the token that ended.
    SignOutOnServer(Option<Token>),
    /// Re-arm the proactive timer from the new state (cancelling the armed one).
    Reschedule,
}

/// A storage change.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Save {
    /// A token this tab obtained (sign-in, refresh): the shared generation counter (unless the
    /// session is tab-only) and the session's record: cookie mode the token-free profile and the
    /// "remember me" flags; compat mode the `user` object in its area (and none in the other).
    Obtained { token: Token, remember: bool },
    /// A token adopted from another tab into this tab's own sessionStorage (a session in
    /// localStorage was written there by the tab that obtained it).
    Adopted { token: Token },
    /// The session ended: its record goes (compat mode: the `user` object in `area`; cookie
    /// mode, `None`: the profile hint and its flags).
    Ended { area: Option<Area> },
    /// Cookie mode: a not-remembered session that ended with the browser.
    BrowserClosed,
    /// The stored session is unreadable: every record goes.
    Corrupt,
}

/// What happened to give the tab a new token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Got {
    /// The user signed in (here).
    SignIn,
    /// A session found on load (silent refresh, storage, another tab).
    Restore,
    /// A refresh of the token in use.
    Refresh,
}

/// A token the server just gave this tab.
pub(crate) struct Obtained {
    pub access: String,
    pub refresh: Option<String>,
    pub id_token: Option<String>,
    pub user: UserInfo,
    pub timing: TokenTiming,
    pub area: Option<Area>,
    pub remember: bool,
    pub got: Got,
    pub bff: Option<String>,
}

impl State {
    pub fn new(tab: Tab) -> State {
        State {
            tab,
            phase: Phase::Restoring { trouble: None },
            generation: 0,
            epoch: 0,
            online: true,
            clock_offset: 0.0,
            stats: EngineStats::default(),
        }
    }

    pub fn status(&self) -> SessionStatus {
        match &self.phase {
            Phase::Restoring { .. } => SessionStatus::Restoring,
            Phase::SignedIn { .. } => SessionStatus::SignedIn,
            Phase::SignedOut { reason, .. } => SessionStatus::SignedOut {
                reason: reason.clone(),
            },
        }
    }

    pub fn token(&self) -> Option<&Token> {
        match &self.phase {
            Phase::SignedIn { token, .. } => Some(token),
            _ => None,
        }
    }

    pub fn trouble(&self) -> Option<&Trouble> {
        match &self.phase {
            Phase::Restoring { trouble } | Phase::SignedIn { trouble, .. } => trouble.as_ref(),
            Phase::SignedOut { .. } => None,
        }
    }

    pub fn trouble_mut(&mut self) -> Option<&mut Option<Trouble>> {
        match &mut self.phase {
            Phase::Restoring { trouble } | Phase::SignedIn { trouble, .. } => Some(trouble),
            Phase::SignedOut { .. } => None,
        }
    }

    /// Offline, or refreshes failing transiently.
    pub fn degraded(&self) -> bool {
        !self.online || self.trouble().is_some()
    }

    /// The last failure, while it still counts.
    pub fn last_failure(&self) -> Option<&FailureKind> {
        self.trouble().map(|t| &t.last)
    }

    /// Inside a backoff wait at `now`.
    pub fn backing_off(&self, now: f64) -> bool {
        self.trouble()
            .and_then(|t| t.retry_at)
            .is_some_and(|r| now < r)
    }

    /// The user or the network said "try now": the backoff wait is skipped.
    pub fn skip_backoff(&mut self) {
        if let Some(Some(t)) = self.trouble_mut() {
            t.retry_at = None;
        }
    }

    /// The sign-out message, for the login page.
    pub fn message(&self) -> Option<&str> {
        match &self.phase {
            Phase::SignedOut { message, .. } => message.as_deref(),
            _ => None,
        }
    }

    /// Starts using a token the server just gave this tab: next generation (above any tab's,
    /// `stored_generation` included), its timeline, the record in storage, the event, the
    /// broadcast, the schedule. Returns the generation.
    pub fn install(&mut self, o: Obtained, stored_generation: u64) -> (u64, Vec<Effect>) {
        let was_degraded = self.degraded();
        let timeline = policy::timeline(&o.timing, self.clock_offset, self.tab.margin_cap);
        if let Some(tl) = &timeline {
            self.clock_offset = tl.clock_offset_ms;
        }
        let generation = self.generation.max(stored_generation) + 1;
        self.generation = generation;
        let token = Token {
            access: o.access,
            refresh: o.refresh,
            generation,
            timeline,
            obtained_at: o.timing.received_at_ms,
            user: o.user,
            area: o.area,
            id_token: o.id_token,
            bff: o.bff,
        };
        let username = token.user.username.clone();
        let event = match o.got {
            Got::SignIn => SessionEvent::LoggedIn { username },
            Got::Restore => SessionEvent::Restored { username },
            Got::Refresh => SessionEvent::Refreshed {
                generation,
                adopted: false,
            },
        };
        let effects = vec![
            Effect::Save(Save::Obtained {
                token: token.clone(),
                remember: o.remember,
            }),
            // A restore counts as a sign-in for the other tabs: it proves the session lives.
            Effect::Broadcast(token_message(&self.tab.id, &token, o.got != Got::Refresh)),
            Effect::Emit(event),
        ];
        (generation, self.signed_in(token, was_degraded, effects))
    }

    /// Enters `SignedIn` with `token` (healthy), after `effects`: then `Recovered` if this ends a
    /// degraded spell, and the new schedule.
    pub fn signed_in(
        &mut self,
        token: Token,
        was_degraded: bool,
        mut effects: Vec<Effect>,
    ) -> Vec<Effect> {
        self.phase = Phase::SignedIn {
            token,
            trouble: None,
        };
        if was_degraded && !self.degraded() {
            effects.push(Effect::Emit(SessionEvent::Recovered));
        }
        effects.push(Effect::Reschedule);
        effects
    }
}

/// The broadcast of `token`: the access token, and in compat mode its refresh token and area.
pub(crate) fn token_message(tab_id: &str, token: &Token, login: bool) -> TabMessage {
    TabMessage::TokenUpdated {
        from: tab_id.to_owned(),
        generation: token.generation,
        access_token: token.access.clone(),
        timeline: token.timeline.clone(),
        user: token.user.clone(),
        login,
        refresh_token: token.area.and(token.refresh.clone()),
        session_only: token.area == Some(Area::Session),
        id_token: token.id_token.clone(),
        bff: token.bff.clone(),
    }
}
