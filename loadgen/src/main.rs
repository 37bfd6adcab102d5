//! Bounded load generator for session-api (127.0.0.1 only), used by `scripts/bench-server`.
//!
//! `loadgen run --url http://127.0.0.1:PORT --scenario user|refresh|signin --concurrency 32 --seconds 10`
//! prints one markdown table row: scenario, concurrency, requests, req/s, p50, p99, errors.
//! `loadgen preload --database-url URL --rows N` inserts N refresh-token rows (in families of 4).
//! `loadgen verify --database-url URL` checks that every live family has exactly one active token.
//! `loadgen run ... --hangup-share 0.25` resets that share of the requests' connections while
//! they are in flight (a closed tab, a load balancer giving up); the row counts the others.
//! `loadgen run --url A --url B ...` sends each worker's requests to the instances in turn.
//! `loadgen hangup-bursts --url URL` sends bursts of refreshes whose connections are reset
//! mid-request, each burst followed by one sign-in, and prints how many sign-ins succeeded.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::{Parser, Subcommand};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};
use sqlx::Row;

#[derive(Parser)]
struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Drive one scenario and print a markdown row.
    Run(RunArgs),
    /// Bursts of refreshes reset mid-request, each followed by one sign-in.
    HangupBursts {
        /// Server URL; repeat it for several instances: the burst's requests, the sign-in after
        /// it and the follow-up refreshes go to them in turn.
        #[arg(long, required = true)]
        url: Vec<String>,
        #[arg(long, default_value_t = 40)]
        bursts: usize,
        /// Refreshes per burst (one refresh-token family each).
        #[arg(long, default_value_t = 32)]
        size: usize,
    },
    /// Insert refresh-token rows straight into the database.
    Preload {
        #[arg(long)]
        database_url: String,
        #[arg(long, default_value_t = 1_000_000)]
        rows: u64,
    },
    /// Every live family must have exactly one unused token.
    Verify {
        #[arg(long)]
        database_url: String,
    },
}

/// `loadgen run`'s flags.
#[derive(clap::Args)]
struct RunArgs {
    /// Server URL; repeat it for several instances of one server: each worker sends its
    /// requests to them in turn (a refresh rotated at one is presented next at the other).
    #[arg(long, required = true)]
    url: Vec<String>,
    #[arg(long)]
    scenario: String,
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Stop after this many requests in total, whatever the time.
    #[arg(long, default_value_t = 2_000_000)]
    max_requests: u64,
    /// Label printed in the first column (e.g. the database).
    #[arg(long, default_value = "")]
    label: String,
    /// Share of requests (0..1) whose connection is reset while in flight.
    #[arg(long, default_value_t = 0.0)]
    hangup_share: f64,
    /// Refresh scenario: clients per refresh-token family (default 1: each its own). N > 1: the
    /// workers in groups of N share their family's newest refresh token, as a browser's tabs
    /// share storage: each presents whatever the group last received, so they race.
    #[arg(long, default_value_t = 1)]
    family_share: usize,
}

type HttpClient = Client<HttpConnector, Full<Bytes>>;

const PASSWORD: &str = "bench-password-1";

