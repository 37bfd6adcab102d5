//! Deterministic fakes of the browser, and the two backends the engine is tested against, shared
//! by the host tests.
//!
//! - `FakeClock` is the wall clock AND the timers: time moves only when a test says so, and
//!   `World::advance` fires due timers in order, running every ready task in between.
//! - `Flavor::SessionApi` is the REAL session-api (`real.rs`): `session_api::app(state)` in
//!   process on a fresh SQLite file, its clock being this fake clock (plus a skew), reached
//!   through `oneshot` the moment a request leaves the tab.
//! - `Flavor::Tutorial` is THE fake of the tutorial's Express backend (the `tutorial-fake` crate,
//!   which the end-to-end tests serve too), in process the same way (`tutorial.rs`), for the
//!   tutorial's contract only; `tutorial_fake_matches_the_record` (session_engine.rs) checks it
//!   row by row against ../shared/TUTORIAL-BACKEND.md.
//! - `Wire` is the browser's network stack between the tabs and either backend: one cookie jar
//!   for all tabs (one browser), scripted faults injected before or instead of forwarding, and
//!   the counts of what was sent and what came back.
//! - Every tab gets its own engine, session storage and transport; local storage, the cross-tab
//!   channel, the lock and the wire are shared, like in one browser.
#![allow(dead_code)]

pub mod provider;
pub mod real;
pub mod real_bff;
pub mod record;
pub mod tutorial;

use std::cell::{Cell, Ref, RefCell, RefMut};
use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::rc::Rc;

use futures::channel::oneshot;
use futures::executor::{LocalPool, LocalSpawner};
use futures::future::{self, FutureExt, LocalBoxFuture};
use futures::task::LocalSpawnExt;

use api_types::{headers, paths};
use yew_session::api::ApiClient;
use yew_session::config::{AppConfig, StorageMode, TokenHeader};
use yew_session::session::ports::{
    Area, Clock, CrossTab, HttpRequest, HttpResponse, KeyValueStore, Random, Sleeper, Spawner,
    TabLock, Transport, TransportError,
};
use yew_session::session::{Engine, Ports, SessionEvent, Subscription, TabMessage};

// Not every test crate uses all of them.
#[allow(unused_imports)]
pub use real::RealServer;
#[allow(unused_imports)]
pub use session_api::Settings;
#[allow(unused_imports)]
pub use tutorial::{make_jwt, TutorialServer};

/// A fixed start time (2026-11-25 08:00:00 UTC) so dates are realistic.
pub const T0: f64 = 1_795_680_000_000.0;

/// The password of every test user (session-api wants 8 to 128 characters).
pub const PASSWORD: &str = "correct-horse-battery";

// ---- clock and timers ------------------------------------------------------------------------

pub struct FakeClock {
    now: Cell<f64>,
    timers: RefCell<Vec<(f64, oneshot::Sender<()>)>>,
    /// Timers the browser will never fire (see `lose_timers_due_after`); kept, not dropped, since
    /// a dropped sender would wake its sleeper.
    lost: RefCell<Vec<oneshot::Sender<()>>>,
    /// Timers fire this many ms before their deadline (a browser's setTimeout is only as
    /// precise as its whole-millisecond delay and its own clock).
    pub early_ms: Cell<f64>,
}

impl FakeClock {
    fn new() -> Rc<Self> {
        Rc::new(Self {
            now: Cell::new(T0),
            timers: RefCell::new(Vec::new()),
            lost: RefCell::new(Vec::new()),
            early_ms: Cell::new(0.0),
        })
    }
    /// The browser never fires the timers pending now whose deadline is after `t` (a hidden or
    /// frozen tab whose long timer was throttled away); timers set later fire as usual. Returns
    /// how many were lost.
    pub fn lose_timers_due_after(&self, t: f64) -> usize {
        let mut timers = self.timers.borrow_mut();
        let (lost, kept): (Vec<_>, Vec<_>) = timers.drain(..).partition(|(d, _)| *d > t);
        *timers = kept;
        let n = lost.len();
        self.lost
            .borrow_mut()
            .extend(lost.into_iter().map(|(_, tx)| tx));
        n
    }
    fn next_deadline(&self) -> Option<f64> {
        let mut timers = self.timers.borrow_mut();
        timers.retain(|(_, tx)| !tx.is_canceled());
        timers.iter().map(|(d, _)| *d).reduce(f64::min)
    }
    fn fire_due(&self) -> bool {
        let now = self.now.get();
        let due: Vec<_> = {
            let mut timers = self.timers.borrow_mut();
            let (due, rest): (Vec<_>, Vec<_>) = timers.drain(..).partition(|(d, _)| *d <= now);
            *timers = rest;
            due
        };
        let any = !due.is_empty();
        for (_, tx) in due {
            let _ = tx.send(());
        }
        any
    }
}

impl Clock for FakeClock {
    fn now_ms(&self) -> f64 {
        self.now.get()
    }
}

