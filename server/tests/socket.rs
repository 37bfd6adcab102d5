//! Real-socket tests: 50 concurrent refreshes of one token over TCP on 127.0.0.1.

mod common;

use std::net::SocketAddr;

use bytes::Bytes;
use common::{s, Backend, TestApp};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use session_api::metrics::RefreshOutcome;

async fn serve(app: &TestApp) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = app.router.clone();
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    addr
}

async fn fifty_concurrent_refreshes_share_one_successor(b: Backend) {
    let app = TestApp::new(&b).await;
    let v = app.user("many_tabs").await;
    let token = s(&v, "refreshToken");
    let addr = serve(&app).await;
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
    assert_eq!(app.state.metrics().refresh_count(RefreshOutcome::Grace), 49);
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
    assert_eq!(
        app.state
            .db()
            .families_without_exactly_one_active_token()
            .await
            .unwrap(),
        0
    );
    // The successor works and is itself rotated once.
    let next = successors.into_iter().next().unwrap();
    assert_eq!(app.refresh(&next).await.status, 200);
}

on_both_backends!(fifty_concurrent_refreshes_share_one_successor);
