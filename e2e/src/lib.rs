//! The end-to-end harness: the real `session-api` (release build) serving the real release build
//! of the app from `dist/`, and Chromium driven through chromedriver over WebDriver, all on
//! 127.0.0.1 with free ports. Every process the harness starts is killed when its guard drops,
//! which also happens when a test panics.
//!
//! - [`Server`]: `target/release/session-api` with a temporary SQLite database and secret; can be
//!   stopped and restarted on the same port and data; reads `/metrics`.
//! - [`Browser`]: `chromedriver` on a free port; opens WebDriver sessions ([`Page`]). Windows of
//!   one session share cookies, storage and `BroadcastChannel`, like the tabs of one browser.
//! - [`Page`]: what a test does in a window: go to a path, type, click, read text, wait.
//! - [`tutorial`]: the fake of the tutorial's backend on a socket (compatibility scenarios).
//! - [`js`]: the scripts run in the pages, one copy for the tests and the benchmark.
//!
//! The scenarios of issue 7 live in `tests/`: `session.rs` (1 sign-up/reload, 2 five lifetimes,
//! 3 bursts on an expired token), `tabs.rs` (4 four tabs, 6 session ended elsewhere),
//! `outage.rs` (5 server restart), `compat.rs` (7 compatibility mode), `roles.rs` (8 boards).
//!
//! Running: `scripts/build-release` first (the tests use `dist/` and
//! `target/release/session-api`), then `cargo test -p e2e -- --test-threads=1`, or one test:
//! `cargo test -p e2e --test tabs four_tabs`. `scripts/test` does both.

pub mod bff;
pub mod js;
pub mod oidc;
pub mod tutorial;

use std::collections::BTreeMap;
use std::future::Future;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::wd::{Capabilities, Locator, WindowHandle};
use fantoccini::{Client, ClientBuilder};
use serde_json::{json, Value};

/// The workspace root (this crate lives in `<root>/e2e`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("e2e/ has a parent folder")
        .to_path_buf()
}

/// `dist/` of the release build; panics with what to do when it is missing.
pub fn dist_dir() -> PathBuf {
    let dist = workspace_root().join("dist");
    if !dist.join("index.html").is_file() {
        panic!(
            "{} is missing: build the release app and server first with `scripts/build-release` \
             (scripts/test does that before running the end-to-end tests)",
            dist.join("index.html").display()
        );
    }
    dist
}

/// `target/release/session-api`; panics with what to do when it is missing.
pub fn server_binary() -> PathBuf {
    let bin = workspace_root().join("target/release/session-api");
    if !bin.is_file() {
        panic!(
            "{} is missing: build the release app and server first with `scripts/build-release` \
             (scripts/test does that before running the end-to-end tests)",
            bin.display()
        );
    }
    bin
}

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port on 127.0.0.1")
}

/// A copy of `dist/` with another `config.json` (e.g. compatibility mode), in a temp folder that
/// lives as long as the returned guard. The precompressed `.br` / `.gz` copies come along (the
/// server serves them as it serves `dist/`), except any of `config.json`: it would be served
/// instead of the one written here.
pub fn dist_with_config(config: &Value) -> tempfile::TempDir {
    let src = dist_dir();
    let dir = tempfile::tempdir().expect("temp dir");
    for entry in std::fs::read_dir(&src).expect("read dist/") {
        let entry = entry.expect("dist/ entry");
        let name = entry.file_name();
        let stale_config = name == "config.json.br" || name == "config.json.gz";
        if entry.file_type().map(|t| t.is_file()).unwrap_or(false) && !stale_config {
            std::fs::copy(entry.path(), dir.path().join(entry.file_name())).expect("copy dist/");
        }
    }
    std::fs::write(
        dir.path().join("config.json"),
        serde_json::to_string_pretty(config).expect("config json"),
    )
    .expect("write config.json");
    dir
}

