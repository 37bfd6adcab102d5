//! The real OpenID Provider for the end-to-end tests: `e2e/oidc/provider.mjs` (panva's
//! `oidc-provider`, pinned in `e2e/oidc/package-lock.json`, installed by `scripts/setup --test`)
//! started on free 127.0.0.1 ports with one public client, `yew-session`, and short lifetimes,
//! plus the resource server beside it that accepts the provider's opaque access tokens on the
//! tutorial's `/api/test/*` paths.
//!
//! - [`Provider`]: the node process (killed when dropped); its test controls (`/__stats`,
//!   `/__reset`, `/__fail`) and direct calls of the token and revocation endpoints, for checking
//!   at the provider what a browser run left behind ("a replay of the revoked token is refused").
//! - [`AuthRequest`]: an authorization request with PKCE (S256), `state` and `nonce`, for tests
//!   that drive the code flow themselves.
//! - [`sign_in_at_provider`] / [`confirm_sign_out_at_provider`]: what a person does on the
//!   provider's development pages, typed and clicked through WebDriver.
//!
//! What the provider does by default is what the app must cope with (../shared/OIDC.md): refresh
//! tokens rotate on every use with no grace, and a second use of a used one revokes the grant.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::{free_port, kill_group, wait_for, workspace_root, Page};

/// The provider's one client: public (`token_endpoint_auth_method: none`), PKCE required.
pub const CLIENT_ID: &str = "yew-session";
/// The path of the client's redirect URI on every app origin.
pub const REDIRECT_PATH: &str = "/callback";
/// The scopes the app asks for (and the provider issues a refresh token for).
pub const SCOPES: &str = "openid profile offline_access";
/// The provider's confidential client for session-api's backend-for-frontend mode
/// (client_secret_basic, redirect URI `<origin>/api/bff/callback`).
pub const BFF_CLIENT_ID: &str = "yew-session-bff";
/// Its secret (provider.mjs's default).
pub const BFF_CLIENT_SECRET: &str = "yew-session-bff-test-secret";

/// How to start the provider. Lifetimes are in seconds.
#[derive(Debug, Clone)]
pub struct ProviderOptions {
    /// The app's origin (`http://127.0.0.1:PORT`): redirect URI `<origin>/callback`,
    /// post-logout redirect URIs `<origin>/login` and `<origin>/`, and CORS.
    pub app_origin: String,
    /// More app origins registered the same way (e.g. a second server in a test).
    pub extra_origins: Vec<String>,
    /// Access-token lifetime (`expires_in`).
    pub access_ttl_s: u64,
    /// Refresh-token lifetime, absolute from sign-in: a rotated token keeps what was left.
    pub refresh_ttl_s: u64,
    /// ID-token lifetime.
    pub id_token_ttl_s: u64,
    /// Lifetime of the provider's browser session (its login cookie).
    pub session_ttl_s: u64,
    /// Lifetime of the grant (the consent record tokens hang on).
    pub grant_ttl_s: u64,
}

impl Default for ProviderOptions {
    fn default() -> Self {
        Self {
            app_origin: "http://127.0.0.1:8080".into(),
            extra_origins: Vec::new(),
            access_ttl_s: 5,
            refresh_ttl_s: 3600,
            id_token_ttl_s: 3600,
            session_ttl_s: 86400,
            grant_ttl_s: 86400,
        }
    }
}

/// What the provider and its resource server counted since start or the last [`Provider::reset`]
/// (`GET /__stats`).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Stats {
    /// Token-endpoint requests: grant type -> outcome (`ok` or the OAuth error code) -> count.
    pub token: std::collections::BTreeMap<String, std::collections::BTreeMap<String, u64>>,
    /// All token-endpoint requests that reached the provider (not the injected failures).
    pub token_requests: u64,
    /// Token-endpoint answers `invalid_grant` (any grant type).
    pub invalid_grant: u64,
    /// Grants revoked (reuse of a rotated refresh token, revocation, sign-out).
    pub grants_revoked: u64,
    /// Revocation-endpoint answers 200.
    pub revocations_ok: u64,
    /// RP-initiated logouts completed.
    pub end_session_ok: u64,
    /// Userinfo answers 200.
    pub userinfo_ok: u64,
    /// Token-endpoint requests answered by `/__fail` instead of the provider.
    pub injected_failures: u64,
    /// Resource-server answers.
    pub api: ApiStats,
    /// Every access, refresh and ID token issued to the BFF client (`yew-session-bff`), oldest
    /// first (at most 1000): what must never reach a script in the BFF mode.
    #[serde(default)]
    pub issued_bff: Vec<String>,
    /// The last 20 errors of any endpoint, oldest first.
    pub errors: Vec<Value>,
    /// The current `/__fail` mode.
    pub fail: Option<String>,
}

