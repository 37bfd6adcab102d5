//! `SessionProvider`: creates this tab's session engine (with the real browser ports), starts it
//! (restore on load: status `Restoring` until known), and mirrors its state into a reducer-based
//! context store that `use_session()` / `use_api()` read.

use std::rc::Rc;

use yew::prelude::*;

use crate::api::ApiClient;
use crate::browser;
use crate::config::AppConfig;
use crate::session::{Engine, LogoutReason, SessionStatus, Timeline, UserInfo};

/// Everything the UI shows about the session, as one comparable value.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionSnapshot {
    /// Status.
    pub status: SessionStatus,
    /// Signed-in user.
    pub user: Option<UserInfo>,
    /// Offline or degraded.
    pub degraded: bool,
    /// Current token's timeline.
    pub timeline: Option<Timeline>,
    /// Tab holding the refresh lock.
    pub lock_holder: Option<String>,
    /// Explanation of the last sign-out.
    pub message: Option<String>,
    /// Token generation in use.
    pub generation: u64,
}

impl SessionSnapshot {
    /// Reads the engine.
    pub fn of(engine: &Engine) -> Self {
        Self {
            status: engine.status(),
            user: engine.user(),
            degraded: engine.is_degraded(),
            timeline: engine.timeline(),
            lock_holder: engine.lock_holder(),
            message: engine.message(),
            generation: engine.generation(),
        }
    }

    /// The reason of the last sign-out, if signed out.
    pub fn logout_reason(&self) -> Option<LogoutReason> {
        match &self.status {
            SessionStatus::SignedOut { reason } => reason.clone(),
            _ => None,
        }
    }
}

impl Reducible for SessionSnapshot {
    /// The store is replaced by a fresh snapshot of the engine.
    type Action = SessionSnapshot;

    fn reduce(self: Rc<Self>, action: Self::Action) -> Rc<Self> {
        if *self == action {
            self
        } else {
            Rc::new(action)
        }
    }
}

/// What the provider shares with the hooks.
#[derive(Clone, PartialEq)]
pub struct SessionContext {
    /// The tab's engine.
    pub engine: Engine,
    /// The interceptor client over it.
    pub api: ApiClient,
    /// The store.
    pub state: UseReducerHandle<SessionSnapshot>,
}

/// Props of [`SessionProvider`].
#[derive(Properties, PartialEq)]
pub struct SessionProviderProps {
    /// Runtime configuration (from `crate::browser::config::load_config`).
    pub config: Rc<AppConfig>,
    /// The app.
    #[prop_or_default]
    pub children: Html,
}

/// Provides the session context to its children.
#[function_component]
pub fn SessionProvider(props: &SessionProviderProps) -> Html {
    // Started during the first render, not in an effect: children's effects run before the
    // provider's, and a page that calls the API on mount must find the restore under way.
    let engine = use_memo(props.config.clone(), |cfg| {
        let engine = Engine::new(
            (**cfg).clone(),
            browser::runtime::new_tab_id(),
            browser::ports(),
        );
        engine.start();
        engine
    });
    let api = use_memo(engine.clone(), |e| ApiClient::new((**e).clone()));
    let state = {
        let engine = engine.clone();
        use_reducer(move || SessionSnapshot::of(&engine))
    };
    {
        let dispatcher = state.dispatcher();
        use_effect_with(engine.clone(), move |engine| {
            let weak = engine.downgrade();
            let refresh = {
                let weak = weak.clone();
                move || {
                    if let Some(e) = weak.upgrade() {
                        dispatcher.dispatch(SessionSnapshot::of(&e));
                    }
                }
            };
            let on_event = refresh.clone();
            let events = engine.subscribe(move |_, _| on_event());
            let changes = engine.on_change(refresh.clone());
            let wake = browser::wake::install(engine);
            refresh();
            move || {
                drop(events);
                drop(changes);
                drop(wake);
            }
        });
    }
    let ctx = SessionContext {
        engine: (*engine).clone(),
        api: (*api).clone(),
        state,
    };
    html! {
        <ContextProvider<SessionContext> context={ctx}>
            { props.children.clone() }
        </ContextProvider<SessionContext>>
    }
}