/// Polls `check` every 100 ms until it yields `Some`, or panics after `timeout` saying `what`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if start.elapsed() >= timeout {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Kills the process group our child leads (it and what it started), ignoring errors: used from
/// `Drop`, where the process may already be gone. Only while the child has not been reaped: its
/// pid, and so the group id, cannot belong to anyone else then.
fn kill_group(child: &mut Child) {
    if let Ok(None) = child.try_wait() {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", child.id())])
            .stderr(Stdio::null())
            .status();
    }
    let _ = child.kill();
    let _ = child.wait();
}

// ---- server -----------------------------------------------------------------------------

/// How to start the server.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// `--access-ttl`.
    pub access_ttl: String,
    /// `--refresh-ttl`.
    pub refresh_ttl: String,
    /// `--refresh-idle-ttl`.
    pub refresh_idle_ttl: String,
    /// `--refresh-grace`.
    pub refresh_grace: String,
    /// `--seed-demo` (accounts user / mod / admin with [`DEMO_PASSWORD`]).
    pub seed_demo: bool,
    /// `--static-dir`; `None` = the release build in `dist/`.
    pub static_dir: Option<PathBuf>,
    /// The port; `None` = a free one. A fixed one lets a provider register the app's origin
    /// before the server starts (BFF mode discovers the provider at start).
    pub port: Option<u16>,
    /// More flags (e.g. BFF mode's `--upstream-*`).
    pub extra_args: Vec<String>,
}

/// Password of the demo accounts the tests seed.
pub const DEMO_PASSWORD: &str = "demo-password";

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            access_ttl: "4s".into(),
            refresh_ttl: "1h".into(),
            refresh_idle_ttl: "10m".into(),
            refresh_grace: "5s".into(),
            seed_demo: true,
            static_dir: None,
            port: None,
            extra_args: Vec::new(),
        }
    }
}

/// A running `session-api`; killed when dropped.
pub struct Server {
    child: Option<Child>,
    port: u16,
    args: Vec<String>,
    dir: tempfile::TempDir,
    http: reqwest::Client,
}

impl Server {
    /// Starts the server on a free port with a fresh database and secret and waits until it
    /// answers.
    pub async fn start(opts: ServerOptions) -> Server {
        if let Some(port) = opts.port {
            return match Self::start_on(&opts, port).await {
                Ok(server) => server,
                Err(log) => panic!("session-api did not start on port {port}; its log:\n{log}"),
            };
        }
        // The free port may be taken by someone else before the server binds it: try another.
        for _ in 0..2 {
            let port = free_port();
            if let Ok(server) = Self::start_on(&opts, port).await {
                return server;
            }
        }
        match Self::start_on(&opts, free_port()).await {
            Ok(server) => server,
            Err(log) => panic!("session-api did not start; its log:\n{log}"),
        }
    }

    async fn start_on(opts: &ServerOptions, port: u16) -> Result<Server, String> {
        let dir = tempfile::tempdir().expect("temp dir");
        let static_dir = opts.static_dir.clone().unwrap_or_else(dist_dir);
        let origin = format!("http://127.0.0.1:{port}");
        let mut args = vec![
            "--bind".to_string(),
            format!("127.0.0.1:{port}"),
            "--database-url".into(),
            format!("sqlite://{}", dir.path().join("session.db").display()),
            "--secret-file".into(),
            dir.path().join("secret.key").display().to_string(),
            "--access-ttl".into(),
            opts.access_ttl.clone(),
            "--refresh-ttl".into(),
            opts.refresh_ttl.clone(),
            "--refresh-idle-ttl".into(),
            opts.refresh_idle_ttl.clone(),
            "--refresh-grace".into(),
            opts.refresh_grace.clone(),
            "--allowed-origin".into(),
            origin,
            "--static-dir".into(),
            static_dir.display().to_string(),
            "--demo-password".into(),
            DEMO_PASSWORD.into(),
        ];
        if opts.seed_demo {
            args.push("--seed-demo".into());
        }
        args.extend(opts.extra_args.iter().cloned());
        let mut server = Server {
            child: None,
            port,
            args,
            dir,
            http: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("http client"),
        };
        server.spawn().await?;
        Ok(server)
    }

