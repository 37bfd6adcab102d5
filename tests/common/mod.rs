//! Deterministic fakes of the browser and of both backends, shared by the host tests.
//!
//! - `FakeClock` is the wall clock AND the timers: time moves only when a test says so, and
//!   `World::advance` fires due timers in order, running every ready task in between.
//! - `FakeServer` plays our API (rotation, cookie transport, `expiresIn`, `Date`) or the tutorial's
//!   backend (no `expiresIn`, no rotation, `x-access-token` only, 404 on sign-out, 403 on a bad
//!   refresh token, text/plain errors, byte-identical tokens within one second).
//! - Every tab gets its own engine, session storage and transport; local storage, the cross-tab
//!   channel, the lock and the server (with its cookie jar) are shared, like in one browser.
#![allow(dead_code)]

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::rc::Rc;

use futures::channel::oneshot;
use futures::executor::{LocalPool, LocalSpawner};
use futures::future::{self, FutureExt, LocalBoxFuture};
use futures::task::LocalSpawnExt;

use api_types::{headers, messages, paths};
use yew_session::api::ApiClient;
use yew_session::config::{AppConfig, StorageMode, TokenHeader};
use yew_session::session::claims::read_claims;
use yew_session::session::ports::{
    Area, Clock, CrossTab, HttpRequest, HttpResponse, KeyValueStore, Method, Random, Sleeper,
    Spawner, TabLock, Transport, TransportError,
};
use yew_session::session::time::format_http_date;
use yew_session::session::{Engine, Ports, SessionEvent, Subscription, TabMessage};

/// A fixed start time (2026-11-25 08:00:00 UTC) so dates are realistic.
pub const T0: f64 = 1_795_680_000_000.0;

// ---- clock and timers ------------------------------------------------------------------------

pub struct FakeClock {
    now: Cell<f64>,
    timers: RefCell<Vec<(f64, oneshot::Sender<()>)>>,
    /// Timers fire this many ms before their deadline (a browser's setTimeout is only as
    /// precise as its whole-millisecond delay and its own clock).
    pub early_ms: Cell<f64>,
}