/// Resource-server answers by kind.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ApiStats {
    /// 200s.
    pub ok: u64,
    /// 401s (no, unknown, expired or revoked token).
    pub unauthorized: u64,
    /// 403s (missing role).
    pub forbidden: u64,
}

impl Stats {
    /// Token requests of `grant_type` that ended in `outcome` (`ok`, `invalid_grant`, ...).
    pub fn token(&self, grant_type: &str, outcome: &str) -> u64 {
        self.token
            .get(grant_type)
            .and_then(|o| o.get(outcome))
            .copied()
            .unwrap_or(0)
    }

    /// Successful refreshes (`refresh_token` grants answered 200).
    pub fn refreshes_ok(&self) -> u64 {
        self.token("refresh_token", "ok")
    }

    /// Refresh requests of every outcome.
    pub fn refreshes_all(&self) -> u64 {
        self.token
            .get("refresh_token")
            .map(|o| o.values().sum())
            .unwrap_or(0)
    }
}

/// `e2e/oidc/provider.mjs`; panics with what to do when its node modules are missing.
pub fn provider_script() -> PathBuf {
    let dir = workspace_root().join("e2e/oidc");
    if !dir
        .join("node_modules/oidc-provider/package.json")
        .is_file()
    {
        panic!(
            "{} is missing: install the test provider's node modules with `scripts/setup --test` \
             (scripts/test does that first)",
            dir.join("node_modules/oidc-provider").display()
        );
    }
    dir.join("provider.mjs")
}

/// A running test provider and resource server; killed when dropped.
pub struct Provider {
    child: Option<Child>,
    port: u16,
    api_port: u16,
    options: ProviderOptions,
    dir: tempfile::TempDir,
    http: reqwest::Client,
}

impl Provider {
    /// Starts `node e2e/oidc/provider.mjs` on two free ports and waits until discovery answers.
    pub async fn start(options: ProviderOptions) -> Provider {
        let script = provider_script();
        // A free port may be taken by someone else before node binds it: try other ones.
        let mut last = String::new();
        for _ in 0..3 {
            match Self::start_on(&script, &options, free_port(), free_port()).await {
                Ok(p) => return p,
                Err(log) => last = log,
            }
        }
        panic!("the test OpenID Provider did not start; its log:\n{last}");
    }