impl Sleeper for FakeClock {
    fn sleep(&self, ms: f64) -> LocalBoxFuture<'static, ()> {
        let (tx, rx) = oneshot::channel();
        self.timers.borrow_mut().push((
            self.now.get() + (ms.max(0.0) - self.early_ms.get()).max(0.0),
            tx,
        ));
        rx.map(|_| ()).boxed_local()
    }
}

struct PoolSpawner(LocalSpawner);
impl Spawner for PoolSpawner {
    fn spawn(&self, fut: LocalBoxFuture<'static, ()>) {
        self.0.spawn_local(fut).expect("pool alive");
    }
}

/// Deterministic jitter: always the middle of the range.
struct HalfRandom;
impl Random for HalfRandom {
    fn next_f64(&self) -> f64 {
        0.5
    }
}

// ---- storage ---------------------------------------------------------------------------------

pub struct FakeStorage {
    /// localStorage as the last write left it (what a test inspects).
    pub local: Rc<RefCell<HashMap<String, String>>>,
    pub session: RefCell<HashMap<String, String>>,
    /// Whose storage this is, and how the other tabs' writes reach it (see [`Lag`]).
    tab: String,
    lag: Rc<Lag>,
}

/// Tabs in separate processes: Chromium gives each renderer its own copy of localStorage, which
/// sees another tab's write only a moment later, and BroadcastChannel delivers a moment later
/// too, in no fixed order with the Web Lock the writer releases. With `ms` > 0 a tab reads its
/// own writes at once and other tabs' writes `ms` after they were made; messages arrive `ms`
/// after they were posted. 0 (the default): one shared copy, messages at once.
pub struct Lag {
    pub ms: Cell<f64>,
    clock: Rc<FakeClock>,
    /// localStorage when the lag was set, and every write since.
    base: RefCell<HashMap<String, String>>,
    writes: RefCell<Vec<Write>>,
}

/// One localStorage write: when, by which tab, the key, the value (`None`: removed).
type Write = (f64, String, String, Option<String>);

impl Lag {
    fn read(&self, tab: &str, key: &str) -> Option<String> {
        let now = self.clock.now_ms();
        let ms = self.ms.get();
        let writes = self.writes.borrow();
        let seen = writes
            .iter()
            .rev()
            .find(|(at, who, k, _)| k == key && (who == tab || at + ms <= now));
        match seen {
            Some((.., v)) => v.clone(),
            None => self.base.borrow().get(key).cloned(),
        }
    }
}

impl FakeStorage {
    /// Every key and value of both areas, for "no token anywhere" checks.
    pub fn dump(&self) -> Vec<(String, String)> {
        let mut all: Vec<_> = self
            .local
            .borrow()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        all.extend(
            self.session
                .borrow()
                .iter()
                .map(|(k, v)| (k.clone(), v.clone())),
        );
        all
    }
}

/// Where the fake keeps `Area::BrowserSession` (browser-session cookies): in the shared local
/// map under this prefix, so every tab sees them and `World::close_browser` drops them.
pub const BROWSER_SESSION_PREFIX: &str = "browser-session-cookie:";

impl FakeStorage {
    fn local_key(&self, area: Area, key: &str) -> Option<String> {
        match area {
            Area::Local => Some(key.to_owned()),
            Area::BrowserSession => Some(format!("{BROWSER_SESSION_PREFIX}{key}")),
            Area::Session => None,
        }
    }
    fn log(&self, area: Area, key: &str, value: Option<&str>) {
        if self.lag.ms.get() > 0.0 {
            if let Some(k) = self.local_key(area, key) {
                let at = self.lag.clock.now_ms();
                let entry = (at, self.tab.clone(), k, value.map(str::to_owned));
                self.lag.writes.borrow_mut().push(entry);
            }
        }
    }
}

impl KeyValueStore for FakeStorage {
    fn get(&self, area: Area, key: &str) -> Option<String> {
        if self.lag.ms.get() > 0.0 {
            if let Some(k) = self.local_key(area, key) {
                return self.lag.read(&self.tab, &k);
            }
        }
        match area {
            Area::Local => self.local.borrow().get(key).cloned(),
            Area::Session => self.session.borrow().get(key).cloned(),
            Area::BrowserSession => self
                .local
                .borrow()
                .get(&format!("{BROWSER_SESSION_PREFIX}{key}"))
                .cloned(),
        }
    }
    fn set(&self, area: Area, key: &str, value: &str) {
        self.log(area, key, Some(value));
        match area {
            Area::Local => self.local.borrow_mut().insert(key.into(), value.into()),
            Area::Session => self.session.borrow_mut().insert(key.into(), value.into()),
            Area::BrowserSession => self
                .local
                .borrow_mut()
                .insert(format!("{BROWSER_SESSION_PREFIX}{key}"), value.into()),
        };
    }
    fn remove(&self, area: Area, key: &str) {
        self.log(area, key, None);
        match area {
            Area::Local => self.local.borrow_mut().remove(key),
            Area::Session => self.session.borrow_mut().remove(key),
            Area::BrowserSession => self
                .local
                .borrow_mut()
                .remove(&format!("{BROWSER_SESSION_PREFIX}{key}")),
        };
    }
}

// ---- cross-tab channel and lock --------------------------------------------------------------

type TabReceiver = Rc<dyn Fn(TabMessage)>;

