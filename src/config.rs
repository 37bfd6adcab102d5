//! Runtime configuration of the app, read from `/config.json` so that one build can talk to our
//! server (cookie mode), to the tutorial's backend (compatibility mode), to any OpenID Connect
//! provider (`"backend": "oidc"`) or to session-api as a backend for frontend (`"bff"`) without
//! a rebuild. Types and pure parsing only: the fetch is
//! `crate::browser::config::load_config`.

use serde_json::{Map, Value};

use crate::session::oidc::Endpoints;

/// What the app signs in against.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Backend {
    /// session-api, or the tutorial's backend (`storageMode` says which transport): username
    /// and password posted to `/api/auth/signin`.
    #[default]
    Api,
    /// An OpenID Connect provider: authorization code + PKCE, the `refresh_token` grant.
    Oidc,
    /// session-api as a backend for frontend: the server signs in at the provider and holds
    /// every token; the browser has an HttpOnly session cookie, and the API calls go through
    /// the server's proxy (`apiBase`, e.g. `/api/rs`).
    Bff,
}

/// Which header carries the access token.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TokenHeader {
    /// `x-access-token: <jwt>`, the tutorial's header (the only one its backend reads).
    #[default]
    XAccessToken,
    /// `Authorization: Bearer <jwt>`.
    Bearer,
}

/// Where the tokens live between page loads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum StorageMode {
    /// Access token in memory only; refresh token only in the server's HttpOnly cookie.
    #[default]
    Cookie,
    /// The tutorial's `user` object with both tokens in web storage (weaker against XSS).
    Compat,
}

/// The app's runtime configuration.
#[derive(Debug, Clone, PartialEq)]
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
    /// `"api"` (default) or `"oidc"`.
    pub backend: Backend,
    /// OpenID Connect: the provider's issuer URL (discovery is `<issuer>/.well-known/...`).
    pub issuer: String,
    /// OpenID Connect: this app's (public) client id at the provider.
    pub client_id: String,
    /// OpenID Connect: the scopes asked for.
    pub scopes: String,
    /// OpenID Connect: the app's path the provider sends the browser back to.
    pub redirect_path: String,
    /// OpenID Connect: where the provider sends the browser after signing out there.
    pub post_logout_redirect_path: String,
    /// OpenID Connect: an `audience` parameter for the authorization request (Auth0).
    pub audience: Option<String>,
    /// OpenID Connect: a `resource` indicator for the authorization request (RFC 8707).
    pub resource: Option<String>,
    /// OpenID Connect: a `prompt` for the authorization request (`"consent"`: Logto issues a
    /// refresh token for `offline_access` only then).
    pub prompt: Option<String>,
    /// OpenID Connect: the ID-token claim with the user's roles, a name or a dotted path
    /// (`realm_access.roles`); none: every user has `ROLE_USER` only.
    pub roles_claim: Option<String>,
    /// OpenID Connect: the provider's endpoints, from discovery (not read from config.json).
    pub endpoints: Option<Endpoints>,
    /// OpenID Connect: why discovery failed, for the sign-in page (not read from config.json).
    pub discovery_error: Option<String>,
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
            backend: Backend::Api,
            issuer: String::new(),
            client_id: String::new(),
            scopes: "openid profile offline_access".into(),
            redirect_path: "/callback".into(),
            post_logout_redirect_path: "/".into(),
            audience: None,
            resource: None,
            prompt: None,
            roles_claim: None,
            endpoints: None,
            discovery_error: None,
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

/// A number as JSON writes it, with serde_json's float printing, which the wasm has anyway
/// (see `crate::components::numbers`).
fn json_number(x: f64) -> String {
    serde_json::Value::from(x).to_string()
}

// config.json is read key by key through `serde_json::Value` (which the wasm links for OpenID
// discovery anyway), by hand: serde's derive for this struct and its three enums cost 1,897 B
// gzip more of wasm (`scripts/size`), for a file read once.

