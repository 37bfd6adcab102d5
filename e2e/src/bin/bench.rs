//! `bench`: the client benchmark of issue 7, run by `scripts/bench`. It drives the real release
//! build and the real `session-api` in headless Chromium (the e2e harness, 127.0.0.1 only) and
//! prints ONE markdown report to stdout (also written to `target/bench-client.md`); progress goes
//! to stderr.
//!
//! Sections, each bounded in time and run in its own task, so that a failure (a panic of the
//! harness, or a timeout) is reported as failed in the table and the others still run; the
//! harness's guards kill the server and the browser of a failed section:
//! 1. refresh amplification: K = 1, 10, 50 concurrent calls on an expired access token, in 1 tab
//!    and in 4 tabs of one browser session (every tab fires K at the same moment);
//! 2. a long session with 5 s access tokens, a page calling the API every few seconds and more
//!    tabs of the same session open in the background;
//! 3. load: file sizes, the bytes a first load transfers as served (precompressed copies), and
//!    time from navigation start until the login input can be typed into, over fresh browser
//!    profiles, next to a one-input static page (the floor), also on an emulated slow network
//!    and, for comparison, without the compressed copies;
//! 4. memory: JS heap and wasm memory after sign-in and after the long session, and the floor's;
//! 5. refresh amplification against an OpenID Provider (issue 12): the same runs with the app's
//!    `"backend": "oidc"` against panva's `oidc-provider` (e2e/oidc, no-grace rotation), refreshes
//!    and `invalid_grant` counted at its token endpoint, the calls going to its resource server;
//! 6. the long session against that provider: refreshes per lifetime, `invalid_grant`, logouts,
//!    401s at its resource server.
//!
//! Environment: `BENCH_SECTIONS` (comma-separated, default all: `amplification`, `session`,
//! `load`, `oidc-amplification`, `oidc-session`; `memory` comes with `load` and `session`),
//! `BENCH_SESSION_SECONDS` (default 120; 600 = the issue's 10 minutes),
//! `BENCH_REPS` (runs per amplification cell, default 3), `BENCH_LOADS` (fresh loads per page,
//! default 15), `BENCH_SESSION_TABS` (tabs open during the long session, default 4: one calls
//! the API, the others idle in the background; also the provider's long session).

use std::future::Future;
use std::time::{Duration, Instant};

use e2e::oidc::{self, Provider, ProviderOptions};
use e2e::{
    dist_with_config, js, wait_for, Browser, Metrics, Page, Server, ServerOptions, DEMO_PASSWORD,
};
use serde_json::{json, Value};

/// Chromium flag that makes `performance.memory` exact instead of bucketed.
const PRECISE_MEMORY: &str = "--enable-precise-memory-info";

/// Access-token lifetime of the amplification runs.
const AMP_TTL: Duration = Duration::from_secs(4);
/// Access-token lifetime of the long session.
const SESSION_TTL: Duration = Duration::from_secs(5);
/// The long session's page fires 10 calls this often.
const SESSION_FIRE_EVERY: Duration = Duration::from_secs(3);

/// The floor page: plain static HTML with one input, served by the same server. Its empty
/// `data:` icon keeps Chromium from fetching `/favicon.ico`, which the server would answer with
/// the app's index.html (the SPA fallback) and the floor's transfer would count.
const FLOOR_HTML: &str = "<!doctype html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\">\
<title>floor</title><link rel=\"icon\" href=\"data:,\"></head>\n<body><form><input name=\"username\" autocomplete=\"username\">\
</form></body>\n</html>\n";

fn progress(msg: impl AsRef<str>) {
    eprintln!("[bench] {}", msg.as_ref());
}

fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a whole number")),
        Err(_) => default,
    }
}

// ---- statistics --------------------------------------------------------------------------

/// Median (mean of the two middle values for an even count).
fn median(values: &[f64]) -> Option<f64> {
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(v[n / 2]),
        _ => Some((v[n / 2 - 1] + v[n / 2]) / 2.0),
    }
}

/// Nearest-rank percentile `p` (0..=100).
fn percentile(values: &[f64], p: f64) -> Option<f64> {
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * v.len() as f64).ceil().max(1.0) as usize;
    Some(v[rank.min(v.len()) - 1])
}

/// `median (min–max)` of counts, or the single value when all runs agree.
fn spread(values: &[u64]) -> String {
    let f: Vec<f64> = values.iter().map(|v| *v as f64).collect();
    let (Some(m), Some(lo), Some(hi)) = (median(&f), values.iter().min(), values.iter().max())
    else {
        return "failed (no run)".into();
    };
    if lo == hi {
        fmt_num(m)
    } else {
        format!("{} ({lo}–{hi})", fmt_num(m))
    }
}

fn fmt_num(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

fn mib(bytes: f64) -> String {
    format!("{:.2} MiB", bytes / (1024.0 * 1024.0))
}

/// "a ×3, b ×1": how often each value was seen.
fn tally(seen: &std::collections::BTreeMap<String, usize>) -> String {
    seen.iter()
        .map(|(v, n)| format!("{v} ×{n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn kb(bytes: u64) -> String {
    format!("{:.1} KB", bytes as f64 / 1000.0)
}

// ---- sections as failable tasks -----------------------------------------------------------

/// Runs a section in its own task within `limit`; a panic or a timeout becomes `Err(why)` (the
/// task is aborted, so the guards of its server and browser run).
async fn section<F>(name: &str, limit: Duration, fut: F) -> Result<String, String>
where
    F: Future<Output = String> + Send + 'static,
{
    progress(format!("{name}: start (limit {} s)", limit.as_secs()));
    let started = Instant::now();
    let mut handle = tokio::spawn(fut);
    let outcome = tokio::select! {
        r = tokio::time::timeout(limit, &mut handle) => r,
        signal = interrupted() => {
            // The server and chromedriver run in their own process groups, so Ctrl-C does not
            // reach them: end the task, whose guards kill them, before exiting.
            progress(format!("{name}: {signal}, stopping"));
            handle.abort();
            let _ = handle.await;
            std::process::exit(130);
        }
    };
    let result = match outcome {
        Ok(Ok(md)) => Ok(md),
        Ok(Err(e)) if e.is_panic() => {
            let p = e.into_panic();
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "panic".into());
            Err(msg)
        }
        Ok(Err(e)) => Err(format!("task failed: {e}")),
        Err(_) => {
            handle.abort();
            let _ = handle.await;
            Err(format!("did not finish within {} s", limit.as_secs()))
        }
    };
    progress(format!(
        "{name}: {} after {:.0} s",
        if result.is_ok() { "done" } else { "FAILED" },
        started.elapsed().as_secs_f64()
    ));
    result
}

/// Resolves on SIGINT or SIGTERM, naming it.
async fn interrupted() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => "interrupted",
        _ = term.recv() => "terminated",
    }
}

fn failed_section(title: &str, why: &str) -> String {
    let first: String = why.lines().take(3).collect::<Vec<_>>().join(" / ");
    format!("### {title}\n\n**FAILED**: {}\n", first.replace('|', "\\|"))
}

// ---- page helpers -----------------------------------------------------------------------

/// A new WebDriver session (fresh profile) with exact heap figures and the probe installed.
async fn fresh_page(browser: &Browser, base: &str) -> Page {
    let page = browser.session_with_args(base, &[PRECISE_MEMORY]).await;
    install_probe(&page).await;
    page
}

async fn install_probe(page: &Page) {
    page.cdp(
        "Page.addScriptToEvaluateOnNewDocument",
        json!({ "source": js::PROBE }),
    )
    .await;
}

