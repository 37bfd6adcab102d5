//! Finding the session when a tab starts: compat mode reads the `user` object (or asks the open
//! tabs for a tab-only one); cookie mode reads the token-free profile hint and, when a session
//! may exist, restores through the silent refresh. The plan is pure ([`plan`]); the shell reads
//! storage before and carries the plan out.

use std::rc::Rc;

use futures::FutureExt;

use super::super::claims::read_claims;
use super::super::events::SessionEvent;
use super::super::persist::{keys, parse_profile, StoredUser};
use super::super::policy;
use super::super::ports::{Area, KeyValueStore};
use super::super::tabs::TabMessage;
use super::super::types::Timeline;
use super::logout;
use super::persist::stored_generation;
use super::state::{Effect, Phase, Save, State, Token};
use super::{Inner, OFFER_WAIT_MS};

/// What storage says at start.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Found {
    /// Compat mode: the `user` object and where it was.
    pub user: Option<(Area, String)>,
    /// Cookie mode: the profile hint and where it was.
    pub profile: Option<(Area, String)>,
    /// Cookie mode: the "remember me off" flag (localStorage) ...
    pub not_remembered: bool,
    /// ... and whether the browser-session marker is still there.
    pub browser_session: bool,
    /// Highest generation any tab has written.
    pub generation: u64,
}

impl Found {
    pub fn read(s: &dyn KeyValueStore) -> Found {
        let first = |key| {
            [Area::Local, Area::Session]
                .into_iter()
                .find_map(|area| s.get(area, key).map(|v| (area, v)))
        };
        Found {
            user: first(keys::USER),
            profile: first(keys::PROFILE),
            not_remembered: s.get(Area::Local, keys::NOT_REMEMBERED).is_some(),
            browser_session: s.get(Area::BrowserSession, keys::BROWSER_SESSION).is_some(),
            generation: stored_generation(s),
        }
    }
}

/// How the tab gets its session.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Plan {
    /// Compat mode: use the stored `user` object.
    Stored(Box<StoredUser>, Area),
    /// Compat mode, nothing stored: a not-remembered session lives only in the sessionStorage
    /// of the tabs that have it, so ask them.
    AskTabs,
    /// Cookie mode: a session may exist; try the silent refresh.
    SilentRefresh,
    /// Cookie mode: not remembered, and the browser was closed since: that session ended with
    /// it (its refresh cookie is gone too).
    EndedWithBrowser,
    /// Nobody signed in from this browser (or they signed out): no request at all.
    Nobody,
    /// Unreadable storage.
    Corrupt(String),
}

/// Decides from what storage holds.
pub(crate) fn plan(found: &Found, compat: bool) -> Plan {
    if compat {
        return match &found.user {
            None => Plan::AskTabs,
            Some((area, text)) => match StoredUser::parse(text) {
                Ok(u) => Plan::Stored(Box::new(u), *area),
                Err(e) => Plan::Corrupt(e.0),
            },
        };
    }
    match &found.profile {
        None => Plan::Nobody,
        Some((Area::Local, _)) if found.not_remembered && !found.browser_session => {
            Plan::EndedWithBrowser
        }
        Some((_, text)) => match parse_profile(text) {
            Ok(_) => Plan::SilentRefresh,
            Err(e) => Plan::Corrupt(e.0),
        },
    }
}