/// `keys[key]` read by `read` (`None` when absent or `null`), or a sentence naming the key, what
/// it must be and what it was.
fn get<T>(
    keys: &Map<String, Value>,
    key: &str,
    must_be: &str,
    read: fn(&Value) -> Option<T>,
) -> Result<Option<T>, ConfigError> {
    match keys.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => read(v)
            .map(Some)
            .ok_or_else(|| ConfigError::Invalid(format!("\"{key}\" must be {must_be}, got {v}"))),
    }
}

fn string(keys: &Map<String, Value>, key: &str) -> Result<Option<String>, ConfigError> {
    get(keys, key, "a string", |v| v.as_str().map(str::to_owned))
}

fn number(keys: &Map<String, Value>, key: &str) -> Result<Option<f64>, ConfigError> {
    get(keys, key, "a number", Value::as_f64)
}

/// The index of the key's value among `names`.
fn choice(
    keys: &Map<String, Value>,
    key: &str,
    names: &[&str],
) -> Result<Option<usize>, ConfigError> {
    let Some(v) = string(keys, key)? else {
        return Ok(None);
    };
    match names.iter().position(|n| *n == v) {
        Some(i) => Ok(Some(i)),
        None => Err(ConfigError::Invalid(format!(
            "\"{key}\" must be one of \"{}\", got \"{v}\"",
            names.join("\", \"")
        ))),
    }
}

/// A backend-for-frontend configuration has no token to place or keep: the keys that say how
/// would be ignored, so a document that sets them says something untrue and is refused.
fn check_bff(keys: &Map<String, Value>) -> Result<(), ConfigError> {
    for key in ["tokenHeader", "storageMode"] {
        if keys.get(key).is_some_and(|v| !v.is_null()) {
            return Err(ConfigError::Value(format!(
                "backend \"bff\" keeps no token in the browser, so \"{key}\" has no meaning: remove it"
            )));
        }
    }
    Ok(())
}

impl AppConfig {
    /// Parses a `config.json` document; missing keys (and `null`) take their defaults, unknown
    /// keys are ignored.
    pub fn from_json(text: &str) -> Result<AppConfig, ConfigError> {
        let doc: Value =
            serde_json::from_str(text).map_err(|e| ConfigError::Invalid(e.to_string()))?;
        let Some(keys) = doc.as_object() else {
            return Err(ConfigError::Invalid(format!(
                "expected an object, got {doc}"
            )));
        };
        let mut cfg = AppConfig::default();
        let text = |key: &str, into: &mut String| -> Result<(), ConfigError> {
            if let Some(v) = string(keys, key)? {
                *into = v;
            }
            Ok(())
        };
        text("apiBase", &mut cfg.api_base)?;
        text("issuer", &mut cfg.issuer)?;
        text("clientId", &mut cfg.client_id)?;
        text("scopes", &mut cfg.scopes)?;
        text("redirectPath", &mut cfg.redirect_path)?;
        text("postLogoutRedirectPath", &mut cfg.post_logout_redirect_path)?;
        cfg.audience = string(keys, "audience")?;
        cfg.resource = string(keys, "resource")?;
        cfg.prompt = string(keys, "prompt")?;
        cfg.roles_claim = string(keys, "rolesClaim")?;
        cfg.refresh_margin_secs = number(keys, "refreshMarginSecs")?;
        if let Some(n) = number(keys, "sessionEndNoticeSecs")? {
            cfg.session_end_notice_secs = n;
        }
        if let Some(b) = get(keys, "debugToasts", "true or false", Value::as_bool)? {
            cfg.debug_toasts = b;
        }
        if let Some(i) = choice(keys, "backend", &["api", "oidc", "bff"])? {
            cfg.backend = [Backend::Api, Backend::Oidc, Backend::Bff][i];
        }
        if let Some(i) = choice(keys, "tokenHeader", &["x-access-token", "bearer"])? {
            cfg.token_header = [TokenHeader::XAccessToken, TokenHeader::Bearer][i];
        }
        if let Some(i) = choice(keys, "storageMode", &["cookie", "compat"])? {
            cfg.storage_mode = [StorageMode::Cookie, StorageMode::Compat][i];
        }
        if let Some(m) = cfg.refresh_margin_secs {
            if !m.is_finite() || m < 0.0 {
                return Err(ConfigError::Value(format!(
                    "refreshMarginSecs must be a non-negative number, got {}",
                    json_number(m)
                )));
            }
        }
        let n = cfg.session_end_notice_secs;
        if !n.is_finite() || n < 0.0 {
            return Err(ConfigError::Value(format!(
                "sessionEndNoticeSecs must be a non-negative number, got {}",
                json_number(n)
            )));
        }
        // A trailing slash would produce `//api/...` once joined with the contract's paths.
        while cfg.api_base.ends_with('/') {
            cfg.api_base.pop();
        }
        match cfg.backend {
            Backend::Oidc => cfg.check_oidc()?,
            Backend::Bff => check_bff(keys)?,
            Backend::Api => {}
        }
        Ok(cfg)
    }