/// Used JS heap and wasm memory (bytes) after forcing garbage collection.
async fn memory(page: &Page) -> (Option<f64>, Option<f64>) {
    for _ in 0..2 {
        page.cdp("HeapProfiler.collectGarbage", json!({})).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let v = page.js(js::MEMORY, vec![]).await;
    (v["heap"].as_f64(), v["wasm"].as_f64())
}

async fn browser_now(page: &Page) -> f64 {
    page.js("return Date.now();", vec![])
        .await
        .as_f64()
        .expect("Date.now()")
}

async fn wait_content(page: &Page) {
    let text = page
        .wait_text("[data-testid=content]", Duration::from_secs(15))
        .await;
    assert!(
        !text.is_empty(),
        "empty content: {}",
        page.diagnostics().await
    );
}

/// Closes a WebDriver session (its Chromium quits).
async fn close(page: Page) {
    let _ = page.client.close().await;
}

// ---- 1. refresh amplification --------------------------------------------------------------

/// One cell run: what the server saw while every tab fired K calls on an expired token.
#[derive(Debug, Clone, Default)]
struct Run {
    refreshes: u64,
    refreshes_not_ok: u64,
    wasted_401: u64,
    /// Refresh requests the provider answered `invalid_grant` (0 for session-api).
    invalid_grant: u64,
    failed: u64,
    calls: u64,
    refreshed_while_idle: bool,
    /// `Some(true)`: the refresh left before the calls (not triggered by them); `None`: unknown.
    refreshed_before_fire: Option<bool>,
    /// `document.visibilityState` of each tab when its calls left.
    visibility: Vec<String>,
}

/// Where the refreshes and 401s of a run are counted: session-api's metrics, or the OpenID
/// Provider's token endpoint and its resource server (`/__stats`).
#[derive(Clone, Copy)]
enum Backend<'a> {
    Api(&'a Server),
    Oidc(&'a Provider, &'a Server),
}

/// Counters of a [`Backend`] at one moment.
#[derive(Debug, Clone, Copy, Default)]
struct Counts {
    refreshes: u64,
    refreshes_ok: u64,
    unauthorized: u64,
    invalid_grant: u64,
}

impl Backend<'_> {
    async fn counts(&self) -> Counts {
        match self {
            Backend::Api(server) => {
                let m: Metrics = server.metrics().await;
                Counts {
                    refreshes: m.refreshes_all(),
                    refreshes_ok: m.refreshes("ok"),
                    unauthorized: m.responses(401),
                    invalid_grant: 0,
                }
            }
            Backend::Oidc(provider, _) => {
                let s = provider.stats().await;
                Counts {
                    refreshes: s.refreshes_all(),
                    refreshes_ok: s.refreshes_ok(),
                    unauthorized: s.api.unauthorized,
                    invalid_grant: s.invalid_grant,
                }
            }
        }
    }

    /// The app's origin.
    fn url(&self) -> String {
        match self {
            Backend::Api(server) | Backend::Oidc(_, server) => server.url(),
        }
    }
}

/// The label of the provider rows.
const OIDC_LABEL: &str = "oidc-provider 9.13.3 (no-grace rotation)";

/// session-api serving the release app (its static folder a copy of `dist/` whose config.json
/// is written once the provider is up), then the provider with the server's origin
/// (as e2e/tests/oidc.rs's `world()`).
async fn oidc_world(access_ttl: Duration) -> (Server, Provider, tempfile::TempDir) {
    let dist = dist_with_config(&json!({}));
    let server = Server::start(ServerOptions {
        static_dir: Some(dist.path().to_path_buf()),
        ..ServerOptions::default()
    })
    .await;
    let provider = Provider::start(ProviderOptions {
        app_origin: server.url(),
        access_ttl_s: access_ttl.as_secs(),
        ..ProviderOptions::default()
    })
    .await;
    provider.write_app_config(dist.path());
    (server, provider, dist)
}

/// From the app's login page: "remember me" on, the provider's button, its development login
/// form, back in the app signed in (as e2e/tests/oidc.rs's `sign_in()`).
async fn oidc_sign_in(page: &Page, provider: &Provider, login: &str) {
    page.wait_text("[data-testid=provider-sign-in]", Duration::from_secs(15))
        .await;
    page.click("input#remember").await;
    page.click("[data-testid=provider-sign-in]").await;
    oidc::sign_in_at_provider(page, provider, login, "any password").await;
    wait_for(
        &format!("{login} to be signed in after the provider's redirect"),
        Duration::from_secs(15),
        || async {
            if let Some(e) = page.text_of("[data-testid=callback-error]").await {
                panic!("the callback failed: {e}\n{}", provider.log());
            }
            page.nav_signed_in().await.then_some(())
        },
    )
    .await;
}

/// "Signed out" entries in the tab's event log (since the page loaded).
async fn logouts_logged(page: &Page) -> usize {
    page.open_inspector().await;
    page.event_log()
        .await
        .iter()
        .filter(|e| e.contains("Signed out"))
        .count()
}

/// Signs in in one tab and opens `tabs - 1` more windows of the same session on `/user`.
async fn open_tabs(browser: &Browser, backend: Backend<'_>, tabs: usize) -> Vec<Page> {
    let first = browser.session(&backend.url()).await;
    match backend {
        Backend::Api(_) => {
            first.sign_in("user", DEMO_PASSWORD, true).await;
            first.click_nav("User").await;
        }
        Backend::Oidc(provider, _) => {
            first.goto("/login?redirect=%2Fuser").await;
            oidc_sign_in(&first, provider, "ann").await;
        }
    }
    wait_content(&first).await;
    let mut pages = vec![first.clone()];
    for _ in 1..tabs {
        let p = first.new_window("/user").await;
        wait_content(&p).await;
        pages.push(p);
    }
    for p in &pages {
        p.open_inspector().await;
    }
    pages
}

/// Schedules, in `page`, the K calls at browser time `at_ms` (all tabs share the clock).
/// K = 1 is the user board's own call (a client-side navigation Home -> User); K > 1 is the
/// inspector's fire-K button (K concurrent GET /api/test/user through the interceptor).
async fn arm(page: &Page, k: usize, at_ms: f64) {
    if k == 1 {
        page.js(
            "const [at] = arguments; \
             setTimeout(() => { \
               window.__visibilityAtFire = document.visibilityState; \
               const a = [...document.querySelectorAll('nav[aria-label=Main] a')] \
                 .find(a => a.textContent.trim() === 'User'); \
               a.click(); \
             }, Math.max(0, at - Date.now()));",
            vec![json!(at_ms)],
        )
        .await;
    } else {
        let script = format!(
            "{} \
             const [k, at] = arguments; \
             setTimeout(() => {{ \
               window.__visibilityAtFire = document.visibilityState; \
               document.querySelector('[data-testid=fire-' + k + ']').click(); \
             }}, Math.max(0, at - Date.now()));",
            js::WATCH_BURSTS
        );
        page.js(&script, vec![json!(k), json!(at_ms)]).await;
    }
}

/// Waits for the armed calls of `page` to finish; returns how many failed.
async fn failed_calls(page: &Page, k: usize) -> u64 {
    if k == 1 {
        let outcome = wait_for("the user board's call", Duration::from_secs(30), || async {
            page.js(
                "if (location.pathname !== '/user') return null; \
                 const s = [...document.querySelectorAll('section.card')] \
                   .find(s => (s.querySelector('h1') || {}).textContent === 'User board'); \
                 if (!s) return null; \
                 if (s.querySelector('[data-testid=content]')) return 'ok'; \
                 if (s.querySelector('[data-testid=content-error]')) return 'failed'; \
                 return null;",
                vec![],
            )
            .await
            .as_str()
            .map(str::to_string)
        })
        .await;
        return u64::from(outcome != "ok");
    }
    failed_of(&page.burst_result(k).await)
}

/// Y of a burst's result line "K calls: X ok, Y failed".
fn failed_of(line: &str) -> u64 {
    line.rsplit_once(", ")
        .and_then(|(_, f)| f.trim_end_matches(" failed").trim().parse().ok())
        .unwrap_or_else(|| panic!("unexpected burst result {line:?}"))
}

