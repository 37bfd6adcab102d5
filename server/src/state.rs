//! Shared application state: settings, database, keys, clock, password pool, throttle, metrics.
//! Everything is injected here (never read from globals) so tests build their own app.

use std::path::PathBuf;
use std::sync::Arc;

use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::db::Db;
use crate::keys::Keys;
use crate::metrics::Metrics;
use crate::password::Passwords;
use crate::throttle::{Throttle, ThrottleLimits};

/// Issuer claim of our access tokens.
pub const ISSUER: &str = "session-api";
/// Audience claim of our access tokens.
pub const AUDIENCE: &str = "yew-session";

/// Behaviour knobs, resolved from the [`Config`].
#[derive(Debug, Clone)]
pub struct Settings {
    /// Access-token lifetime (s).
    pub access_ttl_secs: i64,
    /// Family absolute lifetime (ms).
    pub refresh_ttl_ms: i64,
    /// Family idle timeout (ms).
    pub refresh_idle_ms: i64,
    /// Grace window (ms).
    pub refresh_grace_ms: i64,
    /// Origins allowed for CORS and for sign-in, refresh and sign-out (the server's own origin
    /// always is).
    pub allowed_origins: Vec<String>,
    /// Honour requested roles at sign-up.
    pub open_role_signup: bool,
    /// Failed-login throttle.
    pub throttle: ThrottleLimits,
    /// Maximum request body (bytes).
    pub max_body: usize,
    /// Per-request timeout (ms).
    pub request_timeout_ms: u64,
    /// Served app, if any.
    pub static_dir: Option<PathBuf>,
    /// Concurrent argon2id computations.
    pub hash_concurrency: usize,
    /// Proxies whose X-Forwarded-For is believed (`--trusted-proxy`); empty: none.
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            access_ttl_secs: 15 * 60,
            refresh_ttl_ms: 7 * 86_400_000,
            refresh_idle_ms: 86_400_000,
            refresh_grace_ms: 5_000,
            allowed_origins: Vec::new(),
            open_role_signup: false,
            throttle: ThrottleLimits::default(),
            max_body: 16 * 1024,
            request_timeout_ms: 15_000,
            static_dir: None,
            hash_concurrency: std::thread::available_parallelism().map_or(2, |n| n.get()),
            trusted_proxies: Vec::new(),
        }
    }
}

impl From<&Config> for Settings {
    fn from(c: &Config) -> Self {
        let ms = |d: std::time::Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        Self {
            access_ttl_secs: c.access_ttl.as_secs() as i64,
            refresh_ttl_ms: ms(c.refresh_ttl),
            refresh_idle_ms: ms(c.refresh_idle_ttl),
            refresh_grace_ms: ms(c.refresh_grace),
            allowed_origins: c
                .allowed_origin
                .iter()
                .map(|o| o.trim_end_matches('/').to_owned())
                .collect(),
            open_role_signup: c.open_role_signup,
            throttle: ThrottleLimits {
                pair_free: c.login_free_failures,
                per_account: c.login_max_failures_account,
                per_ip: c.login_max_failures_ip,
                window_ms: ms(c.login_window),
            },
            max_body: c.max_body,
            request_timeout_ms: c.request_timeout.as_millis() as u64,
            static_dir: c.static_dir.clone(),
            hash_concurrency: c
                .hash_concurrency
                .unwrap_or_else(|| Settings::default().hash_concurrency),
            trusted_proxies: c.trusted_proxy.clone(),
        }
    }
}

struct Inner {
    settings: Settings,
    db: Db,
    keys: Keys,
    clock: Arc<dyn Clock>,
    passwords: Passwords,
    throttle: Throttle,
    metrics: Metrics,
    /// Backend-for-frontend mode, when configured (set once, before the router is built).
    bff: std::sync::OnceLock<Arc<crate::bff::Bff>>,
}

/// Cheaply clonable handle to everything a handler needs.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("settings", &self.0.settings)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// Builds the state with the system clock.
    pub fn new(settings: Settings, db: Db, secret: &[u8]) -> Self {
        Self::with_clock(settings, db, secret, Arc::new(SystemClock))
    }

    /// Builds the state with an explicit clock (tests).
    pub fn with_clock(settings: Settings, db: Db, secret: &[u8], clock: Arc<dyn Clock>) -> Self {
        Self(Arc::new(Inner {
            keys: Keys::new(secret, ISSUER, AUDIENCE),
            passwords: Passwords::new(settings.hash_concurrency),
            throttle: Throttle::new(settings.throttle, db.clone()),
            metrics: Metrics::new(db.clone()),
            bff: std::sync::OnceLock::new(),
            clock,
            db,
            settings,
        }))
    }

    /// Settings.
    pub fn settings(&self) -> &Settings {
        &self.0.settings
    }
    /// Database.
    pub fn db(&self) -> &Db {
        &self.0.db
    }
    /// Keys.
    pub fn keys(&self) -> &Keys {
        &self.0.keys
    }
    /// Now, Unix ms.
    pub fn now_ms(&self) -> i64 {
        self.0.clock.now_ms()
    }
    /// Password pool.
    pub fn passwords(&self) -> &Passwords {
        &self.0.passwords
    }
    /// Login throttle.
    pub fn throttle(&self) -> &Throttle {
        &self.0.throttle
    }
    /// Metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.0.metrics
    }
    /// The backend-for-frontend mode, if configured.
    pub fn bff(&self) -> Option<&Arc<crate::bff::Bff>> {
        self.0.bff.get()
    }
    /// Turns on the backend-for-frontend mode: call before [`crate::app`] builds the router
    /// (its routes are added only when this is set). A second call is refused.
    pub fn set_bff(&self, bff: Arc<crate::bff::Bff>) -> Result<(), &'static str> {
        self.0
            .bff
            .set(bff)
            .map_err(|_| "the BFF mode was set already")
    }
}