    /// An OpenID Connect configuration must name the provider and the client, and its paths
    /// must be this app's. The provider's tokens are held by the app (as in compat mode, in web
    /// storage: see the README) and sent as `Authorization: Bearer`.
    fn check_oidc(&mut self) -> Result<(), ConfigError> {
        let value = |m: String| Err(ConfigError::Value(m));
        let issuer = self.issuer.trim();
        if !(issuer.starts_with("https://") || issuer.starts_with("http://")) {
            return value(format!(
                "backend \"oidc\" needs \"issuer\", the provider's http(s) URL, got \"{issuer}\""
            ));
        }
        if self.client_id.trim().is_empty() {
            return value(
                "backend \"oidc\" needs \"clientId\", the app's client id at the provider".into(),
            );
        }
        for (key, path) in [
            ("redirectPath", &self.redirect_path),
            ("postLogoutRedirectPath", &self.post_logout_redirect_path),
        ] {
            if !path.starts_with('/') || path.starts_with("//") {
                return value(format!(
                    "{key} must be a path of this app starting with /, got \"{path}\""
                ));
            }
        }
        use yew_router::Routable;
        let route = crate::route::Route::recognize(&self.redirect_path);
        if route != Some(crate::route::Route::NotFound) {
            return value(format!(
                "redirectPath must not be one of the app's pages, got \"{}\"",
                self.redirect_path
            ));
        }
        if !self.scopes.split(' ').any(|s| s == "openid") {
            return value(format!(
                "scopes must include openid, got \"{}\"",
                self.scopes
            ));
        }
        self.storage_mode = StorageMode::Compat;
        self.token_header = TokenHeader::Bearer;
        Ok(())
    }

    /// Signs in at an OpenID Connect provider.
    pub fn oidc(&self) -> bool {
        self.backend == Backend::Oidc
    }

    /// session-api as a backend for frontend: no token in the browser.
    pub fn bff(&self) -> bool {
        self.backend == Backend::Bff
    }

    /// The configuration to start with, from what fetching `config.json` gave: its text, or why
    /// there is none (`"answered 404"`). The app must still start (same-origin cookie mode is the
    /// common deployment), so anything unusable yields the defaults and, as the second value, the
    /// warning to print.
    pub fn from_fetched(fetched: Result<String, String>) -> (AppConfig, Option<String>) {
        match fetched.map(|text| AppConfig::from_json(&text)) {
            Ok(Ok(cfg)) => (cfg, None),
            Ok(Err(e)) => (AppConfig::default(), Some(format!("{e}; using defaults"))),
            Err(why) => (
                AppConfig::default(),
                Some(format!("config.json {why}; using defaults")),
            ),
        }
    }

