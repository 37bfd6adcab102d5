//! One instance killed under load (issue 16): two `session-api` instances on one database, each
//! served on a real socket on 127.0.0.1, take a bounded load of refreshes and token checks
//! spread over both; instance A is then killed abruptly — its runtime dropped, so its listener,
//! its open connections and its in-flight requests die with it, as with a crashed process. B
//! keeps answering (no 5xx, no hang), each client's in-flight request at A retried at B succeeds
//! (the rotation either committed, and B answers the same successor, or did not happen), and
//! afterwards every live family has exactly one active token.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{s, Backend, TestApp};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};
use session_api::db::Db;
use session_api::AppState;

on_both_backends!(killing_one_instance_under_load_leaves_the_other_serving_and_families_whole);

type Http = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

/// What one request got: a status and body, or no answer at all (`refused`: no connection
/// could be made; else the connection died with the request on it).
enum Got {
    Answer(u16, Value),
    NoAnswer { refused: bool, error: String },
}

async fn request(
    client: &Http,
    addr: SocketAddr,
    path: &str,
    access: Option<&str>,
    body: Option<Value>,
) -> Got {
    let mut b = hyper::Request::builder()
        .method(if body.is_some() { "POST" } else { "GET" })
        .uri(format!("http://{addr}{path}"));
    if let Some(t) = access {
        b = b.header("x-access-token", t);
    }
    let req = match body {
        Some(v) => b
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(serde_json::to_vec(&v).unwrap()))),
        None => b.body(Full::new(Bytes::new())),
    }
    .unwrap();
    // Generous: a request that takes this long is a hang, whatever the machine's load.
    let res = match tokio::time::timeout(Duration::from_secs(10), client.request(req)).await {
        Err(_) => panic!("{path} at {addr}: no answer within 10 s (a hang)"),
        Ok(Err(e)) => {
            return Got::NoAnswer {
                refused: e.is_connect(),
                error: e.to_string(),
            }
        }
        Ok(Ok(r)) => r,
    };
    let status = res.status().as_u16();
    match res.into_body().collect().await {
        Ok(b) => Got::Answer(
            status,
            serde_json::from_slice(&b.to_bytes()).unwrap_or(Value::Null),
        ),
        Err(e) => Got::NoAnswer {
            refused: false,
            error: e.to_string(),
        },
    }
}

/// Starts instance A on its own runtime (its own pool, cache listener, server and connections),
/// on the database of `b`: dropping the runtime kills all of it at once.
fn start_a(b: &TestApp) -> (tokio::runtime::Runtime, SocketAddr) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (url, secret, settings, clock) = (
        b.url.clone(),
        b.secret.clone(),
        b.state.settings().clone(),
        b.clock.clone(),
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(async move {
        let db = Db::connect(&url, 8).await.expect("database");
        let state = AppState::with_clock(settings, db, &secret, clock);
        let router = session_api::app(state);
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        session_api::server::serve(listener, router, std::future::pending())
            .await
            .unwrap();
    });
    (rt, addr)
}