pub struct FakeNet {
    receivers: RefCell<Vec<(String, TabReceiver)>>,
    lock: RefCell<Option<(String, f64)>>,
    dead: RefCell<HashSet<String>>,
    spawner: LocalSpawner,
    pub posted: RefCell<Vec<TabMessage>>,
    /// Behave like the storage-event fallback: tokens are stripped from messages.
    pub strip_tokens: Cell<bool>,
    /// Tabs in separate processes (see [`Lag`]).
    pub lag: Rc<Lag>,
}

struct TabPort {
    net: Rc<FakeNet>,
    id: String,
}

impl CrossTab for TabPort {
    fn post(&self, msg: &TabMessage) {
        if self.net.dead.borrow().contains(&self.id) {
            return;
        }
        let mut msg = msg.clone();
        if self.net.strip_tokens.get() {
            if let TabMessage::TokenUpdated { access_token, .. } = &mut msg {
                access_token.clear();
            }
        }
        let msg = &msg;
        self.net.posted.borrow_mut().push(msg.clone());
        let targets: Vec<TabReceiver> = self
            .net
            .receivers
            .borrow()
            .iter()
            .filter(|(id, _)| *id != self.id && !self.net.dead.borrow().contains(id))
            .map(|(_, r)| r.clone())
            .collect();
        let lag = self.net.lag.ms.get();
        for r in targets {
            let msg = msg.clone();
            // Delivered asynchronously, as BroadcastChannel does.
            let delivery = (lag > 0.0).then(|| self.net.lag.clock.sleep(lag));
            self.net
                .spawner
                .spawn_local(async move {
                    if let Some(d) = delivery {
                        d.await;
                    }
                    r(msg)
                })
                .expect("pool alive");
        }
    }
    fn set_receiver(&self, receiver: Box<dyn Fn(TabMessage)>) {
        let receiver: TabReceiver = Rc::from(receiver);
        let mut rs = self.net.receivers.borrow_mut();
        rs.retain(|(id, _)| *id != self.id);
        rs.push((self.id.clone(), receiver));
    }
}

struct LockPort {
    net: Rc<FakeNet>,
    id: String,
}

impl TabLock for LockPort {
    fn try_acquire(
        &self,
        owner: &str,
        now_ms: f64,
        lease_ms: f64,
    ) -> LocalBoxFuture<'static, bool> {
        let mut lock = self.net.lock.borrow_mut();
        let free = match &*lock {
            None => true,
            Some((o, deadline)) => o == owner || *deadline <= now_ms,
        };
        if free {
            *lock = Some((owner.to_string(), now_ms + lease_ms));
        }
        future::ready(free).boxed_local()
    }
    fn release(&self, owner: &str) {
        let mut lock = self.net.lock.borrow_mut();
        if lock.as_ref().is_some_and(|(o, _)| o == owner) {
            *lock = None;
        }
    }
    fn holder(&self, now_ms: f64) -> Option<String> {
        self.net
            .lock
            .borrow()
            .as_ref()
            .filter(|(_, d)| *d > now_ms)
            .map(|(o, _)| o.clone())
    }
}

// ---- the wire: one browser's network stack ---------------------------------------------------

/// Which backend a world runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// The real session-api, in process (`real.rs`).
    SessionApi,
    /// The fake of the tutorial's Express backend, as recorded (`tutorial.rs`).
    Tutorial,
    /// A fake OpenID Provider, as recorded (`provider.rs`).
    Provider,
    /// The real session-api in BFF mode in front of the tutorial fake (`real_bff.rs`).
    Bff,
}

/// A fault injected by the wire before or instead of forwarding a request.
#[derive(Debug, Clone)]
pub enum Scripted {
    /// This answer instead of the server's (the server never sees the request).
    Status(u16, Vec<(String, String)>, String),
    /// The connection fails before the request reaches the server.
    Network,
    /// No answer within the client's deadline (the server never sees the request).
    Timeout,
    /// The request goes nowhere and never settles.
    Hang,
    /// The server receives and handles the request, but its answer (and any `Set-Cookie`) is
    /// lost on the way back: the client sees a network error.
    LostAnswer,
}

/// Requests the tabs sent and what came back, counted on the wire.
#[derive(Debug, Default, Clone)]
pub struct Counts {
    pub signin: u32,
    pub refresh: u32,
    /// Refreshes answered 200 with an access token.
    pub refresh_ok: u32,
    pub signout: u32,
    /// Requests to protected API routes (not /api/auth/*, not the public /api/test/all).
    pub api: u32,
    /// Of those, answered 401.
    pub api_401: u32,
}

/// The browser's refresh cookie (`__Host-refresh`, HttpOnly: script never sees it).
#[derive(Debug, Clone, PartialEq)]
pub struct Cookie {
    pub value: String,
    /// Browser time it expires (`Max-Age`); `None`: a browser-session cookie, gone when the
    /// browser closes.
    pub expires_at: Option<f64>,
}

/// The cookie jar of one browser (all its tabs), for the one cookie the server sets.
#[derive(Debug, Default)]
pub struct CookieJar {
    refresh: Option<Cookie>,
    /// Every refresh-token value the server ever set, for "no token anywhere" checks.
    pub history: Vec<String>,
}

