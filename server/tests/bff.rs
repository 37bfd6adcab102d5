//! Backend-for-frontend mode (issue 15, server side) against the REAL OpenID Provider of the e2e
//! tests (`e2e/oidc/provider.mjs`: panva's oidc-provider, its confidential client
//! `yew-session-bff`, refresh tokens rotated on every use with no grace). Each test starts its own
//! provider (node) and its own session-api app(s), walks the provider's development login form
//! with an HTTP client like a browser would, and checks at the provider (`/__stats`) what the BFF
//! did: how many refreshes, how many `invalid_grant`, how many revocations.
//!
//! Needs Node.js and `e2e/oidc/node_modules` (`scripts/setup --test` runs `npm ci` there). Without
//! them the tests fail when `CI` is set and are skipped with a notice otherwise.

mod common;

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use common::{fresh_database, futures_join, Backend, Resp};
use serde_json::{json, Value};
use session_api::bff::config::UpstreamKind;
use session_api::bff::store::hash_id;
use session_api::bff::{Bff, BffConfig};
use session_api::clock::ManualClock;
use session_api::db::Db;
use session_api::{app, AppState, Settings};
use sqlx::Row;
use tower::ServiceExt;

on_both_backends!(
    sign_in_sets_only_the_host_cookie_and_no_token_reaches_the_browser,
    proxied_calls_carry_the_upstream_token_and_only_to_the_allowlist,
    fifty_concurrent_calls_of_one_session_refresh_once,
    an_upstream_401_refreshes_once_and_retries_once,
    a_refused_refresh_ends_the_session,
    a_provider_outage_is_503_and_keeps_the_session,
    logout_needs_the_csrf_header_revokes_and_clears_the_cookie,
    sign_out_everywhere_ends_every_session_of_the_user_only,
    callback_failures_redirect_with_a_reason_and_states_are_single_use,
);

const BFF_CLIENT_ID: &str = "yew-session-bff";
const BFF_SECRET: &str = "yew-session-bff-test-secret";
const PREFIX: &str = "res";

// ---- the provider -------------------------------------------------------------------------------

fn workspace() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Whether the provider can run here; fails (panics) under CI when it cannot.
fn provider_available() -> bool {
    let modules = workspace().join("e2e/oidc/node_modules/oidc-provider");
    let node = Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let why = if !node {
        "node is not on PATH"
    } else if !modules.exists() {
        "e2e/oidc/node_modules is missing (run scripts/setup --test, or npm ci in e2e/oidc)"
    } else {
        return true;
    };
    if std::env::var_os("CI").is_some() {
        panic!("the BFF tests need the test OpenID Provider, but {why}");
    }
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "NOTICE: {why}: the BFF tests pass without running (CI fails instead)"
    );
    false
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Provider {
    child: Child,
    port: u16,
    api_port: u16,
    http: reqwest::Client,
    log: tempfile::NamedTempFile,
}

