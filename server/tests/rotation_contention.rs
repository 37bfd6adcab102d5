//! Rotation under contention, measured (issue 16; `#[ignore]`: a measurement, not a check of
//! behaviour, though every answer must be 200 and one active token per family must hold):
//!   scripts/with-postgres cargo test -p session-api --locked --test rotation_contention -- --ignored --nocapture
//! 32 clients refreshing over a real socket for 3 s: all on ONE family (each presents the token
//! it last got; the grace rule walks a stale one on to the active token), then each on its own.
//! The row lock is the family row's (`LOCK_FAMILY_OF_TOKEN` in src/db/mod.rs, equivalent to
//! `SELECT ... FOR UPDATE`). Debug build: compare the two rows, not with scripts/bench-server.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{s, Backend, TestApp};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::json;

async fn run(app: &TestApp, families: usize, clients: usize, secs: u64) -> (f64, f64, f64, u64) {
    let addr = app.serve().await;
    let mut tokens = Vec::new();
    for _ in 0..families {
        let t = s(&app.signin("contend").await.json(), "refreshToken");
        tokens.push(std::sync::Arc::new(std::sync::Mutex::new(t)));
    }
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for c in 0..clients {
        // Clients of one family share its newest token, as tabs share storage.
        let shared = tokens[c % families].clone();
        tasks.push(tokio::spawn(async move {
            let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
            let (mut lat, mut busy) = (Vec::new(), 0u64);
            while Instant::now() < deadline {
                let token = shared.lock().unwrap().clone();
                let body = serde_json::to_vec(&json!({"refreshToken": token})).unwrap();
                let req = hyper::Request::post(format!("http://{addr}/api/auth/refreshtoken"))
                    .header("content-type", "application/json")
                    .body(Full::new(Bytes::from(body)))
                    .unwrap();
                let t = Instant::now();
                let res = client.request(req).await.expect("an answer");
                let status = res.status();
                let bytes = res.into_body().collect().await.unwrap().to_bytes();
                lat.push(t.elapsed());
                let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
                if status == 503 {
                    // ApiError::Busy: the family rotated more than MAX_WALK times within the
                    // grace window while this one walked; the client retries.
                    busy += 1;
                    continue;
                }
                assert_eq!(status, 200, "{v}");
                *shared.lock().unwrap() = s(&v, "refreshToken");
            }
            (lat, busy)
        }));
    }
    let (mut lat, mut busy) = (Vec::new(), 0);
    for t in tasks {
        let (l, b) = t.await.unwrap();
        lat.extend(l);
        busy += b;
    }
    lat.sort();
    let n = lat.len();
    let pct = |p: f64| lat[((n as f64 * p) as usize).min(n - 1)].as_secs_f64() * 1e3;
    app.assert_one_active_token_per_family("after the contention")
        .await;
    (n as f64 / secs as f64, pct(0.5), pct(0.99), busy)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run with --ignored --nocapture"]
async fn rotation_under_contention() {
    let backends = match Backend::postgres() {
        Some(b) => vec![("PostgreSQL", b)],
        None => vec![],
    };
    for (name, b) in backends.into_iter().chain([("SQLite", Backend::Sqlite)]) {
        let app = TestApp::new(&b).await;
        app.signup("contend").await;
        for (label, families) in [("one family", 1), ("32 families", 32)] {
            let (rps, p50, p99, busy) = run(&app, families, 32, 3).await;
            eprintln!("| {name} | {label} | 32 | {rps:.0} | {p50:.2} | {p99:.2} | {busy} |");
        }
    }
}
