//! The framework-free session core: no yew, no web-sys. Browser effects arrive through the
//! traits in [`ports`]; the real implementations are in `crate::browser`, the fakes in
//! `tests/common`.
//!
//! Design. Each tab runs one [`Engine`]: it keeps the access token in memory (cookie mode) or
//! mirrors the tutorial's `user` object in web storage (compat mode), and numbers every token it
//! starts using with a generation shared by all tabs. Every path that needs a fresh token (the
//! proactive timer, a wake trigger, a request about to leave with a token that is due, a 401)
//! goes through one single-flight refresh: within the tab a shared future; across tabs a lock
//! with a 15 s lease, kept 250 ms after the new token has been stored and broadcast (so the news
//! reaches tabs in other processes before the lock does), and a tab that finds a newer
//! generation adopts it instead of refreshing. "Sent with an older token" is decided by
//! generation, never by comparing token strings. Refresh times come from `expiresIn` (or `exp`
//! corrected by a clock offset estimated from `Date` or `iat`), with a margin of
//! `min(60 s, 10 %)` of the lifetime and a minimum interval between refreshes. Refresh answers
//! are classified in one place (`error::classify_refresh_status`, `engine::refresh::verdict`): no
//! answer, timeouts, 408, 429 and 5xx are transient (session kept, "degraded", backoff with
//! jitter, 429 waits for `Retry-After`, offline pauses); a 401/403 on the refresh itself, OAuth's
//! 400 `invalid_grant`, or a retried request refused again ends the session, once; any other
//! answer retrying cannot change (another 4xx, an unreadable 200) is retried and ends the session
//! after `policy::MAX_UNEXPECTED_ANSWERS` in a row. The engine's decisions are pure transitions
//! (see [`engine`]); every change is published on the [`EventBus`], to which the Yew store, the
//! toasts and the inspector subscribe, and what the other tabs must hear is an explicit effect
//! of the transition that decided it.
//!
//! ```text
//!         Restored: stored session / silent refresh ok / another tab's token
//!  +-----------+ ------------------------------------------------+
//!  | Restoring |                                                  v
//!  +-----------+                                     +------------------------+
//!       | nothing stored / restore rejected          |        SignedIn        |
//!       v                                            |  healthy <-> degraded  |
//!  +----------------------+  login / TokenUpdated    |  (network, timeout,    |
//!  | SignedOut { reason } | -----------------------> |   5xx, 429, offline:   |
//!  |  None | UserAction   |                          |   session kept,        |
//!  |  Expired             | <----------------------- |   backoff + jitter)    |
//!  |  RefreshRejected     |  logout / refresh 401|403 / retried 401 /       |
//!  |  ReuseDetected       |  LoggedOut from another tab (OtherTab)          |
//!  |  TokenRejected       |                          +------------------------+
//!  |  OtherTab            |                             | timer / wake / due before send / 401
//!  |  CorruptStorage      |                             v
//!  +----------------------+      single-flight refresh: shared future in the tab, lock with a
//!                                lease across tabs, adopt a newer generation instead
//!                                  ok        -> generation + 1, Refreshed, TokenUpdated to tabs
//!                                  transient -> RefreshFailed(kind), Degraded, retry later
//!                                  rejected  -> RefreshFailed, [SessionExpired], LoggedOut
//! ```

pub mod claims;
pub mod engine;
pub mod error;
pub mod events;
pub mod oidc;
pub mod persist;
pub mod policy;
pub mod ports;
pub mod tabs;
pub mod time;
pub mod types;

pub use engine::{Engine, EngineStats, Ports, WakeReason, WeakEngine};
pub use error::{ClientError, FailureKind};
pub use events::{EventBus, SessionEvent, Subscription};
pub use tabs::TabMessage;
pub use types::{BffSession, LogoutReason, SessionStatus, Timeline, UserInfo};