async fn amp_run(backend: Backend<'_>, pages: &[Page], k: usize) -> Run {
    // Position: K = 1 starts from Home (its call is the user board's).
    for p in pages {
        if k == 1 && p.path().await.starts_with("/user") {
            p.click_nav("Home").await;
            wait_for("the Home page", Duration::from_secs(10), || async {
                (!p.path().await.starts_with("/user")).then_some(())
            })
            .await;
            wait_content(p).await;
        }
    }
    // The engine pauses proactive refreshes while the browser says it is offline, so the token
    // expires with nothing in flight (the network itself stays up; see tests/session.rs).
    for p in pages {
        p.js("window.dispatchEvent(new Event('offline'));", vec![])
            .await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let idle = backend.counts().await;
    tokio::time::sleep(AMP_TTL + Duration::from_millis(500)).await;
    let before = backend.counts().await;
    let lead_ms = 150.0 * pages.len() as f64 + 100.0;
    let at = browser_now(&pages[0]).await + lead_ms;
    let fire_at = Instant::now() + Duration::from_millis(lead_ms as u64);
    for p in pages {
        arm(p, k, at).await;
    }
    // Did a refresh leave before the calls did (e.g. a wake trigger as WebDriver switched the
    // focus between windows while arming)? Only known when arming finished in time.
    let armed = backend.counts().await;
    let refreshed_before_fire = (Instant::now() + Duration::from_millis(30) < fire_at)
        .then_some(armed.refreshes > before.refreshes);
    let mut failed = 0;
    let mut visibility = Vec::new();
    for p in pages {
        failed += failed_calls(p, k).await;
        visibility.push(
            p.js("return window.__visibilityAtFire || 'unknown';", vec![])
                .await
                .as_str()
                .unwrap_or("unknown")
                .to_string(),
        );
    }
    // Let a late refresh or retry land before the snapshot.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = backend.counts().await;
    let d = |f: fn(&Counts) -> u64| f(&after) - f(&before);
    if d(|c| c.refreshes) != 1 || d(|c| c.invalid_grant) > 0 {
        // Shown on stderr only: what each tab's event bus said about this run.
        for (i, p) in pages.iter().enumerate() {
            let log = p.event_log().await;
            let tail = &log[log.len().saturating_sub(8)..];
            progress(format!("  tab {i} events: {}", tail.join(" | ")));
        }
        if let Backend::Oidc(provider, _) = backend {
            for e in provider.stats().await.errors {
                progress(format!("  provider error: {e}"));
            }
        }
    }
    Run {
        refreshes: d(|c| c.refreshes),
        refreshes_not_ok: d(|c| c.refreshes - c.refreshes_ok),
        wasted_401: d(|c| c.unauthorized),
        invalid_grant: d(|c| c.invalid_grant),
        failed,
        calls: (k * pages.len()) as u64,
        refreshed_while_idle: before.refreshes != idle.refreshes,
        refreshed_before_fire,
        visibility,
    }
}

/// The 1- and 4-tab runs of every K against `backend`: the table rows (with an `invalid_grant`
/// column for the provider) and the tally of the tabs' visibility as their calls left.
async fn amp_cells(
    backend: Backend<'_>,
    browser: &Browser,
    reps: usize,
) -> (Vec<String>, std::collections::BTreeMap<String, usize>) {
    let ks = [1usize, 10, 50];
    let (tag, is_oidc) = match backend {
        Backend::Api(_) => ("", false),
        Backend::Oidc(..) => ("oidc ", true),
    };
    let mut rows = Vec::new();
    let mut visibility = std::collections::BTreeMap::<String, usize>::new();
    for tabs in [1usize, 4] {
        progress(format!("{tag}amplification: {tabs} tab(s): signing in"));
        let pages = open_tabs(browser, backend, tabs).await;
        let mut runs: Vec<Vec<Run>> = vec![Vec::new(); ks.len()];
        for rep in 0..reps {
            for (i, &k) in ks.iter().enumerate() {
                let r = amp_run(backend, &pages, k).await;
                progress(format!(
                    "{tag}amplification: {tabs} tab(s), K = {k}, run {}/{reps}: {} refresh(es), {}{} 401s, {} of {} calls failed{}{}",
                    rep + 1,
                    r.refreshes,
                    if is_oidc { format!("{} invalid_grant, ", r.invalid_grant) } else { String::new() },
                    r.wasted_401,
                    r.failed,
                    r.calls,
                    if r.refreshed_while_idle { " (a refresh ran while idle)" } else { "" },
                    match r.refreshed_before_fire {
                        Some(true) => " (the refresh left before the calls)",
                        Some(false) => "",
                        None => " (armed too late to tell which left first)",
                    }
                ));
                if tabs > 1 {
                    for v in &r.visibility {
                        *visibility.entry(v.clone()).or_default() += 1;
                    }
                }
                runs[i].push(r);
            }
        }
        for (i, &k) in ks.iter().enumerate() {
            let rs = &runs[i];
            let col = |f: fn(&Run) -> u64| spread(&rs.iter().map(f).collect::<Vec<_>>());
            let idle = rs.iter().filter(|r| r.refreshed_while_idle).count();
            let early = rs
                .iter()
                .filter(|r| r.refreshed_before_fire == Some(true))
                .count();
            let unknown = rs
                .iter()
                .filter(|r| r.refreshed_before_fire.is_none())
                .count();
            let mut notes = Vec::new();
            if idle > 0 {
                notes.push(format!(
                    "{idle} run(s) with a refresh while idle: token not expired"
                ));
            }
            if early > 0 {
                notes.push(format!(
                    "{early} run(s) where the refresh left before the calls"
                ));
            }
            if unknown > 0 {
                notes.push(format!(
                    "{unknown} run(s) armed too late to tell which left first"
                ));
            }
            // The provider's rows have one more column: `invalid_grant` answers.
            let invalid_grant = if is_oidc {
                format!(" {} |", col(|r| r.invalid_grant))
            } else {
                String::new()
            };
            rows.push(format!(
                "| {tabs} | {k} | {} | {} | {} |{invalid_grant} {} | {} | {} | {} |",
                rs.first().map(|r| r.calls).unwrap_or(0),
                col(|r| r.refreshes),
                col(|r| r.refreshes_not_ok),
                col(|r| r.wasted_401),
                col(|r| r.failed),
                rs.len(),
                if notes.is_empty() {
                    "–".to_string()
                } else {
                    notes.join("; ")
                }
            ));
        }
        for p in pages.into_iter().take(1) {
            close(p).await;
        }
    }
    (rows, visibility)
}

async fn amplification(reps: usize) -> String {
    let server = Server::start(ServerOptions {
        access_ttl: format!("{}s", AMP_TTL.as_secs()),
        ..ServerOptions::default()
    })
    .await;
    let browser = Browser::start().await;
    let (rows, visibility) = amp_cells(Backend::Api(&server), &browser, reps).await;
    let metrics = server.metrics().await;
    format!(
        "### Refresh amplification (real browser)\n\n\
         Access token {ttl} s. The tab(s) are made to let the token expire with nothing in flight \
         (a synthetic `offline` event pauses proactive refresh, the network stays up), wait \
         {ttl} s + 0.5 s, then fire. **1 tab**: K calls. **4 tabs** (4 windows of one browser \
         session: shared cookies, storage, BroadcastChannel, Web Locks; `document.visibilityState` \
         of a tab as its calls left, over all 4-tab runs: {visibility}): \
         **every tab fires K at the same moment** (a timer armed in each tab for one shared \
         `Date.now()`), so 4·K calls race. K = 1 is the user board's own call (client-side \
         navigation Home → User); K = 10 and 50 are the inspector's \"Fire K calls\" (K concurrent \
         `GET /api/test/user` through the interceptor). Counts are server-side deltas \
         (`session_api_refreshes_total`, `session_api_http_responses_total{{status=\"401\"}}`); \
         failed calls are those the page reported as failed. Median of {reps} runs \
         (min–max when runs differ).\n\n\
         | tabs | K per tab | calls in total | refresh requests | of which not answered `ok` | wasted 401s | failed calls | runs | notes |\n\
         |---:|---:|---:|---:|---:|---:|---:|---:|---|\n{}\n\n\
         Whole section: refresh-token reuse detected {} time(s).\n",
        rows.join("\n"),
        metrics.refreshes("reuse_detected"),
        ttl = AMP_TTL.as_secs(),
        visibility = tally(&visibility),
    )
}

/// The amplification runs against the OpenID Provider: the app with `"backend": "oidc"`, its
/// calls going to the provider's resource server (`apiBase`), refreshes counted at the
/// provider's token endpoint.
async fn oidc_amplification(reps: usize) -> String {
    let (server, provider, _dist) = oidc_world(AMP_TTL).await;
    let browser = Browser::start().await;
    provider.reset().await;
    let (rows, visibility) = amp_cells(Backend::Oidc(&provider, &server), &browser, reps).await;
    let stats = provider.stats().await;
    let errors = provider_errors(&stats);
    format!(
        "### Refresh amplification (real browser), {OIDC_LABEL}\n\n\
         The same runs as above with the app's `\"backend\": \"oidc\"` against panva's \
         `oidc-provider` (e2e/oidc: one public client, PKCE, refresh tokens rotating on every \
         use with **no grace**: a second use of a rotated refresh token is `invalid_grant` and \
         revokes the grant). Access token {ttl} s at the provider. Signed in through the \
         provider's development login form (\"remember me\" on). The API calls go to the \
         provider's resource server (`apiBase`; K > 1: `GET /api/test/user` there). Counts are \
         deltas of the provider's `/__stats`: refresh requests = `refresh_token` grants at its \
         token endpoint (any outcome), `invalid_grant` = token-endpoint answers `invalid_grant`, \
         401s = the resource server's 401 answers. `document.visibilityState` of a tab as its \
         calls left, over all 4-tab runs: {visibility}. Median of {reps} runs (min–max when runs \
         differ).\n\n\
         | tabs | K per tab | calls in total | refresh requests (token endpoint) | of which not answered `ok` | `invalid_grant` | wasted 401s (resource server) | failed calls | runs | notes |\n\
         |---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n{}\n\n\
         Whole section ({OIDC_LABEL}): {} refresh request(s), {} `invalid_grant`, {} grant(s) \
         revoked, {} authorization-code sign-in(s).{errors}\n",
        rows.join("\n"),
        stats.refreshes_all(),
        stats.invalid_grant,
        stats.grants_revoked,
        stats.token("authorization_code", "ok"),
        ttl = AMP_TTL.as_secs(),
        visibility = tally(&visibility),
    )
}

/// The provider's recorded errors (its last 20), as markdown lines after a section, or nothing.
fn provider_errors(stats: &oidc::Stats) -> String {
    if stats.errors.is_empty() {
        return String::new();
    }
    let lines: Vec<String> = stats
        .errors
        .iter()
        .map(|e| format!("- `{}`", e.to_string().replace('`', "'")))
        .collect();
    format!(
        "\n\nErrors the provider recorded (its last 20, oldest first):\n\n{}",
        lines.join("\n")
    )
}

/// The long session against the OpenID Provider: `tabs` tabs of one browser session, one of
/// them firing 10 calls at the resource server every few seconds, over `seconds`.
async fn oidc_long_session(seconds: u64, tabs: usize) -> String {
    let (server, provider, _dist) = oidc_world(SESSION_TTL).await;
    let browser = Browser::start().await;
    let page = browser.session(&server.url()).await;
    page.goto("/login?redirect=%2Fuser").await;
    oidc_sign_in(&page, &provider, "ann").await;
    wait_content(&page).await;
    page.open_inspector().await;
    let mut others = Vec::new();
    for _ in 1..tabs {
        let p = page.new_tab("/user").await;
        wait_content(&p).await;
        others.push(p);
    }
    page.focus().await;
    let logouts0: usize = {
        let mut n = 0;
        for p in std::iter::once(&page).chain(others.iter()) {
            n += logouts_logged(p).await;
        }
        n
    };
    page.focus().await;

    let window = Duration::from_secs(seconds);
    let s0 = provider.stats().await;
    let tab_401_0 = page.inspector_number("insp-401").await;
    let t0 = Instant::now();
    let (mut bursts, mut failed, mut calls) = (0u64, 0u64, 0u64);
    let mut next = Duration::ZERO;
    while next < window {
        tokio::time::sleep(next.saturating_sub(t0.elapsed())).await;
        if t0.elapsed() >= window {
            break;
        }
        failed += failed_of(&page.fire(10).await);
        bursts += 1;
        calls += 10;
        if bursts % 10 == 0 {
            progress(format!(
                "oidc long session: {:.0} s of {seconds} s, {bursts} bursts",
                t0.elapsed().as_secs_f64()
            ));
        }
        next += SESSION_FIRE_EVERY;
    }
    tokio::time::sleep(window.saturating_sub(t0.elapsed())).await;
    let s1 = provider.stats().await;
    let tab_401 = page.inspector_number("insp-401").await - tab_401_0;
    let status = page.inspector_status().await;
    let mut logouts = 0;
    let mut signed_in = 0;
    for p in std::iter::once(&page).chain(others.iter()) {
        logouts += logouts_logged(p).await;
        if p.nav_signed_in().await && p.path().await.starts_with("/user") {
            signed_in += 1;
        }
    }
    let refreshes = s1.refreshes_all() - s0.refreshes_all();
    let not_ok = refreshes - (s1.refreshes_ok() - s0.refreshes_ok());
    let invalid_grant = s1.invalid_grant - s0.invalid_grant;
    let unauthorized = s1.api.unauthorized - s0.api.unauthorized;
    let api_ok = s1.api.ok - s0.api.ok;
    let codes = s1.token("authorization_code", "ok") - s0.token("authorization_code", "ok");
    let ttl = SESSION_TTL.as_secs_f64();
    let secs = window.as_secs_f64();
    let lifetimes = secs / ttl;
    let scheduled_after = ttl - (0.10 * ttl).min(60.0);
    if invalid_grant > 0 || not_ok > 0 {
        for e in &s1.errors {
            progress(format!("  provider error: {e}"));
        }
    }
    format!(
        "### Long session (real browser, {tabs} tab(s)), {OIDC_LABEL}\n\n\
         Access token {ttl:.0} s at the provider, {secs:.0} s (`BENCH_SESSION_SECONDS`). The app \
         with `\"backend\": \"oidc\"`, signed in through the provider's login form (\"remember \
         me\" on); one tab on `/user` with the inspector open fires 10 concurrent \
         `GET /api/test/user` at the provider's resource server every {fire} s; {idle} more \
         tab(s) of the same browser session stay open on `/user`. Counts are deltas of the \
         provider's `/__stats` over the window; logouts are the \"Signed out\" entries of every \
         tab's event log.\n\n\
         | figure | value |\n|---|---:|\n\
         | access-token lifetimes in the window | {lifetimes:.0} |\n\
         | refresh requests (provider token endpoint) | {refreshes} |\n\
         | refresh requests per lifetime | {per:.2} |\n\
         | nominal: one refresh per {scheduled_after:.2} s (lifetime − 10 % margin) would make | {expected:.1} |\n\
         | … of which not answered `ok` | {not_ok} |\n\
         | **`invalid_grant` answers** | **{invalid_grant}** |\n\
         | grants revoked | {revoked} |\n\
         | sign-ins at the provider (authorization code) in the window | {codes} |\n\
         | API calls / failed | {calls} / {failed} |\n\
         | resource server: 200s / 401s | {api_ok} / {unauthorized} |\n\
         | 401 answers seen by the calling tab | {tab_401} |\n\
         | **logouts** (\"Signed out\" in the tabs' event logs, all tabs) | **{logouts}** |\n\
         | calling tab's session state at the end | {status} |\n\
         | tabs still signed in on `/user` at the end | {signed_in} of {tabs} |{errors}\n",
        idle = tabs - 1,
        fire = SESSION_FIRE_EVERY.as_secs(),
        per = refreshes as f64 / lifetimes,
        expected = secs / scheduled_after,
        revoked = s1.grants_revoked - s0.grants_revoked,
        logouts = logouts - logouts0,
        errors = if invalid_grant > 0 || not_ok > 0 {
            provider_errors(&s1)
        } else {
            String::new()
        },
    )
}

// ---- 2. long session + 4. memory -------------------------------------------------------------

struct SessionFigures {
    table: String,
    memory_rows: Vec<String>,
}

async fn long_session(seconds: u64, tabs: usize) -> SessionFigures {
    let server = Server::start(ServerOptions {
        access_ttl: format!("{}s", SESSION_TTL.as_secs()),
        ..ServerOptions::default()
    })
    .await;
    let browser = Browser::start().await;
    let page = fresh_page(&browser, &server.url()).await;
    page.sign_in("user", DEMO_PASSWORD, true).await;
    page.click_nav("User").await;
    wait_content(&page).await;
    page.open_inspector().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (heap0, wasm0) = memory(&page).await;
    // The other tabs: open on /user, idle (each its own renderer and JS heap, so they do not
    // count in the calling tab's memory figures).
    let mut others = Vec::new();
    for _ in 1..tabs {
        let p = page.new_blank_tab().await;
        install_probe(&p).await;
        p.goto("/user").await;
        wait_content(&p).await;
        others.push(p);
    }
    page.focus().await;

    let window = Duration::from_secs(seconds);
    let m0 = server.metrics().await;
    let tab_401_0 = page.inspector_number("insp-401").await;
    let b0 = browser_now(&page).await;
    let t0 = Instant::now();
    let (mut bursts, mut failed, mut calls) = (0u64, 0u64, 0u64);
    let mut next = Duration::ZERO;
    let mut mid: Option<(Option<f64>, Option<f64>)> = None;
    while next < window {
        if mid.is_none() && t0.elapsed() >= window / 2 {
            mid = Some(memory(&page).await);
        }
        tokio::time::sleep(next.saturating_sub(t0.elapsed())).await;
        if t0.elapsed() >= window {
            break;
        }
        let f = failed_of(&page.fire(10).await);
        bursts += 1;
        calls += 10;
        failed += f;
        if bursts % 10 == 0 {
            progress(format!(
                "long session: {:.0} s of {seconds} s, {bursts} bursts",
                t0.elapsed().as_secs_f64()
            ));
        }
        next += SESSION_FIRE_EVERY;
    }
    tokio::time::sleep(window.saturating_sub(t0.elapsed())).await;
    let m1 = server.metrics().await;
    let b1 = browser_now(&page).await;
    let tab_401 = page.inspector_number("insp-401").await - tab_401_0;
    let status = page.inspector_status().await;
    // Refresh requests every tab made inside the window, by start time (one browser clock).
    let mut starts: Vec<f64> = Vec::new();
    let mut per_tab = Vec::new();
    let mut signed_in = 0;
    let mut hidden_pct = Vec::new();
    for p in &others {
        // Share of the window each background tab spent hidden (read before switching to it
        // makes it visible).
        let v = p
            .js("return (window.__bench || {}).visibility || [];", vec![])
            .await;
        hidden_pct.push(hidden_share(&v, b0, b1));
    }
    for p in std::iter::once(&page).chain(others.iter()) {
        let log = p
            .js("return (window.__bench || {}).refreshes || [];", vec![])
            .await;
        let mine: Vec<f64> = log
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e["at"].as_f64())
                    .filter(|at| *at >= b0 && *at <= b1)
                    .collect()
            })
            .unwrap_or_default();
        per_tab.push(mine.len().to_string());
        starts.extend(mine);
        if p.nav_signed_in().await && p.path().await.starts_with("/user") {
            signed_in += 1;
        }
    }
    let (heap1, wasm1) = memory(&page).await;
    starts.sort_by(|a, b| a.total_cmp(b));
    let intervals: Vec<f64> = starts.windows(2).map(|w| (w[1] - w[0]) / 1000.0).collect();
    let ttl = SESSION_TTL.as_secs_f64();
    // The engine's schedule (src/session/policy.rs): refresh at lifetime − min(60 s, 10 %)
    // (the round trip on loopback is far below 10 %), never sooner than max(1 s, min(30 s, 50 %))
    // after the previous token arrived.
    let scheduled_after = ttl - (0.10 * ttl).min(60.0);
    let min_interval = (0.5 * ttl).clamp(1.0, 30.0);
    let below_min = intervals.iter().filter(|i| **i < min_interval).count();
    let refreshes = m1.refreshes_all() - m0.refreshes_all();
    let not_ok = refreshes - (m1.refreshes("ok") - m0.refreshes("ok"));
    let secs = window.as_secs_f64();
    let lifetimes = secs / ttl;
    let server_401 = m1.responses(401) - m0.responses(401);
    let fmt_opt = |v: Option<f64>| v.map(|v| format!("{v:.2} s")).unwrap_or("–".into());
    let not_needed = below_min as u64 + not_ok;
    let table = format!(
        "### Long session (real browser, {tabs} tab(s))\n\n\
         Access token {ttl:.0} s, {secs:.0} s (`BENCH_SESSION_SECONDS`; the issue's full run is 600). \
         One tab signed in on `/user` with the inspector open fires 10 concurrent \
         `GET /api/test/user` every {fire} s; {idle} more tab(s) of the same browser session \
         (`BENCH_SESSION_TABS`) stay open on `/user` in the background, idle, each running its own \
         engine and proactive timer.\n\n\
         | figure | value |\n|---|---:|\n\
         | access-token lifetimes in the window | {lifetimes:.0} |\n\
         | refresh requests (server) | {refreshes} |\n\
         | refresh requests per lifetime | {per:.2} |\n\
         | nominal: one refresh per {scheduled_after:.2} s (lifetime − 10 % margin) would make | {expected:.1} |\n\
         | refresh requests seen by the tabs (resource timing), total (per tab) | {seen} ({per_tab}) |\n\
         | interval between refresh requests: min / median / max | {imin} / {imed} / {imax} |\n\
         | **refresh requests not needed**¹ | **{not_needed}** |\n\
         | … of which started < {min_interval:.1} s after the previous one | {below_min} |\n\
         | … of which not answered `ok` by the server | {not_ok} |\n\
         | API calls / failed | {calls} / {failed} |\n\
         | 401 answers: server / seen by the tab | {server_401} / {tab_401} |\n\
         | calling tab's session state at the end | {status} |\n\
         | tabs still signed in on `/user` at the end | {signed_in} of {tabs} |\n\
         | share of the window the background tabs spent hidden (per tab) | {hidden} |\n\n\
         ¹ A refresh request is **not needed** when it started less than the engine's minimum \
         interval ({min_interval:.1} s = half the access lifetime) after the previous refresh \
         request of any tab, or when the server did not answer it `ok` (session-api counts a \
         token presented again as `repeated`, `grace` or `reuse_detected`, not `ok`). A second \
         refresh for the same token generation is caught by one of the two: it presents the \
         token the first one rotated (not `ok`), or the new cookie the first one set, which \
         happens within the lock's hand-over, milliseconds after the first. What this row \
         cannot see is a tab refreshing early for no reason more than {min_interval:.1} s after \
         the previous refresh; the per-lifetime rows above show that.\n",
        idle = tabs - 1,
        hidden = if hidden_pct.is_empty() {
            "– (no background tab)".to_string()
        } else {
            hidden_pct
                .iter()
                .map(|p| p.map(|p| format!("{p:.0} %")).unwrap_or("unknown".into()))
                .collect::<Vec<_>>()
                .join(", ")
        },
        per_tab = per_tab.join(", "),
        fire = SESSION_FIRE_EVERY.as_secs(),
        per = refreshes as f64 / lifetimes,
        expected = secs / scheduled_after,
        seen = starts.len(),
        imin = fmt_opt(intervals.iter().copied().reduce(f64::min)),
        imed = fmt_opt(median(&intervals)),
        imax = fmt_opt(intervals.iter().copied().reduce(f64::max)),
    );
    let fmt_mem = |v: Option<f64>| v.map(mib).unwrap_or_else(|| "failed (not readable)".into());
    let growth = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => format!("{:+.2} MiB", (b - a) / (1024.0 * 1024.0)),
        _ => "failed".into(),
    };
    let memory_rows = vec![
        format!(
            "| app, signed in on `/user`, inspector open, before the long session | {} | {} |",
            fmt_mem(heap0),
            fmt_mem(wasm0)
        ),
        format!(
            "| app, half-way through the session | {} | {} |",
            fmt_mem(mid.and_then(|m| m.0)),
            fmt_mem(mid.and_then(|m| m.1))
        ),
        format!(
            "| app, after the {secs:.0} s session ({refreshes} refreshes, {calls} calls) | {} | {} |",
            fmt_mem(heap1),
            fmt_mem(wasm1)
        ),
        format!(
            "| **growth over the session** | **{}** | **{}** |",
            growth(heap0, heap1),
            growth(wasm0, wasm1)
        ),
    ];
    drop(others);
    close(page).await;
    SessionFigures { table, memory_rows }
}

