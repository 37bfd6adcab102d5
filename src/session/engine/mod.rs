//! The session engine: one per tab. It owns the token (in memory), decides when to refresh,
//! makes sure at most one refresh runs (in this tab: a shared in-flight future; across tabs: the
//! lease lock plus adoption of broadcast tokens), classifies failures and publishes every change
//! on the event bus.
//!
//! Shape: the decisions are pure transitions on one [`State`](state::State) — a phase enum
//! whose variants carry only what is valid in that phase — of the form
//! `(state, input, now) -> effects` (in `state`, `restore`, `refresh`, `logout`, `sync`,
//! `schedule`, `requests`), tested directly in `tests`. The shell around them ([`Inner`]) is
//! thin: it reads what a decision needs through the ports, calls it, and carries out the
//! returned [`Effect`](state::Effect)s in order ([`Inner::run`]); the async parts (the refresh's
//! lock and request, timers) live in the shell.
//!
//! Generations: every token the engine starts using gets a generation number, shared and
//! monotonic across tabs (`max(seen, stored) + 1`). "Sent with an older token" means "sent under
//! an older generation" — never a token-string comparison, because the tutorial's backend returns
//! byte-identical tokens for two sign-ins in the same second.
//!
//! Epochs: every sign-in and sign-out bumps the epoch; an async result (refresh answer) that
//! started under another epoch is dropped, so a refresh racing a logout cannot sign the user back
//! in.

mod bff;
mod logout;
mod oidc;
mod persist;
mod refresh;
mod requests;
mod restore;
mod schedule;
mod signin;
mod state;
mod sync;
#[cfg(test)]
mod tests;

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};

use futures::future::{LocalBoxFuture, Shared};

use api_types::headers;

use super::error::FailureKind;
use super::events::{ChangeNotifier, ChangeSubscription, EventBus, SessionEvent, Subscription};
use super::ports::{
    Clock, CrossTab, HttpRequest, KeyValueStore, Method, Random, Sleeper, Spawner, TabLock,
    Transport,
};
use super::types::{LogoutReason, SessionStatus, Timeline, UserInfo};
use crate::config::{AppConfig, StorageMode};
pub use bff::{LoginKind, REREAD_MIN_MS};
use logout::Tell;
use state::{Effect, State};

/// How long a tab starting without a session waits for an open tab to offer one (compat mode).
pub const OFFER_WAIT_MS: f64 = 300.0;
/// How long a tab may hold the cross-tab refresh lock before others may proceed without it.
/// Longer than a refresh request may take (the browser transport times out at 10 s), so a live
/// holder is never overtaken.
pub const LEASE_MS: f64 = 15_000.0;
/// Poll period while waiting for the lock (Web Locks and the storage lease are polled alike).
pub const LOCK_POLL_MS: f64 = 100.0;
/// After taking the lock, how long to wait for the broadcast of a refresh another tab already
/// finished (storage counts its generation before its message arrives).
pub const ADOPT_WAIT_MS: f64 = 2_000.0;
/// Poll period of that wait (the news itself arrives by message or storage, any moment).
pub const ADOPT_POLL_MS: f64 = 20.0;
/// How long a tab that refreshed keeps the lock after its storage write and broadcast, so that
/// both reach tabs in other processes before any of them can take the lock.
pub const SETTLE_MS: f64 = 250.0;
/// Period of the wall-clock check that catches timers a sleeping or hidden tab never fired.
pub const WALL_CHECK_MS: f64 = 15_000.0;

/// The browser, as the engine sees it.
#[derive(Clone)]
pub struct Ports {
    /// Wall clock.
    pub clock: Rc<dyn Clock>,
    /// Timers.
    pub sleeper: Rc<dyn Sleeper>,
    /// Background tasks.
    pub spawner: Rc<dyn Spawner>,
    /// Web storage.
    pub storage: Rc<dyn KeyValueStore>,
    /// HTTP.
    pub transport: Rc<dyn Transport>,
    /// Messages to the other tabs.
    pub tabs: Rc<dyn CrossTab>,
    /// Cross-tab refresh lock.
    pub lock: Rc<dyn TabLock>,
    /// Jitter source.
    pub random: Rc<dyn Random>,
}

/// Why the engine was woken outside its own timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WakeReason {
    /// The page became visible.
    Visible,
    /// The window got focus.
    Focus,
}

/// Counters for the inspector and the tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EngineStats {
    /// Refresh requests this tab sent.
    pub refresh_requests: u32,
    /// Tokens adopted from other tabs.
    pub adopted: u32,
}

type RefreshResult = Result<u64, FailureKind>;
type SharedRefresh = Shared<LocalBoxFuture<'static, RefreshResult>>;