async fn killing_one_instance_under_load_leaves_the_other_serving_and_families_whole(b: Backend) {
    const CLIENTS: usize = 16;
    const STEPS_BEFORE: u64 = 8; // per client, at least, before A is killed
    const STEPS_AFTER: u64 = 8; // per client, all at B, after A is gone
    let bb = TestApp::new(&b).await;
    let (rt_a, addr_a) = start_a(&bb);
    let addr_b = bb.serve().await;
    bb.signup("load").await;
    let mut sessions = Vec::new();
    for _ in 0..CLIENTS {
        let r = bb.signin("load").await;
        assert_eq!(r.status, 200, "{}", r.text());
        let v = r.json();
        sessions.push(s(&v, "refreshToken"));
    }
    let a_dead = Arc::new(AtomicBool::new(false));
    let done_before = Arc::new(AtomicU64::new(0));
    let served_by_a = Arc::new(AtomicU64::new(0));
    let lost_at_a = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for (i, mut refresh) in sessions.into_iter().enumerate() {
        let (a_dead, done_before, served_by_a, lost_at_a) = (
            a_dead.clone(),
            done_before.clone(),
            served_by_a.clone(),
            lost_at_a.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let client: Http = Client::builder(TokioExecutor::new()).build_http();
            let mut after = 0;
            // Bounded: the kill comes after CLIENTS * STEPS_BEFORE steps in all.
            for n in 0..10_000u64 {
                let dead = a_dead.load(Ordering::SeqCst);
                if dead {
                    after += 1;
                    if after > STEPS_AFTER {
                        break;
                    }
                } else {
                    done_before.fetch_add(1, Ordering::SeqCst);
                }
                // Refresh at one instance, check the new access token at the other.
                let (first, second) = if (n + i as u64).is_multiple_of(2) {
                    (addr_a, addr_b)
                } else {
                    (addr_b, addr_a)
                };
                let mut answered = None;
                for addr in [first, second] {
                    let body = json!({"refreshToken": refresh});
                    match request(&client, addr, "/api/auth/refreshtoken", None, Some(body)).await {
                        Got::Answer(st, v) => {
                            if addr == addr_a {
                                served_by_a.fetch_add(1, Ordering::SeqCst);
                            }
                            answered = Some((st, v));
                            break;
                        }
                        // Only A may fail to answer (and only once it is being killed); the
                        // client retries the same token at B, as a load balancer would.
                        Got::NoAnswer { refused, error } => {
                            assert_eq!(addr, addr_a, "B did not answer a refresh: {error}");
                            if !refused {
                                lost_at_a.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                    }
                }
                let (st, v) = answered.expect("B answers");
                assert_eq!(st, 200, "client {i} step {n}: refresh: {v}");
                refresh = s(&v, "refreshToken");
                let access = s(&v, "accessToken");
                for addr in [second, first] {
                    match request(&client, addr, "/api/test/user", Some(&access), None).await {
                        Got::Answer(st, v) => {
                            assert_eq!(st, 200, "client {i} step {n}: token check at {addr}: {v}");
                            break;
                        }
                        Got::NoAnswer { refused, error } => {
                            assert_eq!(addr, addr_a, "B did not answer a token check: {error}");
                            if !refused {
                                lost_at_a.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                    }
                }
            }
            assert!(
                after > STEPS_AFTER,
                "client {i} stopped before A was killed"
            );
            refresh
        }));
    }
    // The kill: mid-load, requests in flight at A.
    let deadline = Instant::now() + Duration::from_secs(20);
    while done_before.load(Ordering::SeqCst) < CLIENTS as u64 * STEPS_BEFORE {
        assert!(Instant::now() < deadline, "the load did not get going");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let killed_at = Instant::now();
    rt_a.shutdown_background();
    a_dead.store(true, Ordering::SeqCst);
    let mut last = Vec::new();
    for t in tasks {
        last.push(
            tokio::time::timeout(Duration::from_secs(30), t)
                .await
                .expect("the load ends")
                .expect("no client failed"),
        );
    }
    eprintln!(
        "A served {} refreshes before it was killed, {} requests died with their connection to A \
         (then retried at B); B finished {:?} after the kill",
        served_by_a.load(Ordering::SeqCst),
        lost_at_a.load(Ordering::SeqCst),
        killed_at.elapsed()
    );
    assert!(served_by_a.load(Ordering::SeqCst) > 0, "A took part");
    // A is gone: its port no longer answers.
    assert!(
        tokio::net::TcpStream::connect(addr_a).await.is_err(),
        "A still accepts connections"
    );
    bb.assert_no_connection_left_in_a_transaction(Duration::from_secs(10))
        .await;
    bb.assert_one_active_token_per_family("after A was killed under load")
        .await;
    // Every client's last token is its family's active one: one more rotation each, at B.
    for (i, t) in last.iter().enumerate() {
        let r = bb.refresh(t).await;
        assert_eq!(r.status, 200, "client {i}: {}", r.text());
    }
    bb.assert_one_active_token_per_family("after one more rotation each")
        .await;
}