    /// Starts the process and waits until it answers; `Err(log)` when it exits at start.
    async fn spawn(&mut self) -> Result<(), String> {
        let log_path = self.log_path();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .expect("server log file");
        let child = Command::new(server_binary())
            .args(&self.args)
            .env("RUST_LOG", "session_api=info,tower_http=warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("start target/release/session-api");
        self.child = Some(child);
        let url = format!("{}/metrics", self.url());
        let start = Instant::now();
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                return Err(format!("exited with {status} at start\n{}", self.log()));
            }
            if let Ok(r) = self.http.get(&url).send().await {
                if r.status().is_success() {
                    return Ok(());
                }
            }
            if start.elapsed() > Duration::from_secs(20) {
                panic!(
                    "session-api did not answer within 20 s; its log:\n{}",
                    self.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    /// Everything the server printed so far (all runs).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Kills the server (like a crash: no graceful shutdown) and waits until it is gone.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_group(&mut child);
        }
    }

    /// Starts the server again with the same port, database and secret.
    pub async fn restart(&mut self) {
        self.stop();
        if let Err(log) = self.spawn().await {
            panic!("session-api did not restart on port {}: {log}", self.port);
        }
    }

    /// The server's `/metrics` (counters restart from 0 with the process).
    pub async fn metrics(&self) -> Metrics {
        let text = self
            .http
            .get(format!("{}/metrics", self.url()))
            .send()
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("read /metrics");
        Metrics::parse(&text)
    }

    /// A plain HTTP client for calling the API directly (no cookies kept).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Signs in over plain HTTP (body transport: the answer carries both tokens).
    pub async fn sign_in_direct(&self, username: &str, password: &str) -> Value {
        let r = self
            .http
            .post(format!("{}/api/auth/signin", self.url()))
            .json(&json!({ "username": username, "password": password }))
            .send()
            .await
            .expect("POST /api/auth/signin");
        assert!(r.status().is_success(), "direct sign-in: {}", r.status());
        r.json().await.expect("sign-in JSON")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!("---- session-api log (last {} lines) ----", tail.len());
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
        self.stop();
    }
}

/// Counters of a Prometheus text exposition, keyed by `name{labels}`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Metrics(pub BTreeMap<String, f64>);

impl Metrics {
    /// Parses `name{labels} value` lines (comments skipped).
    pub fn parse(text: &str) -> Metrics {
        Metrics(
            text.lines()
                .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
                .filter_map(|l| {
                    let (k, v) = l.rsplit_once(' ')?;
                    Some((k.trim().to_string(), v.trim().parse().ok()?))
                })
                .collect(),
        )
    }

    /// The value of `key` (`name{labels}`), 0 when absent.
    pub fn get(&self, key: &str) -> f64 {
        self.0.get(key).copied().unwrap_or(0.0)
    }

    /// `session_api_refreshes_total{outcome="…"}`.
    pub fn refreshes(&self, outcome: &str) -> u64 {
        self.get(&format!(
            "session_api_refreshes_total{{outcome=\"{outcome}\"}}"
        )) as u64
    }

    /// Refreshes answered with tokens: rotated (`ok`), the same successor again (`repeated`),
    /// or walked on to the active token (`grace`).
    pub fn refreshes_answered(&self) -> u64 {
        self.refreshes("ok") + self.refreshes("repeated") + self.refreshes("grace")
    }

    /// Refresh requests of every outcome.
    pub fn refreshes_all(&self) -> u64 {
        self.0
            .iter()
            .filter(|(k, _)| k.starts_with("session_api_refreshes_total{"))
            .map(|(_, v)| *v as u64)
            .sum()
    }

    /// `session_api_signins_total{outcome="…"}`.
    pub fn signins(&self, outcome: &str) -> u64 {
        self.get(&format!(
            "session_api_signins_total{{outcome=\"{outcome}\"}}"
        )) as u64
    }

    /// `session_api_http_responses_total{status="…"}`.
    pub fn responses(&self, status: u16) -> u64 {
        self.get(&format!(
            "session_api_http_responses_total{{status=\"{status}\"}}"
        )) as u64
    }
}

// ---- browser ----------------------------------------------------------------------------

/// Chromium flags for running as root in a container, without reaching the internet.
pub const CHROMIUM_ARGS: [&str; 10] = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1200,900",
    "--no-default-browser-check",
];

