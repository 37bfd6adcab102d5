//! The small traits through which the browser reaches the engine. Real implementations live in
//! `crate::browser`; deterministic fakes in `crate::session::fakes`. Everything is single-threaded
//! (`Rc`, `LocalBoxFuture`) because the client runs on the wasm main thread.

use futures::future::LocalBoxFuture;

use super::tabs::TabMessage;

/// Wall-clock time of the browser, in milliseconds since the Unix epoch (may be wrong by
/// minutes: the engine corrects it with an estimated server offset).
pub trait Clock {
    /// Current wall-clock time in ms.
    fn now_ms(&self) -> f64;
}

/// Timers. A sleeping or background tab may fire them late, never early: the engine re-checks
/// the wall clock whenever one fires.
pub trait Sleeper {
    /// Resolves after at least `ms` milliseconds.
    fn sleep(&self, ms: f64) -> LocalBoxFuture<'static, ()>;
}

/// Runs a background task (the scheduler, restore, fire-and-forget sign-out).
pub trait Spawner {
    /// Spawns a `'static` local future.
    fn spawn(&self, fut: LocalBoxFuture<'static, ()>);
}

/// Source of randomness for jitter (injected so tests are deterministic).
pub trait Random {
    /// A number in `[0, 1)`.
    fn next_f64(&self) -> f64;
}

/// Which web storage area.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Area {
    /// `localStorage`: shared by the tabs of the origin, survives restarts.
    Local,
    /// `sessionStorage`: this tab only.
    Session,
    /// Shared by the tabs like `Local`, but gone when the browser closes: a cookie without
    /// `Max-Age` (`document.cookie`). Small, never a secret: it only marks "this browser
    /// session is still the one that signed in" for sessions that were not remembered.
    BrowserSession,
}

/// Web storage (strings only, as in the browser).
pub trait KeyValueStore {
    /// Reads a key; `None` when absent or storage is unavailable.
    fn get(&self, area: Area, key: &str) -> Option<String>;
    /// Writes a key; failures (quota, private mode) are ignored: storage is best-effort.
    fn set(&self, area: Area, key: &str, value: &str);
    /// Removes a key.
    fn remove(&self, area: Area, key: &str);
}

/// HTTP method of an API request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// GET
    Get,
    /// POST
    Post,
    /// DELETE
    Delete,
}

/// One HTTP request as the engine builds it.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpRequest {
    /// Method.
    pub method: Method,
    /// Absolute or origin-relative URL.
    pub url: String,
    /// Header name/value pairs (names lowercase).
    pub headers: Vec<(String, String)>,
    /// JSON body, when any.
    pub body: Option<String>,
    /// Send cookies (same-origin credentials): needed for the cookie transport.
    pub with_credentials: bool,
}

impl HttpRequest {
    /// A request without headers or body.
    pub fn new(method: Method, url: impl Into<String>) -> Self {
        Self {
            method,
            url: url.into(),
            headers: Vec::new(),
            body: None,
            with_credentials: true,
        }
    }

    /// The value of a header (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A received HTTP response, whatever its status.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Readable headers (cross-origin responses expose only the CORS-safelisted ones).
    pub headers: Vec<(String, String)>,
    /// Body text (JSON, text/plain or HTML).
    pub body: String,
}

impl HttpResponse {
    /// The value of a header (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A request that produced no response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// DNS, refused or dropped connection, CORS refusal, offline.
    #[error("network error: {0}")]
    Network(String),
    /// No answer within the client's deadline.
    #[error("request timed out")]
    Timeout,
}

/// Sends HTTP requests.
pub trait Transport {
    /// Sends one request.
    fn send(
        &self,
        req: HttpRequest,
    ) -> LocalBoxFuture<'static, Result<HttpResponse, TransportError>>;
}

/// Messages between the tabs of the app (BroadcastChannel, or storage events as a fallback).
pub trait CrossTab {
    /// Sends to every other tab (never to this one).
    fn post(&self, msg: &TabMessage);
    /// Installs the receiver of messages from other tabs (replaces any earlier one).
    fn set_receiver(&self, receiver: Box<dyn Fn(TabMessage)>);
}

/// A cross-tab mutual-exclusion lock with a lease: a holder that dies or freezes cannot block the
/// others past its lease deadline.
pub trait TabLock {
    /// Tries once to take the lock for `owner` until `now_ms + lease_ms`; `true` when taken.
    fn try_acquire(&self, owner: &str, now_ms: f64, lease_ms: f64)
        -> LocalBoxFuture<'static, bool>;
    /// Releases the lock if `owner` holds it.
    fn release(&self, owner: &str);
    /// The tab currently holding an unexpired lease, for the inspector.
    fn holder(&self, now_ms: f64) -> Option<String>;
}