impl Provider {
    async fn start(app_origin: &str, access_ttl_s: u64) -> Provider {
        let (port, api_port) = (free_port(), free_port());
        let log = tempfile::NamedTempFile::new().unwrap();
        let child = Command::new("node")
            .arg(workspace().join("e2e/oidc/provider.mjs"))
            .args([
                "--port",
                &port.to_string(),
                "--api-port",
                &api_port.to_string(),
            ])
            .args([
                "--origin",
                app_origin,
                "--access-ttl",
                &access_ttl_s.to_string(),
            ])
            .args(["--bff-client-secret", BFF_SECRET])
            .stdin(Stdio::null())
            .stdout(log.reopen().unwrap())
            .stderr(log.reopen().unwrap())
            .spawn()
            .expect("node");
        let p = Provider {
            child,
            port,
            api_port,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            log,
        };
        let start = Instant::now();
        loop {
            let up = p.http.get(format!("{}/__stats", p.api_url())).send().await;
            let disc = p
                .http
                .get(format!("{}/.well-known/openid-configuration", p.issuer()))
                .send()
                .await;
            if matches!((up, disc), (Ok(a), Ok(b)) if a.status().is_success() && b.status().is_success())
            {
                return p;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "provider did not start:\n{}",
                std::fs::read_to_string(p.log.path()).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn issuer(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn api_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.api_port)
    }

    async fn stats(&self) -> Value {
        self.http
            .get(format!("{}/__stats", self.api_url()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Refreshes counted by outcome (`ok`, `invalid_grant`, ...).
    async fn refreshes(&self) -> BTreeMap<String, u64> {
        serde_json::from_value(self.stats().await["token"]["refresh_token"].clone())
            .unwrap_or_default()
    }

    async fn fail(&self, mode: Option<&str>) {
        let r = self
            .http
            .post(format!("{}/__fail", self.api_url()))
            .json(&json!({ "token": mode }))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
    }

    /// Revokes a token at the provider as the BFF client (to make its next refresh fail).
    async fn revoke(&self, token: &str) {
        let r = self
            .http
            .post(format!("{}/token/revocation", self.issuer()))
            .basic_auth(BFF_CLIENT_ID, Some(BFF_SECRET))
            .form(&[("token", token), ("token_type_hint", "refresh_token")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = std::fs::read_to_string(self.log.path()).unwrap_or_default();
            eprintln!("---- provider log ----\n{log}");
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---- the app ------------------------------------------------------------------------------------

struct BffApp {
    state: AppState,
    router: Router,
    clock: Arc<ManualClock>,
    origin: String,
    url: String,
    _dir: Option<tempfile::TempDir>,
}

/// Where the test app "is": only a name (requests go through `oneshot`), registered at the
/// provider as the redirect URI's origin.
fn app_origin() -> String {
    format!("http://127.0.0.1:{}", free_port())
}

fn bff_config(p: &Provider, origin: &str, secret_dir: &std::path::Path) -> BffConfig {
    let secret = secret_dir.join("client-secret");
    std::fs::write(&secret, format!("{BFF_SECRET}\n")).unwrap();
    let issuer = p.issuer();
    let api = format!("{PREFIX}={}/api/test", p.api_url());
    let args = vec![
        "session-api",
        "--upstream-issuer",
        &issuer,
        "--upstream-client-id",
        BFF_CLIENT_ID,
        "--upstream-client-secret-file",
        secret.to_str().unwrap(),
        "--upstream-api",
        &api,
        "--bff-origin",
        origin,
    ];
    let c = <session_api::config::Config as clap::Parser>::try_parse_from(args).unwrap();
    BffConfig::from_config(&c).unwrap().unwrap()
}

const SECRET: [u8; 32] = [42u8; 32];

impl BffApp {
    async fn new(b: &Backend, p: &Provider, origin: &str) -> BffApp {
        let (url, dir) = fresh_database(b).await;
        Self::on(&url, dir, p, origin, Arc::new(ManualClock::new())).await
    }

    async fn on(
        url: &str,
        dir: Option<tempfile::TempDir>,
        p: &Provider,
        origin: &str,
        clock: Arc<ManualClock>,
    ) -> BffApp {
        let settings = Settings {
            allowed_origins: vec![origin.to_owned()],
            hash_concurrency: 1,
            ..Settings::default()
        };
        let db = Db::connect(url, 16).await.expect("database");
        let state = AppState::with_clock(settings, db.clone(), &SECRET, clock.clone());
        let tmp = tempfile::tempdir().unwrap();
        let bff = Bff::start(bff_config(p, origin, tmp.path()), &SECRET, db)
            .await
            .expect("bff start");
        state.set_bff(bff).unwrap();
        BffApp {
            router: app(state.clone()),
            state,
            clock,
            origin: origin.to_owned(),
            url: url.to_owned(),
            _dir: dir,
        }
    }

    /// Another instance on the same database, secret and clock.
    async fn another_instance(&self, p: &Provider) -> BffApp {
        Self::on(&self.url, None, p, &self.origin, self.clock.clone()).await
    }

    fn bff(&self) -> &Arc<Bff> {
        self.state.bff().unwrap()
    }

    async fn call(&self, method: &str, path: &str, headers: &[(&str, &str)], body: Body) -> Resp {
        common::oneshot(&self.router, method, path, headers, body).await
    }

    async fn get(&self, path: &str, cookie: &str) -> Resp {
        self.call("GET", path, &[("cookie", cookie)], Body::empty())
            .await
    }

    /// A state-changing request as the app sends it: cookie, `x-csrf: 1`, its own Origin.
    async fn post(&self, path: &str, cookie: &str) -> Resp {
        let origin = self.origin.clone();
        self.call(
            "POST",
            path,
            &[("cookie", cookie), ("x-csrf", "1"), ("origin", &origin)],
            Body::empty(),
        )
        .await
    }

    /// The stored session of a cookie (`__Host-bff=<v>`), opened.
    async fn stored(&self, cookie: &str) -> Option<session_api::bff::store::SessionRow> {
        let v = cookie.strip_prefix("__Host-bff=").unwrap();
        self.bff()
            .store()
            .session(&hash_id(v), self.state.now_ms())
            .await
            .unwrap()
    }

    async fn session_rows(&self) -> i64 {
        sqlx::query("SELECT COUNT(*) AS n FROM bff_sessions")
            .fetch_one(self.state.db().pool())
            .await
            .unwrap()
            .try_get("n")
            .unwrap()
    }

    fn advance_secs(&self, s: i64) {
        self.clock.advance_ms(s * 1000);
    }
}

fn cookie_named(r: &Resp, name: &str) -> Option<String> {
    r.set_cookies()
        .into_iter()
        .find(|c| c.starts_with(&format!("{name}=")))
}

fn name_value(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_owned()
}

// ---- a person at the provider's login form -------------------------------------------------------

/// A minimal cookie jar for the provider's origin (paths ignored: sending its interaction
/// cookies everywhere on it is harmless).
#[derive(Default)]
struct Jar(BTreeMap<String, String>);

impl Jar {
    fn take(&mut self, headers: &reqwest::header::HeaderMap) {
        for v in headers.get_all("set-cookie") {
            if let Ok(c) = cookie::Cookie::parse(v.to_str().unwrap().to_owned()) {
                if c.value().is_empty() || c.max_age().is_some_and(|a| a.is_zero()) {
                    self.0.remove(c.name());
                } else {
                    self.0.insert(c.name().to_owned(), c.value().to_owned());
                }
            }
        }
    }
    fn header(&self) -> String {
        self.0
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

fn attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let key = format!("{name}=\"");
    let i = tag.find(&key)? + key.len();
    let j = tag[i..].find('"')? + i;
    Some(&tag[i..j])
}

/// What one sign-in went through.
struct SignIn {
    /// The callback's answer.
    callback: Resp,
    /// Where `/api/bff/login` sent the browser (the authorization request).
    auth_url: String,
    /// The callback's path and query, as the provider redirected to it.
    callback_path: String,
    /// The binding cookie (`__Host-bff-login=<v>`).
    binding: String,
}

/// From `/api/bff/login` to the callback's answer, signing in at the provider as `login` (any
/// password).
async fn sign_in_raw(app: &BffApp, p: &Provider, login: &str, return_to: &str) -> SignIn {
    let start = app
        .get(&format!("/api/bff/login?return={return_to}"), "")
        .await;
    assert_eq!(start.status, StatusCode::SEE_OTHER, "{}", start.text());
    let binding = name_value(&cookie_named(&start, "__Host-bff-login").expect("binding cookie"));
    let auth_url = start.header("location").unwrap();
    assert!(auth_url.starts_with(&p.issuer()), "{auth_url}");
    let mut jar = Jar::default();
    let mut url = auth_url.clone();
    let mut method_post: Option<Vec<(String, String)>> = None;
    for _ in 0..12 {
        let req = match method_post.take() {
            Some(form) => p.http.post(&url).form(&form),
            None => p.http.get(&url),
        };
        let r = req.header("cookie", jar.header()).send().await.unwrap();
        jar.take(r.headers());
        let status = r.status().as_u16();
        if (300..400).contains(&status) {
            let loc = r.headers()["location"].to_str().unwrap().to_owned();
            let next = url::Url::parse(&url)
                .unwrap()
                .join(&loc)
                .unwrap()
                .to_string();
            if next.starts_with(&app.origin) {
                let path = next[app.origin.len()..].to_owned();
                let callback = app.get(&path, &binding).await;
                return SignIn {
                    callback,
                    auth_url,
                    callback_path: path,
                    binding,
                };
            }
            url = next;
            continue;
        }
        let html = r.text().await.unwrap();
        assert_eq!(status, 200, "at {url}: {html}");
        let form = html.find("<form").map(|i| &html[i..]).expect("a form");
        let action = attr(form, "action").expect("form action");
        let mut fields: Vec<(String, String)> = Vec::new();
        for tag in form.split("<input").skip(1) {
            let tag = &tag[..tag.find('>').unwrap_or(tag.len())];
            if let Some(name) = attr(tag, "name") {
                let value = match name {
                    "login" => login.to_owned(),
                    "password" => "any-password".to_owned(),
                    _ => attr(tag, "value").unwrap_or_default().to_owned(),
                };
                fields.push((name.to_owned(), value));
            }
        }
        url = url::Url::parse(&url)
            .unwrap()
            .join(action)
            .unwrap()
            .to_string();
        method_post = Some(fields);
    }
    panic!("the provider never sent the browser back to the app");
}

/// A sign-in started at `/api/bff/login` and left at the provider: its binding cookie
/// (`__Host-bff-login=<v>`) and the `state` of its authorization request.
async fn login_started(app: &BffApp) -> (String, String) {
    let start = app.get("/api/bff/login", "").await;
    let binding = name_value(&cookie_named(&start, "__Host-bff-login").unwrap());
    let state: String = url::Url::parse(&start.header("location").unwrap())
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    (binding, state)
}

/// Signs in and returns the session cookie (`__Host-bff=<value>`), checking the redirect back.
async fn sign_in(app: &BffApp, p: &Provider, login: &str) -> String {
    let cb = sign_in_raw(app, p, login, "/profile").await.callback;
    assert_eq!(cb.status, StatusCode::SEE_OTHER, "{}", cb.text());
    assert_eq!(cb.header("location").as_deref(), Some("/profile"));
    name_value(&cookie_named(&cb, "__Host-bff").expect("session cookie"))
}

/// Whether `text` carries any of the session's tokens.
fn leaks(text: &str, t: &session_api::bff::store::Tokens) -> bool {
    let mut all = vec![t.access_token.clone()];
    all.extend(t.refresh_token.clone());
    all.extend(t.id_token.clone());
    all.iter().any(|tok| text.contains(tok.as_str()))
}

fn everything(r: &Resp) -> String {
    let mut s = r.text();
    for (k, v) in &r.headers {
        s.push_str(&format!("\n{k}: {}", v.to_str().unwrap_or_default()));
    }
    s
}

/// Runs `f` only when the provider can run (see [`provider_available`]).
/// A provider whose access tokens live `access_ttl_s`, and one BFF instance for it on `b`.
async fn started(b: &Backend, access_ttl_s: u64) -> (Provider, BffApp) {
    let origin = app_origin();
    let p = Provider::start(&origin, access_ttl_s).await;
    let app = BffApp::new(b, &p, &origin).await;
    (p, app)
}

macro_rules! needs_provider {
    () => {
        if !provider_available() {
            return;
        }
    };
}

// ---- the tests ----------------------------------------------------------------------------------

async fn sign_in_sets_only_the_host_cookie_and_no_token_reaches_the_browser(b: Backend) {
    needs_provider!();
    let (p, app) = started(&b, 60).await;
    let SignIn {
        callback: cb,
        auth_url,
        ..
    } = sign_in_raw(&app, &p, "alice", "/profile?tab=1").await;
    assert_eq!(cb.status, StatusCode::SEE_OTHER, "{}", cb.text());
    assert_eq!(cb.header("location").as_deref(), Some("/profile?tab=1"));
    // The authorization request: code flow, PKCE S256, state, nonce, the configured client.
    let q: BTreeMap<String, String> = url::Url::parse(&auth_url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["client_id"], BFF_CLIENT_ID);
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(
        q["redirect_uri"],
        format!("{}/api/bff/callback", app.origin)
    );
    assert!(q["state"].len() >= 43 && q["nonce"].len() >= 43);
    // One session cookie with exactly the __Host- attributes; the binding cookie is removed.
    let c = cookie_named(&cb, "__Host-bff").unwrap();
    let mut attrs: Vec<&str> = c.split(';').map(str::trim).skip(1).collect();
    attrs.sort();
    assert_eq!(
        attrs,
        [
            "HttpOnly",
            "Max-Age=604800",
            "Path=/",
            "SameSite=Strict",
            "Secure"
        ],
        "{c}"
    );
    assert!(cookie_named(&cb, "__Host-bff-login")
        .unwrap()
        .contains("Max-Age=0"));
    let cookie = name_value(&c);
    // The stored tokens are not in plaintext in the database (read before anything opens them).
    let opened = app.stored(&cookie).await.expect("stored session");
    let stored_tokens = opened.tokens.clone();
    let rows = sqlx::query("SELECT id_hash, sub, claims, sealed FROM bff_sessions")
        .fetch_all(app.state.db().pool())
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    let raw: String = ["id_hash", "sub", "claims", "sealed"]
        .iter()
        .map(|c| rows[0].try_get::<String, _>(*c).unwrap())
        .collect::<Vec<_>>()
        .join("|");
    assert!(
        !leaks(&raw, &stored_tokens),
        "plaintext token in the database: {raw}"
    );
    // Nor merely encoded: the sealed blob, base64url-decoded, does not hold them either.
    let sealed: String = rows[0].try_get("sealed").unwrap();
    let decoded = base64::Engine::decode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        sealed.strip_prefix("v1.").expect("versioned blob"),
    )
    .unwrap();
    assert!(
        !leaks(&String::from_utf8_lossy(&decoded), &stored_tokens),
        "the sealed blob is not encrypted"
    );
    assert!(
        !raw.contains(cookie.strip_prefix("__Host-bff=").unwrap()),
        "cookie value stored"
    );
    let session = app.get("/api/bff/session", &cookie).await;
    assert_eq!(session.status, 200, "{}", session.text());
    let v = session.json();
    assert_eq!(v["user"]["sub"], "alice");
    assert_eq!(v["user"]["name"], "Test user alice");
    assert_eq!(v["user"]["email"], "alice@example.test");
    assert_eq!(v["user"]["roles"], json!(["ROLE_USER"]));
    assert_eq!(v["refreshCount"], 0);
    assert!(v["lastRefreshedAt"].is_null());
    assert!(v["accessTokenExpiresAt"].as_i64().unwrap() > app.state.now_ms());
    assert_eq!(session.header("cache-control").as_deref(), Some("no-store"));
    // No token in anything the browser got; and none in plaintext in the database.
    let stored = app.stored(&cookie).await.expect("stored session");
    assert!(stored.tokens.refresh_token.is_some() && stored.tokens.id_token.is_some());
    for r in [&cb, &session] {
        assert!(!leaks(&everything(r), &stored.tokens), "{}", everything(r));
    }
    let proxied = app.get(&format!("/api/{PREFIX}/user"), &cookie).await;
    assert!(!leaks(&everything(&proxied), &stored.tokens));
    // Without a cookie: 401 with a code.
    let none = app.get("/api/bff/session", "").await;
    assert_eq!(none.status, 401);
    assert_eq!(none.json()["code"], "bff_no_session");
    // An open redirect is refused before anything starts.
    for bad in [
        "//evil.example/x",
        "https://evil.example/",
        "/%5cevil.example",
    ] {
        let r = app.get(&format!("/api/bff/login?return={bad}"), "").await;
        assert_eq!(r.status, 400, "{bad}: {}", r.text());
    }
}

async fn proxied_calls_carry_the_upstream_token_and_only_to_the_allowlist(b: Backend) {
    needs_provider!();
    let (p, app) = started(&b, 60).await;
    let cookie = sign_in(&app, &p, "alice").await;
    let r = app.get(&format!("/api/{PREFIX}/user"), &cookie).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), "User Content.");
    // The upstream's own refusal passes through as it came.
    let r = app.get(&format!("/api/{PREFIX}/admin"), &cookie).await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(r.json()["message"], "Require Admin Role!");
    let stats = p.stats().await;
    assert_eq!(stats["api"]["ok"], 1, "{stats}");
    assert_eq!(stats["api"]["forbidden"], 1, "{stats}");
    assert_eq!(stats["api"]["unauthorized"], 0, "{stats}");
    // Without a session the proxy sends nothing.
    let r = app.get(&format!("/api/{PREFIX}/user"), "").await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["code"], "bff_no_session");
    // Nothing but a path below the configured base is ever a destination.
    for bad in [
        "/api/res/../../__stats",
        "/api/res/%2e%2e/%2e%2e/__stats",
        "/api/res/.%2e/__stats",
        "/api/res/user/..%2f..%2f__stats",
        "/api/res//127.0.0.1:1/x",
        "/api/res/@127.0.0.1:1/x",
        "/api/res/user%40evil.example",
        "/api/res/a\\..\\..\\__stats",
    ] {
        let r = app.get(bad, &cookie).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.text());
        assert_eq!(r.json()["code"], "bff_bad_destination", "{bad}");
    }
    let r = app.get("/api/other/user", &cookie).await;
    assert_eq!(r.status, 404, "an unconfigured prefix is no destination");
    assert_eq!(
        p.stats().await["api"]["ok"],
        1,
        "no refused path reached the API"
    );
    // A state-changing proxied request needs the custom header; with it, it is passed on.
    let bare = app
        .call(
            "POST",
            "/api/res/user",
            &[("cookie", &cookie), ("origin", &app.origin)],
            Body::from("{}"),
        )
        .await;
    assert_eq!(bare.status, 403, "{}", bare.text());
    assert_eq!(bare.json()["code"], "bff_csrf");
    let cross = app
        .call(
            "POST",
            "/api/res/user",
            &[
                ("cookie", &cookie),
                ("x-csrf", "1"),
                ("origin", "http://evil.example"),
            ],
            Body::from("{}"),
        )
        .await;
    assert_eq!(cross.status, 403, "another origin, even with the header");
    let ok = app.post("/api/res/user", &cookie).await;
    assert_eq!(
        ok.status,
        404,
        "reached the resource server (GET only): {}",
        ok.text()
    );
    assert_eq!(ok.json()["message"], "Not found");
}

/// Waits until all of `futs` answered; returns their statuses.
async fn statuses(futs: Vec<impl std::future::Future<Output = Resp>>) -> Vec<u16> {
    futures_join(futs)
        .await
        .into_iter()
        .map(|r| r.status.as_u16())
        .collect()
}

async fn fifty_concurrent_calls_of_one_session_refresh_once(b: Backend) {
    needs_provider!();
    let (p, app) = started(&b, 60).await;
    let cookie = sign_in(&app, &p, "alice").await;
    // The access token is past its expiry for the BFF: every call wants a refresh first.
    app.advance_secs(61);
    let path = format!("/api/{PREFIX}/user");
    let calls: Vec<_> = (0..50).map(|_| app.get(&path, &cookie)).collect();
    let got = statuses(calls).await;
    assert!(got.iter().all(|s| *s == 200), "{got:?}");
    let refreshes = p.refreshes().await;
    assert_eq!(refreshes.get("ok"), Some(&1), "{refreshes:?}");
    assert_eq!(p.stats().await["invalid_grant"], 0);
    let s = app.get("/api/bff/session", &cookie).await.json();
    assert_eq!(s["refreshCount"], 1);
    assert_eq!(s["lastRefreshedAt"], app.state.now_ms());
}

async fn an_upstream_401_refreshes_once_and_retries_once(b: Backend) {
    needs_provider!();
    let origin = app_origin();
    // The provider's access tokens live 2 s; the BFF's clock stands still, so it believes the
    // token valid and learns otherwise from the API's 401.
    let p = Provider::start(&origin, 2).await;
    let app = BffApp::new(&b, &p, &origin).await;
    let cookie = sign_in(&app, &p, "alice").await;
    tokio::time::sleep(Duration::from_millis(2300)).await;
    let path = format!("/api/{PREFIX}/user");
    let calls: Vec<_> = (0..20).map(|_| app.get(&path, &cookie)).collect();
    let got = statuses(calls).await;
    assert!(got.iter().all(|s| *s == 200), "{got:?}");
    assert_eq!(p.refreshes().await.get("ok"), Some(&1));
    let stats = p.stats().await;
    assert_eq!(stats["invalid_grant"], 0);
    // Calls that read the session after the refresh never saw the old token; every other one
    // was refused once and retried once: 20 answers of content in all, none retried twice.
    let refused = stats["api"]["unauthorized"].as_u64().unwrap();
    assert!((1..=20).contains(&refused), "{stats}");
    assert_eq!(stats["api"]["ok"], 20, "{stats}");
}

async fn a_refused_refresh_ends_the_session(b: Backend) {
    needs_provider!();
    let (p, app) = started(&b, 60).await;
    let cookie = sign_in(&app, &p, "alice").await;
    let other = sign_in(&app, &p, "bob").await;
    let stored = app.stored(&cookie).await.unwrap();
    p.revoke(stored.tokens.refresh_token.as_deref().unwrap())
        .await;
    app.advance_secs(61);
    let r = app.get(&format!("/api/{PREFIX}/user"), &cookie).await;
    assert_eq!(r.status, 401, "{}", r.text());
    assert_eq!(r.json()["code"], "bff_session_ended");
    assert!(cookie_named(&r, "__Host-bff")
        .unwrap()
        .contains("Max-Age=0"));
    assert!(
        app.stored(&cookie).await.is_none(),
        "the session row is gone"
    );
    assert_eq!(app.session_rows().await, 1, "bob's session is untouched");
    assert_eq!(p.refreshes().await.get("invalid_grant"), Some(&1));
    let again = app.get("/api/bff/session", &cookie).await;
    assert_eq!(again.status, 401);
    assert_eq!(again.json()["code"], "bff_session_ended");
    // Nobody else's session suffered.
    let r = app.get(&format!("/api/{PREFIX}/user"), &other).await;
    assert_eq!(r.status, 200, "{}", r.text());
}

async fn a_provider_outage_is_503_and_keeps_the_session(b: Backend) {
    needs_provider!();
    let (p, app) = started(&b, 60).await;
    let cookie = sign_in(&app, &p, "alice").await;
    app.advance_secs(61);
    let path = format!("/api/{PREFIX}/user");
    for mode in ["503", "drop"] {
        p.fail(Some(mode)).await;
        let r = app.get(&path, &cookie).await;
        assert_eq!(r.status, 503, "{mode}: {}", r.text());
        assert_eq!(r.json()["code"], "bff_upstream_unavailable");
        assert!(r.header("retry-after").is_some());
        assert!(
            cookie_named(&r, "__Host-bff").is_none(),
            "the cookie is kept"
        );
        assert!(
            app.stored(&cookie).await.is_some(),
            "{mode}: the session is kept"
        );
    }
    p.fail(None).await;
    let r = app.get(&path, &cookie).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(p.refreshes().await.get("ok"), Some(&1));
    assert_eq!(p.stats().await["invalid_grant"], 0);
}

async fn logout_needs_the_csrf_header_revokes_and_clears_the_cookie(b: Backend) {
    needs_provider!();
    let (p, app) = started(&b, 60).await;
    let cookie = sign_in(&app, &p, "alice").await;
    let stored = app.stored(&cookie).await.unwrap();
    for headers in [
        vec![("cookie", cookie.as_str()), ("origin", app.origin.as_str())],
        vec![
            ("cookie", cookie.as_str()),
            ("x-csrf", "0"),
            ("origin", app.origin.as_str()),
        ],
        vec![
            ("cookie", cookie.as_str()),
            ("x-csrf", "1"),
            ("origin", "http://evil.example"),
        ],
    ] {
        let r = app
            .call("POST", "/api/bff/logout", &headers, Body::empty())
            .await;
        assert_eq!(r.status, 403, "{headers:?}: {}", r.text());
        assert_eq!(r.json()["code"], "bff_csrf");
    }
    assert!(
        app.stored(&cookie).await.is_some(),
        "refused logouts changed nothing"
    );
    let r = app.post("/api/bff/logout", &cookie).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["ended"], 1);
    assert!(cookie_named(&r, "__Host-bff")
        .unwrap()
        .contains("Max-Age=0"));
    assert!(
        !leaks(&everything(&r), &stored.tokens),
        "{}",
        everything(&r)
    );
    assert_eq!(p.stats().await["revocations_ok"], 1);
    assert!(app.stored(&cookie).await.is_none());
    // The end-session URL is one the provider accepts (its confirmation page, not an error).
    let end = v["endSessionUrl"].as_str().unwrap();
    assert!(
        end.starts_with(&format!("{}/session/end?", p.issuer())),
        "{end}"
    );
    let page = p.http.get(end).send().await.unwrap();
    assert_eq!(page.status(), 200, "{}", page.text().await.unwrap());
    // The refresh token is dead at the provider: a direct refresh is refused.
    let dead = p
        .http
        .post(format!("{}/token", p.issuer()))
        .basic_auth(BFF_CLIENT_ID, Some(BFF_SECRET))
        .form(&[
            ("grant_type", "refresh_token"),
            (
                "refresh_token",
                stored.tokens.refresh_token.as_deref().unwrap(),
            ),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(dead.status(), 400);
    let s = app.get("/api/bff/session", &cookie).await;
    assert_eq!(s.status, 401);
    // Logging out again is harmless.
    let r = app.post("/api/bff/logout", &cookie).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["ended"], 0);
}

async fn sign_out_everywhere_ends_every_session_of_the_user_only(b: Backend) {
    needs_provider!();
    let (p, app) = started(&b, 60).await;
    let a1 = sign_in(&app, &p, "alice").await;
    let a2 = sign_in(&app, &p, "alice").await;
    let bob = sign_in(&app, &p, "bob").await;
    assert_eq!(app.session_rows().await, 3);
    let r = app.post("/api/bff/logout?everywhere=1", &a1).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["ended"], 2);
    assert_eq!(p.stats().await["revocations_ok"], 2);
    assert!(app.stored(&a1).await.is_none() && app.stored(&a2).await.is_none());
    assert!(app.stored(&bob).await.is_some());
    let r = app.get(&format!("/api/{PREFIX}/user"), &a2).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["code"], "bff_session_ended");
    // The hourly purge removes only what is past its lifetime.
    let store = app.bff().store();
    assert_eq!(
        store.purge_expired(app.state.now_ms()).await.unwrap(),
        (0, 0)
    );
    let week = 7 * 86_400_000 + 1;
    assert_eq!(
        store
            .purge_expired(app.state.now_ms() + week)
            .await
            .unwrap(),
        (1, 0)
    );
    assert!(app.stored(&bob).await.is_none());
}

async fn callback_failures_redirect_with_a_reason_and_states_are_single_use(b: Backend) {
    needs_provider!();
    let (p, app) = started(&b, 60).await;
    let reason = |r: &Resp| {
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
        r.header("location").unwrap()
    };
    // A provider's error answer.
    let (binding, state) = login_started(&app).await;
    let r = app
        .get(
            &format!("/api/bff/callback?error=access_denied&state={state}"),
            &binding,
        )
        .await;
    assert_eq!(reason(&r), "/login?bff_error=access_denied");
    // ...which used the state up.
    let r = app
        .get(&format!("/api/bff/callback?code=x&state={state}"), &binding)
        .await;
    assert_eq!(reason(&r), "/login?bff_error=login_unknown");
    let r = app.get("/api/bff/callback?code=x", "").await;
    assert_eq!(reason(&r), "/login?bff_error=state_missing");
    // The right state in another browser (no binding cookie), or with a foreign issuer.
    for (cookie, iss, want) in [
        ("", None, "login_other_browser"),
        (
            binding.as_str(),
            Some("http://evil.example"),
            "iss_mismatch",
        ),
        (binding.as_str(), None, "iss_missing"),
    ] {
        let (fresh_binding, state) = login_started(&app).await;
        let cookie = if cookie.is_empty() {
            String::new()
        } else {
            fresh_binding
        };
        let iss = iss.map(|i| format!("&iss={i}")).unwrap_or_default();
        let r = app
            .get(
                &format!("/api/bff/callback?code=x&state={state}{iss}"),
                &cookie,
            )
            .await;
        assert_eq!(reason(&r), format!("/login?bff_error={want}"));
    }
    // A real callback replayed: the second is refused, and no second session appears.
    let done = sign_in_raw(&app, &p, "alice", "/").await;
    assert_eq!(done.callback.header("location").as_deref(), Some("/"));
    assert_eq!(app.session_rows().await, 1);
    let replay = app.get(&done.callback_path, &done.binding).await;
    assert_eq!(reason(&replay), "/login?bff_error=login_unknown");
    assert_eq!(app.session_rows().await, 1);
    assert_eq!(
        p.stats().await["token"]["authorization_code"]["ok"],
        1,
        "the replayed code never reached the provider"
    );
}

// ---- several instances on one PostgreSQL ---------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_on_postgres_refreshing_one_session_at_once_refresh_once() {
    let Some(b) = Backend::postgres() else { return };
    needs_provider!();
    let origin = app_origin();
    let p = Provider::start(&origin, 60).await;
    let a = BffApp::new(&b, &p, &origin).await;
    let bb = a.another_instance(&p).await;
    let cookie = sign_in(&a, &p, "alice").await;
    let path = format!("/api/{PREFIX}/user");
    for round in 1..=3 {
        // Both instances find the token due at the same moment (one clock), 10 calls each.
        a.advance_secs(61);
        let mut calls = Vec::new();
        for i in 0..20 {
            let app = if i % 2 == 0 { &a } else { &bb };
            calls.push(app.get(&path, &cookie));
        }
        let got = statuses(calls).await;
        assert!(got.iter().all(|s| *s == 200), "round {round}: {got:?}");
        let r = p.refreshes().await;
        assert_eq!(r.get("ok"), Some(&round), "round {round}: {r:?}");
        assert_eq!(r.get("invalid_grant"), None, "round {round}: {r:?}");
    }
}

#[tokio::test]
async fn a_discovery_document_of_another_issuer_stops_the_start() {
    needs_provider!();
    let origin = app_origin();
    let p = Provider::start(&origin, 60).await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = bff_config(&p, &origin, dir.path());
    match &mut cfg.kind {
        UpstreamKind::Oidc(c) => c.issuer = format!("{}/", p.issuer()),
        other => panic!("{other:?}"),
    }
    let (url, _d) = fresh_database(&Backend::Sqlite).await;
    let db = Db::connect(&url, 2).await.unwrap();
    let e = Bff::start(cfg, &SECRET, db).await.unwrap_err();
    assert!(e.contains("compared exactly"), "{e}");
}

#[tokio::test]
async fn without_the_upstream_flags_there_is_no_bff_route() {
    let (url, _d) = fresh_database(&Backend::Sqlite).await;
    let db = Db::connect(&url, 2).await.unwrap();
    let state = AppState::new(Settings::default(), db, &SECRET);
    let router = app(state);
    for path in [
        "/api/bff/login",
        "/api/bff/session",
        "/api/bff/callback?state=x",
    ] {
        let res = router
            .clone()
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(res.status(), 404, "{path}");
    }
    let c = <session_api::config::Config as clap::Parser>::try_parse_from(["session-api"]).unwrap();
    assert!(BffConfig::from_config(&c).unwrap().is_none());
}