/// A running chromedriver (and the Chromium processes of its sessions); killed when dropped.
pub struct Browser {
    driver: Child,
    port: u16,
    sessions: std::sync::Mutex<Vec<String>>,
    /// One browser at a time in this process (see [`Browser::start`]).
    _serial: tokio::sync::OwnedMutexGuard<()>,
    /// TMPDIR of chromedriver and Chromium: their profiles and scratch folders go here and are
    /// removed with the guard.
    _tmp: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver on a free port and waits until it is ready.
    ///
    /// The scenarios measure time (refresh counts per lifetime, sign-out within 2 s): two of them
    /// sharing two cores would disturb each other. So a test binary runs one browser at a time,
    /// even when libtest runs tests on several threads; a test waits here for the previous one.
    pub async fn start() -> Browser {
        static SERIAL: std::sync::OnceLock<std::sync::Arc<tokio::sync::Mutex<()>>> =
            std::sync::OnceLock::new();
        let serial = SERIAL
            .get_or_init(Default::default)
            .clone()
            .lock_owned()
            .await;
        let port = free_port();
        let tmp = tempfile::tempdir().expect("temp dir");
        let driver_bin =
            std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into());
        let driver = Command::new(&driver_bin)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .env("TMPDIR", tmp.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("could not start {driver_bin} ({e}); scripts/setup --test installs it")
            });
        let browser = Browser {
            driver,
            port,
            sessions: std::sync::Mutex::new(Vec::new()),
            _serial: serial,
            _tmp: tmp,
        };
        let status = format!("http://127.0.0.1:{port}/status");
        let http = reqwest::Client::builder().no_proxy().build().expect("http");
        wait_for(
            "chromedriver to answer /status",
            Duration::from_secs(20),
            || {
                let http = http.clone();
                let status = status.clone();
                async move {
                    let r = http.get(&status).send().await.ok()?;
                    let v: Value = r.json().await.ok()?;
                    v["value"]["ready"].as_bool().filter(|r| *r)
                }
            },
        )
        .await;
        browser
    }

    /// A new WebDriver session (a fresh browser profile: its own cookies and storage) on the
    /// app at `base` (`http://127.0.0.1:PORT`).
    pub async fn session(&self, base: &str) -> Page {
        self.session_with_args(base, &[]).await
    }

    /// Like [`Browser::session`], with Chromium flags added to [`CHROMIUM_ARGS`] (e.g.
    /// `--enable-precise-memory-info` for the benchmark's heap figures).
    pub async fn session_with_args(&self, base: &str, extra_args: &[&str]) -> Page {
        let args: Vec<&str> = CHROMIUM_ARGS.iter().chain(extra_args).copied().collect();
        let mut caps = Capabilities::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({ "binary": "/usr/bin/chromium", "args": args }),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .expect("open a WebDriver session in Chromium");
        if let Ok(Some(id)) = client.session_id().await {
            self.sessions
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(id);
        }
        let window = client.window().await.expect("current window");
        Page {
            client,
            base: base.trim_end_matches('/').to_string(),
            window,
        }
    }
}

impl Browser {
    /// Ends a WebDriver session with a blocking request (usable from `Drop`): chromedriver then
    /// quits that Chromium cleanly.
    fn delete_session(&self, id: &str) {
        use std::io::{Read, Write};
        let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", self.port)) else {
            return;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
        let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
        let request = format!(
            "DELETE /session/{id} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.port
        );
        if stream.write_all(request.as_bytes()).is_ok() {
            // chromedriver answers once Chromium has quit; the first bytes are enough.
            let mut answer = [0u8; 1024];
            let _ = stream.read(&mut answer);
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let sessions =
            std::mem::take(&mut *self.sessions.lock().unwrap_or_else(|e| e.into_inner()));
        for id in sessions {
            self.delete_session(&id);
        }
        // Whatever is left (Chromium runs in chromedriver's process group): one kill ends it.
        kill_group(&mut self.driver);
    }
}

/// A Chrome DevTools Protocol command sent through chromedriver's `goog/cdp/execute`.
#[derive(Debug)]
struct Cdp {
    cmd: String,
    params: Value,
}

impl fantoccini::wd::WebDriverCompatibleCommand for Cdp {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/goog/cdp/execute",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (
            http::Method::POST,
            Some(json!({ "cmd": self.cmd, "params": self.params }).to_string()),
        )
    }
}