    /// `api_base` joined with one of the contract's absolute paths.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.api_base, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_openid_connect_document_needs_a_provider_and_a_client_and_takes_defaults() {
        let cfg = AppConfig::from_json(
            r#"{"backend":"oidc","issuer":"https://id.example.com/realms/r","clientId":"app"}"#,
        )
        .unwrap();
        assert!(cfg.oidc());
        assert_eq!(cfg.scopes, "openid profile offline_access");
        assert_eq!(
            (
                cfg.redirect_path.as_str(),
                cfg.post_logout_redirect_path.as_str()
            ),
            ("/callback", "/")
        );
        // The provider's tokens are the app's to hold, and go out as bearer tokens.
        assert_eq!(
            (cfg.storage_mode, cfg.token_header),
            (StorageMode::Compat, TokenHeader::Bearer)
        );
        for (doc, says) in [
            (r#"{"backend":"oidc","clientId":"app"}"#, "needs \"issuer\""),
            (
                r#"{"backend":"oidc","issuer":"id.example.com","clientId":"app"}"#,
                "http(s) URL",
            ),
            (
                r#"{"backend":"oidc","issuer":"https://id"}"#,
                "needs \"clientId\"",
            ),
            (
                r#"{"backend":"oidc","issuer":"https://id","clientId":"a","redirectPath":"https://evil/cb"}"#,
                "redirectPath must be a path",
            ),
            (
                r#"{"backend":"oidc","issuer":"https://id","clientId":"a","scopes":"profile"}"#,
                "must include openid",
            ),
            (
                r#"{"backend":"oidc","issuer":"https://id","clientId":"a","redirectPath":"/login"}"#,
                "not be one of the app's pages",
            ),
            (
                r#"{"backend":"saml"}"#,
                r#"invalid config.json: "backend" must be one of "api", "oidc", "bff", got "saml""#,
            ),
        ] {
            let e = AppConfig::from_json(doc).unwrap_err().to_string();
            assert!(e.contains(says), "{doc}: {e}");
        }
        // The other backends do not care about the OpenID keys.
        assert!(!AppConfig::from_json(r#"{"storageMode":"compat"}"#)
            .unwrap()
            .oidc());
    }

    #[test]
    fn each_key_of_the_wrong_kind_is_named_with_what_it_must_be_and_null_means_the_default() {
        for (doc, says) in [
            (r#"{"apiBase":7}"#, r#""apiBase" must be a string, got 7"#),
            (
                r#"{"clientId":["a"]}"#,
                r#""clientId" must be a string, got ["a"]"#,
            ),
            (
                r#"{"refreshMarginSecs":"30"}"#,
                r#""refreshMarginSecs" must be a number, got "30""#,
            ),
            (
                r#"{"debugToasts":"yes"}"#,
                r#""debugToasts" must be true or false, got "yes""#,
            ),
            (
                r#"{"storageMode":"Cookie"}"#,
                r#""storageMode" must be one of "cookie", "compat", got "Cookie""#,
            ),
            (
                r#"{"tokenHeader":"Bearer"}"#,
                r#""tokenHeader" must be one of "x-access-token", "bearer", got "Bearer""#,
            ),
            (r#"{"backend":1}"#, r#""backend" must be a string, got 1"#),
            ("[1]", "expected an object, got [1]"),
        ] {
            let e = AppConfig::from_json(doc).unwrap_err();
            assert!(matches!(e, ConfigError::Invalid(_)), "{doc}");
            assert_eq!(
                e.to_string(),
                ["invalid config.json: ", says].concat(),
                "{doc}"
            );
        }
        let cfg = AppConfig::from_json(
            r#"{"apiBase":null,"sessionEndNoticeSecs":null,"audience":null,"debugToasts":false,
                "somethingElse":{"ignored":true},"backend":"api","storageMode":"compat",
                "tokenHeader":"bearer","prompt":"consent","sessionEndNoticeSecs":60,
                "scopes":"openid email","issuer":"https://id","clientId":"c","resource":"r",
                "rolesClaim":"realm_access.roles","audience":"aud","redirectPath":"/cb",
                "postLogoutRedirectPath":"/bye","refreshMarginSecs":12.5}"#,
        )
        .unwrap();
        let expected = AppConfig {
            storage_mode: StorageMode::Compat,
            token_header: TokenHeader::Bearer,
            prompt: Some("consent".into()),
            session_end_notice_secs: 60.0,
            scopes: "openid email".into(),
            issuer: "https://id".into(),
            client_id: "c".into(),
            resource: Some("r".into()),
            roles_claim: Some("realm_access.roles".into()),
            audience: Some("aud".into()),
            redirect_path: "/cb".into(),
            post_logout_redirect_path: "/bye".into(),
            refresh_margin_secs: Some(12.5),
            ..AppConfig::default()
        };
        assert_eq!(cfg, expected);
        assert_eq!(
            AppConfig::from_json(r#"{"backend":"oidc","issuer":"https://id","clientId":"c"}"#)
                .unwrap()
                .backend,
            Backend::Oidc
        );
    }

    #[test]
    fn a_bff_document_sends_the_api_calls_to_the_proxy_prefix_and_takes_no_token_keys() {
        let cfg = AppConfig::from_json(r#"{"backend":"bff","apiBase":"/api/rs/"}"#).unwrap();
        assert!(cfg.bff() && !cfg.oidc());
        assert_eq!(cfg.backend, Backend::Bff);
        assert_eq!(cfg.api_base, "/api/rs", "the trailing slash goes");
        assert_eq!(cfg.url("/api/test/user"), "/api/rs/api/test/user");
        // Nothing of the token's placement applies: cookie-like, nothing kept by the app.
        assert_eq!(cfg.storage_mode, StorageMode::Cookie);
        for key in ["tokenHeader", "storageMode"] {
            let value = if key == "tokenHeader" {
                "bearer"
            } else {
                "compat"
            };
            let doc = format!(r#"{{"backend":"bff","{key}":"{value}"}}"#);
            let e = AppConfig::from_json(&doc).unwrap_err();
            assert_eq!(
                e,
                ConfigError::Value(format!(
                    "backend \"bff\" keeps no token in the browser, so \"{key}\" has no meaning: remove it"
                )),
                "{doc}"
            );
            // `null` means "the default", as for every key.
            let doc = format!(r#"{{"backend":"bff","{key}":null}}"#);
            assert!(AppConfig::from_json(&doc).unwrap().bff(), "{doc}");
        }
        let e = AppConfig::from_json(r#"{"backend":"BFF"}"#).unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"invalid config.json: "backend" must be one of "api", "oidc", "bff", got "BFF""#
        );
        // The other backends accept the token keys as before.
        assert!(
            !AppConfig::from_json(r#"{"backend":"api","storageMode":"compat"}"#)
                .unwrap()
                .bff()
        );
    }

    #[test]
    fn a_usable_document_is_taken_without_a_warning() {
        let (cfg, warning) = AppConfig::from_fetched(Ok(r#"{"storageMode":"compat"}"#.into()));
        assert_eq!(cfg.storage_mode, StorageMode::Compat);
        assert_eq!(warning, None);
    }

    #[test]
    fn a_missing_or_broken_file_falls_back_to_the_defaults_with_a_warning() {
        let (cfg, warning) = AppConfig::from_fetched(Err("answered 404".into()));
        assert_eq!(cfg, AppConfig::default());
        assert_eq!(
            warning.as_deref(),
            Some("config.json answered 404; using defaults")
        );
        for broken in ["not json", r#"{"sessionEndNoticeSecs":-5}"#] {
            let (cfg, warning) = AppConfig::from_fetched(Ok(broken.into()));
            assert_eq!(cfg, AppConfig::default(), "{broken}");
            let warning = warning.unwrap_or_default();
            assert!(
                warning.starts_with("invalid config.json: ")
                    && warning.ends_with("; using defaults"),
                "{broken}: {warning}"
            );
        }
    }
}
