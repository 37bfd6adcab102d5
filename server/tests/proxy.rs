//! The client IP the throttle counts: X-Forwarded-For only from a `--trusted-proxy` peer.

mod common;

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use common::{Backend, Resp, TestApp, PASSWORD};

on_both_backends!(
    a_spoofed_forwarded_for_from_an_untrusted_peer_is_ignored,
    behind_a_trusted_proxy_each_forwarded_client_is_counted_on_its_own,
    over_a_real_socket_the_loopback_proxy_is_trusted_only_when_listed,
);

/// A sign-in with a wrong (or right) password from `peer`, with these X-Forwarded-For headers.
async fn signin_via(
    app: &TestApp,
    user: &str,
    password: &str,
    peer: [u8; 4],
    xff: &[&str],
) -> Resp {
    let mut b = Request::post("/api/auth/signin").header("content-type", "application/json");
    for v in xff {
        b = b.header("x-forwarded-for", *v);
    }
    let mut req = b
        .body(Body::from(
            serde_json::json!({"username": user, "password": password}).to_string(),
        ))
        .unwrap();
    req.extensions_mut()
        .insert(ConnectInfo(SocketAddr::from((peer, 40000))));
    app.call(req).await
}

/// With the per-IP ceiling at 3, a client that invents a new X-Forwarded-For for every guess is
/// still one address: the peer's. Also when the header names a trusted proxy range, and also
/// when no proxy is trusted at all (the default).
async fn a_spoofed_forwarded_for_from_an_untrusted_peer_is_ignored(b: Backend) {
    for trusted in [vec![], vec!["10.0.0.0/8".parse().unwrap()]] {
        let app = TestApp::with(&b, |s| {
            s.throttle.per_ip = 3;
            s.trusted_proxies = trusted.clone();
        })
        .await;
        app.signup("owner").await;
        for i in 0..3u8 {
            let spoof = format!("198.51.100.{i}, 10.0.0.{i}");
            let r = signin_via(
                &app,
                &format!("u{i}"),
                "wrong-password",
                [203, 0, 113, 5],
                &[&spoof],
            )
            .await;
            assert_eq!(r.status, 401, "{trusted:?} {i}");
        }
        let r = signin_via(&app, "owner", PASSWORD, [203, 0, 113, 5], &["192.0.2.200"]).await;
        assert_eq!(
            r.status, 429,
            "{trusted:?}: the peer's count, whatever the header says"
        );
        let r = signin_via(&app, "owner", PASSWORD, [203, 0, 113, 6], &[]).await;
        assert_eq!(r.status, 200, "{trusted:?}: another peer");
    }
}

/// Behind the load balancer (10.0.0.1, trusted as 10.0.0.0/8) every client has its own counter:
/// the proxy's address is not throttled for all of them, a client's own spoofed entries on the
/// left are ignored, and a chain of two trusted proxies is walked.
async fn behind_a_trusted_proxy_each_forwarded_client_is_counted_on_its_own(b: Backend) {
    let app = TestApp::with(&b, |s| {
        s.throttle.per_ip = 3;
        s.trusted_proxies = vec!["10.0.0.0/8".parse().unwrap()];
    })
    .await;
    app.signup("owner").await;
    let lb = [10, 0, 0, 1];
    // Ten clients fail twice each through the proxy: nobody reaches 3.
    for c in 0..10u8 {
        for _ in 0..2 {
            let xff = format!("198.51.100.{c}");
            let r = signin_via(&app, &format!("u{c}"), "wrong-password", lb, &[&xff]).await;
            assert_eq!(r.status, 401, "client {c}");
        }
    }
    // One client, whatever it puts on the left, fails a third time and is then refused.
    let attacker = |spoof: &str| format!("{spoof}, 198.51.100.66");
    for spoof in ["1.1.1.1", "2.2.2.2", "3.3.3.3"] {
        let r = signin_via(&app, "x", "wrong-password", lb, &[&attacker(spoof)]).await;
        assert_eq!(r.status, 401);
    }
    let r = signin_via(&app, "owner", PASSWORD, lb, &[&attacker("4.4.4.4")]).await;
    assert_eq!(r.status, 429, "the attacker's own address is counted");
    // Through a second trusted proxy (10.0.0.2 appended by it) it is still the same client.
    let r = signin_via(&app, "owner", PASSWORD, lb, &["198.51.100.66, 10.0.0.2"]).await;
    assert_eq!(r.status, 429);
    // The owner, another client of the same proxy, is not slowed.
    let r = signin_via(&app, "owner", PASSWORD, lb, &["198.51.100.200"]).await;
    assert_eq!(r.status, 200, "{}", r.text());
}

/// The same through `server::serve` on 127.0.0.1 (the peer address comes from the socket):
/// trusted as 127.0.0.1, the header decides; not trusted, the loopback peer is the client.
async fn over_a_real_socket_the_loopback_proxy_is_trusted_only_when_listed(b: Backend) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    for trust in [true, false] {
        let app = TestApp::with(&b, |s| {
            s.throttle.per_ip = 2;
            if trust {
                s.trusted_proxies = vec![session_api::config::parse_proxy("127.0.0.1").unwrap()];
            }
        })
        .await;
        app.signup("owner").await;
        let addr = app.serve().await;
        let status = |xff: String, password: &'static str| async move {
            let body = serde_json::json!({"username": "owner", "password": password}).to_string();
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            let req = format!(
                "POST /api/auth/signin HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
                 X-Forwarded-For: {xff}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            s.write_all(req.as_bytes()).await.unwrap();
            let mut resp = String::new();
            s.read_to_string(&mut resp).await.unwrap();
            resp.get(9..12)
                .and_then(|c| c.parse::<u16>().ok())
                .unwrap_or_else(|| panic!("no status in {resp:?}"))
        };
        for i in 0..2 {
            assert_eq!(
                status(format!("198.51.100.{i}"), "wrong-password").await,
                401
            );
        }
        let next = status("198.51.100.77".into(), PASSWORD).await;
        assert_eq!(next, if trust { 200 } else { 429 }, "trusted: {trust}");
    }
}

/// A bad --trusted-proxy stops the binary at start with one line that names the flag and the
/// value, before anything is created.
#[test]
fn a_bad_trusted_proxy_is_a_clear_startup_error() {
    let dir = tempfile::tempdir().unwrap();
    for (how, bad) in [("flag", "10.0.0.0/33"), ("env", "10.0.0.0/8,lb.internal")] {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_session-api"));
        cmd.args(["--bind", "127.0.0.1:0"])
            .env(
                "SESSION_API_DATABASE_URL",
                format!("sqlite://{}", dir.path().join("s.db").display()),
            )
            .env("SESSION_API_SECRET_FILE", dir.path().join("secret.key"));
        if how == "flag" {
            cmd.args(["--trusted-proxy", bad]);
        } else {
            cmd.env("SESSION_API_TRUSTED_PROXY", bad);
        }
        let out = cmd.output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{how}: started with {bad}");
        assert!(err.contains("--trusted-proxy"), "{how}: {err}");
        let shown = if how == "flag" {
            "10.0.0.0/33"
        } else {
            "lb.internal"
        };
        assert!(
            err.contains(&format!("'{shown}' is not an IP address or CIDR")),
            "{how}: {err}"
        );
        assert!(String::from_utf8_lossy(&out.stdout).is_empty());
    }
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "nothing created"
    );
}
