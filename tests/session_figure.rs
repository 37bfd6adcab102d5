//! The figure: refresh requests and wasted 401s for K = 1, 10, 50 concurrent calls on an expired
//! token, for our engine and for a naive one-refresh-per-failing-call interceptor like the
//! tutorial's axios one. Run with `-- --nocapture` to see the table.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use std::cell::RefCell;
use std::rc::Rc;

use api_types::paths;
use common::*;
use yew_session::config::StorageMode;
use yew_session::session::ports::{HttpRequest, Method, Transport};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Outcome {
    refreshes: u32,
    wasted_401: u32,
    succeeded: usize,
}

/// Our engine, tutorial backend, compat mode; the token expired while the tab slept.
fn engine_run(k: usize) -> Outcome {
    let w = World::new(Flavor::Tutorial);
    let t = w.open_tab(config(StorageMode::Compat));
    w.login(&t, "alice");
    w.sleep_jump(10.0 * 60_000.0);
    let before = w.counts();
    let calls: Vec<_> = (0..k)
        .map(|_| {
            let api = t.api.clone();
            w.spawn(async move { api.get_text(paths::TEST_USER).await })
        })
        .collect();
    w.advance(10_000.0);
    let c = w.counts();
    Outcome {
        refreshes: c.refresh - before.refresh,
        wasted_401: c.api_401 - before.api_401,
        succeeded: calls
            .iter()
            .filter(|c| matches!(&*c.borrow(), Some(Ok(_))))
            .count(),
    }
}

/// Our engine when the server rejects a token the client had no way to know was dead.
fn engine_unknown_expiry_run(k: usize) -> Outcome {
    let w = World::new(Flavor::Tutorial);
    let t = w.open_tab(config(StorageMode::Compat));
    w.login(&t, "alice");
    for _ in 0..k {
        w.script_api(Scripted::Status(
            401,
            vec![],
            r#"{"message":"Unauthorized! Access Token was expired!"}"#.into(),
        ));
    }
    let before = w.counts();
    let calls: Vec<_> = (0..k)
        .map(|_| {
            let api = t.api.clone();
            w.spawn(async move { api.get_text(paths::TEST_USER).await })
        })
        .collect();
    w.advance(10_000.0);
    let c = w.counts();
    Outcome {
        refreshes: c.refresh - before.refresh,
        wasted_401: c.api_401 - before.api_401,
        succeeded: calls
            .iter()
            .filter(|c| matches!(&*c.borrow(), Some(Ok(_))))
            .count(),
    }
}

/// The tutorial's interceptor: send; on 401 refresh (every failing call its own refresh), retry
/// once.
async fn naive_get(
    transport: Rc<dyn Transport>,
    tokens: Rc<RefCell<(String, String)>>,
) -> Result<String, u16> {
    let get = |token: String| {
        let mut r = HttpRequest::new(Method::Get, paths::TEST_USER);
        r.headers.push(("x-access-token".into(), token));
        r
    };
    let token = tokens.borrow().0.clone();
    let first = transport.send(get(token)).await.map_err(|_| 0u16)?;
    if first.status != 401 {
        return Ok(first.body);
    }
    let mut refresh = HttpRequest::new(Method::Post, paths::REFRESH);
    let refresh_token = tokens.borrow().1.clone();
    refresh.body = Some(serde_json::json!({ "refreshToken": refresh_token }).to_string());
    let answer = transport.send(refresh).await.map_err(|_| 0u16)?;
    if answer.status != 200 {
        return Err(answer.status);
    }
    let v: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
    tokens.borrow_mut().0 = v["accessToken"].as_str().unwrap().to_string();
    let token = tokens.borrow().0.clone();
    let retried = transport.send(get(token)).await.map_err(|_| 0u16)?;
    if retried.status == 200 {
        Ok(retried.body)
    } else {
        Err(retried.status)
    }
}

fn naive_run(k: usize) -> Outcome {
    let w = World::new(Flavor::Tutorial);
    let t = w.open_tab(config(StorageMode::Compat));
    let transport: Rc<dyn Transport> = t.transport.clone();
    let mut signin = HttpRequest::new(Method::Post, paths::SIGNIN);
    w.ensure_user("alice");
    signin.body = Some(serde_json::json!({"username": "alice", "password": PASSWORD}).to_string());
    let tr = transport.clone();
    let resp = w
        .block_on(async move { tr.send(signin).await }, 1_000.0)
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&resp.body).unwrap();
    let tokens = Rc::new(RefCell::new((
        v["accessToken"].as_str().unwrap().to_string(),
        v["refreshToken"].as_str().unwrap().to_string(),
    )));
    w.sleep_jump(10.0 * 60_000.0);
    let before = w.counts();
    let calls: Vec<_> = (0..k)
        .map(|_| w.spawn(naive_get(transport.clone(), tokens.clone())))
        .collect();
    w.advance(10_000.0);
    let c = w.counts();
    Outcome {
        refreshes: c.refresh - before.refresh,
        wasted_401: c.api_401 - before.api_401,
        succeeded: calls
            .iter()
            .filter(|c| matches!(&*c.borrow(), Some(Ok(_))))
            .count(),
    }
}

#[test]
fn figure_refreshes_and_wasted_401s_for_k_concurrent_calls() {
    println!();
    println!(
        "K concurrent calls on an expired access token (tutorial backend contract, fake time)"
    );
    println!(
        "{:>3} | {:^27} | {:^27} | {:^33}",
        "K",
        "our engine (expiry known)",
        "naive per-call interceptor",
        "our engine (server rejects early)"
    );
    println!(
        "{:>3} | {:>12} {:>14} | {:>12} {:>14} | {:>12} {:>20}",
        "", "refreshes", "wasted 401s", "refreshes", "wasted 401s", "refreshes", "wasted 401s"
    );
    for k in [1usize, 10, 50] {
        let ours = engine_run(k);
        let naive = naive_run(k);
        let early = engine_unknown_expiry_run(k);
        println!(
            "{:>3} | {:>12} {:>14} | {:>12} {:>14} | {:>12} {:>20}",
            k,
            ours.refreshes,
            ours.wasted_401,
            naive.refreshes,
            naive.wasted_401,
            early.refreshes,
            early.wasted_401
        );
        assert_eq!(
            ours,
            Outcome {
                refreshes: 1,
                wasted_401: 0,
                succeeded: k
            }
        );
        assert_eq!(
            naive,
            Outcome {
                refreshes: k as u32,
                wasted_401: k as u32,
                succeeded: k
            }
        );
        // Unknowable expiry: every call already in flight gets its 401, still ONE refresh.
        assert_eq!(
            early,
            Outcome {
                refreshes: 1,
                wasted_401: k as u32,
                succeeded: k
            }
        );
    }
}