// ---- 3. load ---------------------------------------------------------------------------------

/// gzip -9 size of a file (the same measure as `scripts/size`).
fn gzip_size(path: &std::path::Path) -> u64 {
    let out = std::process::Command::new("gzip")
        .arg("-9c")
        .arg(path)
        .output()
        .expect("run gzip");
    assert!(out.status.success(), "gzip -9c {} failed", path.display());
    out.stdout.len() as u64
}

struct Sizes {
    raw: u64,
    gz: u64,
    html_gz: u64,
    /// Sizes of the `.br` copies `scripts/build-release` wrote (0 when there are none).
    br: u64,
    html_br: u64,
}

fn file_len(path: &std::path::Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

fn br_path(path: &std::path::Path) -> std::path::PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".br");
    p.into()
}

fn sizes() -> Sizes {
    let dist = e2e::dist_dir();
    let (mut raw, mut gz, mut br) = (0, 0, 0);
    let mut found = 0;
    for entry in std::fs::read_dir(&dist).expect("read dist/") {
        let path = entry.expect("dist entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if name.ends_with("_bg.wasm") || name.ends_with(".js") || name.ends_with(".css") {
            raw += std::fs::metadata(&path).expect("stat").len();
            gz += gzip_size(&path);
            br += file_len(&br_path(&path));
            found += 1;
        }
    }
    assert!(found >= 3, "dist/ lacks the wasm, js or css");
    let index = dist.join("index.html");
    Sizes {
        raw,
        gz,
        html_gz: gzip_size(&index),
        br,
        html_br: file_len(&br_path(&index)),
    }
}