/// The shell's handles on work in progress (not decision state).
#[derive(Default)]
struct Flight {
    /// The refresh in flight: its sequence number, the epoch it started under, the future.
    inflight: Option<(u64, u64, SharedRefresh)>,
    seq: u64,
    /// The restore on load, which requests wait for.
    restore: Option<Shared<LocalBoxFuture<'static, ()>>>,
    /// Identity of the armed timer; bumping it voids the one armed before.
    schedule_seq: u64,
    /// OpenID Connect: the revocation of the refresh token that just ended, which the
    /// provider's end-session redirect waits for.
    signout: Option<Shared<LocalBoxFuture<'static, ()>>>,
}

struct Inner {
    cfg: AppConfig,
    tab_id: String,
    ports: Ports,
    bus: Rc<EventBus>,
    changes: Rc<ChangeNotifier>,
    st: RefCell<State>,
    flight: RefCell<Flight>,
    started: Cell<bool>,
    /// Backend for frontend: how the server signs users in, once a 401 of it said.
    login_kind: Cell<Option<LoginKind>>,
    /// Backend for frontend: the next sign-out at the server ends every session of the user.
    end_everywhere: Cell<bool>,
    /// Backend for frontend: the provider's end-session URL the last sign-out answered.
    end_session_url: RefCell<Option<String>>,
}

/// A cheap, clonable handle to the tab's engine.
#[derive(Clone)]
pub struct Engine(Rc<Inner>);

/// A weak handle, for listeners stored inside the engine (avoids an `Rc` cycle).
#[derive(Clone)]
pub struct WeakEngine(Weak<Inner>);

impl WeakEngine {
    /// The engine, if it is still alive.
    pub fn upgrade(&self) -> Option<Engine> {
        self.0.upgrade().map(Engine)
    }
}

impl PartialEq for Engine {
    fn eq(&self, other: &Self) -> bool {
        Rc::ptr_eq(&self.0, &other.0)
    }
}

impl Engine {
    /// Builds an engine; nothing happens until [`Engine::start`].
    pub fn new(cfg: AppConfig, tab_id: impl Into<String>, ports: Ports) -> Engine {
        let tab_id = tab_id.into();
        Engine(Rc::new(Inner {
            st: RefCell::new(State::new(state::Tab {
                id: tab_id.clone(),
                compat: cfg.storage_mode == StorageMode::Compat,
                margin_cap: cfg.refresh_margin_secs.map(|s| s * 1000.0),
                bff: cfg.bff(),
            })),
            cfg,
            tab_id,
            ports,
            bus: EventBus::new(),
            changes: ChangeNotifier::new(),
            flight: RefCell::new(Flight::default()),
            started: Cell::new(false),
            login_kind: Cell::new(None),
            end_everywhere: Cell::new(false),
            end_session_url: RefCell::new(None),
        }))
    }

    /// Connects the cross-tab channel, restores the session from storage or the cookie, and
    /// starts the wall-clock check.
    pub fn start(&self) {
        let inner = &self.0;
        if inner.started.replace(true) {
            return;
        }
        let weak = Rc::downgrade(inner);
        inner.ports.tabs.set_receiver(Box::new(move |msg| {
            if let Some(inner) = weak.upgrade() {
                inner.on_tab_message(msg);
            }
        }));
        inner.restore();
        Inner::spawn_wall_check(Rc::downgrade(inner));
    }

    /// A weak handle to this engine.
    pub fn downgrade(&self) -> WeakEngine {
        WeakEngine(Rc::downgrade(&self.0))
    }

    // ---- reading -------------------------------------------------------------------------

