//! Runtime configuration of the app, read from `/config.json` so that one build can talk to our
//! server (cookie mode) or to the tutorial's backend (compatibility mode) without a rebuild.

use serde::{Deserialize, Serialize};

/// Which header carries the access token.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum TokenHeader {
    /// `x-access-token: <jwt>`, the tutorial's header (the only one its backend reads).
    #[default]
    #[serde(rename = "x-access-token")]
    XAccessToken,
    /// `Authorization: Bearer <jwt>`.
    #[serde(rename = "bearer")]
    Bearer,
}

/// Where the tokens live between page loads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum StorageMode {
    /// Access token in memory only; refresh token only in the server's HttpOnly cookie.
    #[default]
    #[serde(rename = "cookie")]
    Cookie,
    /// The tutorial's `user` object with both tokens in web storage (weaker against XSS).
    #[serde(rename = "compat")]
    Compat,
}

/// The app's runtime configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AppConfig {
    /// Base URL of the API; `""` means same origin.
    pub api_base: String,
    /// Header used to send the access token.
    pub token_header: TokenHeader,
    /// Cookie or compatibility storage.
    pub storage_mode: StorageMode,
    /// Upper bound of the proactive-refresh margin; `None` lets the engine adapt it.
    pub refresh_margin_secs: Option<f64>,
    /// Show a toast for every session event (useful when demonstrating the engine).
    pub debug_toasts: bool,
    /// How long before the session's absolute end a notice offers to sign in again (seconds;
    /// 0 turns it off).
    pub session_end_notice_secs: f64,
}

impl Default for AppConfig {
    fn default() -> Self {
        Self {
            api_base: String::new(),
            token_header: TokenHeader::XAccessToken,
            storage_mode: StorageMode::Cookie,
            refresh_margin_secs: None,
            debug_toasts: false,
            session_end_notice_secs: 300.0,
        }
    }
}

/// Why a configuration document was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// Not JSON, or a field of the wrong type / unknown value.
    #[error("invalid config.json: {0}")]
    Invalid(String),
    /// A value that parses but cannot be used.
    #[error("invalid config.json: {0}")]
    Value(String),
}

impl AppConfig {
    /// Parses a `config.json` document; missing fields take their defaults.
    pub fn from_json(text: &str) -> Result<AppConfig, ConfigError> {
        let mut cfg: AppConfig =
            serde_json::from_str(text).map_err(|e| ConfigError::Invalid(e.to_string()))?;
        if let Some(m) = cfg.refresh_margin_secs {
            if !m.is_finite() || m < 0.0 {
                return Err(ConfigError::Value(format!(
                    "refreshMarginSecs must be a non-negative number, got {m}"
                )));
            }
        }
        let n = cfg.session_end_notice_secs;
        if !n.is_finite() || n < 0.0 {
            return Err(ConfigError::Value(format!(
                "sessionEndNoticeSecs must be a non-negative number, got {n}"
            )));
        }
        // A trailing slash would produce `//api/...` once joined with the contract's paths.
        while cfg.api_base.ends_with('/') {
            cfg.api_base.pop();
        }
        Ok(cfg)
    }

    /// `api_base` joined with one of the contract's absolute paths.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.api_base, path)
    }
}

/// Fetches `/config.json`; a missing or broken file yields the defaults and a console warning,
/// because the app must still start (same-origin cookie mode is the common deployment).
pub async fn load_config() -> AppConfig {
    let resp = match gloo_net::http::Request::get("/config.json").send().await {
        Ok(r) => r,
        Err(e) => {
            gloo_console::warn!(format!("config.json not loaded ({e}); using defaults"));
            return AppConfig::default();
        }
    };
    if !resp.ok() {
        gloo_console::warn!(format!(
            "config.json answered {}; using defaults",
            resp.status()
        ));
        return AppConfig::default();
    }
    match resp.text().await.map(|t| AppConfig::from_json(&t)) {
        Ok(Ok(cfg)) => cfg,
        Ok(Err(e)) => {
            gloo_console::warn!(format!("{e}; using defaults"));
            AppConfig::default()
        }
        Err(e) => {
            gloo_console::warn!(format!("config.json unreadable ({e}); using defaults"));
            AppConfig::default()
        }
    }
}