/// What a page load transferred, from Resource Timing (the navigation entry and every resource
/// entry, same origin so nothing is zeroed): bodies as sent (`encodedBodySize`: compressed when
/// the server sent a compressed copy; headers not included — Chromium's `transferSize` only adds
/// a fixed 300 B per response to it, as Resource Timing specifies), as decoded, and the
/// `Content-Encoding` of each response where Chromium exposes it.
const TRANSFER: &str = "const all = [...performance.getEntriesByType('navigation'), \
       ...performance.getEntriesByType('resource')]; \
     const sum = k => all.reduce((a, e) => a + (e[k] || 0), 0); \
     return { count: all.length, encoded: sum('encodedBodySize'), decoded: sum('decodedBodySize'), \
              encodings: all.map(e => e.contentEncoding === undefined ? null : (e.contentEncoding || 'identity')) };";

/// A page load's bytes (see [`TRANSFER`]).
#[derive(Debug, Clone, Default)]
struct Transfer {
    responses: u64,
    encoded: f64,
    decoded: f64,
    /// "br ×4, identity ×2"; empty when Chromium does not expose `contentEncoding`.
    encodings: String,
}

async fn transfer(page: &Page) -> Option<Transfer> {
    let v = page.js(TRANSFER, vec![]).await;
    let mut seen = std::collections::BTreeMap::<String, usize>::new();
    for e in v["encodings"].as_array()?.iter().filter_map(|e| e.as_str()) {
        *seen.entry(e.to_string()).or_default() += 1;
    }
    Some(Transfer {
        responses: v["count"].as_u64()?,
        encoded: v["encoded"].as_f64()?,
        decoded: v["decoded"].as_f64()?,
        encodings: tally(&seen),
    })
}