    /// Session status.
    pub fn status(&self) -> SessionStatus {
        self.0.st.borrow().status()
    }
    /// The signed-in user.
    pub fn user(&self) -> Option<UserInfo> {
        self.0.st.borrow().token().map(|t| t.user.clone())
    }
    /// Offline, or refreshes failing transiently.
    pub fn is_degraded(&self) -> bool {
        self.0.st.borrow().degraded()
    }
    /// The current token's timeline.
    pub fn timeline(&self) -> Option<Timeline> {
        self.0.st.borrow().token().and_then(|t| t.timeline.clone())
    }
    /// `"cookie"`, `"storage"` or (OpenID Connect, kept in storage too) `"provider"`.
    pub fn transport_name(&self) -> &'static str {
        match self.0.cfg.storage_mode {
            _ if self.0.cfg.oidc() => "provider",
            _ if self.0.cfg.bff() => "server (backend for frontend)",
            StorageMode::Cookie => "cookie",
            StorageMode::Compat => "storage",
        }
    }
    /// This tab's id.
    pub fn tab_id(&self) -> String {
        self.0.tab_id.clone()
    }
    /// The tab holding the cross-tab refresh lock, if any.
    pub fn lock_holder(&self) -> Option<String> {
        self.0.ports.lock.holder(self.0.now())
    }
    /// A sentence explaining the last sign-out, for the login page.
    pub fn message(&self) -> Option<String> {
        self.0.st.borrow().message().map(str::to_owned)
    }
    /// Generation of the token in use (0 = none yet).
    pub fn generation(&self) -> u64 {
        self.0.st.borrow().token().map_or(0, |t| t.generation)
    }
    /// Counters.
    pub fn stats(&self) -> EngineStats {
        self.0.st.borrow().stats.clone()
    }
    /// The configuration the engine runs with.
    pub fn config(&self) -> &AppConfig {
        &self.0.cfg
    }
    /// The event bus.
    pub fn bus(&self) -> Rc<EventBus> {
        self.0.bus.clone()
    }
    /// Subscribes to session events until the handle drops.
    pub fn subscribe(&self, f: impl Fn(f64, &SessionEvent) + 'static) -> Subscription {
        self.0.bus.subscribe(f)
    }
    /// Calls `f` after any state change until the handle drops.
    pub fn on_change(&self, f: impl Fn() + 'static) -> ChangeSubscription {
        self.0.changes.subscribe(f)
    }
    /// Browser wall-clock now.
    pub fn now_ms(&self) -> f64 {
        self.0.now()
    }
    /// Whether the current session was signed in with "remember me" (it outlives the browser):
    /// compat mode by the `user` object's area, cookie mode by storage's flag.
    pub fn remembered(&self) -> bool {
        let area = self.0.st.borrow().token().and_then(|t| t.area);
        match area {
            Some(area) => area == super::ports::Area::Local,
            None => !persist::not_remembered(&*self.0.ports.storage),
        }
    }

    // ---- verbs ---------------------------------------------------------------------------

    /// Signs out here, on the server (best effort: the tutorial's backend has no endpoint) and in
    /// every other tab.
    pub fn logout(&self) {
        let tell = Tell {
            server: true,
            tabs: true,
        };
        self.0.end(LogoutReason::UserAction, tell);
    }

    /// The server already ended this session (sign-out everywhere, account deleted): ends it
    /// here and in every other tab with `reason`, without a sign-out request of its own.
    pub fn ended_on_server(&self, reason: LogoutReason) {
        let tell = Tell {
            server: false,
            tabs: true,
        };
        self.0.end(reason, tell);
    }

    /// Refreshes now, whatever the schedule says (joins one already in flight).
    pub async fn refresh(&self) -> Result<(), FailureKind> {
        let base = self.generation();
        // A manual refresh is the user saying "try now": skip the backoff wait.
        self.0.st.borrow_mut().skip_backoff();
        Inner::refresh_from(&self.0, base).await.map(|_| ())
    }

    /// Re-checks the schedule against the wall clock (visibility, focus).
    pub fn wake(&self, _reason: WakeReason) {
        if self.0.cfg.bff() {
            return self.bff_wake();
        }
        Inner::tick(&self.0);
    }

    /// The browser's online state changed. Offline pauses proactive refreshes and shows the
    /// session as degraded; online resumes at once (the backoff wait is skipped).
    pub fn set_online(&self, online: bool) {
        let effects = schedule::set_online(&mut self.0.st.borrow_mut(), online);
        self.0.run(effects);
        if online {
            Inner::tick(&self.0);
        }
    }
}

impl Inner {
    fn now(&self) -> f64 {
        self.ports.clock.now_ms()
    }

    fn cookie_mode(&self) -> bool {
        self.cfg.storage_mode == StorageMode::Cookie
    }

    fn post(&self, path: &str, body: String) -> HttpRequest {
        let mut req = HttpRequest::new(Method::Post, self.cfg.url(path));
        req.headers
            .push(("content-type".into(), "application/json".into()));
        req.body = Some(body);
        req
    }

    /// A POST that carries or clears the refresh token (sign-in, refresh, sign-out). In cookie
    /// mode it asks for the cookie transport, and `browser_session` (remember me off) asks that
    /// the cookie end with the browser.
    fn token_post(&self, path: &str, body: String, browser_session: bool) -> HttpRequest {
        let mut req = self.post(path, body);
        if self.cookie_mode() {
            let h = &mut req.headers;
            h.push((
                headers::REFRESH_TRANSPORT.into(),
                headers::REFRESH_TRANSPORT_COOKIE.into(),
            ));
            if browser_session {
                h.push((
                    headers::REFRESH_PERSIST.into(),
                    headers::REFRESH_PERSIST_SESSION.into(),
                ));
            }
        }
        req
    }

    /// Ends the session (see `logout::end`).
    fn end(self: &Rc<Self>, reason: LogoutReason, tell: Tell) {
        let effects = logout::end(&mut self.st.borrow_mut(), reason, None, tell);
        self.run(effects);
    }

    /// Carries out a transition's effects, in order, then tells the UI the state changed. The
    /// state is not borrowed meanwhile: listeners may call back into the engine.
    fn run(self: &Rc<Self>, effects: Vec<Effect>) {
        for effect in effects {
            match effect {
                Effect::Emit(ev) => self.bus.emit(self.now(), &ev),
                Effect::Broadcast(msg) => self.ports.tabs.post(&msg),
                Effect::Save(save) => persist::write(&*self.ports.storage, &save),
                Effect::SignOutOnServer(token) => self.sign_out_on_server(token.as_ref()),
                Effect::Reschedule => self.reschedule(),
            }
        }
        self.changes.notify();
    }
}