impl FakeClock {
    fn new() -> Rc<Self> {
        Rc::new(Self {
            now: Cell::new(T0),
            timers: RefCell::new(Vec::new()),
            early_ms: Cell::new(0.0),
        })
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
    pub local: Rc<RefCell<HashMap<String, String>>>,
    pub session: RefCell<HashMap<String, String>>,
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

impl KeyValueStore for FakeStorage {
    fn get(&self, area: Area, key: &str) -> Option<String> {
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
        for r in targets {
            let msg = msg.clone();
            // Delivered asynchronously, as BroadcastChannel does.
            self.net
                .spawner
                .spawn_local(async move { r(msg) })
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

// ---- the fake backends -----------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// Our server: rotation with reuse detection, cookie transport, expiresIn, Date header.
    Ours,
    /// The tutorial's Express backend, as measured.
    Tutorial,
}

#[derive(Debug, Clone)]
pub enum Scripted {
    Status(u16, Vec<(String, String)>, String),
    Network,
    Timeout,
    Hang,
}

struct RefreshRecord {
    username: String,
    family: u64,
    used: bool,
}

#[derive(Debug, Default, Clone)]
pub struct Counts {
    pub signin: u32,
    pub refresh: u32,
    pub refresh_ok: u32,
    pub signout: u32,
    pub api: u32,
    pub api_401: u32,
}

pub struct FakeServer {
    pub flavor: Flavor,
    clock: Rc<FakeClock>,
    /// Server clock minus browser clock.
    pub server_offset_ms: f64,
    pub access_ttl_s: u64,
    pub family_ttl_s: u64,
    refresh: HashMap<String, RefreshRecord>,
    family_ends: HashMap<u64, f64>,
    revoked: HashSet<u64>,
    /// The browser's cookie jar (shared by the tabs).
    pub cookie: Option<String>,
    next: u64,
    pub refresh_script: VecDeque<Scripted>,
    pub api_script: VecDeque<Scripted>,
    /// Refuse every access token (a server that changed keys).
    pub reject_all_access: bool,
    pub counts: Counts,
}

fn b64url(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..=chunk.len() {
            out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

/// An unsigned-in-practice JWT (the client never verifies signatures).
pub fn make_jwt(payload: &serde_json::Value) -> String {
    format!(
        "{}.{}.{}",
        b64url(br#"{"alg":"HS256","typ":"JWT"}"#),
        b64url(payload.to_string().as_bytes()),
        b64url(b"not-a-real-signature")
    )
}

fn json(status: u16, body: serde_json::Value) -> Result<HttpResponse, Scripted> {
    Ok(HttpResponse {
        status,
        headers: vec![("content-type".into(), "application/json".into())],
        body: body.to_string(),
    })
}

fn text(status: u16, ctype: &str, body: &str) -> Result<HttpResponse, Scripted> {
    Ok(HttpResponse {
        status,
        headers: vec![("content-type".into(), ctype.into())],
        body: body.into(),
    })
}

impl FakeServer {
    fn new(flavor: Flavor, clock: Rc<FakeClock>) -> Self {
        Self {
            flavor,
            clock,
            server_offset_ms: 0.0,
            access_ttl_s: 60,
            family_ttl_s: 86_400,
            refresh: HashMap::new(),
            family_ends: HashMap::new(),
            revoked: HashSet::new(),
            cookie: None,
            next: 1,
            refresh_script: VecDeque::new(),
            api_script: VecDeque::new(),
            reject_all_access: false,
            counts: Counts::default(),
        }
    }

    /// Loses every refresh token (a wiped database).
    pub fn forget_refresh_tokens(&mut self) {
        self.refresh.clear();
    }

    pub fn server_now(&self) -> f64 {
        self.clock.now_ms() + self.server_offset_ms
    }

    fn access_token(&self, username: &str) -> String {
        let iat = (self.server_now() / 1000.0).floor() as i64;
        let exp = match self.flavor {
            // jsonwebtoken: exp = floored iat + ttl, so the token may live up to 1 s less.
            Flavor::Tutorial => iat + self.access_ttl_s as i64,
            // session-api rounds exp up: the token lives at least `expiresIn` seconds.
            Flavor::Ours => (self.server_now() / 1000.0).ceil() as i64 + self.access_ttl_s as i64,
        };
        let payload = match self.flavor {
            // Deterministic payload: two sign-ins in one second give byte-identical tokens.
            Flavor::Tutorial => serde_json::json!({"id": 1, "iat": iat, "exp": exp}),
            Flavor::Ours => serde_json::json!({
                "sub": username, "id": 1, "roles": ["ROLE_USER"], "kind": "access",
                "iat": iat, "exp": exp
            }),
        };
        make_jwt(&payload)
    }

    fn new_refresh(&mut self, username: &str, family: Option<u64>) -> String {
        let token = format!("rt-{}", self.next);
        self.next += 1;
        let family = family.unwrap_or_else(|| {
            let f = self.next;
            self.next += 1;
            self.family_ends
                .insert(f, self.server_now() + self.family_ttl_s as f64 * 1000.0);
            f
        });
        self.refresh.insert(
            token.clone(),
            RefreshRecord {
                username: username.into(),
                family,
                used: false,
            },
        );
        token
    }

    fn with_date(&self, mut r: Result<HttpResponse, Scripted>) -> Result<HttpResponse, Scripted> {
        if self.flavor == Flavor::Ours {
            if let Ok(resp) = &mut r {
                resp.headers
                    .push(("date".into(), format_http_date(self.server_now())));
            }
        }
        r
    }

    pub fn handle(&mut self, req: &HttpRequest) -> Result<HttpResponse, Scripted> {
        let r = self.route(req);
        self.with_date(r)
    }

    fn route(&mut self, req: &HttpRequest) -> Result<HttpResponse, Scripted> {
        let body: serde_json::Value = req
            .body
            .as_deref()
            .and_then(|b| serde_json::from_str(b).ok())
            .unwrap_or(serde_json::Value::Null);
        let cookie_transport = req.header(headers::REFRESH_TRANSPORT) == Some("cookie");
        match (req.method, req.url.as_str()) {
            (Method::Post, paths::SIGNIN) => {
                self.counts.signin += 1;
                let username = body["username"].as_str().unwrap_or_default().to_string();
                if body["password"] != "pw" {
                    return json(
                        401,
                        serde_json::json!({"accessToken": null, "message": "Invalid Password!"}),
                    );
                }
                let access = self.access_token(&username);
                let refresh = self.new_refresh(&username, None);
                let mut resp = serde_json::json!({
                    "id": 1, "username": username, "email": format!("{username}@x.io"),
                    "roles": ["ROLE_USER"], "accessToken": access, "refreshToken": refresh,
                });
                if self.flavor == Flavor::Ours {
                    resp["tokenType"] = "Bearer".into();
                    resp["expiresIn"] = self.access_ttl_s.into();
                    resp["refreshExpiresIn"] = self.family_ttl_s.into();
                    if cookie_transport {
                        self.cookie = Some(refresh);
                        resp.as_object_mut().unwrap().remove("refreshToken");
                    }
                }
                json(200, resp)
            }
            (Method::Post, paths::SIGNUP) => match body["username"].as_str() {
                Some("taken") => json(
                    400,
                    serde_json::json!({"message": messages::USERNAME_TAKEN}),
                ),
                Some(_) if body["password"].is_string() => {
                    json(200, serde_json::json!({"message": messages::REGISTERED}))
                }
                // The tutorial's backend answers a missing password with an HTML stack trace.
                _ => text(
                    500,
                    "text/html",
                    "<html><body><pre>TypeError: Illegal arguments</pre></body></html>",
                ),
            },
            (Method::Post, paths::REFRESH) => {
                self.counts.refresh += 1;
                if let Some(s) = self.refresh_script.pop_front() {
                    return match s {
                        Scripted::Status(st, h, b) => Ok(HttpResponse {
                            status: st,
                            headers: h,
                            body: b,
                        }),
                        other => Err(other),
                    };
                }
                let from_cookie = self.flavor == Flavor::Ours && cookie_transport;
                let presented = if from_cookie {
                    if req.with_credentials {
                        self.cookie.clone()
                    } else {
                        None
                    }
                } else {
                    body["refreshToken"].as_str().map(String::from)
                };
                let reject = |me: &Self, msg: &str| match me.flavor {
                    Flavor::Tutorial => json(403, serde_json::json!({ "message": msg })),
                    Flavor::Ours => json(401, serde_json::json!({ "message": msg })),
                };
                let Some(token) = presented else {
                    return reject(self, messages::REFRESH_REQUIRED);
                };
                let Some(rec) = self.refresh.get(&token) else {
                    return reject(self, messages::REFRESH_NOT_IN_DB);
                };
                let family = rec.family;
                let username = rec.username.clone();
                if self.revoked.contains(&family) {
                    return reject(self, "Refresh token revoked");
                }
                if self.family_ends[&family] <= self.server_now() {
                    self.refresh.remove(&token);
                    return reject(self, messages::REFRESH_EXPIRED);
                }
                if self.flavor == Flavor::Ours {
                    if rec.used {
                        self.revoked.insert(family);
                        return reject(self, "Refresh token reuse detected; session revoked");
                    }
                    self.refresh.get_mut(&token).unwrap().used = true;
                }
                self.counts.refresh_ok += 1;
                let access = self.access_token(&username);
                match self.flavor {
                    Flavor::Tutorial => json(
                        200,
                        serde_json::json!({"accessToken": access, "refreshToken": token}),
                    ),
                    Flavor::Ours => {
                        let next = self.new_refresh(&username, Some(family));
                        let remaining =
                            ((self.family_ends[&family] - self.server_now()) / 1000.0) as u64;
                        let mut resp = serde_json::json!({
                            "accessToken": access, "tokenType": "Bearer",
                            "expiresIn": self.access_ttl_s, "refreshExpiresIn": remaining,
                        });
                        if from_cookie {
                            self.cookie = Some(next);
                        } else {
                            resp["refreshToken"] = next.into();
                        }
                        json(200, resp)
                    }
                }
            }
            (Method::Post, paths::SIGNOUT) => {
                self.counts.signout += 1;
                match self.flavor {
                    Flavor::Tutorial => text(
                        404,
                        "text/html",
                        "<!DOCTYPE html><html><body><pre>Cannot POST /api/auth/signout</pre></body></html>",
                    ),
                    Flavor::Ours => {
                        let presented = if cookie_transport {
                            self.cookie.take()
                        } else {
                            body["refreshToken"].as_str().map(String::from)
                        };
                        if let Some(f) = presented.and_then(|t| self.refresh.get(&t)).map(|r| r.family)
                        {
                            self.revoked.insert(f);
                        }
                        json(200, serde_json::json!({"message": "Signed out"}))
                    }
                }
            }
            (Method::Get, paths::TEST_ALL) => text(200, "text/html", messages::PUBLIC_CONTENT),
            (_, _) => {
                self.counts.api += 1;
                if let Some(s) = self.api_script.pop_front() {
                    return match s {
                        Scripted::Status(st, h, b) => {
                            if st == 401 {
                                self.counts.api_401 += 1;
                            }
                            Ok(HttpResponse {
                                status: st,
                                headers: h,
                                body: b,
                            })
                        }
                        other => Err(other),
                    };
                }
                let token = match (
                    self.flavor,
                    req.header(headers::ACCESS_TOKEN),
                    req.header("authorization"),
                ) {
                    (_, Some(t), _) => Some(t.to_string()),
                    (Flavor::Ours, None, Some(b)) => b.strip_prefix("Bearer ").map(String::from),
                    _ => None,
                };
                let Some(token) = token else {
                    return json(403, serde_json::json!({"message": messages::NO_TOKEN}));
                };
                let Ok(facts) = read_claims(&token) else {
                    self.counts.api_401 += 1;
                    return text(401, "text/plain", "Unauthorized");
                };
                if self.reject_all_access || facts.exp_ms.is_none_or(|exp| exp <= self.server_now())
                {
                    self.counts.api_401 += 1;
                    return json(
                        401,
                        serde_json::json!({"message": messages::ACCESS_EXPIRED}),
                    );
                }
                text(200, "text/html", messages::USER_CONTENT)
            }
        }
    }
}

// ---- transport -------------------------------------------------------------------------------

pub struct FakeTransport {
    server: Rc<RefCell<FakeServer>>,
    clock: Rc<FakeClock>,
    pub auth_latency_ms: Cell<f64>,
    pub api_latency_ms: Cell<f64>,
    pub offline: Cell<bool>,
    pub dead: Cell<bool>,
    pub sent: RefCell<Vec<HttpRequest>>,
}

impl Transport for FakeTransport {
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
        let latency = if req.url.starts_with("/api/auth") {
            self.auth_latency_ms.get()
        } else {
            self.api_latency_ms.get()
        };
        let result = self.server.borrow_mut().handle(&req);
        let sleep = self.clock.sleep(latency);
        async move {
            sleep.await;
            match result {
                Ok(r) => Ok(r),
                Err(Scripted::Network) => Err(TransportError::Network("connection reset".into())),
                Err(Scripted::Timeout) => Err(TransportError::Timeout),
                Err(Scripted::Hang) => future::pending().await,
                Err(Scripted::Status(..)) => unreachable!(),
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
    pub server: Rc<RefCell<FakeServer>>,
    pool: RefCell<LocalPool>,
    spawner: LocalSpawner,
    tabs: Cell<u32>,
}

pub struct Tab {
    pub id: String,
    pub engine: Engine,
    pub api: ApiClient,
    pub storage: Rc<FakeStorage>,
    pub transport: Rc<FakeTransport>,
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

impl World {
    pub fn new(flavor: Flavor) -> Self {
        let clock = FakeClock::new();
        let pool = LocalPool::new();
        let spawner = pool.spawner();
        let net = Rc::new(FakeNet {
            receivers: RefCell::new(Vec::new()),
            lock: RefCell::new(None),
            dead: RefCell::new(HashSet::new()),
            spawner: spawner.clone(),
            posted: RefCell::new(Vec::new()),
            strip_tokens: Cell::new(false),
        });
        Self {
            server: Rc::new(RefCell::new(FakeServer::new(flavor, clock.clone()))),
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
        self.server.borrow().counts.clone()
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
        });
        let transport = Rc::new(FakeTransport {
            server: self.server.clone(),
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

    pub fn login(&self, tab: &Tab, username: &str) {
        self.login_remembered(tab, username, true);
    }

    /// The browser closes (every tab with it) and opens again: browser-session cookies are gone,
    /// localStorage stays. (Close the tabs' engines first by dropping them.)
    pub fn close_browser(&self) {
        self.local
            .borrow_mut()
            .retain(|k, _| !k.starts_with(BROWSER_SESSION_PREFIX));
    }

    pub fn login_remembered(&self, tab: &Tab, username: &str, remember: bool) {
        let engine = tab.engine.clone();
        let u = username.to_string();
        self.block_on(
            async move { engine.login(u, "pw".into(), remember).await },
            10_000.0,
        )
        .expect("login");
    }
}