/// One fresh load of `path`.
struct Sample {
    /// ms from navigation start until the input can be typed into.
    ms: f64,
    /// JS heap and wasm memory after it settled (not read on throttled loads).
    heap: Option<f64>,
    wasm: Option<f64>,
    transfer: Option<Transfer>,
}

/// Chromium's network emulation for the throttled loads (CDP `Network.emulateNetworkConditions`):
/// 150 ms latency, 1.6 Mbit/s down, 750 kbit/s up (throughputs in bytes per second).
const THROTTLE: (f64, f64, f64) = (150.0, 1_600_000.0 / 8.0, 750_000.0 / 8.0);

/// One fresh load of `path`, on Chromium's emulated slow network when `throttled` (then the
/// memory is not read: the figure is the time).
async fn one_load(browser: &Browser, base: &str, path: &str, throttled: bool) -> Sample {
    let page = fresh_page(browser, base).await;
    if throttled {
        page.cdp("Network.enable", json!({})).await;
        let (latency, down, up) = THROTTLE;
        page.cdp(
            "Network.emulateNetworkConditions",
            json!({ "offline": false, "latency": latency,
                    "downloadThroughput": down, "uploadThroughput": up }),
        )
        .await;
    }
    page.goto(path).await;
    let ms = wait_for(
        &format!("the input of {path} to be ready"),
        Duration::from_secs(if throttled { 60 } else { 20 }),
        || async {
            page.js(
                "return window.__bench ? window.__bench.inputReadyMs : null;",
                vec![],
            )
            .await
            .as_f64()
        },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let (heap, wasm) = if throttled {
        (None, None)
    } else {
        memory(&page).await
    };
    let transfer = transfer(&page).await;
    close(page).await;
    Sample {
        ms,
        heap,
        wasm,
        transfer,
    }
}

/// A copy of `dist/` (its own `config.json`) with the floor page; without the `.br` / `.gz`
/// copies when `!precompressed` (what session-api served before it served them).
fn load_dist(precompressed: bool) -> tempfile::TempDir {
    let dist = e2e::dist_with_config(
        &serde_json::from_str::<Value>(
            &std::fs::read_to_string(e2e::dist_dir().join("config.json"))
                .expect("dist/config.json"),
        )
        .expect("config.json is JSON"),
    );
    std::fs::write(dist.path().join("floor.html"), FLOOR_HTML).expect("write floor.html");
    if !precompressed {
        for entry in std::fs::read_dir(dist.path()).expect("read the dist copy") {
            let path = entry.expect("dist copy entry").path();
            if path.extension().is_some_and(|e| e == "br" || e == "gz") {
                std::fs::remove_file(&path).expect("remove a compressed copy");
            }
        }
    }
    dist
}

struct LoadFigures {
    table: String,
    memory_rows: Vec<String>,
}

/// Fresh loads of the app's `/login` and the floor page, interleaved (so that a slow moment of
/// the machine hits both alike).
async fn loads_of(
    browser: &Browser,
    base: &str,
    n: usize,
    throttled: bool,
    with_floor: bool,
) -> (Vec<Sample>, Vec<Sample>) {
    let (mut app, mut floor) = (Vec::new(), Vec::new());
    let label = if throttled { "throttled load" } else { "load" };
    for i in 0..n {
        let a = one_load(browser, base, "/login", throttled).await;
        let mut line = format!("{label} {}/{n} ({base}): app {:.0} ms", i + 1, a.ms);
        app.push(a);
        if with_floor {
            let f = one_load(browser, base, "/floor.html", throttled).await;
            line.push_str(&format!(", floor {:.0} ms", f.ms));
            floor.push(f);
        }
        progress(line);
    }
    (app, floor)
}

fn ms_of(v: &[Sample]) -> Vec<f64> {
    v.iter().map(|s| s.ms).collect()
}

/// Median of one transfer figure over the loads that could read it.
fn transfer_median(v: &[Sample], f: impl Fn(&Transfer) -> f64) -> Option<f64> {
    let xs: Vec<f64> = v
        .iter()
        .filter_map(|s| s.transfer.as_ref())
        .map(f)
        .collect();
    median(&xs)
}

async fn load(loads: usize) -> LoadFigures {
    let s = sizes();
    // The loads served as session-api serves dist/ (the .br / .gz copies beside the files).
    let dist = load_dist(true);
    let floor_gz = gzip_size(&dist.path().join("floor.html"));
    let server = Server::start(ServerOptions {
        static_dir: Some(dist.path().to_path_buf()),
        ..ServerOptions::default()
    })
    .await;
    // For comparison: the same files without the compressed copies (what it served before).
    let plain_dist = load_dist(false);
    let plain = Server::start(ServerOptions {
        static_dir: Some(plain_dist.path().to_path_buf()),
        ..ServerOptions::default()
    })
    .await;
    let plain_loads = loads.min(3);
    let browser = Browser::start().await;
    let (app, floor) = loads_of(&browser, &server.url(), loads, false, true).await;
    let (app_slow, floor_slow) = loads_of(&browser, &server.url(), loads, true, true).await;
    let (plain_app, _) = loads_of(&browser, &plain.url(), plain_loads, false, false).await;
    let (plain_slow, _) = loads_of(&browser, &plain.url(), plain_loads, true, false).await;

    let mut missing = Vec::new();
    let mut pick = |v: &[Sample], f: fn(&Sample) -> Option<f64>, what: &'static str| {
        let xs: Vec<f64> = v.iter().filter_map(f).collect();
        if xs.len() < v.len() {
            missing.push(what);
        }
        xs
    };
    let app_heap = pick(&app, |s| s.heap, "app heap");
    let app_wasm = pick(&app, |s| s.wasm, "app wasm memory");
    let floor_heap = pick(&floor, |s| s.heap, "floor heap");
    for (v, what) in [
        (&app, "app transfer"),
        (&floor, "floor transfer"),
        (&plain_app, "uncompressed app transfer"),
    ] {
        if v.iter().any(|s| s.transfer.is_none()) {
            missing.push(what);
        }
    }
    let (app_ms, floor_ms) = (ms_of(&app), ms_of(&floor));
    let (app_slow_ms, floor_slow_ms) = (ms_of(&app_slow), ms_of(&floor_slow));
    let ms = |v: &[f64], p: Option<f64>| {
        let x = match p {
            None => median(v),
            Some(p) => percentile(v, p),
        };
        x.map(|x| format!("{x:.0} ms")).unwrap_or("failed".into())
    };
    let ratio = |a: &[f64], f: &[f64]| match (median(a), median(f)) {
        (Some(a), Some(f)) if f > 0.0 => format!("{:.1}×", a / f),
        _ => "failed".into(),
    };
    let bytes = |v: &[Sample], f: fn(&Transfer) -> f64| {
        transfer_median(v, f)
            .map(|b| kb(b as u64))
            .unwrap_or("failed (not readable)".into())
    };
    let encodings = |v: &[Sample]| {
        v.iter()
            .find_map(|s| s.transfer.as_ref())
            .map(|t| {
                let enc = if t.encodings.is_empty() {
                    "encodings not exposed".to_string()
                } else {
                    t.encodings.clone()
                };
                let plural = if t.responses == 1 { "" } else { "s" };
                format!("{} response{plural}: {enc}", t.responses)
            })
            .unwrap_or("failed".into())
    };
    let heap_med = |v: &[f64]| median(v).map(mib).unwrap_or("failed (not readable)".into());
    let above = match (median(&app_heap), median(&floor_heap)) {
        (Some(a), Some(f)) => mib(a - f),
        _ => "failed".into(),
    };
    let (latency, down, up) = THROTTLE;
    let table = format!(
        "### Load (headless Chromium, fresh profile per load)\n\n\
         Time from navigation start until `input[name=username]` is in the DOM, visible and enabled \
         (a MutationObserver injected before any page script with \
         `Page.addScriptToEvaluateOnNewDocument` records `performance.now()`), over {loads} fresh \
         loads of each page (a new WebDriver session, i.e. a new Chromium profile with an empty \
         cache, per load; app and floor loads interleaved), both served by the same session-api \
         on 127.0.0.1 from a copy of `dist/` with its precompressed `.br` / `.gz` files. The floor \
         is a static HTML page with one input and nothing else (no compressed copy: 0.2 KB; an \
         empty `data:` icon, so Chromium asks for no favicon). \
         File sizes: `gzip -9` of the files in `dist/`, as `scripts/size`, and the `.br` copies \
         `scripts/build-release` writes. **Bytes transferred** are what Chromium received on the \
         first load, as served (Chromium accepts brotli on 127.0.0.1: see the `Content-Encoding` \
         row), read from \
         Resource Timing after the load: Σ `encodedBodySize` (the bodies as sent, response \
         headers not included) of the navigation entry and every resource entry (the app's are \
         index.html, js, wasm, css, config.json and the favicon). **Throttled**: Chromium's network \
         emulation (CDP `Network.emulateNetworkConditions`: {latency:.0} ms latency, \
         {down_mbit:.1} Mbit/s down, {up_kbit:.0} kbit/s up) set on the fresh page before \
         it navigates, {loads} loads of each page. \
         \"Without the compressed copies\": the same build served from a copy of `dist/` without \
         its `.br` / `.gz` files, i.e. uncompressed, as session-api served it before issue 13 \
         ({plain_loads} loads).\n\n\
         | measure | yew-session | floor (one-input HTML) | reference: the tutorial's Vue 3 client — **quoted from issue 7, not measured here** |\n\
         |---|---:|---:|---:|\n\
         | files, wasm + js + css, gzip -9 | {gz} ({raw} raw) | – | – |\n\
         | files, wasm + js + css + html, gzip -9 | {gzh} | {floor_gz} | 181 KB (js + css + html) |\n\
         | files, wasm + js + css + html, brotli (the `.br` copies served) | {brh} | – | – |\n\
         | **bytes transferred by a first load** (Σ `encodedBodySize`), median | {app_enc} | {floor_enc} | – |\n\
         | … decoded (Σ `decodedBodySize`) | {app_dec} | {floor_dec} | – |\n\
         | … responses and their `Content-Encoding` | {app_encs} | {floor_encs} | – |\n\
         | bytes transferred without the compressed copies, median | {plain_enc} | – | – |\n\
         | login input typeable, median | {am} | {fm} | 261 ms (floor 50 ms) |\n\
         | login input typeable, p90 | {a90} | {f90} | – |\n\
         | median ratio app / floor | {ratio} | 1× | 5.2× (261 / 50) |\n\
         | **login input typeable, throttled network**, median | {asm} | {fsm} | – |\n\
         | … throttled, p90 | {as90} | {fs90} | – |\n\
         | … throttled, median ratio app / floor | {ratio_slow} | 1× | – |\n\
         | … throttled, without the compressed copies, median | {psm} | – | – |\n\
         | JS heap after load (GC forced), median | {ah} | {fh} | – |\n\
         | JS heap above the floor | {above} | 0 | about 3 MB |\n\
         | JS heap + wasm memory above the floor | {above_all} | 0 | – (no wasm) |\n",
        above_all = match (median(&app_heap), median(&app_wasm), median(&floor_heap)) {
            (Some(a), Some(w), Some(f)) => mib(a + w - f),
            _ => "failed".into(),
        },
        down_mbit = down * 8.0 / 1e6,
        up_kbit = up * 8.0 / 1e3,
        gz = kb(s.gz),
        raw = kb(s.raw),
        gzh = kb(s.gz + s.html_gz),
        brh = if s.br == 0 {
            "none in dist/".to_string()
        } else {
            kb(s.br + s.html_br)
        },
        floor_gz = kb(floor_gz),
        app_enc = bytes(&app, |t| t.encoded),
        floor_enc = bytes(&floor, |t| t.encoded),
        app_dec = bytes(&app, |t| t.decoded),
        floor_dec = bytes(&floor, |t| t.decoded),
        app_encs = encodings(&app),
        floor_encs = encodings(&floor),
        plain_enc = bytes(&plain_app, |t| t.encoded),
        am = ms(&app_ms, None),
        fm = ms(&floor_ms, None),
        a90 = ms(&app_ms, Some(90.0)),
        f90 = ms(&floor_ms, Some(90.0)),
        ratio = ratio(&app_ms, &floor_ms),
        asm = ms(&app_slow_ms, None),
        fsm = ms(&floor_slow_ms, None),
        as90 = ms(&app_slow_ms, Some(90.0)),
        fs90 = ms(&floor_slow_ms, Some(90.0)),
        ratio_slow = ratio(&app_slow_ms, &floor_slow_ms),
        psm = ms(&ms_of(&plain_slow), None),
        ah = heap_med(&app_heap),
        fh = heap_med(&floor_heap),
    );
    let mut memory_rows = vec![
        format!(
            "| floor page after load (median of {loads}) | {} | – |",
            heap_med(&floor_heap)
        ),
        format!(
            "| app, login page after a fresh load (median of {loads}) | {} | {} |",
            heap_med(&app_heap),
            median(&app_wasm)
                .map(mib)
                .unwrap_or("failed (not captured)".into())
        ),
    ];
    missing.sort_unstable();
    missing.dedup();
    if !missing.is_empty() {
        memory_rows.push(format!(
            "| (not readable in some loads: {}) | | |",
            missing.join(", ")
        ));
    }
    LoadFigures { table, memory_rows }
}