    async fn start_on(
        script: &PathBuf,
        options: &ProviderOptions,
        port: u16,
        api_port: u16,
    ) -> Result<Provider, String> {
        let dir = tempfile::tempdir().expect("temp dir");
        let log_path = dir.path().join("provider.log");
        let log = std::fs::File::create(&log_path).expect("provider log file");
        let mut cmd = Command::new("node");
        cmd.arg(script)
            .args(["--port", &port.to_string()])
            .args(["--api-port", &api_port.to_string()])
            .args(["--access-ttl", &options.access_ttl_s.to_string()])
            .args(["--refresh-ttl", &options.refresh_ttl_s.to_string()])
            .args(["--id-token-ttl", &options.id_token_ttl_s.to_string()])
            .args(["--session-ttl", &options.session_ttl_s.to_string()])
            .args(["--grant-ttl", &options.grant_ttl_s.to_string()]);
        for origin in std::iter::once(&options.app_origin).chain(&options.extra_origins) {
            cmd.args(["--origin", origin.trim_end_matches('/')]);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("could not start node ({e}): Node.js 20+ must be on PATH"));
        let mut provider = Provider {
            child: Some(child),
            port,
            api_port,
            options: options.clone(),
            dir,
            http: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("http client"),
        };
        let discovery = format!("{}/.well-known/openid-configuration", provider.issuer());
        let stats = format!("{}/__stats", provider.api_url());
        let start = Instant::now();
        loop {
            if let Some(status) = provider
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                provider.child = None;
                return Err(format!("exited with {status} at start\n{}", provider.log()));
            }
            let up = |url: String| {
                let http = provider.http.clone();
                async move { matches!(http.get(url).send().await, Ok(r) if r.status().is_success()) }
            };
            if up(discovery.clone()).await && up(stats.clone()).await {
                return Ok(provider);
            }
            if start.elapsed() > Duration::from_secs(20) {
                return Err(format!("did not answer within 20 s\n{}", provider.log()));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `http://127.0.0.1:PORT` (the `iss` of its tokens; discovery below it).
    pub fn issuer(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The resource server: `http://127.0.0.1:PORT` (the app's `apiBase`).
    pub fn api_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.api_port)
    }

    /// The options it was started with.
    pub fn options(&self) -> &ProviderOptions {
        &self.options
    }

    /// The redirect URI registered for `app_origin`.
    pub fn redirect_uri(&self) -> String {
        format!(
            "{}{REDIRECT_PATH}",
            self.options.app_origin.trim_end_matches('/')
        )
    }

    /// The app's `config.json` for this provider (`"backend": "oidc"`).
    pub fn app_config(&self) -> Value {
        json!({
            "backend": "oidc",
            "issuer": self.issuer(),
            "clientId": CLIENT_ID,
            "scopes": SCOPES,
            "redirectPath": REDIRECT_PATH,
            "postLogoutRedirectPath": "/login",
            "apiBase": self.api_url(),
            "rolesClaim": "realm_access.roles",
        })
    }

    /// Writes [`Provider::app_config`] as `config.json` into a static folder the server already
    /// serves (e.g. [`crate::dist_with_config`]'s): the provider needs the app's origin before it
    /// starts, and the app's config needs the provider's issuer, so the server starts first with
    /// a placeholder and the config is written here. The server reads its files per request.
    pub fn write_app_config(&self, static_dir: &std::path::Path) {
        for stale in ["config.json.br", "config.json.gz"] {
            let _ = std::fs::remove_file(static_dir.join(stale));
        }
        let text = serde_json::to_string_pretty(&self.app_config()).expect("config json");
        std::fs::write(static_dir.join("config.json"), text).expect("write config.json");
    }

    /// A plain HTTP client (no cookies kept).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The discovery document.
    pub async fn discovery(&self) -> Value {
        self.get_json(&format!(
            "{}/.well-known/openid-configuration",
            self.issuer()
        ))
        .await
    }

    /// `{issuer}/token` (the provider's default route, as discovery says).
    pub fn token_endpoint(&self) -> String {
        format!("{}/token", self.issuer())
    }

    /// `{issuer}/token/revocation`.
    pub fn revocation_endpoint(&self) -> String {
        format!("{}/token/revocation", self.issuer())
    }

    async fn get_json(&self, url: &str) -> Value {
        let r = self
            .http
            .get(url)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        assert!(r.status().is_success(), "GET {url}: {}", r.status());
        r.json()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: JSON: {e}"))
    }

    async fn post_json(&self, path: &str, body: Value) -> Value {
        let url = format!("{}{path}", self.api_url());
        let r = self
            .http
            .post(&url)
            .json(&body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {url}: {e}"));
        assert!(r.status().is_success(), "POST {url}: {}", r.status());
        r.json()
            .await
            .unwrap_or_else(|e| panic!("POST {url}: JSON: {e}"))
    }

    /// What was counted (`GET /__stats`).
    pub async fn stats(&self) -> Stats {
        let v = self.stats_json().await;
        serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("/__stats {v}: {e}"))
    }

    /// `GET /__stats` as it came.
    pub async fn stats_json(&self) -> Value {
        self.get_json(&format!("{}/__stats", self.api_url())).await
    }

    /// Zeroes the counters and ends any injected failure (`POST /__reset`).
    pub async fn reset(&self) {
        self.post_json("/__reset", json!({})).await;
    }

    /// Makes the token endpoint answer `503`, `429` (`Retry-After: 1`) or drop the connection
    /// (`drop`) until called again with `None` (`POST /__fail`).
    pub async fn fail_token_endpoint(&self, mode: Option<&str>) {
        self.post_json("/__fail", json!({ "token": mode })).await;
    }

    async fn form(&self, url: &str, form: &[(&str, &str)]) -> (u16, Value) {
        let r = self
            .http
            .post(url)
            .form(form)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {url}: {e}"));
        let status = r.status().as_u16();
        let text = r.text().await.unwrap_or_default();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, body)
    }

    /// Revokes a token of the BFF client (client_secret_basic) at the revocation endpoint; the
    /// provider revokes its whole grant with it: the server's next refresh is `invalid_grant`.
    pub async fn revoke_bff(&self, token: &str, hint: &str) -> u16 {
        let r = self
            .http
            .post(self.revocation_endpoint())
            .basic_auth(BFF_CLIENT_ID, Some(BFF_CLIENT_SECRET))
            .form(&[("token", token), ("token_type_hint", hint)])
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST revocation: {e}"));
        r.status().as_u16()
    }

    /// session-api's flags for BFF mode against this provider: its issuer, the BFF client and
    /// its secret (written to `secret_file`), the resource server as the proxy's `rs` prefix,
    /// and the app's origin.
    pub fn bff_server_args(&self, app_origin: &str, secret_file: &std::path::Path) -> Vec<String> {
        std::fs::write(secret_file, BFF_CLIENT_SECRET).expect("write the BFF client secret");
        [
            "--upstream-issuer",
            &self.issuer(),
            "--upstream-client-id",
            BFF_CLIENT_ID,
            "--upstream-client-secret-file",
            &secret_file.display().to_string(),
            "--upstream-api",
            &format!("rs={}", self.api_url()),
            "--bff-origin",
            app_origin,
        ]
        .map(str::to_owned)
        .to_vec()
    }

    /// A `refresh_token` grant straight at the token endpoint: (status, JSON body). A rotated or
    /// revoked token answers `(400, {"error": "invalid_grant", ...})`.
    pub async fn refresh_grant(&self, refresh_token: &str) -> (u16, Value) {
        self.form(
            &self.token_endpoint(),
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
                ("client_id", CLIENT_ID),
            ],
        )
        .await
    }