/// One window of a WebDriver session, on the app at `base`.
#[derive(Clone)]
pub struct Page {
    /// The WebDriver client (shared by every window of the session).
    pub client: Client,
    base: String,
    window: WindowHandle,
}

impl Page {
    /// Opens another window of the same session (same cookies, storage, BroadcastChannel) and
    /// loads `path` in it. The returned page switches to its window before each command.
    pub async fn new_window(&self, path: &str) -> Page {
        self.open(path, false).await
    }

    /// Opens another tab of the same session's window and loads `path` in it; the tab the
    /// commands go to is brought to the front, the others are hidden (throttled timers).
    pub async fn new_tab(&self, path: &str) -> Page {
        self.open(path, true).await
    }

    async fn open(&self, path: &str, as_tab: bool) -> Page {
        let page = self.blank(as_tab).await;
        page.goto(path).await;
        page
    }

    /// Opens another tab of the same session without loading anything (`about:blank`).
    pub async fn new_blank_tab(&self) -> Page {
        self.blank(true).await
    }

    async fn blank(&self, as_tab: bool) -> Page {
        let w = self.client.new_window(as_tab).await.expect("new window");
        Page {
            client: self.client.clone(),
            base: self.base.clone(),
            window: w.handle,
        }
    }

    /// Starts loading `path` after `delay_ms` without waiting for it: several pages can so be
    /// made to load (and restore their sessions) at the same moment.
    pub async fn goto_after(&self, path: &str, delay_ms: u64) {
        self.js(
            "const [url, ms] = arguments; setTimeout(() => location.assign(url), ms);",
            vec![json!(format!("{}{}", self.base, path)), json!(delay_ms)],
        )
        .await;
    }

    /// Makes this page's window the one the commands go to.
    pub async fn focus(&self) {
        self.client
            .switch_to_window(self.window.clone())
            .await
            .expect("switch window");
    }

    /// Loads `path` (a full page load).
    pub async fn goto(&self, path: &str) {
        self.focus().await;
        self.client
            .goto(&format!("{}{}", self.base, path))
            .await
            .unwrap_or_else(|e| panic!("load {path}: {e}"));
    }

    /// Reloads the page.
    pub async fn reload(&self) {
        self.focus().await;
        self.client.refresh().await.expect("reload");
    }