// ---- which sections ------------------------------------------------------------------------

/// What a section not asked for by `BENCH_SECTIONS` "failed" with (it is left out of the report).
const SKIPPED: &str = "\u{0}skipped";

/// The sections a run makes (`BENCH_SECTIONS`, comma-separated; unset or `all`: every one).
struct Sections(Option<Vec<String>>);

impl Sections {
    const ALL: [&'static str; 5] = [
        "amplification",
        "session",
        "load",
        "oidc-amplification",
        "oidc-session",
    ];

    fn from_env() -> Sections {
        Self::parse(std::env::var("BENCH_SECTIONS").ok().as_deref())
    }

    fn parse(value: Option<&str>) -> Sections {
        let Some(v) = value
            .map(str::trim)
            .filter(|v| !v.is_empty() && *v != "all")
        else {
            return Sections(None);
        };
        let names: Vec<String> = v
            .split(',')
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty())
            .collect();
        for n in &names {
            assert!(
                Self::ALL.contains(&n.as_str()),
                "BENCH_SECTIONS: unknown section {n:?} (known: {})",
                Self::ALL.join(", ")
            );
        }
        Sections(Some(names))
    }

    fn wants(&self, name: &str) -> bool {
        self.0.as_ref().is_none_or(|n| n.iter().any(|n| n == name))
    }

    /// A sentence for the report's header when only some sections ran.
    fn note(&self) -> String {
        match &self.0 {
            None => String::new(),
            Some(n) => format!(" Sections run (`BENCH_SECTIONS`): {}.", n.join(", ")),
        }
    }
}

// ---- report ---------------------------------------------------------------------------------

fn command_output(cmd: &str, args: &[&str]) -> String {
    std::process::Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| format!("({cmd} failed)"))
}

fn load_average() -> String {
    let up = command_output("uptime", &[]);
    up.split_once("load average:")
        .map(|(_, l)| l.trim().to_string())
        .unwrap_or(up)
}

