//! The session engine: one per tab. It owns the token (in memory), decides when to refresh,
//! makes sure at most one refresh runs (in this tab: a shared in-flight future; across tabs: the
//! lease lock plus adoption of broadcast tokens), classifies failures and publishes every change
//! on the event bus.
//!
//! Generations: every token the engine starts using gets a generation number, shared and
//! monotonic across tabs (`max(seen, stored) + 1`). "Sent with an older token" means "sent under
//! an older generation" — never a token-string comparison, because the tutorial's backend returns
//! byte-identical tokens for two sign-ins in the same second.
//!
//! Epochs: every sign-in and sign-out bumps the epoch; an async result (refresh answer) that
//! started under another epoch is dropped, so a refresh racing a logout cannot sign the user back
//! in.

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use futures::future::{FutureExt, LocalBoxFuture, Shared};

use api_types::{headers, paths, MessageResponse, RefreshRequest, SigninRequest, SigninResponse};

use super::claims::read_claims;
use super::error::{classify_refresh_status, error_message, map_status, ClientError, FailureKind};
use super::events::{ChangeNotifier, ChangeSubscription, EventBus, SessionEvent, Subscription};
use super::persist::{id_string, id_value, keys, parse_profile, StoredUser};
use super::policy::{self, TokenTiming};
use super::ports::{
    Area, Clock, CrossTab, HttpRequest, HttpResponse, KeyValueStore, Method, Random, Sleeper,
    Spawner, TabLock, Transport,
};
use super::tabs::TabMessage;
use super::time::parse_http_date;
use super::types::{LogoutReason, SessionStatus, Timeline, UserInfo};
use crate::config::{AppConfig, StorageMode, TokenHeader};

/// How long a tab starting without a session waits for an open tab to offer one (compat mode).
pub const OFFER_WAIT_MS: f64 = 300.0;
/// How long a tab may hold the cross-tab refresh lock before others may proceed without it.
/// Longer than a refresh request may take (the browser transport times out at 10 s), so a live
/// holder is never overtaken.
pub const LEASE_MS: f64 = 15_000.0;
/// Poll period while waiting for the lock (Web Locks and the storage lease are polled alike).
pub const LOCK_POLL_MS: f64 = 100.0;
/// After taking the lock, how long to wait for the broadcast of a refresh another tab already
/// finished (its generation is visible in storage before its message arrives).
pub const ADOPT_WAIT_MS: f64 = 2_000.0;
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
    /// The periodic wall-clock check (possibly after a sleep jump).
    WallClock,
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

/// A token another tab obtained (or this tab's storage holds), to adopt instead of refreshing.
struct News {
    generation: u64,
    access: String,
    timeline: Option<Timeline>,
    user: UserInfo,
    /// A sign-in (signed-out tabs adopt only these).
    login: bool,
    /// Compat mode: the refresh token that goes with it.
    refresh_token: Option<String>,
    /// Compat mode: the sender keeps the session in its own sessionStorage.
    session_only: bool,
}

/// The token in use.
#[derive(Debug, Clone)]
struct Active {
    access: String,
    /// Compat mode only; in cookie mode the refresh token never reaches script.
    refresh: Option<String>,
    generation: u64,
    timeline: Option<Timeline>,
    obtained_at: f64,
    user: UserInfo,
    /// Compat mode: where the `user` object lives. `Session` = "remember me" off: a tab-only
    /// session that is neither broadcast nor affected by other tabs.
    area: Option<Area>,
}

struct State {
    status: SessionStatus,
    active: Option<Active>,
    /// Highest generation this tab has used or seen.
    generation: u64,
    epoch: u64,
    online: bool,
    degraded: bool,
    failures: u32,
    /// Unexpected answers to refreshes since the last success (see `is_unexpected_answer`).
    unexpected: u32,
    next_retry_at: Option<f64>,
    last_failure: Option<FailureKind>,
    message: Option<String>,
    schedule_seq: u64,
    clock_offset: f64,
    /// Set while applying another tab's news, so the broadcaster does not echo it back.
    adopting: bool,
    inflight: Option<(u64, SharedRefresh)>,
    inflight_seq: u64,
    restore: Option<Shared<LocalBoxFuture<'static, ()>>>,
    stats: EngineStats,
}