    /// Runs a script in the page and returns its value.
    pub async fn js(&self, script: &str, args: Vec<Value>) -> Value {
        self.focus().await;
        self.client
            .execute(script, args)
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Runs a Chrome DevTools Protocol command on this window's page.
    pub async fn cdp(&self, cmd: &str, params: Value) -> Value {
        self.focus().await;
        self.client
            .issue_cmd(Cdp {
                cmd: cmd.to_string(),
                params,
            })
            .await
            .unwrap_or_else(|e| panic!("CDP {cmd}: {e}"))
    }

    /// Freezes the page (what Chromium does to a background tab to save power: no timers, no
    /// tasks) or makes it active again.
    pub async fn set_frozen(&self, frozen: bool) {
        let state = if frozen { "frozen" } else { "active" };
        self.cdp("Page.setWebLifecycleState", json!({ "state": state }))
            .await;
    }

    /// The current path (with the query).
    pub async fn path(&self) -> String {
        self.js("return location.pathname + location.search;", vec![])
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The text of the first element matching `selector`, if there is one.
    pub async fn text_of(&self, selector: &str) -> Option<String> {
        self.js(
            "const e = document.querySelector(arguments[0]); return e ? e.textContent : null;",
            vec![json!(selector)],
        )
        .await
        .as_str()
        .map(str::to_string)
    }

    /// Whether an element matches `selector`.
    pub async fn exists(&self, selector: &str) -> bool {
        self.js(
            "return document.querySelector(arguments[0]) !== null;",
            vec![json!(selector)],
        )
        .await
        .as_bool()
        .unwrap_or(false)
    }

    /// Waits until `selector` matches and returns its text.
    pub async fn wait_text(&self, selector: &str, timeout: Duration) -> String {
        wait_for(&format!("{selector} to appear"), timeout, || {
            self.text_of(selector)
        })
        .await
    }

    /// The element `locator` finds in the window last focused, waiting up to 10 s for it.
    async fn find(&self, locator: Locator<'_>, what: &str) -> Element {
        self.client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(locator)
            .await
            .unwrap_or_else(|e| panic!("find {what}: {e}"))
    }

    /// Types `text` into the element matching `selector`, like a person (key events).
    pub async fn type_into(&self, selector: &str, text: &str) {
        self.focus().await;
        let e = self.find(Locator::Css(selector), selector).await;
        e.send_keys(text)
            .await
            .unwrap_or_else(|e| panic!("type into {selector}: {e}"));
    }

    /// Clicks the element matching `selector` (waiting for it up to 10 s).
    pub async fn click(&self, selector: &str) {
        self.focus().await;
        let e = self.find(Locator::Css(selector), selector).await;
        e.click()
            .await
            .unwrap_or_else(|e| panic!("click {selector}: {e}"));
    }

    /// Clicks the navigation's "Log out" button.
    pub async fn click_logout(&self) {
        self.focus().await;
        let xpath = "//nav[@aria-label='Main']//button[normalize-space()='Log out']";
        let e = self.find(Locator::XPath(xpath), "the Log out button").await;
        e.click().await.expect("click Log out");
    }

    /// Clicks the inspector's own controls through the DOM: they are the test's instruments, not
    /// what the scenario is about, and the toasts (fixed, bottom right) can cover the footer's
    /// toggle for a few seconds after an event.
    pub async fn click_instrument(&self, selector: &str) {
        let sel = selector.to_string();
        wait_for(&format!("{selector} to be clickable"), Duration::from_secs(10), || {
            let sel = sel.clone();
            async move {
                self.js(
                    "const e = document.querySelector(arguments[0]); if (!e) return false; e.click(); return true;",
                    vec![json!(sel)],
                )
                .await
                .as_bool()
                .filter(|clicked| *clicked)
            }
        })
        .await;
    }

    /// The main navigation's link labelled `label`, waiting up to 10 s for it.
    async fn nav_link(&self, label: &str) -> Element {
        let xpath = format!("//nav[@aria-label='Main']//a[normalize-space()='{label}']");
        self.find(Locator::XPath(&xpath), &format!("nav link {label}"))
            .await
    }

    /// Clicks the navigation link labelled `label` (Home / User / Moderator / Admin / …).
    pub async fn click_nav(&self, label: &str) {
        self.focus().await;
        let e = self.nav_link(label).await;
        e.click()
            .await
            .unwrap_or_else(|e| panic!("click nav link {label}: {e}"));
    }

    /// Ctrl+clicks the main navigation's link `label` with real input events (WebDriver
    /// actions), which opens it in a new background tab, and returns that tab.
    pub async fn ctrl_click_nav(&self, label: &str) -> Page {
        use fantoccini::actions::{
            InputSource, KeyAction, KeyActions, MouseActions, PointerAction, MOUSE_BUTTON_LEFT,
        };
        use fantoccini::key::Key;
        self.focus().await;
        let before = self.client.windows().await.expect("windows");
        let link = self.nav_link(label).await;
        let keys = KeyActions::new("keyboard".into())
            .then(KeyAction::Down {
                value: Key::Control.into(),
            })
            .then(KeyAction::Pause {
                duration: Duration::ZERO,
            })
            .then(KeyAction::Pause {
                duration: Duration::ZERO,
            })
            .then(KeyAction::Pause {
                duration: Duration::ZERO,
            })
            .then(KeyAction::Up {
                value: Key::Control.into(),
            });
        let mouse = MouseActions::new("mouse".into())
            .then(PointerAction::Pause {
                duration: Duration::ZERO,
            })
            .then(PointerAction::MoveToElement {
                element: link,
                duration: None,
                x: 0.0,
                y: 0.0,
            })
            .then(PointerAction::Down {
                button: MOUSE_BUTTON_LEFT,
            })
            .then(PointerAction::Up {
                button: MOUSE_BUTTON_LEFT,
            });
        self.client
            .perform_actions(fantoccini::actions::Actions::from(keys).and(mouse))
            .await
            .expect("ctrl+click");
        let _ = self.client.release_actions().await;
        self.opened_since(&before, "the tab Ctrl+click opened")
            .await
    }

    /// Runs `window.open(path)` in this page and returns the window it opened.
    pub async fn window_open(&self, path: &str) -> Page {
        let before = self.client.windows().await.expect("windows");
        self.js("window.open(arguments[0], '_blank');", vec![json!(path)])
            .await;
        self.opened_since(&before, "the window window.open opened")
            .await
    }

    async fn opened_since(&self, before: &[WindowHandle], what: &str) -> Page {
        let handle = wait_for(what, Duration::from_secs(10), || async {
            let now = self.client.windows().await.ok()?;
            now.into_iter().find(|w| !before.contains(w))
        })
        .await;
        Page {
            client: self.client.clone(),
            base: self.base.clone(),
            window: handle,
        }
    }

    /// Whether the navigation shows the signed-in state (a "Log out" button).
    pub async fn nav_signed_in(&self) -> bool {
        self.js(
            "const n = document.querySelector('nav[aria-label=Main]'); \
             return !!n && [...n.querySelectorAll('button')].some(b => b.textContent.trim() === 'Log out');",
            vec![],
        )
        .await
        .as_bool()
        .unwrap_or(false)
    }

    /// Signs in through the login form (typing and clicking) and waits until signed in.
    pub async fn sign_in(&self, username: &str, password: &str, remember: bool) {
        self.goto("/login").await;
        self.type_into("input[name=username]", username).await;
        self.type_into("input[name=password]", password).await;
        if remember {
            self.click("input#remember").await;
        }
        self.click("button[type=submit]").await;
        let what = format!("{username} to be signed in (nav with Log out)");
        wait_for(&what, Duration::from_secs(15), || async {
            if self.nav_signed_in().await {
                return Some(());
            }
            if let Some(err) = self.text_of("[data-testid=login-error]").await {
                panic!("sign-in of {username} failed: {err}");
            }
            None
        })
        .await;
    }

    /// Waits until the page shows the login page with a notice (why the session ended), by
    /// `deadline`; returns the notice. `who` names the page in the failure message.
    pub async fn signed_out_notice(&self, deadline: std::time::Instant, who: &str) -> String {
        let timeout = deadline.saturating_duration_since(std::time::Instant::now());
        wait_for(
            &format!("{who} to show the login page with the reason"),
            timeout,
            || async {
                if !self.path().await.starts_with("/login") {
                    return None;
                }
                self.text_of("[data-testid=login-notice]").await
            },
        )
        .await
    }

    /// The number of "Signed out" entries in the inspector's event log (since the page loaded).
    pub async fn logouts_logged(&self) -> usize {
        self.open_inspector().await;
        self.event_log()
            .await
            .iter()
            .filter(|e| e.contains("Signed out"))
            .count()
    }

    /// Opens the inspector panel of the footer (it records events from the page's start).
    pub async fn open_inspector(&self) {
        if !self.exists("[data-testid=inspector]").await {
            self.click_instrument("[data-testid=inspector-toggle]")
                .await;
        }
        self.wait_text("[data-testid=insp-status]", Duration::from_secs(5))
            .await;
    }

    /// A number shown by the inspector (`insp-refreshes`, `insp-401`, `insp-sent`, …).
    pub async fn inspector_number(&self, testid: &str) -> u64 {
        let sel = format!("[data-testid={testid}]");
        let text = self
            .text_of(&sel)
            .await
            .unwrap_or_else(|| panic!("{sel} is not shown (inspector closed?)"));
        text.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{sel} is not a number: {text:?}"))
    }

    /// The inspector's status in words ("Signed in", "Signed out — …", "Signed in — degraded: …").
    pub async fn inspector_status(&self) -> String {
        self.text_of("[data-testid=insp-status]")
            .await
            .unwrap_or_default()
    }

    /// The inspector's event log, oldest first.
    pub async fn event_log(&self) -> Vec<String> {
        let v = self.js(&format!("return {};", js::EVENT_LOG), vec![]).await;
        let mut items: Vec<String> = v
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        items.reverse();
        items
    }

    /// Clicks `fire-10` / `fire-50` and waits for that burst's result line, returning it
    /// (watched by [`js::WATCH_BURSTS`]).
    pub async fn fire(&self, k: usize) -> String {
        self.js(js::WATCH_BURSTS, vec![]).await;
        self.click_instrument(&format!("[data-testid=fire-{k}]"))
            .await;
        self.burst_result(k).await
    }

    /// Waits for the result line ("K calls: X ok, Y failed") of the burst of `k` calls started
    /// after [`js::WATCH_BURSTS`] was last run in the page.
    pub async fn burst_result(&self, k: usize) -> String {
        wait_for(
            &format!("the burst of {k} calls to finish"),
            Duration::from_secs(30),
            || async {
                self.js(js::BURST_RESULT, vec![json!(format!("{k} calls: "))])
                    .await
                    .as_str()
                    .map(str::to_string)
            },
        )
        .await
    }

    /// Everything useful for a failure message: path, status, storage, event log.
    pub async fn diagnostics(&self) -> String {
        let script = format!(
            "const q = s => {{ const e = document.querySelector(s); return e ? e.textContent : null; }}; \
             return {{ path: location.pathname + location.search, \
                      status: q('[data-testid=insp-status]'), \
                      notice: q('[data-testid=login-notice]'), \
                      banner: q('[data-testid=offline-banner]'), \
                      toasts: q('[data-testid=toasts]'), \
                      local: Object.fromEntries(Object.entries(localStorage)), \
                      session: Object.fromEntries(Object.entries(sessionStorage)), \
                      log: {}.reverse() }};",
            js::EVENT_LOG
        );
        let v = self.js(&script, vec![]).await;
        serde_json::to_string_pretty(&v).unwrap_or_default()
    }
}

/// Every tab fires bursts of 10 calls in turn until `duration` has passed; the number of bursts,
/// or the first burst that did not answer all 10 (the tab's index, what it said, its
/// diagnostics).
pub async fn fire_bursts_for(tabs: &[Page], duration: Duration) -> Result<usize, String> {
    let start = std::time::Instant::now();
    let mut bursts = 0;
    while start.elapsed() < duration {
        for (i, tab) in tabs.iter().enumerate() {
            let result = tab.fire(10).await;
            if result != "10 calls: 10 ok, 0 failed" {
                return Err(format!("tab {i}: {result}\n{}", tab.diagnostics().await));
            }
            bursts += 1;
        }
    }
    Ok(bursts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_are_read_by_name_and_labels() {
        let m = Metrics::parse(
            "# HELP x y\n# TYPE session_api_refreshes_total counter\n\
             session_api_refreshes_total{outcome=\"ok\"} 7\n\
             session_api_refreshes_total{outcome=\"reuse_detected\"} 1\n\
             session_api_signins_total{outcome=\"ok\"} 2\n\
             session_api_http_responses_total{status=\"401\"} 3\n\
             session_api_http_request_duration_seconds_sum 0.25\n",
        );
        assert_eq!(m.refreshes("ok"), 7);
        assert_eq!(m.refreshes("grace"), 0);
        assert_eq!(m.refreshes_all(), 8);
        assert_eq!(m.signins("ok"), 2);
        assert_eq!(m.responses(401), 3);
        assert_eq!(m.responses(500), 0);
        assert_eq!(m.get("session_api_http_request_duration_seconds_sum"), 0.25);
    }

    #[test]
    fn free_ports_are_on_loopback_and_bindable() {
        let p = free_port();
        assert!(p > 0);
        assert!(TcpListener::bind(("127.0.0.1", p)).is_ok());
    }
}