/// Compat mode: signed in with the stored session, as it is (a stale token refreshes at once).
pub(crate) fn from_storage(
    st: &mut State,
    stored: StoredUser,
    area: Area,
    stored_gen: u64,
    now: f64,
) -> Vec<Effect> {
    let timeline = stored.timeline.clone().or_else(|| {
        // A session saved by the tutorial's own client: no timeline of ours. The token is not
        // fresh, so its iat says nothing about the clock offset: assume none, use exp.
        let facts = read_claims(&stored.access_token).ok()?;
        let expires_at = facts.exp_ms?;
        let issued_at = facts.iat_ms.unwrap_or(now).min(expires_at);
        let lifetime = expires_at - issued_at;
        let margin = policy::margin_ms(lifetime, st.tab.margin_cap, policy::EXP_RESOLUTION_MS);
        Some(Timeline {
            issued_at_ms: issued_at,
            refresh_at_ms: expires_at - margin,
            expires_at_ms: expires_at,
            family_ends_at_ms: None,
            clock_offset_ms: 0.0,
        })
    });
    let generation = stored.generation.unwrap_or(0).max(stored_gen);
    st.generation = st.generation.max(generation);
    st.clock_offset = timeline.as_ref().map_or(0.0, |t| t.clock_offset_ms);
    let user = stored.user_info();
    let username = user.username.clone();
    st.phase = Phase::SignedIn {
        token: Token {
            access: stored.access_token,
            refresh: stored.refresh_token,
            generation,
            timeline,
            obtained_at: f64::NEG_INFINITY,
            user,
            area: Some(area),
            id_token: stored.id_token,
            bff: None,
        },
        trouble: None,
    };
    vec![
        Effect::Emit(SessionEvent::Restored { username }),
        Effect::Reschedule,
    ]
}

impl Inner {
    /// Restores the session (see the module doc). Requests sent meanwhile wait for it.
    pub(super) fn restore(self: &Rc<Self>) {
        let found = Found::read(&*self.ports.storage);
        if self.cfg.bff() {
            // The session cookie is HttpOnly: only the server knows whether there is a session
            // (the sign-in ends with a redirect to the app, before any storage of ours says
            // so), so every tab asks it once on load.
            return self.silent_refresh(found.generation);
        }
        let effects = match plan(&found, !self.cookie_mode()) {
            Plan::Stored(stored, area) => {
                let now = self.now();
                from_storage(
                    &mut self.st.borrow_mut(),
                    *stored,
                    area,
                    found.generation,
                    now,
                )
            }
            Plan::Corrupt(detail) => logout::corrupt(&mut self.st.borrow_mut(), &detail),
            Plan::Nobody => {
                logout::nobody(&mut self.st.borrow_mut());
                Vec::new()
            }
            Plan::EndedWithBrowser => {
                logout::nobody(&mut self.st.borrow_mut());
                vec![Effect::Save(Save::BrowserClosed)]
            }
            Plan::AskTabs => return self.ask_open_tabs(),
            Plan::SilentRefresh => return self.silent_refresh(found.generation),
        };
        self.run(effects);
    }

    /// Asks the open tabs for a tab-only session; one that answers within `OFFER_WAIT_MS`
    /// shares it (adopted like any broadcast token), else this tab is signed out.
    fn ask_open_tabs(self: &Rc<Self>) {
        self.ports.tabs.post(&TabMessage::SessionWanted {
            from: self.tab_id.clone(),
        });
        let inner = self.clone();
        self.wait_for_restore(async move {
            inner.ports.sleeper.sleep(OFFER_WAIT_MS).await;
            let waiting = matches!(inner.st.borrow().phase, Phase::Restoring { .. });
            if waiting {
                logout::nobody(&mut inner.st.borrow_mut());
                inner.changes.notify();
            }
        });
    }

    fn silent_refresh(self: &Rc<Self>, base: u64) {
        {
            let mut st = self.st.borrow_mut();
            st.generation = st.generation.max(base);
        }
        let inner = self.clone();
        self.wait_for_restore(async move {
            let _ = Inner::refresh_from(&inner, base).await;
        });
    }

    fn wait_for_restore(self: &Rc<Self>, fut: impl std::future::Future<Output = ()> + 'static) {
        let fut = fut.boxed_local().shared();
        self.flight.borrow_mut().restore = Some(fut.clone());
        self.ports.spawner.spawn(Box::pin(fut));
    }
}