#[tokio::main]
async fn main() {
    let started = Instant::now();
    let session_seconds = env_u64("BENCH_SESSION_SECONDS", 120);
    let reps = env_u64("BENCH_REPS", 3).max(1) as usize;
    let loads = env_u64("BENCH_LOADS", 15).max(1) as usize;
    let session_tabs = env_u64("BENCH_SESSION_TABS", 4).max(1) as usize;
    // Fail early, before any browser starts, when the build is missing.
    let _ = (e2e::dist_dir(), e2e::server_binary());
    let date = command_output("date", &["-u", "+%Y-%m-%d %H:%M UTC"]);
    let nproc = command_output("nproc", &[]);
    let load_start = load_average();
    let chromium = command_output("/usr/bin/chromium", &["--version"]);

    let sections = Sections::from_env();
    let skipped = || async { Err::<String, String>(SKIPPED.into()) };

    let amp = if sections.wants("amplification") {
        section(
            "refresh amplification",
            Duration::from_secs(300),
            amplification(reps),
        )
        .await
    } else {
        skipped().await
    };
    let session = if sections.wants("session") {
        section(
            "long session",
            Duration::from_secs(session_seconds + 120),
            async move {
                let f = long_session(session_seconds, session_tabs).await;
                format!("{}\u{0}{}", f.table, f.memory_rows.join("\n"))
            },
        )
        .await
    } else {
        skipped().await
    };
    let load_figs = if sections.wants("load") {
        section(
            "load",
            Duration::from_secs(90 + 30 * loads as u64),
            async move {
                let f = load(loads).await;
                format!("{}\u{0}{}", f.table, f.memory_rows.join("\n"))
            },
        )
        .await
    } else {
        skipped().await
    };
    let oidc_amp = if sections.wants("oidc-amplification") {
        section(
            "oidc refresh amplification",
            Duration::from_secs(300),
            oidc_amplification(reps),
        )
        .await
    } else {
        skipped().await
    };
    let oidc_session = if sections.wants("oidc-session") {
        section(
            "oidc long session",
            Duration::from_secs(session_seconds + 120),
            oidc_long_session(session_seconds, session_tabs),
        )
        .await
    } else {
        skipped().await
    };
    let ran = |r: &Result<String, String>| !matches!(r, Err(why) if why == SKIPPED);

    let mut out = String::new();
    out.push_str(&format!(
        "## Client benchmark\n\n\
         `scripts/bench` on {date}: {nproc} cores (`nproc`), load average {load_start} at the start \
         and {load_end} at the end (`uptime`), {chromium} headless, release build from `dist/`, \
         session-api release on 127.0.0.1. Whole run {mins:.1} min.{only}\n\n",
        load_end = load_average(),
        mins = started.elapsed().as_secs_f64() / 60.0,
        only = sections.note(),
    ));
    if ran(&amp) {
        out.push_str(&match &amp {
            Ok(md) => md.clone(),
            Err(why) => failed_section("Refresh amplification (real browser)", why),
        });
        out.push('\n');
    }
    let (session_table, session_mem) = match &session {
        Ok(md) => split_figures(md),
        Err(why) => (
            failed_section(
                &format!("Long session (real browser, {session_tabs} tab(s))"),
                why,
            ),
            vec!["| app before / after the long session | failed | failed |".to_string()],
        ),
    };
    if ran(&session) {
        out.push_str(&session_table);
        out.push('\n');
    }
    let (load_table, load_mem) = match &load_figs {
        Ok(md) => split_figures(md),
        Err(why) => (
            failed_section("Load (headless Chromium, fresh profile per load)", why),
            vec!["| floor page / app login page after load | failed | failed |".to_string()],
        ),
    };
    if ran(&load_figs) {
        out.push_str(&load_table);
        out.push('\n');
    }
    if ran(&load_figs) || ran(&session) {
        out.push_str(
            "### Memory\n\n\
             `performance.memory.usedJSHeapSize` (Chromium with `--enable-precise-memory-info`) and \
             the byte length of the app's `WebAssembly.Memory` (captured from trunk's \
             `TrunkApplicationStarted` event), each read after two forced garbage collections \
             (CDP `HeapProfiler.collectGarbage`). Wasm memory never shrinks, so its growth is the high-water mark.\n\n\
             | point | JS heap (used) | wasm memory |\n|---|---:|---:|\n",
        );
        let load_mem = if ran(&load_figs) {
            load_mem
        } else {
            Vec::new()
        };
        let session_mem = if ran(&session) {
            session_mem
        } else {
            Vec::new()
        };
        for row in load_mem.iter().chain(session_mem.iter()) {
            out.push_str(row);
            out.push('\n');
        }
        out.push_str(
            "| reference: the tutorial's Vue 3 client, **quoted from issue 7** | about 3 MB above the floor | – |\n",
        );
    }
    // The provider's rows (issue 12), after the session-api report.
    if ran(&oidc_amp) {
        out.push('\n');
        out.push_str(&match &oidc_amp {
            Ok(md) => md.clone(),
            Err(why) => failed_section(
                &format!("Refresh amplification (real browser), {OIDC_LABEL}"),
                why,
            ),
        });
    }
    if ran(&oidc_session) {
        out.push('\n');
        out.push_str(&match &oidc_session {
            Ok(md) => md.clone(),
            Err(why) => failed_section(
                &format!("Long session (real browser, {session_tabs} tab(s)), {OIDC_LABEL}"),
                why,
            ),
        });
    }

    let path = e2e::workspace_root().join("target/bench-client.md");
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    match std::fs::write(&path, &out) {
        Ok(()) => progress(format!("report written to {}", path.display())),
        Err(e) => progress(format!("could not write {}: {e}", path.display())),
    }
    print!("{out}");
    let failures = [&amp, &session, &load_figs, &oidc_amp, &oidc_session]
        .iter()
        .filter(|r| ran(r) && r.is_err())
        .count();
    progress(format!(
        "finished in {:.1} min, {failures} section(s) failed",
        started.elapsed().as_secs_f64() / 60.0
    ));
    if failures > 0 {
        std::process::exit(1);
    }
}

/// Percentage of `from..to` (browser ms) a tab spent hidden, from its visibility log
/// (`[{at, state}]`, oldest first); `None` when the log is unreadable.
fn hidden_share(log: &Value, from: f64, to: f64) -> Option<f64> {
    let entries: Vec<(f64, bool)> = log
        .as_array()?
        .iter()
        .filter_map(|e| Some((e["at"].as_f64()?, e["state"].as_str()? == "hidden")))
        .collect();
    if entries.is_empty() || to <= from {
        return None;
    }
    let mut hidden = 0.0;
    for (i, (at, is_hidden)) in entries.iter().enumerate() {
        let end = entries.get(i + 1).map(|e| e.0).unwrap_or(f64::INFINITY);
        let (a, b) = (at.max(from), end.min(to));
        if *is_hidden && b > a {
            hidden += b - a;
        }
    }
    Some(100.0 * hidden / (to - from))
}

/// Splits "table NUL memory rows" back into its parts.
fn split_figures(md: &str) -> (String, Vec<String>) {
    match md.split_once('\u{0}') {
        Some((table, rows)) => (
            table.to_string(),
            rows.lines().map(str::to_string).collect(),
        ),
        None => (md.to_string(), Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_percentiles_and_spreads() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        let v: Vec<f64> = (1..=15).map(f64::from).collect();
        assert_eq!(percentile(&v, 90.0), Some(14.0));
        assert_eq!(percentile(&[7.0], 90.0), Some(7.0));
        assert_eq!(spread(&[1, 1, 1]), "1");
        assert_eq!(spread(&[1, 2, 1]), "1 (1–2)");
        assert_eq!(spread(&[]), "failed (no run)");
    }

    #[test]
    fn hidden_share_counts_hidden_spans_inside_the_window() {
        let log = json!([
            { "at": 0.0, "state": "visible" },
            { "at": 10.0, "state": "hidden" },
            { "at": 30.0, "state": "visible" },
            { "at": 40.0, "state": "hidden" }
        ]);
        // 10..30 and 40..50 hidden out of 0..50.
        assert_eq!(hidden_share(&log, 0.0, 50.0), Some(60.0));
        assert_eq!(hidden_share(&json!([]), 0.0, 50.0), None);
    }

    #[test]
    fn sections_come_from_a_comma_separated_list() {
        assert!(Sections::parse(None).wants("load"));
        assert!(Sections::parse(Some("all")).wants("oidc-session"));
        let s = Sections::parse(Some("oidc-amplification, amplification"));
        assert!(s.wants("amplification") && s.wants("oidc-amplification"));
        assert!(!s.wants("load") && !s.wants("oidc-session"));
    }

    #[test]
    fn split_figures_separates_table_and_memory_rows() {
        let (t, rows) = split_figures("table\n\u{0}| a |\n| b |");
        assert_eq!(t, "table\n");
        assert_eq!(rows, vec!["| a |", "| b |"]);
    }
}
