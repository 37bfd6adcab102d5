//! Cross-tab handling, explicit: a message from another tab is turned into a decision
//! ([`received`]); adopting its token ([`adopt`]) changes this tab only and is never broadcast
//! back (only the tab that obtained a token announces it).

use std::rc::Rc;

use super::super::events::SessionEvent;
use super::super::ports::Area;
use super::super::tabs::TabMessage;
use super::super::types::{LogoutReason, Timeline, UserInfo};
use super::logout::{self, Tell};
use super::persist;
use super::state::{token_message, Effect, Phase, Save, State, Token};
use super::Inner;

/// A token another tab obtained (or this tab's storage holds), to adopt instead of refreshing.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct News {
    pub generation: u64,
    pub access: String,
    pub timeline: Option<Timeline>,
    pub user: UserInfo,
    /// A sign-in (signed-out tabs adopt only these).
    pub login: bool,
    /// Compat mode: the refresh token that goes with it.
    pub refresh_token: Option<String>,
    /// Compat mode: the sender keeps the session in its own sessionStorage.
    pub session_only: bool,
    /// OpenID Connect: the ID token that goes with it.
    pub id_token: Option<String>,
    /// Backend for frontend: the server-side session (there is no token).
    pub bff: Option<String>,
}

/// What to do with a message from another tab.
#[derive(Debug, Clone, PartialEq)]
// One value per received message, consumed at once: boxing the news would buy nothing.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Received {
    /// Adopt its token.
    Adopt(News),
    /// A newer token exists but the message could not carry it (the storage-event fallback
    /// never does): compat mode reads it from storage.
    AdoptFromStorage,
    /// Carry out these effects (an offer to a tab asking for the session; a logout).
    Effects(Vec<Effect>),
    /// Nothing.
    Ignore,
}

/// Decides about `msg` (already known not to be this tab's own).
pub(crate) fn received(st: &mut State, msg: TabMessage) -> Received {
    match msg {
        TabMessage::TokenUpdated {
            generation,
            access_token,
            timeline,
            user,
            login,
            refresh_token,
            session_only,
            id_token,
            bff,
            ..
        } => {
            // A tab still asking for a session takes the current one, whatever generation it
            // has seen counted in storage.
            let asking = matches!(st.phase, Phase::Restoring { .. });
            if generation < st.generation || (generation == st.generation && !asking) {
                return Received::Ignore;
            }
            if access_token.is_empty() && !st.tab.bff {
                // Cookie mode keeps its own token and refreshes itself under the lock when due.
                return if st.tab.compat {
                    Received::AdoptFromStorage
                } else {
                    Received::Ignore
                };
            }
            Received::Adopt(News {
                generation,
                access: access_token,
                timeline,
                user,
                login,
                refresh_token,
                session_only,
                id_token,
                bff,
            })
        }
        TabMessage::SessionWanted { .. } => match st.token() {
            // Only a session no other tab can read from storage needs offering.
            Some(t) if t.area == Some(Area::Session) => {
                Received::Effects(vec![Effect::Broadcast(token_message(&st.tab.id, t, true))])
            }
            _ => Received::Ignore,
        },
        TabMessage::LoggedOut { reason, .. } => {
            let message = format!(
                "{} ({})",
                LogoutReason::OtherTab.describe(),
                reason.describe()
            );
            let tell = Tell {
                server: false,
                tabs: false,
            };
            Received::Effects(logout::end(st, LogoutReason::OtherTab, Some(message), tell))
        }
    }
}

/// Starts using another tab's token. `stored_refresh`: compat mode, the refresh token in
/// localStorage, for news that carries none. Older news, or a refresh reaching a signed-out tab,
/// changes nothing.
pub(crate) fn adopt(
    st: &mut State,
    news: News,
    now: f64,
    stored_refresh: Option<String>,
) -> Vec<Effect> {
    let (area, event) = match &st.phase {
        Phase::SignedIn { token, .. } if news.generation <= token.generation => return Vec::new(),
        Phase::SignedIn { token, .. } => (
            token.area,
            SessionEvent::Refreshed {
                generation: news.generation,
                adopted: true,
            },
        ),
        Phase::SignedOut { .. } if !news.login => return Vec::new(),
        phase => {
            // New here: the session goes where the sender keeps it (compat mode).
            let area = st.tab.compat.then_some(if news.session_only {
                Area::Session
            } else {
                Area::Local
            });
            let username = news.user.username.clone();
            let event = match phase {
                Phase::Restoring { .. } => SessionEvent::Restored { username },
                _ => SessionEvent::LoggedIn { username },
            };
            (area, event)
        }
    };
    let was_degraded = st.degraded();
    if let Some(tl) = &news.timeline {
        st.clock_offset = tl.clock_offset_ms;
    }
    st.generation = st.generation.max(news.generation);
    st.stats.adopted += 1;
    let token = Token {
        access: news.access,
        refresh: if st.tab.compat {
            news.refresh_token.or(stored_refresh)
        } else {
            None
        },
        generation: news.generation,
        timeline: news.timeline,
        obtained_at: now,
        user: news.user,
        area,
        id_token: news.id_token,
        bff: news.bff,
    };
    let save = Effect::Save(Save::Adopted {
        token: token.clone(),
    });
    st.signed_in(token, was_degraded, vec![save, Effect::Emit(event)])
}

impl Inner {
    pub(super) fn on_tab_message(self: &Rc<Self>, msg: TabMessage) {
        if msg.from() == self.tab_id {
            return;
        }
        let decision = received(&mut self.st.borrow_mut(), msg);
        match decision {
            Received::Adopt(news) => self.adopt(news),
            Received::AdoptFromStorage => self.adopt_from_storage(),
            Received::Effects(effects) => self.run(effects),
            Received::Ignore => {}
        }
    }

    /// Compat mode: adopts the token another tab wrote to localStorage.
    pub(super) fn adopt_from_storage(self: &Rc<Self>) {
        let Some(stored) = persist::stored_user(&*self.ports.storage, Area::Local) else {
            return;
        };
        let Some(generation) = stored.generation else {
            return;
        };
        self.adopt(News {
            generation,
            access: stored.access_token.clone(),
            timeline: stored.timeline.clone(),
            user: stored.user_info(),
            login: false,
            refresh_token: stored.refresh_token,
            session_only: false,
            id_token: stored.id_token,
            bff: None,
        });
    }

    fn adopt(self: &Rc<Self>, news: News) {
        let stored_refresh = if !self.cookie_mode() && news.refresh_token.is_none() {
            persist::stored_user(&*self.ports.storage, Area::Local).and_then(|u| u.refresh_token)
        } else {
            None
        };
        let now = self.now();
        let effects = adopt(&mut self.st.borrow_mut(), news, now, stored_refresh);
        if !effects.is_empty() {
            self.run(effects);
        }
    }
}