struct Inner {
    cfg: AppConfig,
    tab_id: String,
    ports: Ports,
    bus: Rc<EventBus>,
    changes: Rc<ChangeNotifier>,
    st: RefCell<State>,
    subs: RefCell<Vec<Subscription>>,
    started: std::cell::Cell<bool>,
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
        Engine(Rc::new(Inner {
            cfg,
            tab_id: tab_id.into(),
            ports,
            bus: EventBus::new(),
            changes: ChangeNotifier::new(),
            st: RefCell::new(State {
                status: SessionStatus::Restoring,
                active: None,
                generation: 0,
                epoch: 0,
                online: true,
                degraded: false,
                failures: 0,
                unexpected: 0,
                next_retry_at: None,
                last_failure: None,
                message: None,
                schedule_seq: 0,
                clock_offset: 0.0,
                adopting: false,
                inflight: None,
                inflight_seq: 0,
                restore: None,
                stats: EngineStats::default(),
            }),
            subs: RefCell::new(Vec::new()),
            started: std::cell::Cell::new(false),
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
        // Cross-tab sync is a bus subscriber like the UI: whatever this tab decides is
        // published once and mirrored to the other tabs from here.
        let weak = Rc::downgrade(inner);
        let sub = inner.bus.subscribe(move |_, ev| {
            if let Some(inner) = weak.upgrade() {
                inner.broadcast(ev);
            }
        });
        inner.subs.borrow_mut().push(sub);
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
        self.0.st.borrow().status.clone()
    }
    /// The signed-in user.
    pub fn user(&self) -> Option<UserInfo> {
        self.0.st.borrow().active.as_ref().map(|a| a.user.clone())
    }
    /// Offline, or refreshes failing transiently.
    pub fn is_degraded(&self) -> bool {
        let st = self.0.st.borrow();
        st.degraded || !st.online
    }
    /// The current token's timeline.
    pub fn timeline(&self) -> Option<Timeline> {
        self.0
            .st
            .borrow()
            .active
            .as_ref()
            .and_then(|a| a.timeline.clone())
    }
    /// `"cookie"` or `"storage"`.
    pub fn transport_name(&self) -> &'static str {
        match self.0.cfg.storage_mode {
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
        self.0.st.borrow().message.clone()
    }
    /// Generation of the token in use (0 = none yet).
    pub fn generation(&self) -> u64 {
        self.0
            .st
            .borrow()
            .active
            .as_ref()
            .map_or(0, |a| a.generation)
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
    /// Whether the current session was signed in with "remember me" (it outlives the browser).
    pub fn remembered(&self) -> bool {
        self.0.remembered(self.0.st.borrow().active.as_ref())
    }

    // ---- verbs ---------------------------------------------------------------------------

    /// Signs in. `remember` chooses persistent (localStorage) or tab-only (sessionStorage)
    /// storage in compat mode and for the cookie mode's profile hint.
    pub async fn login(
        &self,
        username: String,
        password: String,
        remember: bool,
    ) -> Result<(), ClientError> {
        let inner = self.0.clone();
        let body = serde_json::to_string(&SigninRequest { username, password })
            .map_err(|e| ClientError::Decode(e.to_string()))?;
        let mut req = inner.post(paths::SIGNIN, body);
        if inner.cookie_mode() {
            req.headers.push((
                headers::REFRESH_TRANSPORT.into(),
                headers::REFRESH_TRANSPORT_COOKIE.into(),
            ));
            if !remember {
                // Not remembered: the HttpOnly cookie must not outlive the browser session.
                req.headers.push((
                    headers::REFRESH_PERSIST.into(),
                    headers::REFRESH_PERSIST_SESSION.into(),
                ));
            }
        }
        let sent_at = inner.now();
        let resp = inner.ports.transport.send(req).await?;
        let received_at = inner.now();
        if !(200..300).contains(&resp.status) {
            return Err(auth_error(&resp));
        }
        let signin: SigninResponse =
            serde_json::from_str(&resp.body).map_err(|e| ClientError::Decode(e.to_string()))?;
        if !inner.cookie_mode() && signin.refresh_token.is_none() {
            return Err(ClientError::Decode(
                "sign-in answer carries no refresh token (is the server in cookie mode?)".into(),
            ));
        }
        let facts =
            read_claims(&signin.access_token).map_err(|e| ClientError::Decode(e.to_string()))?;
        let timing = TokenTiming {
            sent_at_ms: sent_at,
            received_at_ms: received_at,
            date_header_ms: resp.header("date").and_then(parse_http_date),
            iat_ms: facts.iat_ms,
            exp_ms: facts.exp_ms,
            expires_in_s: signin.expires_in,
            refresh_expires_in_s: signin.refresh_expires_in,
        };
        let mut roles = signin.roles.clone();
        if roles.is_empty() {
            roles = facts.custom.roles.clone();
        }
        let user = UserInfo {
            id: id_string(&signin.id),
            username: signin.username.clone(),
            email: signin.email.clone(),
            roles,
        };
        let area =
            (!inner.cookie_mode()).then_some(if remember { Area::Local } else { Area::Session });
        {
            let mut st = inner.st.borrow_mut();
            // Anything still in flight belongs to the previous session.
            st.epoch += 1;
            st.inflight = None;
        }
        inner.install(
            signin.access_token,
            signin.refresh_token,
            user,
            &timing,
            area,
            remember,
            true,
        );
        Ok(())
    }

    /// Registers a user; `Ok` carries the server's message.
    pub async fn register(&self, req: api_types::SignupRequest) -> Result<String, ClientError> {
        let inner = self.0.clone();
        let body = serde_json::to_string(&req).map_err(|e| ClientError::Decode(e.to_string()))?;
        let resp = inner
            .ports
            .transport
            .send(inner.post(paths::SIGNUP, body))
            .await?;
        if !(200..300).contains(&resp.status) {
            return Err(auth_error(&resp));
        }
        Ok(serde_json::from_str::<MessageResponse>(&resp.body)
            .map(|m| m.message)
            .unwrap_or_else(|_| error_message(&resp.body)))
    }

    /// Signs out here, on the server (best effort: the tutorial's backend has no endpoint) and in
    /// every other tab.
    pub fn logout(&self) {
        self.0
            .end_session(LogoutReason::UserAction, true, true, None);
    }

    /// Refreshes now, whatever the schedule says (joins one already in flight).
    pub async fn refresh(&self) -> Result<(), FailureKind> {
        let base = self.generation();
        {
            // A manual refresh is the user saying "try now": skip the backoff wait.
            self.0.st.borrow_mut().next_retry_at = None;
        }
        Inner::refresh_from(&self.0, base).await.map(|_| ())
    }

    /// Re-checks the schedule against the wall clock (visibility, focus, periodic check).
    pub fn wake(&self, _reason: WakeReason) {
        Inner::tick(&self.0);
    }

    /// The browser's online state changed. Offline pauses proactive refreshes and shows the
    /// session as degraded; online resumes at once (the backoff wait is skipped).
    pub fn set_online(&self, online: bool) {
        let inner = &self.0;
        let now = inner.now();
        let mut events = Vec::new();
        {
            let mut st = inner.st.borrow_mut();
            if st.online == online {
                return;
            }
            st.online = online;
            if !online && !st.degraded {
                st.degraded = true;
                events.push(SessionEvent::Degraded);
            }
            if online {
                st.next_retry_at = None;
                if st.degraded && st.failures == 0 {
                    st.degraded = false;
                    events.push(SessionEvent::Recovered);
                }
            }
        }
        for ev in &events {
            inner.bus.emit(now, ev);
        }
        inner.changes.notify();
        if online {
            Inner::tick(inner);
        }
    }

    // ---- for the interceptor -------------------------------------------------------------

    /// The token to send with a request and its generation, refreshing first when it is expired
    /// or about to be. `None` when signed out (the request goes without a token).
    pub async fn access_for_request(&self) -> Result<Option<(String, u64)>, ClientError> {
        let inner = &self.0;
        let restore = inner.st.borrow().restore.clone();
        if let Some(r) = restore {
            r.await;
        }
        let (due, gen, last_failure, in_backoff) = {
            let st = inner.st.borrow();
            if st.status == SessionStatus::Restoring {
                return Err(st
                    .last_failure
                    .as_ref()
                    .map_or(ClientError::Network, |k| k.to_client_error()));
            }
            let Some(a) = &st.active else {
                return Ok(None);
            };
            let now = inner.now();
            let due = a
                .timeline
                .as_ref()
                .is_some_and(|tl| policy::must_refresh_before_send(tl, a.obtained_at, now));
            (
                due,
                a.generation,
                st.last_failure.clone(),
                st.next_retry_at.is_some_and(|r| now < r),
            )
        };
        if due {
            if in_backoff && self.0.st.borrow().inflight.is_none() {
                // The server asked us to wait (or is down): do not hammer it, fail fast.
                return Err(last_failure.map_or(ClientError::Network, |k| k.to_client_error()));
            }
            Inner::refresh_from(inner, gen)
                .await
                .map_err(|k| k.to_client_error())?;
        }
        Ok(inner.current())
    }

    /// After a 401 for a request sent under generation `sent_gen`: the token to retry with.
    /// A newer generation already exists -> replay with it, no refresh; otherwise join or start
    /// the single refresh.
    pub async fn token_after_401(&self, sent_gen: u64) -> Result<(String, u64), ClientError> {
        let inner = &self.0;
        match inner.current() {
            None => return Err(ClientError::SignedOut),
            Some((tok, gen)) if gen > sent_gen => return Ok((tok, gen)),
            Some(_) => {}
        }
        Inner::refresh_from(inner, sent_gen)
            .await
            .map_err(|k| k.to_client_error())?;
        inner.current().ok_or(ClientError::SignedOut)
    }

    /// The retried request got 401 again: one clean logout (unless a newer token has appeared
    /// meanwhile, in which case this call just fails).
    pub fn retried_401(&self, retried_gen: u64) {
        if self.generation() == retried_gen {
            self.0
                .end_session(LogoutReason::TokenRejected, false, true, None);
        }
    }

    /// Sends a request through the engine's transport (used by the interceptor).
    pub fn send(
        &self,
        req: HttpRequest,
    ) -> LocalBoxFuture<'static, Result<HttpResponse, super::ports::TransportError>> {
        self.0.ports.transport.send(req)
    }

    /// Attaches the access token to `req` the configured way (`x-access-token` or Bearer).
    pub fn authorize(&self, mut req: HttpRequest, token: &str) -> HttpRequest {
        match self.0.cfg.token_header {
            TokenHeader::XAccessToken => req
                .headers
                .push((headers::ACCESS_TOKEN.into(), token.to_string())),
            TokenHeader::Bearer => req
                .headers
                .push(("authorization".into(), format!("Bearer {token}"))),
        }
        req
    }
}

/// Sign-in/sign-up errors keep the server's words: a 401/404 there means "wrong password" or
/// "unknown user", not "session over".
fn auth_error(resp: &HttpResponse) -> ClientError {
    match resp.status {
        400..=499 if resp.status != 429 => ClientError::Http {
            status: resp.status,
            message: error_message(&resp.body),
        },
        _ => map_status(resp),
    }
}

impl Inner {
    fn now(&self) -> f64 {
        self.ports.clock.now_ms()
    }

    fn cookie_mode(&self) -> bool {
        self.cfg.storage_mode == StorageMode::Cookie
    }

    fn current(&self) -> Option<(String, u64)> {
        self.st
            .borrow()
            .active
            .as_ref()
            .map(|a| (a.access.clone(), a.generation))
    }

    fn post(&self, path: &str, body: String) -> HttpRequest {
        let mut req = HttpRequest::new(Method::Post, self.cfg.url(path));
        req.headers
            .push(("content-type".into(), "application/json".into()));
        req.body = Some(body);
        req
    }

    fn stored_generation(&self) -> u64 {
        self.ports
            .storage
            .get(Area::Local, keys::GENERATION)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    fn emit(&self, ev: SessionEvent) {
        self.bus.emit(self.now(), &ev);
    }

    // ---- restore ---------------------------------------------------------------------------

    fn restore(self: &Rc<Self>) {
        match self.cfg.storage_mode {
            StorageMode::Compat => self.restore_compat(),
            StorageMode::Cookie => self.restore_cookie(),
        }
    }

    fn corrupt(self: &Rc<Self>, detail: String) {
        for area in [Area::Local, Area::Session] {
            self.ports.storage.remove(area, keys::USER);
        }
        self.forget_profile();
        {
            let mut st = self.st.borrow_mut();
            st.status = SessionStatus::SignedOut {
                reason: Some(LogoutReason::CorruptStorage),
            };
            st.message = Some(format!(
                "{} ({detail})",
                LogoutReason::CorruptStorage.describe()
            ));
        }
        self.changes.notify();
    }

    fn signed_out_quietly(&self) {
        self.st.borrow_mut().status = SessionStatus::SignedOut { reason: None };
        self.changes.notify();
    }

    fn restore_compat(self: &Rc<Self>) {
        let found = [Area::Local, Area::Session]
            .into_iter()
            .find_map(|area| self.ports.storage.get(area, keys::USER).map(|v| (area, v)));
        let Some((area, text)) = found else {
            return self.ask_open_tabs();
        };
        let stored = match StoredUser::parse(&text) {
            Ok(s) => s,
            Err(e) => return self.corrupt(e.0),
        };
        let now = self.now();
        let facts = read_claims(&stored.access_token).ok();
        let timeline = stored.timeline.clone().or_else(|| {
            // A session saved by the tutorial's own client: no timeline of ours. The token is not
            // fresh, so its iat says nothing about the clock offset: assume none, use exp.
            let f = facts.as_ref()?;
            let expires_at = f.exp_ms?;
            let issued_at = f.iat_ms.unwrap_or(now).min(expires_at);
            let margin = policy::margin_ms(
                expires_at - issued_at,
                self.margin_cap(),
                policy::EXP_RESOLUTION_MS,
            );
            Some(Timeline {
                issued_at_ms: issued_at,
                refresh_at_ms: expires_at - margin,
                expires_at_ms: expires_at,
                family_ends_at_ms: None,
                clock_offset_ms: 0.0,
            })
        });
        let generation = stored.generation.unwrap_or(0).max(self.stored_generation());
        {
            let mut st = self.st.borrow_mut();
            st.generation = st.generation.max(generation);
            st.clock_offset = timeline.as_ref().map_or(0.0, |t| t.clock_offset_ms);
            st.active = Some(Active {
                access: stored.access_token.clone(),
                refresh: stored.refresh_token.clone(),
                generation,
                timeline,
                // Restored, not obtained now: a token that is already stale may refresh at once.
                obtained_at: f64::NEG_INFINITY,
                user: stored.user_info(),
                area: Some(area),
            });
            st.status = SessionStatus::SignedIn;
        }
        self.changes.notify();
        Inner::reschedule(self);
    }

    /// Cookie mode: whether the session being kept was signed in with "remember me" off. Such
    /// a session ends with the browser, never with a tab: its profile sits in localStorage
    /// like a remembered one (every tab sees it), flagged, and counts only while the
    /// browser-session marker is there. (A profile in sessionStorage was written by an older
    /// version for the same purpose.)
    fn not_remembered(&self) -> bool {
        let st = &self.ports.storage;
        st.get(Area::Local, keys::NOT_REMEMBERED).is_some()
            || st.get(Area::Session, keys::PROFILE).is_some()
    }

    /// Whether the session `a` (or, before one is active, the one storage describes) was signed
    /// in with "remember me": compat mode by the `user` object's area, cookie mode by the flag.
    fn remembered(&self, a: Option<&Active>) -> bool {
        match a.and_then(|a| a.area) {
            Some(area) => area == Area::Local,
            None => !self.not_remembered(),
        }
    }

    fn forget_profile(&self) {
        let st = &self.ports.storage;
        st.remove(Area::Local, keys::PROFILE);
        st.remove(Area::Session, keys::PROFILE);
        st.remove(Area::Local, keys::NOT_REMEMBERED);
        st.remove(Area::BrowserSession, keys::BROWSER_SESSION);
    }

    /// Compat mode, nothing in this tab's storage: a session that is not remembered lives only in
    /// the sessionStorage of the tabs that have it, so ask them; one that answers within
    /// `OFFER_WAIT_MS` shares it (adopted like any broadcast token), else this tab is signed out.
    fn ask_open_tabs(self: &Rc<Self>) {
        self.ports.tabs.post(&TabMessage::SessionWanted {
            from: self.tab_id.clone(),
        });
        let inner = self.clone();
        self.ports.spawner.spawn(Box::pin(async move {
            inner.ports.sleeper.sleep(OFFER_WAIT_MS).await;
            let waiting = {
                let st = inner.st.borrow();
                st.status == SessionStatus::Restoring && st.active.is_none()
            };
            if waiting {
                inner.signed_out_quietly();
            }
        }));
    }

    fn restore_cookie(self: &Rc<Self>) {
        let storage = &self.ports.storage;
        let found = [Area::Local, Area::Session]
            .into_iter()
            .find_map(|area| storage.get(area, keys::PROFILE).map(|t| (area, t)));
        let Some((area, text)) = found else {
            // Nobody signed in from this browser (or they signed out): no silent refresh, so an
            // anonymous visit costs no request.
            return self.signed_out_quietly();
        };
        if area == Area::Local
            && storage.get(Area::Local, keys::NOT_REMEMBERED).is_some()
            && storage
                .get(Area::BrowserSession, keys::BROWSER_SESSION)
                .is_none()
        {
            // Not remembered, and the browser was closed since: that session ended with it
            // (its refresh cookie is gone too). Nothing to ask the server.
            self.forget_profile();
            return self.signed_out_quietly();
        }
        if let Err(e) = parse_profile(&text) {
            return self.corrupt(e.0);
        }
        let base = self.stored_generation();
        {
            let mut st = self.st.borrow_mut();
            st.generation = st.generation.max(base);
        }
        let inner = self.clone();
        let fut = async move {
            let _ = Inner::refresh_from(&inner, base).await;
        }
        .boxed_local()
        .shared();
        self.st.borrow_mut().restore = Some(fut.clone());
        self.ports.spawner.spawn(Box::pin(fut));
    }

    fn margin_cap(&self) -> Option<f64> {
        self.cfg.refresh_margin_secs.map(|s| s * 1000.0)
    }

    // ---- refresh ---------------------------------------------------------------------------

    /// Single-flight: a newer generation than `base` already in use -> done; a refresh in flight
    /// -> join it; else start one.
    fn refresh_from(self: &Rc<Self>, base: u64) -> LocalBoxFuture<'static, RefreshResult> {
        let mut st = self.st.borrow_mut();
        if let Some(a) = &st.active {
            if a.generation > base {
                return futures::future::ready(Ok(a.generation)).boxed_local();
            }
        } else if st.status != SessionStatus::Restoring {
            return futures::future::ready(Err(FailureKind::NoSession)).boxed_local();
        }
        if let Some((_, f)) = &st.inflight {
            return f.clone().boxed_local();
        }
        st.inflight_seq += 1;
        let seq = st.inflight_seq;
        let epoch = st.epoch;
        let inner = self.clone();
        let fut = async move {
            let r = Inner::run_refresh(&inner, base, epoch).await;
            let mut st = inner.st.borrow_mut();
            if st.inflight.as_ref().is_some_and(|(s, _)| *s == seq) {
                st.inflight = None;
            }
            r
        }
        .boxed_local()
        .shared();
        st.inflight = Some((seq, fut.clone()));
        drop(st);
        fut.boxed_local()
    }

    fn adopted_since(&self, base: u64) -> Option<u64> {
        self.st
            .borrow()
            .active
            .as_ref()
            .filter(|a| a.generation > base)
            .map(|a| a.generation)
    }

    async fn run_refresh(self: &Rc<Self>, base: u64, epoch: u64) -> RefreshResult {
        let start = self.now();
        let mut locked = false;
        loop {
            if let Some(g) = self.adopted_since(base) {
                return Ok(g);
            }
            if self.st.borrow().epoch != epoch {
                return Err(FailureKind::NoSession);
            }
            if self
                .ports
                .lock
                .try_acquire(&self.tab_id, self.now(), LEASE_MS)
                .await
            {
                locked = true;
                break;
            }
            if self.now() - start >= LEASE_MS {
                // The holder's lease ran out (tab frozen or killed mid-refresh): go on without.
                break;
            }
            self.ports.sleeper.sleep(LOCK_POLL_MS).await;
        }
        self.changes.notify();
        // Another tab may have refreshed just before we got the lock; its broadcast can still be
        // on its way. Adopt instead of spending (and, with rotation, burning) the refresh token.
        if self.stored_generation() > base.max(self.st.borrow().generation) {
            if !self.cookie_mode() {
                self.adopt_from_storage();
            }
            let wait_start = self.now();
            while self.adopted_since(base).is_none() && self.now() - wait_start < ADOPT_WAIT_MS {
                self.ports.sleeper.sleep(LOCK_POLL_MS).await;
            }
            if let Some(g) = self.adopted_since(base) {
                if locked {
                    self.ports.lock.release(&self.tab_id);
                }
                self.changes.notify();
                return Ok(g);
            }
        }
        let result = self.send_refresh().await;
        // Apply (and broadcast) before releasing, so a tab waiting for the lock finds the news.
        let result = self.apply_refresh(result, epoch);
        if locked {
            self.ports.lock.release(&self.tab_id);
        }
        self.changes.notify();
        result
    }

    async fn send_refresh(
        self: &Rc<Self>,
    ) -> Result<(api_types::RefreshResponse, TokenTiming), FailureKind> {
        let refresh_token = if self.cookie_mode() {
            None
        } else {
            // Storage is the source of truth in compat mode: another tab may have rotated it.
            let area = self
                .st
                .borrow()
                .active
                .as_ref()
                .and_then(|a| a.area)
                .unwrap_or(Area::Local);
            let from_storage = self
                .ports
                .storage
                .get(area, keys::USER)
                .and_then(|t| StoredUser::parse(&t).ok())
                .and_then(|u| u.refresh_token);
            let t = from_storage.or_else(|| {
                self.st
                    .borrow()
                    .active
                    .as_ref()
                    .and_then(|a| a.refresh.clone())
            });
            if t.is_none() {
                return Err(FailureKind::NoSession);
            }
            t
        };
        let body = serde_json::to_string(&RefreshRequest { refresh_token }).unwrap_or_default();
        let mut req = self.post(paths::REFRESH, body);
        if self.cookie_mode() {
            req.headers.push((
                headers::REFRESH_TRANSPORT.into(),
                headers::REFRESH_TRANSPORT_COOKIE.into(),
            ));
            // "Remember me" off: the rotated cookie stays a browser-session cookie.
            if self.not_remembered() {
                req.headers.push((
                    headers::REFRESH_PERSIST.into(),
                    headers::REFRESH_PERSIST_SESSION.into(),
                ));
            }
        }
        self.st.borrow_mut().stats.refresh_requests += 1;
        let sent_at = self.now();
        let resp = self.ports.transport.send(req).await?;
        let received_at = self.now();
        let date = resp.header("date").and_then(parse_http_date);
        if !(200..300).contains(&resp.status) {
            let offset = self.st.borrow().clock_offset;
            let server_now = date.unwrap_or(received_at + offset);
            return Err(classify_refresh_status(&resp, server_now));
        }
        let parsed: api_types::RefreshResponse =
            serde_json::from_str(&resp.body).map_err(|_| FailureKind::Decode)?;
        let facts = read_claims(&parsed.access_token).map_err(|_| FailureKind::Decode)?;
        Ok((
            parsed.clone(),
            TokenTiming {
                sent_at_ms: sent_at,
                received_at_ms: received_at,
                date_header_ms: date,
                iat_ms: facts.iat_ms,
                exp_ms: facts.exp_ms,
                expires_in_s: parsed.expires_in,
                refresh_expires_in_s: parsed.refresh_expires_in,
            },
        ))
    }

    fn apply_refresh(
        self: &Rc<Self>,
        result: Result<(api_types::RefreshResponse, TokenTiming), FailureKind>,
        epoch: u64,
    ) -> RefreshResult {
        if self.st.borrow().epoch != epoch {
            // Signed out (or in again) while this refresh was on the wire: its result is void.
            return Err(FailureKind::NoSession);
        }
        match result {
            Ok((resp, timing)) => {
                let (user, area, remember) = {
                    let st = self.st.borrow();
                    match &st.active {
                        // The session keeps its area and its "remember me" choice.
                        Some(a) => (a.user.clone(), a.area, self.remembered(Some(a))),
                        None => {
                            // Cookie-mode restore: the profile hint says who.
                            let profile = [Area::Local, Area::Session].into_iter().find_map(|ar| {
                                self.ports
                                    .storage
                                    .get(ar, keys::PROFILE)
                                    .and_then(|t| parse_profile(&t).ok())
                            });
                            match profile {
                                Some(p) => (p, None, self.remembered(None)),
                                None => return Err(FailureKind::NoSession),
                            }
                        }
                    }
                };
                let mut user = user;
                if let Ok(f) = read_claims(&resp.access_token) {
                    if !f.custom.roles.is_empty() {
                        user.roles = f.custom.roles;
                    }
                }
                let login = self.st.borrow().status == SessionStatus::Restoring;
                let refresh = resp.refresh_token.clone().or_else(|| {
                    self.st
                        .borrow()
                        .active
                        .as_ref()
                        .and_then(|a| a.refresh.clone())
                });
                let gen = self.install(
                    resp.access_token,
                    refresh,
                    user,
                    &timing,
                    area,
                    remember,
                    login,
                );
                Ok(gen)
            }
            Err(kind)
                if kind.is_transient()
                    && !(kind.is_unexpected_answer()
                        && self.st.borrow().unexpected + 1 >= policy::MAX_UNEXPECTED_ANSWERS) =>
            {
                let now = self.now();
                let mut events = vec![SessionEvent::RefreshFailed(kind.clone())];
                {
                    let mut st = self.st.borrow_mut();
                    st.failures += 1;
                    st.unexpected += u32::from(kind.is_unexpected_answer());
                    let retry_after = match &kind {
                        FailureKind::RateLimited { retry_after_ms } => *retry_after_ms,
                        _ => None,
                    };
                    let delay =
                        policy::backoff_ms(st.failures, self.ports.random.next_f64(), retry_after);
                    st.next_retry_at = Some(now + delay);
                    st.last_failure = Some(kind.clone());
                    if !st.degraded {
                        st.degraded = true;
                        events.push(SessionEvent::Degraded);
                    }
                }
                for ev in events {
                    self.emit(ev);
                }
                Inner::reschedule(self);
                Err(kind)
            }
            Err(FailureKind::NoSession) => Err(FailureKind::NoSession),
            Err(kind) => {
                self.emit(SessionEvent::RefreshFailed(kind.clone()));
                let reason = match &kind {
                    FailureKind::Rejected {
                        code: Some(code), ..
                    } => match code.as_str() {
                        "refresh_token_reused" => LogoutReason::ReuseDetected,
                        "refresh_token_expired" => LogoutReason::Expired,
                        _ if self.family_ended() => LogoutReason::Expired,
                        _ => LogoutReason::RefreshRejected,
                    },
                    // Servers without codes (the tutorial's): read the message.
                    FailureKind::Rejected { message, .. } => {
                        let m = message.to_ascii_lowercase();
                        if m.contains("reuse") || m.contains("revoked") {
                            LogoutReason::ReuseDetected
                        } else if m.contains("expired") || self.family_ended() {
                            LogoutReason::Expired
                        } else {
                            LogoutReason::RefreshRejected
                        }
                    }
                    // Unexpected answers that kept coming (see MAX_UNEXPECTED_ANSWERS).
                    _ => LogoutReason::RefreshRejected,
                };
                self.end_session(reason, false, true, None);
                Err(kind)
            }
        }
    }

    /// Whether the session's absolute end (the server's `refreshExpiresIn`) has passed. The
    /// browser drops the refresh cookie then (its `Max-Age` is the same remaining lifetime), so
    /// the server's refusal says "no refresh token" rather than "expired", though expiry is why.
    fn family_ended(&self) -> bool {
        let now = self.now();
        self.st
            .borrow()
            .active
            .as_ref()
            .and_then(|a| a.timeline.as_ref())
            .and_then(|t| t.family_ends_at_ms)
            .is_some_and(|end| now >= end)
    }

    /// Starts using a new token (sign-in or refresh): new generation, timeline, persistence,
    /// events (the broadcaster mirrors them to the other tabs), schedule.
    #[allow(clippy::too_many_arguments)]
    fn install(
        self: &Rc<Self>,
        access: String,
        refresh: Option<String>,
        user: UserInfo,
        timing: &TokenTiming,
        area: Option<Area>,
        remember: bool,
        login: bool,
    ) -> u64 {
        let shared = area != Some(Area::Session);
        let (generation, was_degraded) = {
            let mut st = self.st.borrow_mut();
            let timeline = policy::timeline(timing, st.clock_offset, self.margin_cap());
            if let Some(tl) = &timeline {
                st.clock_offset = tl.clock_offset_ms;
            }
            let generation = st.generation.max(self.stored_generation()) + 1;
            st.generation = generation;
            st.active = Some(Active {
                access,
                refresh,
                generation,
                timeline,
                obtained_at: timing.received_at_ms,
                user: user.clone(),
                area,
            });
            st.status = SessionStatus::SignedIn;
            st.message = None;
            st.failures = 0;
            st.unexpected = 0;
            st.next_retry_at = None;
            st.last_failure = None;
            let was = st.degraded;
            st.degraded = !st.online;
            (generation, was && st.online)
        };
        let storage = &self.ports.storage;
        if shared {
            storage.set(Area::Local, keys::GENERATION, &generation.to_string());
        }
        match area {
            None => {
                // Cookie mode: a profile hint, never a token.
                // Every tab of the browser shares the session; "remember me" only decides
                // whether it outlives the browser (see `not_remembered`).
                storage.remove(Area::Session, keys::PROFILE);
                if remember {
                    storage.remove(Area::Local, keys::NOT_REMEMBERED);
                    storage.remove(Area::BrowserSession, keys::BROWSER_SESSION);
                } else {
                    storage.set(Area::Local, keys::NOT_REMEMBERED, "1");
                    storage.set(Area::BrowserSession, keys::BROWSER_SESSION, "1");
                }
                if let Ok(text) = serde_json::to_string(&user) {
                    storage.set(Area::Local, keys::PROFILE, &text);
                }
            }
            Some(a) => {
                let other = if a == Area::Local {
                    Area::Session
                } else {
                    Area::Local
                };
                storage.remove(other, keys::USER);
                self.persist_compat();
            }
        }
        if login {
            self.emit(SessionEvent::LoggedIn {
                username: user.username,
            });
        } else {
            self.emit(SessionEvent::Refreshed {
                generation,
                adopted: false,
            });
        }
        if was_degraded {
            self.emit(SessionEvent::Recovered);
        }
        self.changes.notify();
        Inner::reschedule(self);
        generation
    }

    // ---- logout ----------------------------------------------------------------------------

    /// Ends the session once: later calls are no-ops, so the many paths that can end a session
    /// (rejected refresh, retried 401, other tab) produce one logout between them.
    fn end_session(
        self: &Rc<Self>,
        reason: LogoutReason,
        notify_server: bool,
        broadcast: bool,
        message: Option<String>,
    ) {
        let previous = {
            let mut st = self.st.borrow_mut();
            if st.active.is_none() && st.status != SessionStatus::Restoring {
                return;
            }
            st.epoch += 1;
            st.inflight = None;
            st.schedule_seq += 1;
            st.status = SessionStatus::SignedOut {
                reason: Some(reason.clone()),
            };
            st.degraded = false;
            st.failures = 0;
            st.unexpected = 0;
            st.next_retry_at = None;
            st.last_failure = None;
            st.message = Some(message.unwrap_or_else(|| reason.describe().to_string()));
            if !broadcast {
                st.adopting = true;
            }
            st.active.take()
        };
        let storage = &self.ports.storage;
        let area = previous.as_ref().and_then(|a| a.area);
        match area {
            Some(a) => storage.remove(a, keys::USER),
            None => {
                self.forget_profile();
                if !self.cookie_mode() {
                    storage.remove(Area::Local, keys::USER);
                }
            }
        }
        if notify_server {
            self.signout_on_server(previous.as_ref());
        }
        if reason == LogoutReason::Expired {
            self.emit(SessionEvent::SessionExpired);
        }
        self.emit(SessionEvent::LoggedOut { reason });
        self.st.borrow_mut().adopting = false;
        self.changes.notify();
    }

    fn signout_on_server(self: &Rc<Self>, previous: Option<&Active>) {
        let refresh_token = previous.and_then(|a| a.refresh.clone());
        let body = serde_json::to_string(&RefreshRequest { refresh_token }).unwrap_or_default();
        let mut req = self.post(paths::SIGNOUT, body);
        if self.cookie_mode() {
            req.headers.push((
                headers::REFRESH_TRANSPORT.into(),
                headers::REFRESH_TRANSPORT_COOKIE.into(),
            ));
        }
        if let Some(a) = previous {
            req = Engine(self.clone()).authorize(req, &a.access);
        }
        // The local logout is already complete; the answer (even the tutorial's 404) changes
        // nothing.
        let send = self.ports.transport.send(req);
        self.ports.spawner.spawn(Box::pin(async move {
            let _ = send.await;
        }));
    }

    // ---- cross-tab -------------------------------------------------------------------------

    fn broadcast(&self, ev: &SessionEvent) {
        let st = self.st.borrow();
        if st.adopting {
            return;
        }
        let msg = match ev {
            SessionEvent::LoggedIn { .. } | SessionEvent::Refreshed { adopted: false, .. } => {
                let Some(a) = &st.active else { return };
                Self::token_message(&self.tab_id, a, matches!(ev, SessionEvent::LoggedIn { .. }))
            }
            SessionEvent::LoggedOut { reason } => TabMessage::LoggedOut {
                from: self.tab_id.clone(),
                reason: reason.clone(),
            },
            _ => return,
        };
        drop(st);
        self.ports.tabs.post(&msg);
    }

    /// The broadcast of `a`: the access token, and in compat mode its refresh token and area.
    fn token_message(tab_id: &str, a: &Active, login: bool) -> TabMessage {
        TabMessage::TokenUpdated {
            from: tab_id.to_owned(),
            generation: a.generation,
            access_token: a.access.clone(),
            timeline: a.timeline.clone(),
            user: a.user.clone(),
            login,
            refresh_token: a.area.and(a.refresh.clone()),
            session_only: a.area == Some(Area::Session),
        }
    }

    fn adopt_from_storage(self: &Rc<Self>) {
        let Some(stored) = self
            .ports
            .storage
            .get(Area::Local, keys::USER)
            .and_then(|t| StoredUser::parse(&t).ok())
        else {
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
            refresh_token: stored.refresh_token.clone(),
            session_only: false,
        });
    }

    fn adopt(self: &Rc<Self>, news: News) {
        let News {
            generation,
            access,
            timeline,
            user,
            login,
            refresh_token,
            session_only,
        } = news;
        let now = self.now();
        let event = {
            let mut st = self.st.borrow_mut();
            if st
                .active
                .as_ref()
                .is_some_and(|a| generation <= a.generation)
            {
                return;
            }
            let acceptable = match &st.status {
                SessionStatus::SignedIn | SessionStatus::Restoring => true,
                SessionStatus::SignedOut { .. } => login,
            };
            if !acceptable {
                return;
            }
            let was_signed_in = st.status == SessionStatus::SignedIn;
            // Compat mode: this tab's session stays where it is (or, new here, goes where the
            // sender keeps it); the refresh token comes with the message or from localStorage.
            let area =
                (!self.cookie_mode()).then(|| match st.active.as_ref().and_then(|a| a.area) {
                    Some(area) => area,
                    None if session_only => Area::Session,
                    None => Area::Local,
                });
            let refresh = if self.cookie_mode() {
                None
            } else {
                refresh_token.or_else(|| {
                    self.ports
                        .storage
                        .get(Area::Local, keys::USER)
                        .and_then(|t| StoredUser::parse(&t).ok())
                        .and_then(|u| u.refresh_token)
                })
            };
            if let Some(tl) = &timeline {
                st.clock_offset = tl.clock_offset_ms;
            }
            st.generation = st.generation.max(generation);
            st.active = Some(Active {
                access,
                refresh,
                generation,
                timeline,
                obtained_at: now,
                user: user.clone(),
                area,
            });
            st.status = SessionStatus::SignedIn;
            st.message = None;
            st.failures = 0;
            st.unexpected = 0;
            st.next_retry_at = None;
            st.last_failure = None;
            st.degraded = !st.online;
            st.stats.adopted += 1;
            st.adopting = true;
            if was_signed_in {
                SessionEvent::Refreshed {
                    generation,
                    adopted: true,
                }
            } else {
                SessionEvent::LoggedIn {
                    username: user.username,
                }
            }
        };
        // A session kept in this tab's own sessionStorage: write the adopted tokens there (a
        // session in localStorage was written there by the tab that obtained it).
        if self.st.borrow().active.as_ref().and_then(|a| a.area) == Some(Area::Session) {
            self.persist_compat();
        }
        self.emit(event);
        self.st.borrow_mut().adopting = false;
        self.changes.notify();
        Inner::reschedule(self);
    }

    /// Compat mode: writes the active session as the tutorial's `user` object into its area.
    fn persist_compat(&self) {
        let st = self.st.borrow();
        let Some((a, area)) = st.active.as_ref().and_then(|a| Some((a, a.area?))) else {
            return;
        };
        let stored = StoredUser {
            id: id_value(&a.user.id),
            username: a.user.username.clone(),
            email: a.user.email.clone(),
            roles: a.user.roles.clone(),
            access_token: a.access.clone(),
            refresh_token: a.refresh.clone(),
            generation: Some(a.generation),
            timeline: a.timeline.clone(),
        };
        if let Ok(text) = serde_json::to_string(&stored) {
            self.ports.storage.set(area, keys::USER, &text);
        }
    }

    fn on_tab_message(self: &Rc<Self>, msg: TabMessage) {
        if msg.from() == self.tab_id {
            return;
        }
        match msg {
            TabMessage::TokenUpdated {
                generation,
                access_token,
                timeline,
                user,
                login,
                refresh_token,
                session_only,
                ..
            } => {
                let (known, asking) = {
                    let st = self.st.borrow();
                    let asking = st.status == SessionStatus::Restoring && st.active.is_none();
                    (st.generation, asking)
                };
                // A tab still asking for a session takes the current one, whatever generation
                // it has seen counted in storage.
                if generation < known || (generation == known && !asking) {
                    return;
                }
                if access_token.is_empty() {
                    // Sent over the storage-event fallback, which never carries a token (it
                    // would pass through localStorage). Compat mode finds it in storage; cookie
                    // mode keeps its own token and refreshes itself under the lock when due.
                    if !self.cookie_mode() {
                        self.adopt_from_storage();
                    }
                    return;
                }
                self.adopt(News {
                    generation,
                    access: access_token,
                    timeline,
                    user,
                    login,
                    refresh_token,
                    session_only,
                });
            }
            TabMessage::SessionWanted { .. } => {
                // Only a session no other tab can read from storage needs offering.
                let offer = {
                    let st = self.st.borrow();
                    st.active
                        .as_ref()
                        .filter(|a| {
                            st.status == SessionStatus::SignedIn && a.area == Some(Area::Session)
                        })
                        .map(|a| Self::token_message(&self.tab_id, a, true))
                };
                if let Some(msg) = offer {
                    self.ports.tabs.post(&msg);
                }
            }
            TabMessage::LoggedOut { reason, .. } => {
                let message = format!(
                    "{} ({})",
                    LogoutReason::OtherTab.describe(),
                    reason.describe()
                );
                self.end_session(LogoutReason::OtherTab, false, false, Some(message));
            }
        }
    }

    // ---- scheduling ------------------------------------------------------------------------

    fn reschedule(self: &Rc<Self>) {
        let (seq, due) = {
            let mut st = self.st.borrow_mut();
            st.schedule_seq += 1;
            let due = st.next_retry_at.or_else(|| {
                st.active
                    .as_ref()
                    .and_then(|a| a.timeline.as_ref())
                    .map(|t| t.refresh_at_ms)
            });
            (st.schedule_seq, due)
        };
        let Some(due) = due else { return };
        // Rounded up: a sleeper that truncates to whole milliseconds would wake early.
        let delay = (due - self.now()).max(0.0).ceil();
        let weak = Rc::downgrade(self);
        let sleep = self.ports.sleeper.sleep(delay);
        self.ports.spawner.spawn(Box::pin(async move {
            sleep.await;
            if let Some(inner) = weak.upgrade() {
                if inner.st.borrow().schedule_seq == seq {
                    Inner::tick(&inner);
                }
            }
        }));
    }

    /// Refreshes if the wall clock says it is time (and we are online and not backing off).
    /// Called by the timer and every wake trigger; single-flight makes duplicates harmless.
    fn tick(self: &Rc<Self>) {
        let now = self.now();
        let mut early = false;
        let base = {
            let st = self.st.borrow();
            if !st.online || st.inflight.is_some() {
                return;
            }
            if st.next_retry_at.is_some_and(|r| now < r) {
                return;
            }
            match (&st.status, &st.active) {
                (SessionStatus::SignedIn, Some(a)) => {
                    let due = st
                        .next_retry_at
                        .or_else(|| a.timeline.as_ref().map(|t| t.refresh_at_ms));
                    match due {
                        Some(d) if now >= d => Some(a.generation),
                        // Woken before the refresh is due (a timer is only as precise as
                        // its whole-millisecond delay, and wake triggers come any time).
                        Some(_) => {
                            early = true;
                            None
                        }
                        None => return,
                    }
                }
                // A silent restore that failed transiently: try again.
                (SessionStatus::Restoring, None) if st.last_failure.is_some() => {
                    Some(st.generation)
                }
                _ => return,
            }
        };
        let Some(base) = base else {
            if early {
                // Re-arm, or the session would wait for the next wake trigger or wall check.
                Inner::reschedule(self);
            }
            return;
        };
        let inner = self.clone();
        self.ports.spawner.spawn(Box::pin(async move {
            let _ = Inner::refresh_from(&inner, base).await;
        }));
    }

    fn spawn_wall_check(weak: Weak<Inner>) {
        let Some(inner) = weak.upgrade() else { return };
        let sleep = inner.ports.sleeper.sleep(WALL_CHECK_MS);
        let spawner = inner.ports.spawner.clone();
        drop(inner);
        spawner.spawn(Box::pin(async move {
            sleep.await;
            if let Some(inner) = weak.upgrade() {
                Inner::tick(&inner);
                drop(inner);
                Inner::spawn_wall_check(weak);
            }
        }));
    }
}