impl CookieJar {
    /// The cookie as it stands at `now` (an expired one is gone).
    pub fn get(&mut self, now: f64) -> Option<Cookie> {
        if self
            .refresh
            .as_ref()
            .is_some_and(|c| c.expires_at.is_some_and(|e| e <= now))
        {
            self.refresh = None;
        }
        self.refresh.clone()
    }

    /// Applies one `Set-Cookie` header value received at `now`.
    pub fn apply(&mut self, set_cookie: &str, now: f64) {
        let mut parts = set_cookie.split(';').map(str::trim);
        let Some((name, value)) = parts.next().and_then(|kv| kv.split_once('=')) else {
            return;
        };
        // One server cookie per world: the refresh cookie, or the BFF's session cookie.
        if name != headers::REFRESH_COOKIE && name != real_bff::COOKIE {
            return;
        }
        let max_age = parts
            .filter_map(|a| a.split_once('='))
            .find(|(k, _)| k.eq_ignore_ascii_case("max-age"))
            .and_then(|(_, v)| v.trim().parse::<i64>().ok());
        match max_age {
            Some(s) if s <= 0 => self.refresh = None,
            _ if value.is_empty() => self.refresh = None,
            _ => {
                self.history.push(value.to_owned());
                self.refresh = Some(Cookie {
                    value: value.to_owned(),
                    expires_at: max_age.map(|s| now + s as f64 * 1000.0),
                });
            }
        }
    }

    /// The browser closes: browser-session cookies are gone.
    pub fn close_browser(&mut self) {
        if self
            .refresh
            .as_ref()
            .is_some_and(|c| c.expires_at.is_none())
        {
            self.refresh = None;
        }
    }
}

enum Backend {
    Real(RealServer),
    Tutorial(RefCell<TutorialServer>),
    Provider(RefCell<provider::FakeProvider>),
    Bff(RefCell<real_bff::RealBff>),
}

/// What became of a request the moment it left the tab.
enum Fate {
    Answer(HttpResponse),
    Fail(TransportError),
    Never,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Signin,
    Refresh,
    Signout,
    /// A protected API route.
    Api,
    /// Sign-up, the public content, the sessions list...
    Other,
}

fn path_of(url: &str) -> &str {
    match url.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("/", |i| &rest[i..]),
        None => url,
    }
}

fn endpoint(req: &HttpRequest) -> Endpoint {
    // The OpenID provider's token endpoint: the refresh_token grant is the refresh, the code
    // exchange the sign-in; its revocation is the sign-out.
    let grant = |g: &str| {
        req.body
            .as_deref()
            .is_some_and(|b| b.contains(&format!("grant_type={g}")))
    };
    match path_of(&req.url).split('?').next().unwrap_or_default() {
        "/token" if grant("refresh_token") => Endpoint::Refresh,
        "/token" => Endpoint::Signin,
        "/token/revocation" => Endpoint::Signout,
        // The backend for frontend: the engine's "refresh" is the session read.
        paths::BFF_SESSION => Endpoint::Refresh,
        paths::BFF_LOGOUT => Endpoint::Signout,
        paths::BFF_SIGNIN => Endpoint::Signin,
        paths::SIGNIN => Endpoint::Signin,
        paths::REFRESH => Endpoint::Refresh,
        paths::SIGNOUT => Endpoint::Signout,
        paths::TEST_ALL => Endpoint::Other,
        p if p.starts_with("/api/auth/") => Endpoint::Other,
        _ => Endpoint::Api,
    }
}

/// The browser's network stack, shared by the tabs: forwards to the backend, keeps the cookie
/// jar, injects scripted faults and counts.
pub struct Wire {
    backend: Backend,
    clock: Rc<FakeClock>,
    pub jar: RefCell<CookieJar>,
    pub refresh_script: RefCell<VecDeque<Scripted>>,
    pub api_script: RefCell<VecDeque<Scripted>>,
    counts: RefCell<Counts>,
    /// The refresh token each refresh request presented (cookie or body), in order.
    presented: RefCell<Vec<Option<String>>>,
}

impl Wire {
    /// What was sent and what came back so far.
    pub fn counts(&self) -> Counts {
        self.counts.borrow().clone()
    }

