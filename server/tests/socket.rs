//! Real-socket tests: 50 concurrent refreshes of one token over TCP on 127.0.0.1.

mod common;

use bytes::Bytes;
use common::{s, Backend, TestApp};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use session_api::metrics::RefreshOutcome;

async fn fifty_concurrent_refreshes_share_one_successor(b: Backend) {
    let app = TestApp::new(&b).await;
    let v = app.user("many_tabs").await;
    let token = s(&v, "refreshToken");
    let addr = app.serve().await;
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let body = serde_json::to_vec(&serde_json::json!({"refreshToken": token})).unwrap();
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let client = client.clone();
        let body = body.clone();
        tasks.push(tokio::spawn(async move {
            let req = hyper::Request::post(format!("http://{addr}/api/auth/refreshtoken"))
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(body)))
                .unwrap();
            let res = client.request(req).await.expect("request");
            let status = res.status();
            let has_date = res.headers().contains_key("date");
            let bytes = res.into_body().collect().await.unwrap().to_bytes();
            (
                status,
                has_date,
                serde_json::from_slice::<serde_json::Value>(&bytes).unwrap(),
            )
        }));
    }
    let mut successors = std::collections::HashSet::new();
    for t in tasks {
        let (status, has_date, json) = t.await.unwrap();
        assert_eq!(status, 200, "{json}");
        assert!(has_date);
        successors.insert(s(&json, "refreshToken"));
    }
    assert_eq!(successors.len(), 1, "all got the same successor");
    assert_eq!(
        app.state.metrics().refresh_count(RefreshOutcome::Ok),
        1,
        "exactly one rotation"
    );
    assert_eq!(
        app.state.metrics().refresh_count(RefreshOutcome::Repeated),
        49
    );
    let sid = app
        .state
        .keys()
        .verify_access(&s(&v, "accessToken"), app.state.now_ms())
        .unwrap()
        .sid
        .unwrap();
    assert_eq!(
        app.state.db().active_tokens_in_family(&sid).await.unwrap(),
        1
    );
    app.assert_one_active_token_per_family("after 50 concurrent refreshes")
        .await;
    // The successor works and is itself rotated once.
    let next = successors.into_iter().next().unwrap();
    assert_eq!(app.refresh(&next).await.status, 200);
}

on_both_backends!(fifty_concurrent_refreshes_share_one_successor);

fn config_in(dir: &std::path::Path, bind: &str) -> session_api::config::Config {
    use clap::Parser;
    session_api::config::Config::try_parse_from([
        "session-api",
        "--bind",
        bind,
        "--database-url",
        &format!("sqlite://{}", dir.join("db/s.db").display()),
        "--secret-file",
        &dir.join("secret.key").display().to_string(),
    ])
    .unwrap()
}

#[tokio::test]
async fn a_taken_port_is_named_in_a_one_line_error_before_anything_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let err = session_api::server::run(config_in(dir.path(), &format!("127.0.0.1:{port}")))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!("port {port}")) && err.contains("--bind"),
        "{err}"
    );
    assert!(!err.contains('\n'));
    assert!(!dir.path().join("secret.key").exists());
}

#[tokio::test]
async fn the_server_refuses_to_start_with_a_short_secret() {
    use base64::Engine;
    let dir = tempfile::tempdir().unwrap();
    let short = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([5u8; 16]);
    std::fs::write(dir.path().join("secret.key"), short).unwrap();
    let err = session_api::server::run(config_in(dir.path(), "127.0.0.1:0"))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("16 bytes") && err.contains("at least 32"),
        "{err}"
    );
}

/// The real binary: env-var flags (`SESSION_API_SEED_DEMO=1`), the one start line with the URL,
/// serving, and a graceful stop on SIGTERM.
#[test]
fn the_binary_prints_its_url_serves_and_stops_gracefully_on_sigterm() {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_session-api"))
        .args(["--bind", "127.0.0.1:0"])
        .env(
            "SESSION_API_DATABASE_URL",
            format!("sqlite://{}", dir.path().join("s.db").display()),
        )
        .env("SESSION_API_SECRET_FILE", dir.path().join("secret.key"))
        .env("SESSION_API_SEED_DEMO", "1")
        .env("SESSION_API_DEMO_PASSWORD", "demo-pass-xyz")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut seen = Vec::new();
    let url = loop {
        let mut line = String::new();
        if out.read_line(&mut line).unwrap() == 0 {
            let _ = child.kill();
            panic!("exited early: {seen:?}");
        }
        if let Some(u) = line.trim().strip_prefix("session-api listening on ") {
            break u.to_owned();
        }
        seen.push(line);
    };
    assert_eq!(
        seen.iter().filter(|l| l.contains("demo-pass-xyz")).count(),
        3,
        "{seen:?}"
    );
    let addr = url.strip_prefix("http://").unwrap();
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET /api/test/all HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert!(resp.to_ascii_lowercase().contains("\r\ndate: "), "{resp}");
    assert!(resp.ends_with("Public Content."), "{resp}");
    // SAFETY: sending a signal to our own child process by its id.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    let status = child.wait().unwrap();
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    assert!(status.success(), "{status:?}");
    assert!(rest.contains("session-api stopped"), "{rest}");
}