async fn call(
    client: &HttpClient,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> Result<(u16, Value), String> {
    let mut b = hyper::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let body = match body {
        Some(v) => {
            b = b.header("content-type", "application/json");
            Full::new(Bytes::from(
                serde_json::to_vec(v).map_err(|e| e.to_string())?,
            ))
        }
        None => Full::new(Bytes::new()),
    };
    let res = client
        .request(b.body(body).map_err(|e| e.to_string())?)
        .await
        .map_err(|e| e.to_string())?;
    let status = res.status().as_u16();
    let bytes = res
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    let v = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Ok((status, v))
}

/// Sends one request over a connection of its own and resets it (RST) after `after`, whatever
/// the server is doing by then. Its answer, if any, is never read.
async fn hang_up(url: &str, method: &str, path: &str, body: &Value, after: Duration) {
    let addr = url.trim_start_matches("http://").trim_end_matches('/');
    let Ok(mut s) = tokio::net::TcpStream::connect(addr).await else {
        return;
    };
    let _ = s.set_nodelay(true);
    let _ = s.set_zero_linger();
    let body = body.to_string();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::io::AsyncWriteExt::write_all(&mut s, req.as_bytes()).await;
    tokio::time::sleep(after).await;
}

/// A moment to hang up at, uniform in 0..=`max_us` microseconds.
fn hang_up_delay(max_us: u64) -> Duration {
    Duration::from_micros(rand::random::<u64>() % (max_us + 1))
}

async fn signin(client: &HttpClient, url: &str, user: &str) -> Result<Value, String> {
    let (st, v) = call(
        client,
        "POST",
        &format!("{url}/api/auth/signin"),
        &[],
        Some(&json!({"username": user, "password": PASSWORD})),
    )
    .await?;
    if st != 200 {
        return Err(format!("signin {user}: {st} {v}"));
    }
    Ok(v)
}

async fn ensure_user(client: &HttpClient, url: &str, user: &str) -> Result<(), String> {
    let (st, v) = call(
        client,
        "POST",
        &format!("{url}/api/auth/signup"),
        &[],
        Some(&json!({"username": user, "email": format!("{user}@bench.invalid"), "password": PASSWORD})),
    )
    .await?;
    if st == 200 || (st == 400 && v["message"].as_str().unwrap_or("").contains("Username")) {
        Ok(())
    } else {
        Err(format!("signup {user}: {st} {v}"))
    }
}

/// Benchmarks and tests talk only to this machine.
fn loopback_only(url: &str) -> Result<(), String> {
    if url.starts_with("http://127.0.0.1") || url.starts_with("http://localhost") {
        Ok(())
    } else {
        Err("loadgen only drives loopback servers".into())
    }
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

/// Sessions signed in per bench user (see `run`).
const SESSIONS_PER_USER: usize = 32;

async fn run(args: RunArgs) -> Result<(), String> {
    let RunArgs {
        url,
        scenario,
        concurrency,
        seconds,
        max_requests,
        label,
        hangup_share,
        family_share,
    } = args;
    let family_share = family_share.max(1);
    if family_share > 1 && scenario != "refresh" {
        return Err("--family-share applies to the refresh scenario".into());
    }
    for u in &url {
        loopback_only(u)?;
    }
    let urls = url;
    let url = urls[0].clone();
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client: HttpClient = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(concurrency)
        .build(connector);
    if hangup_share > 0.0 && scenario == "user" {
        return Err("--hangup-share applies to the refresh and signin scenarios".into());
    }
    ensure_user(&client, &url, "benchuser").await?;
    // At most SESSIONS_PER_USER sessions per user: session-api's access-token cache keeps 64
    // live families per user (`MAX_FAMILIES_PER_USER`), and 128 sessions of one user made the
    // c=128 token checks read the database for half of them, which measured that bound, not
    // the check. Worker w signs in as user w / SESSIONS_PER_USER.
    let users: Vec<String> = (0..concurrency.div_ceil(SESSIONS_PER_USER))
        .map(|k| {
            if k == 0 {
                "benchuser".to_owned()
            } else {
                format!("benchuser{k}")
            }
        })
        .collect();
    if scenario != "signin" {
        for u in &users[1..] {
            ensure_user(&client, &url, u).await?;
        }
    }
    // Per-worker state: an access token (user) or a refresh token (refresh); sign-in needs none.
    let mut seeds: Vec<Value> = Vec::with_capacity(concurrency);
    // One sign-in per family; its newest refresh token shared by the family's workers.
    let mut shared: Vec<Arc<std::sync::Mutex<String>>> = Vec::new();
    for w in 0..concurrency {
        let seed = match scenario.as_str() {
            "user" | "refresh" if w % family_share == 0 => {
                signin(&client, &url, &users[w / SESSIONS_PER_USER]).await?
            }
            "user" | "refresh" => seeds[w - w % family_share].clone(),
            "signin" => Value::Null,
            other => return Err(format!("unknown scenario {other}")),
        };
        if w % family_share == 0 {
            let r = seed["refreshToken"].as_str().unwrap_or_default().to_owned();
            shared.push(Arc::new(std::sync::Mutex::new(r)));
        }
        seeds.push(seed);
    }
    let busy = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let issued = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let hung_up = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for (worker, seed) in seeds.into_iter().enumerate() {
        let (client, urls, scenario) = (client.clone(), urls.clone(), scenario.clone());
        let (stop, issued, errors) = (stop.clone(), issued.clone(), errors.clone());
        let hung_up = hung_up.clone();
        let (family, busy) = (shared[worker / family_share].clone(), busy.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let access = seed["accessToken"].as_str().unwrap_or_default().to_owned();
            let mut refresh = seed["refreshToken"].as_str().unwrap_or_default().to_owned();
            let mut turn = worker;
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                let url = &urls[turn % urls.len()];
                turn += 1;
                if family_share > 1 {
                    refresh = family.lock().unwrap().clone();
                }
                if issued.fetch_add(1, Ordering::Relaxed) >= max_requests {
                    break;
                }
                if hangup_share > 0.0 && rand::random::<f64>() < hangup_share {
                    // Reset mid-request: a refresh that may or may not have rotated. The next
                    // one presents the same token, which the grace window answers.
                    let (path, body, max_us) = if scenario == "refresh" {
                        (
                            "/api/auth/refreshtoken",
                            json!({"refreshToken": refresh}),
                            3_000,
                        )
                    } else {
                        (
                            "/api/auth/signin",
                            json!({"username": "benchuser", "password": PASSWORD}),
                            40_000,
                        )
                    };
                    hang_up(url, "POST", path, &body, hang_up_delay(max_us)).await;
                    hung_up.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                let t = Instant::now();
                let res = match scenario.as_str() {
                    "user" => {
                        call(
                            &client,
                            "GET",
                            &format!("{url}/api/test/user"),
                            &[("x-access-token", &access)],
                            None,
                        )
                        .await
                    }
                    "refresh" => {
                        call(
                            &client,
                            "POST",
                            &format!("{url}/api/auth/refreshtoken"),
                            &[],
                            Some(&json!({"refreshToken": refresh})),
                        )
                        .await
                    }
                    _ => {
                        call(
                            &client,
                            "POST",
                            &format!("{url}/api/auth/signin"),
                            &[],
                            Some(&json!({"username": "benchuser", "password": PASSWORD})),
                        )
                        .await
                    }
                };
                lat.push(t.elapsed().as_micros() as u64);
                match res {
                    Ok((200, v)) => {
                        if let Some(r) = v["refreshToken"].as_str() {
                            refresh = r.to_owned();
                            if family_share > 1 {
                                *family.lock().unwrap() = refresh.clone();
                            }
                        }
                    }
                    Ok((st, v)) => {
                        if st == 503 {
                            busy.fetch_add(1, Ordering::Relaxed);
                        }
                        if errors.fetch_add(1, Ordering::Relaxed) < 3 {
                            eprintln!("error: {st} {v}");
                        }
                    }
                    Err(e) => {
                        if errors.fetch_add(1, Ordering::Relaxed) < 3 {
                            eprintln!("error: {e}");
                        }
                    }
                }
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.map_err(|e| e.to_string())?);
    }
    stop.store(true, Ordering::Relaxed);
    let elapsed = start.elapsed().as_secs_f64();
    all.sort_unstable();
    let n = all.len();
    let hung = hung_up.load(Ordering::Relaxed);
    let scenario = if hung > 0 {
        format!("{scenario}, {hung} more hung up mid-request")
    } else {
        scenario
    };
    let scenario = if family_share > 1 {
        let busy = busy.load(Ordering::Relaxed);
        format!("{scenario}, {family_share} clients per family sharing its newest token ({busy} of the errors 503 Busy)")
    } else {
        scenario
    };
    println!(
        "| {label} | {scenario} | {concurrency} | {n} | {:.0} | {:.2} | {:.2} | {} |",
        n as f64 / elapsed,
        percentile(&all, 0.50),
        percentile(&all, 0.99),
        errors.load(Ordering::Relaxed)
    );
    Ok(())
}

/// `f`, or an error when it has no answer within 10 s (a locked server may never answer).
async fn within<T>(f: impl std::future::Future<Output = Result<T, String>>) -> Result<T, String> {
    tokio::time::timeout(Duration::from_secs(10), f)
        .await
        .unwrap_or_else(|_| Err("no answer within 10 s".into()))
}

/// The outage of issue 17: `bursts` times, `size` refreshes whose connections are reset a few
/// milliseconds after sending, then one sign-in that must succeed; between bursts each family
/// is refreshed normally (the same token again: rotated meanwhile or not, it must answer 200).
async fn hangup_bursts(urls: Vec<String>, bursts: usize, size: usize) -> Result<(), String> {
    for u in &urls {
        loopback_only(u)?;
    }
    let at = |i: usize| urls[i % urls.len()].clone();
    let client: HttpClient = Client::builder(TokioExecutor::new()).build(HttpConnector::new());
    ensure_user(&client, &at(0), "benchuser").await?;
    let mut tokens = Vec::with_capacity(size);
    for i in 0..size {
        let v = signin(&client, &at(i), "benchuser").await?;
        tokens.push(v["refreshToken"].as_str().unwrap_or_default().to_owned());
    }
    let (mut ok, mut refresh_errors) = (0, 0);
    let mut took = Vec::new();
    let mut failures = Vec::new();
    for burst in 0..bursts {
        let mut tasks = Vec::new();
        for (i, t) in tokens.iter().enumerate() {
            let (url, body) = (at(burst + i), json!({"refreshToken": t}));
            tasks.push(tokio::spawn(async move {
                hang_up(
                    &url,
                    "POST",
                    "/api/auth/refreshtoken",
                    &body,
                    hang_up_delay(3_000),
                )
                .await
            }));
        }
        for t in tasks {
            t.await.map_err(|e| e.to_string())?;
        }
        let t = Instant::now();
        let url = at(burst);
        let res = within(call(
            &client,
            "POST",
            &format!("{url}/api/auth/signin"),
            &[],
            Some(&json!({"username": "benchuser", "password": PASSWORD})),
        ))
        .await;
        took.push(t.elapsed().as_micros() as u64);
        match res {
            Ok((200, _)) => ok += 1,
            Ok((st, v)) => failures.push(format!("burst {burst}: {st} {v}")),
            Err(e) => failures.push(format!("burst {burst}: {e}")),
        }
        // Every family refreshed normally, all at once: rotated by the reset request or not,
        // the same token must answer 200 (the grace window or a normal rotation).
        let mut follow = Vec::new();
        for (i, t) in tokens.iter().enumerate() {
            // The other instance than the burst's request, when there are two.
            let (client, url, body) = (
                client.clone(),
                at(burst + i + 1),
                json!({"refreshToken": t}),
            );
            follow.push(tokio::spawn(async move {
                let path = format!("{url}/api/auth/refreshtoken");
                within(call(&client, "POST", &path, &[], Some(&body))).await
            }));
        }
        for (t, f) in tokens.iter_mut().zip(follow) {
            match f.await.map_err(|e| e.to_string())? {
                Ok((200, v)) => *t = v["refreshToken"].as_str().unwrap_or_default().to_owned(),
                _ => refresh_errors += 1,
            }
        }
    }
    took.sort_unstable();
    println!(
        "hung-up bursts: {bursts} bursts of {size} refreshes reset 0-3 ms after sending; \
         sign-ins after a burst answered 200: {ok} of {bursts} (median {:.1} ms, max {:.1} ms); \
         follow-up refreshes not answered 200: {refresh_errors} of {}",
        percentile(&took, 0.5),
        percentile(&took, 1.0),
        bursts * size
    );
    for f in failures.iter().take(3) {
        eprintln!("sign-in failed after {f}");
    }
    if ok != bursts || refresh_errors != 0 {
        return Err("the server did not survive the hung-up clients".into());
    }
    Ok(())
}

async fn pool(url: &str) -> Result<sqlx::AnyPool, String> {
    // Db::connect runs the migrations and sets the SQLite pragmas, exactly like the server.
    let db = session_api::db::Db::connect(url, 4)
        .await
        .map_err(|e| e.to_string())?;
    Ok(db.pool().clone())
}

/// `(…),(…)` for a multi-row INSERT: `row(b)` writes one row whose own parameters are `$b`,
/// `$b+1`, ...; the first row's start at `$first`, each row takes `width` of them.
fn values(rows: usize, first: usize, width: usize, row: impl Fn(usize) -> String) -> String {
    (0..rows)
        .map(|i| row(first + i * width))
        .collect::<Vec<_>>()
        .join(",")
}

async fn preload(url: String, rows: u64) -> Result<(), String> {
    let pool = pool(&url).await?;
    let now = session_api::clock::Clock::now_ms(&session_api::clock::SystemClock);
    let user_id: i64 = match sqlx::query("SELECT id FROM users WHERE username = 'preload'").fetch_optional(&pool).await.map_err(|e| e.to_string())? {
        Some(r) => r.try_get(0).map_err(|e| e.to_string())?,
        None => sqlx::query("INSERT INTO users (username, email, password_hash, roles, password_changed_at, created_at) VALUES ('preload', 'preload@bench.invalid', 'x', 'ROLE_USER', $1, $1) RETURNING id")
            .bind(now)
            .fetch_one(&pool)
            .await
            .map_err(|e| e.to_string())?
            .try_get(0)
            .map_err(|e| e.to_string())?,
    };
    let families = rows.div_ceil(4);
    let batch = 250u64;
    let t = Instant::now();
    let mut f = 0;
    while f < families {
        let n = batch.min(families - f);
        let mut tx = pool.begin().await.map_err(|e| e.to_string())?;
        let mut fam_ids = Vec::new();
        let mut toks = Vec::new();
        for _ in 0..n {
            let id = session_api::keys::random_id(16);
            let hashes: Vec<String> = (0..4)
                .map(|_| {
                    session_api::keys::hash_refresh_token(&session_api::keys::new_refresh_token())
                })
                .collect();
            // A family that rotated three times: three used tokens, each naming its successor.
            for k in 0..4 {
                let succ = hashes.get(k + 1).cloned();
                let used = succ.is_some().then_some(now);
                toks.push((hashes[k].clone(), id.clone(), used, succ));
            }
            fam_ids.push(id);
        }
        let fam_sql = format!(
            "INSERT INTO refresh_families (id, user_id, transport, device, created_at, \
             last_used_at, expires_at) VALUES {}",
            values(fam_ids.len(), 3, 2, |b| format!(
                "(${b}, $1, 'body', 'preload', $2, $2, ${})",
                b + 1
            ))
        );
        let mut q = sqlx::query(&fam_sql).bind(user_id).bind(now);
        for id in &fam_ids {
            q = q.bind(id.clone()).bind(now + 7 * 86_400_000);
        }
        q.execute(&mut *tx).await.map_err(|e| e.to_string())?;
        let tok_sql = format!(
            "INSERT INTO refresh_tokens (token_hash, family_id, created_at, used_at, \
             successor_hash) VALUES {}",
            values(toks.len(), 2, 4, |b| format!(
                "(${b}, ${}, $1, ${}, ${})",
                b + 1,
                b + 2,
                b + 3
            ))
        );
        let mut q = sqlx::query(&tok_sql).bind(now);
        for (h, fam, used, succ) in toks {
            q = q.bind(h).bind(fam).bind(used).bind(succ);
        }
        q.execute(&mut *tx).await.map_err(|e| e.to_string())?;
        tx.commit().await.map_err(|e| e.to_string())?;
        f += n;
    }
    let total: i64 = sqlx::query("SELECT COUNT(*) FROM refresh_tokens")
        .fetch_one(&pool)
        .await
        .map_err(|e| e.to_string())?
        .try_get(0)
        .map_err(|e| e.to_string())?;
    eprintln!(
        "preloaded {} families / {} tokens in {:.1}s; table now holds {total} tokens",
        families,
        families * 4,
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn verify(url: String) -> Result<(), String> {
    let db = session_api::db::Db::connect(&url, 2)
        .await
        .map_err(|e| e.to_string())?;
    let bad = db
        .families_without_exactly_one_active_token()
        .await
        .map_err(|e| e.to_string())?;
    let live: i64 = sqlx::query("SELECT COUNT(*) FROM refresh_families WHERE revoked_at IS NULL")
        .fetch_one(db.pool())
        .await
        .map_err(|e| e.to_string())?
        .try_get(0)
        .map_err(|e| e.to_string())?;
    println!("live families: {live}; families without exactly one active token: {bad}");
    if bad != 0 {
        return Err("invariant broken".into());
    }
    Ok(())
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let res = match args.cmd {
        Cmd::Run(args) => run(args).await,
        Cmd::HangupBursts { url, bursts, size } => hangup_bursts(url, bursts, size).await,
        Cmd::Preload { database_url, rows } => preload(database_url, rows).await,
        Cmd::Verify { database_url } => verify(database_url).await,
    };
    if let Err(e) = res {
        eprintln!("loadgen: {e}");
        std::process::exit(1);
    }
}