    /// A request leaves a tab: counted, scripted or forwarded at once (the server handles it
    /// now; its answer reaches the tab after the latency, see `arrive`).
    fn depart(&self, req: &HttpRequest) -> Fate {
        let kind = endpoint(req);
        let now = self.clock.now_ms();
        let cookie = if req.with_credentials {
            self.jar.borrow_mut().get(now).map(|c| c.value)
        } else {
            None
        };
        let script = {
            let mut c = self.counts.borrow_mut();
            match kind {
                Endpoint::Signin => c.signin += 1,
                Endpoint::Refresh => c.refresh += 1,
                Endpoint::Signout => c.signout += 1,
                Endpoint::Api => c.api += 1,
                Endpoint::Other => {}
            }
            match kind {
                Endpoint::Refresh => self.refresh_script.borrow_mut().pop_front(),
                Endpoint::Api => self.api_script.borrow_mut().pop_front(),
                _ => None,
            }
        };
        if kind == Endpoint::Refresh {
            let from_body = req.body.as_deref().and_then(|b| {
                match serde_json::from_str::<serde_json::Value>(b) {
                    Ok(v) => v["refreshToken"].as_str().map(String::from),
                    // The OAuth form of the refresh_token grant.
                    Err(_) => yew_session::session::oidc::query_value(b, "refresh_token"),
                }
            });
            let cookie_transport = req.header(headers::REFRESH_TRANSPORT) == Some("cookie");
            self.presented.borrow_mut().push(if cookie_transport {
                cookie.clone()
            } else {
                from_body
            });
        }
        match script {
            Some(Scripted::Status(status, headers, body)) => Fate::Answer(HttpResponse {
                status,
                headers,
                body,
            }),
            Some(Scripted::Network) => {
                Fate::Fail(TransportError::Network("connection reset".into()))
            }
            Some(Scripted::Timeout) => Fate::Fail(TransportError::Timeout),
            Some(Scripted::Hang) => Fate::Never,
            Some(Scripted::LostAnswer) => {
                let _ = self.forward(req, cookie.as_deref());
                Fate::Fail(TransportError::Network("connection reset".into()))
            }
            None => match self.forward(req, cookie.as_deref()) {
                Some(r) => Fate::Answer(r),
                None => Fate::Never,
            },
        }
    }

    fn forward(&self, req: &HttpRequest, cookie: Option<&str>) -> Option<HttpResponse> {
        match &self.backend {
            Backend::Real(s) => Some(s.handle(req, cookie)),
            Backend::Tutorial(t) => t.borrow_mut().handle(req),
            Backend::Provider(p) => Some(p.borrow_mut().handle(req)),
            Backend::Bff(b) => Some(b.borrow_mut().handle(req, cookie)),
        }
    }

    /// The answer reaches the tab: cookies are stored, the answer counted, and script gets the
    /// answer without `Set-Cookie` (fetch never exposes it).
    fn arrive(
        &self,
        kind: Endpoint,
        with_credentials: bool,
        mut resp: HttpResponse,
    ) -> HttpResponse {
        let now = self.clock.now_ms();
        if with_credentials {
            let mut jar = self.jar.borrow_mut();
            for (k, v) in &resp.headers {
                if k.eq_ignore_ascii_case("set-cookie") {
                    jar.apply(v, now);
                }
            }
        }
        resp.headers
            .retain(|(k, _)| !k.eq_ignore_ascii_case("set-cookie"));
        let mut c = self.counts.borrow_mut();
        match kind {
            Endpoint::Refresh
                if resp.status == 200
                    && serde_json::from_str::<serde_json::Value>(&resp.body).is_ok_and(|v| {
                        v["accessToken"].is_string() || v["access_token"].is_string()
                    }) =>
            {
                c.refresh_ok += 1
            }
            Endpoint::Api if resp.status == 401 => c.api_401 += 1,
            _ => {}
        }
        resp
    }
}

// ---- transport -------------------------------------------------------------------------------

/// A tab's fetch: its latency, its own offline switch and death, the requests it sent (as the
/// engine built them, before the browser adds cookies).
pub struct TabTransport {
    wire: Rc<Wire>,
    clock: Rc<FakeClock>,
    pub auth_latency_ms: Cell<f64>,
    pub api_latency_ms: Cell<f64>,
    pub offline: Cell<bool>,
    pub dead: Cell<bool>,
    pub sent: RefCell<Vec<HttpRequest>>,
}

impl Transport for TabTransport {
    fn send(
        &self,
        req: HttpRequest,
    ) -> LocalBoxFuture<'static, Result<HttpResponse, TransportError>> {
        if self.dead.get() {
            return future::pending().boxed_local();
        }
        if self.offline.get() {
            return future::ready(Err(TransportError::Network("offline".into()))).boxed_local();
        }
        self.sent.borrow_mut().push(req.clone());
        let latency = if path_of(&req.url).starts_with("/api/auth") {
            self.auth_latency_ms.get()
        } else {
            self.api_latency_ms.get()
        };
        let kind = endpoint(&req);
        let fate = self.wire.depart(&req);
        let sleep = self.clock.sleep(latency);
        let wire = self.wire.clone();
        let with_credentials = req.with_credentials;
        async move {
            sleep.await;
            match fate {
                Fate::Answer(r) => Ok(wire.arrive(kind, with_credentials, r)),
                Fate::Fail(e) => Err(e),
                Fate::Never => future::pending().await,
            }
        }
        .boxed_local()
    }
}

// ---- world and tabs --------------------------------------------------------------------------

pub struct World {
    pub clock: Rc<FakeClock>,
    pub local: Rc<RefCell<HashMap<String, String>>>,
    pub net: Rc<FakeNet>,
    pub wire: Rc<Wire>,
    pool: RefCell<LocalPool>,
    spawner: LocalSpawner,
    tabs: Cell<u32>,
}