    /// The `authorization_code` grant of the code flow: (status, JSON body).
    pub async fn exchange_code(
        &self,
        code: &str,
        code_verifier: &str,
        redirect_uri: &str,
    ) -> (u16, Value) {
        self.form(
            &self.token_endpoint(),
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("code_verifier", code_verifier),
                ("redirect_uri", redirect_uri),
                ("client_id", CLIENT_ID),
            ],
        )
        .await
    }

    /// Revokes a token at the revocation endpoint (RFC 7009): its status (200 even for an
    /// unknown token, as the RFC says).
    pub async fn revoke(&self, token: &str, hint: &str) -> u16 {
        self.form(
            &self.revocation_endpoint(),
            &[
                ("token", token),
                ("token_type_hint", hint),
                ("client_id", CLIENT_ID),
            ],
        )
        .await
        .0
    }

    /// `GET {api_url}{path}` with `Authorization: Bearer <token>` when given: (status, body text).
    pub async fn api_get(&self, path: &str, token: Option<&str>) -> (u16, String) {
        let mut req = self.http.get(format!("{}{path}", self.api_url()));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let r = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        (r.status().as_u16(), r.text().await.unwrap_or_default())
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("provider.log")
    }

    /// Everything the node process printed so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!("---- oidc provider log (last {} lines) ----", tail.len());
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
        if let Some(mut child) = self.child.take() {
            kill_group(&mut child);
        }
    }
}