pub struct Tab {
    pub id: String,
    pub engine: Engine,
    pub api: ApiClient,
    pub storage: Rc<FakeStorage>,
    pub transport: Rc<TabTransport>,
    pub events: Rc<RefCell<Vec<(f64, SessionEvent)>>>,
    _sub: Subscription,
}

impl Tab {
    pub fn logged_out_count(&self) -> usize {
        self.events
            .borrow()
            .iter()
            .filter(|(_, e)| matches!(e, SessionEvent::LoggedOut { .. }))
            .count()
    }
    pub fn saw(&self, pred: impl Fn(&SessionEvent) -> bool) -> bool {
        self.events.borrow().iter().any(|(_, e)| pred(e))
    }
}

pub fn config(mode: StorageMode) -> AppConfig {
    AppConfig {
        storage_mode: mode,
        token_header: TokenHeader::XAccessToken,
        ..AppConfig::default()
    }
}

/// The session-api settings of a test world: 60 s access tokens (what most tests assume), the
/// server's other defaults (7-day families, 1-day idle timeout, 5 s grace window), and a small
/// argon2 pool.
pub fn test_settings() -> Settings {
    Settings {
        access_ttl_secs: 60,
        allowed_origins: vec![real::APP_ORIGIN.to_owned()],
        hash_concurrency: 2,
        ..Settings::default()
    }
}

impl World {
    /// A world against `flavor` (session-api with `test_settings`).
    pub fn new(flavor: Flavor) -> Self {
        match flavor {
            Flavor::SessionApi => Self::session_api(|_| {}),
            Flavor::Tutorial => {
                Self::build(|clock| Backend::Tutorial(RefCell::new(TutorialServer::new(clock))))
            }
            Flavor::Provider => Self::build(|clock| {
                Backend::Provider(RefCell::new(provider::FakeProvider::new(clock)))
            }),
            Flavor::Bff => {
                Self::build(|clock| Backend::Bff(RefCell::new(real_bff::RealBff::new(clock))))
            }
        }
    }

    /// A world against the real session-api, its `test_settings` changed by `tweak`.
    pub fn session_api(tweak: impl FnOnce(&mut Settings)) -> Self {
        let mut settings = test_settings();
        tweak(&mut settings);
        Self::build(move |clock| Backend::Real(RealServer::new(clock, settings)))
    }

    fn build(backend: impl FnOnce(Rc<FakeClock>) -> Backend) -> Self {
        let clock = FakeClock::new();
        let pool = LocalPool::new();
        let spawner = pool.spawner();
        let lag = Rc::new(Lag {
            ms: Cell::new(0.0),
            clock: clock.clone(),
            base: RefCell::new(HashMap::new()),
            writes: RefCell::new(Vec::new()),
        });
        let net = Rc::new(FakeNet {
            receivers: RefCell::new(Vec::new()),
            lock: RefCell::new(None),
            dead: RefCell::new(HashSet::new()),
            spawner: spawner.clone(),
            posted: RefCell::new(Vec::new()),
            strip_tokens: Cell::new(false),
            lag,
        });
        let wire = Rc::new(Wire {
            backend: backend(clock.clone()),
            clock: clock.clone(),
            jar: RefCell::new(CookieJar::default()),
            refresh_script: RefCell::new(VecDeque::new()),
            api_script: RefCell::new(VecDeque::new()),
            counts: RefCell::new(Counts::default()),
            presented: RefCell::new(Vec::new()),
        });
        Self {
            wire,
            clock,
            local: Rc::new(RefCell::new(HashMap::new())),
            net,
            pool: RefCell::new(pool),
            spawner,
            tabs: Cell::new(0),
        }
    }

    pub fn now(&self) -> f64 {
        self.clock.now_ms()
    }

    pub fn counts(&self) -> Counts {
        self.wire.counts.borrow().clone()
    }

    /// The real server (panics in a tutorial world).
    pub fn real(&self) -> &RealServer {
        match &self.wire.backend {
            Backend::Real(s) => s,
            _ => panic!("this world has no session-api"),
        }
    }