/// An authorization request of the code flow with PKCE: what the app keeps for the round trip.
#[derive(Debug, Clone)]
pub struct AuthRequest {
    /// The URL to send the browser to.
    pub url: String,
    /// The PKCE verifier (43 characters of base64url from 32 random bytes).
    pub code_verifier: String,
    /// `state`.
    pub state: String,
    /// `nonce`.
    pub nonce: String,
    /// `redirect_uri`.
    pub redirect_uri: String,
}

impl AuthRequest {
    /// The same request with one more query parameter (e.g. `prompt=login`, which makes the
    /// provider show its login form although this browser has a session there).
    pub fn with_param(mut self, name: &str, value: &str) -> AuthRequest {
        let mut url = url::Url::parse(&self.url).expect("auth url");
        url.query_pairs_mut().append_pair(name, value);
        self.url = url.into();
        self
    }
}

/// base64url (no padding) of `n` random bytes.
pub fn random_b64url(n: usize) -> String {
    let bytes: Vec<u8> = (0..n).map(|_| rand::random::<u8>()).collect();
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The S256 code challenge of `verifier` (RFC 7636 4.2).
pub fn s256_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

impl AuthRequest {
    /// A request for [`SCOPES`] to `provider`'s authorization endpoint, redirecting to its
    /// [`Provider::redirect_uri`], with fresh random verifier, state and nonce.
    pub fn new(provider: &Provider) -> AuthRequest {
        let code_verifier = random_b64url(32);
        let state = random_b64url(16);
        let nonce = random_b64url(16);
        let redirect_uri = provider.redirect_uri();
        let mut url = url::Url::parse(&format!("{}/auth", provider.issuer())).expect("auth url");
        url.query_pairs_mut()
            .append_pair("client_id", CLIENT_ID)
            .append_pair("response_type", "code")
            .append_pair("scope", SCOPES)
            .append_pair("redirect_uri", &redirect_uri)
            .append_pair("code_challenge", &s256_challenge(&code_verifier))
            .append_pair("code_challenge_method", "S256")
            .append_pair("state", &state)
            .append_pair("nonce", &nonce);
        AuthRequest {
            url: url.into(),
            code_verifier,
            state,
            nonce,
            redirect_uri,
        }
    }
}

/// The claims of a JWT (its middle part), without checking the signature: for tests reading an ID
/// token the token endpoint just handed over.
pub fn jwt_claims(jwt: &str) -> Value {
    let payload = jwt
        .split('.')
        .nth(1)
        .unwrap_or_else(|| panic!("not a JWT: {jwt}"));
    let bytes = URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap_or_else(|e| panic!("JWT payload is not base64url ({e}): {jwt}"));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("JWT payload is not JSON ({e})"))
}

/// The page's full URL.
pub async fn href(page: &Page) -> String {
    page.js("return location.href;", vec![])
        .await
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// On a page showing the provider's development login form, types `login` and `password` and
/// submits like a person would, then waits until the browser has left the provider (the redirect
/// back to the app) and returns where it landed (the full URL). Any password is accepted.
pub async fn sign_in_at_provider(
    page: &Page,
    provider: &Provider,
    login: &str,
    password: &str,
) -> String {
    page.type_into("input[name=login]", login).await;
    page.type_into("input[name=password]", password).await;
    page.click("button[type=submit]").await;
    let issuer = provider.issuer();
    wait_for(
        &format!("the provider to send {login} back to the app"),
        Duration::from_secs(15),
        || async {
            let at = href(page).await;
            (!at.starts_with(&issuer)).then_some(at)
        },
    )
    .await
}

/// On the provider's "Do you want to sign-out?" page (RP-initiated logout while the provider's
/// own session is alive), clicks "Yes, sign me out" and waits until the browser has left the
/// provider (the post-logout redirect).
pub async fn confirm_sign_out_at_provider(page: &Page, provider: &Provider) {
    page.click("button[name=logout][value=yes]").await;
    let issuer = provider.issuer();
    wait_for(
        "the provider to redirect after sign-out",
        Duration::from_secs(15),
        || async { (!href(page).await.starts_with(&issuer)).then_some(()) },
    )
    .await;
}