    /// The fake OpenID provider (panics in other worlds).
    pub fn provider(&self) -> RefMut<'_, provider::FakeProvider> {
        match &self.wire.backend {
            Backend::Provider(p) => p.borrow_mut(),
            _ => panic!("this world has no OpenID provider"),
        }
    }

    /// The backend for frontend (panics in other worlds).
    pub fn bff(&self) -> RefMut<'_, real_bff::RealBff> {
        match &self.wire.backend {
            Backend::Bff(b) => b.borrow_mut(),
            _ => panic!("this world has no backend for frontend"),
        }
    }

    /// The browser completed a sign-in at the BFF (the provider's redirect to its callback):
    /// the server stored a session for `sub` and set its cookie.
    pub fn bff_signed_in_at_server(&self, sub: &str) {
        let set_cookie = self.bff().start_session(sub);
        let now = self.now();
        self.wire.jar.borrow_mut().apply(&set_cookie, now);
    }

    /// Every refresh request presented a token, and none presented one a request before it had
    /// (with rotation, a second use burns the session). Returns what was presented.
    pub fn assert_each_refresh_token_presented_once(&self, what: &str) -> Vec<Option<String>> {
        let presented = self.presented_refresh_tokens();
        let distinct: HashSet<_> = presented.iter().collect();
        assert!(
            presented.iter().all(Option::is_some),
            "{what}: {presented:?}"
        );
        assert_eq!(
            distinct.len(),
            presented.len(),
            "{what}: a token presented twice: {presented:?}"
        );
        presented
    }

    /// Signs `sub` in from `tab` through the provider: the app's authorization request, the
    /// provider's sign-in (done by the fake), the callback. Returns the app path it goes back to.
    pub fn oidc_login(&self, tab: &Tab, sub: &str, remember: bool) -> String {
        let verifier = format!("verifier-of-{}-{sub}", tab.id);
        let secrets = yew_session::session::oidc::Secrets {
            challenge: base64::Engine::encode(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                <sha2::Sha256 as sha2::Digest>::digest(verifier.as_bytes()),
            ),
            verifier,
            state: format!("state-{}", tab.id),
            nonce: format!("nonce-{}", tab.id),
        };
        let url = tab
            .engine
            .oidc_sign_in_url(secrets, provider::APP_ORIGIN, "/profile", remember)
            .expect("authorization request");
        let query = self.provider().authorize(&url, sub);
        let engine = tab.engine.clone();
        self.block_on(async move { engine.oidc_complete(&query).await }, 10_000.0)
            .expect("callback")
    }

    /// The tutorial fake (panics in a session-api world).
    pub fn tutorial(&self) -> RefMut<'_, TutorialServer> {
        match &self.wire.backend {
            Backend::Tutorial(t) => t.borrow_mut(),
            _ => panic!("this world has no tutorial fake"),
        }
    }

    /// Skews the server's clock: server time = browser time + `ms`.
    pub fn set_server_offset_ms(&self, ms: f64) {
        match &self.wire.backend {
            Backend::Real(s) => s.offset_ms.set(ms),
            Backend::Tutorial(t) => t.borrow_mut().server_offset_ms = ms,
            Backend::Provider(_) | Backend::Bff(_) => {
                panic!("the fake provider's clock is the world's")
            }
        }
    }

    /// The next refresh request gets this fault (queued in order).
    pub fn script_refresh(&self, s: Scripted) {
        self.wire.refresh_script.borrow_mut().push_back(s);
    }

    /// The next protected API request gets this fault (queued in order).
    pub fn script_api(&self, s: Scripted) {
        self.wire.api_script.borrow_mut().push_back(s);
    }

    /// The browser's refresh cookie now, if any.
    pub fn refresh_cookie(&self) -> Option<Cookie> {
        self.wire.jar.borrow_mut().get(self.now())
    }

    /// The cookie jar (its `history` holds every refresh token the server set).
    pub fn jar(&self) -> Ref<'_, CookieJar> {
        self.wire.jar.borrow()
    }

    /// The refresh token each refresh request of any tab presented, in order (`None`: none).
    pub fn presented_refresh_tokens(&self) -> Vec<Option<String>> {
        self.wire.presented.borrow().clone()
    }

    /// Makes sure `username` has an account (signed up outside the browser: not counted).
    pub fn ensure_user(&self, username: &str) {
        match &self.wire.backend {
            Backend::Real(s) => s.ensure_user(username),
            Backend::Tutorial(t) => t.borrow_mut().ensure_user(username),
            Backend::Provider(_) | Backend::Bff(_) => {}
        }
    }

    /// Opens a tab (a new engine sharing local storage, channel, lock and cookie jar) and starts
    /// it without running anything yet.
    pub fn open_tab_unsettled(&self, cfg: AppConfig) -> Tab {
        let n = self.tabs.get() + 1;
        self.tabs.set(n);
        let id = format!("tab-{n}");
        let storage = Rc::new(FakeStorage {
            local: self.local.clone(),
            session: RefCell::new(HashMap::new()),
            tab: id.clone(),
            lag: self.net.lag.clone(),
        });
        let transport = Rc::new(TabTransport {
            wire: self.wire.clone(),
            clock: self.clock.clone(),
            auth_latency_ms: Cell::new(50.0),
            api_latency_ms: Cell::new(20.0),
            offline: Cell::new(false),
            dead: Cell::new(false),
            sent: RefCell::new(Vec::new()),
        });
        let ports = Ports {
            clock: self.clock.clone(),
            sleeper: self.clock.clone(),
            spawner: Rc::new(PoolSpawner(self.spawner.clone())),
            storage: storage.clone(),
            transport: transport.clone(),
            tabs: Rc::new(TabPort {
                net: self.net.clone(),
                id: id.clone(),
            }),
            lock: Rc::new(LockPort {
                net: self.net.clone(),
                id: id.clone(),
            }),
            random: Rc::new(HalfRandom),
        };
        let engine = Engine::new(cfg, id.clone(), ports);
        let events = Rc::new(RefCell::new(Vec::new()));
        let ev = events.clone();
        let sub = engine.subscribe(move |at, e| ev.borrow_mut().push((at, e.clone())));
        engine.start();
        Tab {
            id,
            api: ApiClient::new(engine.clone()),
            engine,
            storage,
            transport,
            events,
            _sub: sub,
        }
    }

    /// Opens a tab and lets it settle (restore finished).
    pub fn open_tab(&self, cfg: AppConfig) -> Tab {
        let t = self.open_tab_unsettled(cfg);
        let e = t.engine.clone();
        self.run_until(
            move || e.status() != yew_session::session::SessionStatus::Restoring,
            60_000.0,
        );
        t
    }

    /// Simulates a tab that dies: its messages and requests go nowhere (a refresh it starts takes
    /// the lock and never finishes); whatever it holds stays held.
    pub fn kill(&self, tab: &Tab) {
        self.net.dead.borrow_mut().insert(tab.id.clone());
        tab.transport.dead.set(true);
    }

    /// From now on the tabs run as if in separate processes: each sees the others' localStorage
    /// writes, and receives their messages, `ms` later (see [`Lag`]).
    pub fn separate_processes(&self, ms: f64) {
        let lag = &self.net.lag;
        *lag.base.borrow_mut() = self.local.borrow().clone();
        lag.writes.borrow_mut().clear();
        lag.ms.set(ms);
    }

    /// Makes the lock held by `owner` never expire by itself (a Web Lock of a frozen tab).
    pub fn net_lock_forever(&self, owner: &str) {
        let mut lock = self.net.lock.borrow_mut();
        if let Some((o, d)) = lock.as_mut() {
            if o == owner {
                *d = f64::INFINITY;
            }
        }
    }

    /// Runs every task that can make progress without time passing.
    pub fn settle(&self) {
        loop {
            self.pool.borrow_mut().run_until_stalled();
            if !self.clock.fire_due() {
                break;
            }
        }
    }

    /// Lets `ms` of time pass, firing timers in order.
    pub fn advance(&self, ms: f64) {
        let target = self.clock.now_ms() + ms;
        loop {
            self.settle();
            match self.clock.next_deadline() {
                Some(d) if d <= target => {
                    self.clock.now.set(self.clock.now_ms().max(d));
                    self.clock.fire_due();
                }
                _ => break,
            }
        }
        self.clock.now.set(target);
        self.settle();
    }

    /// The laptop sleeps: time jumps and no timer fires until something runs again.
    pub fn sleep_jump(&self, ms: f64) {
        self.clock.now.set(self.clock.now_ms() + ms);
    }

    /// Spawns `fut` and returns a slot that holds its output once done.
    pub fn spawn<T: 'static>(
        &self,
        fut: impl Future<Output = T> + 'static,
    ) -> Rc<RefCell<Option<T>>> {
        let slot = Rc::new(RefCell::new(None));
        let s = slot.clone();
        self.spawner
            .spawn_local(async move {
                let v = fut.await;
                *s.borrow_mut() = Some(v);
            })
            .expect("pool alive");
        slot
    }

    /// Lets time pass timer by timer until `done()` holds (at most `max_ms`); returns the time
    /// it took.
    pub fn run_until(&self, done: impl Fn() -> bool, max_ms: f64) -> f64 {
        let start = self.clock.now_ms();
        let deadline = start + max_ms;
        loop {
            self.settle();
            if done() {
                return self.clock.now_ms() - start;
            }
            match self.clock.next_deadline() {
                Some(d) if d <= deadline => {
                    self.clock.now.set(self.clock.now_ms().max(d));
                    self.clock.fire_due();
                }
                _ => panic!("condition not reached within {max_ms} ms of fake time"),
            }
        }
    }

    /// Runs `fut` to completion, letting fake time pass as needed (at most `max_ms`).
    pub fn block_on<T: 'static>(&self, fut: impl Future<Output = T> + 'static, max_ms: f64) -> T {
        let slot = self.spawn(fut);
        let deadline = self.clock.now_ms() + max_ms;
        loop {
            self.settle();
            if let Some(v) = slot.borrow_mut().take() {
                return v;
            }
            match self.clock.next_deadline() {
                Some(d) if d <= deadline => {
                    self.clock.now.set(self.clock.now_ms().max(d));
                    self.clock.fire_due();
                }
                _ => panic!("future did not complete within {max_ms} ms of fake time"),
            }
        }
    }

    /// Signs `username` in from `tab` ("remember me" on), creating the account first if needed.
    pub fn login(&self, tab: &Tab, username: &str) {
        self.login_remembered(tab, username, true);
    }

    /// The browser closes (every tab with it) and opens again: browser-session cookies are gone,
    /// localStorage stays. (Close the tabs' engines first by dropping them.)
    pub fn close_browser(&self) {
        self.local
            .borrow_mut()
            .retain(|k, _| !k.starts_with(BROWSER_SESSION_PREFIX));
        self.wire.jar.borrow_mut().close_browser();
    }

    pub fn login_remembered(&self, tab: &Tab, username: &str, remember: bool) {
        self.ensure_user(username);
        let engine = tab.engine.clone();
        let u = username.to_string();
        self.block_on(
            async move { engine.login(u, PASSWORD.into(), remember).await },
            10_000.0,
        )
        .expect("login");
    }
}
