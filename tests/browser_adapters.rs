//! Browser tests of the real adapters in headless Chromium: storage, BroadcastChannel, the lock,
//! a real timer, the fetch transport and the whole interceptor against a mocked `fetch` (no
//! network: `window.fetch` is replaced by a tiny in-page fake).
#![cfg(target_arch = "wasm32")]

use std::cell::RefCell;

use futures::channel::oneshot;
use futures::future::{join_all, select, Either};
use futures::FutureExt;
use wasm_bindgen::JsValue;
use wasm_bindgen_test::*;

use yew_session::api::ApiClient;
use yew_session::browser::lock::BrowserLock;
use yew_session::browser::runtime::{BrowserClock, BrowserSleeper};
use yew_session::browser::storage::{self, WebStorage};
use yew_session::browser::tabs::BrowserTabs;
use yew_session::browser::transport::FetchTransport;
use yew_session::config::{AppConfig, StorageMode};
use yew_session::session::persist::keys;
use yew_session::session::ports::{
    Area, Clock, CrossTab, HttpRequest, KeyValueStore, Method, Sleeper, TabLock, Transport,
    TransportError,
};
use yew_session::session::{Engine, LogoutReason, SessionStatus, TabMessage};

wasm_bindgen_test_configure!(run_in_browser);

/// Resolves with `fut`'s output, or `None` after `ms` (no test may hang or sleep long).
async fn within<T>(ms: u32, fut: impl std::future::Future<Output = T>) -> Option<T> {
    match select(Box::pin(fut), gloo_timers::future::TimeoutFuture::new(ms)).await {
        Either::Left((v, _)) => Some(v),
        Either::Right(_) => None,
    }
}

fn b64url(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..=chunk.len() {
            out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

fn jwt(iat: i64, exp: i64) -> String {
    let payload = format!(r#"{{"id":1,"iat":{iat},"exp":{exp}}}"#);
    format!(
        "{}.{}.{}",
        b64url(br#"{"alg":"HS256","typ":"JWT"}"#),
        b64url(payload.as_bytes()),
        b64url(b"sig")
    )
}

/// Replaces `window.fetch` with a fake of the tutorial contract; returns the counters object
/// and the original fetch (to restore).
fn mock_fetch(fresh_token: &str) -> (JsValue, JsValue) {
    let window = web_sys::window().unwrap();
    let original = js_sys::Reflect::get(&window, &"fetch".into()).unwrap();
    let factory = js_sys::Function::new_with_args(
        "fresh",
        r#"
        const state = { refresh: 0, api: 0, api401: 0 };
        const fake = async function (input, init) {
            const req = input instanceof Request ? input : new Request(input, init);
            const path = new URL(req.url, location.href).pathname;
            if (path === '/api/auth/refreshtoken') {
                state.refresh++;
                const body = await req.json();
                if (body.refreshToken !== 'rt-1') {
                    return new Response(JSON.stringify({message: 'Refresh token is not in database!'}),
                        {status: 403, headers: {'content-type': 'application/json'}});
                }
                return new Response(JSON.stringify({accessToken: fresh, refreshToken: 'rt-1'}),
                    {status: 200, headers: {'content-type': 'application/json'}});
            }
            if (path === '/api/test/user') {
                state.api++;
                if (req.headers.get('x-access-token') === fresh) {
                    return new Response('User Content.', {status: 200});
                }
                state.api401++;
                return new Response('Unauthorized', {status: 401, headers: {'content-type': 'text/plain'}});
            }
            if (path === '/status/429') {
                return new Response('slow down', {status: 429, headers: {'retry-after': '7'}});
            }
            if (path === '/offline') {
                throw new TypeError('Failed to fetch');
            }
            return new Response('<html>Cannot GET</html>', {status: 404});
        };
        return [fake, state];
        "#,
    );
    let pair: js_sys::Array = factory
        .call1(&JsValue::NULL, &fresh_token.into())
        .unwrap()
        .into();
    js_sys::Reflect::set(&window, &"fetch".into(), &pair.get(0)).unwrap();
    (pair.get(1), original)
}

fn restore_fetch(original: &JsValue) {
    let window = web_sys::window().unwrap();
    js_sys::Reflect::set(&window, &"fetch".into(), original).unwrap();
}

fn counter(state: &JsValue, name: &str) -> f64 {
    js_sys::Reflect::get(state, &name.into())
        .unwrap()
        .as_f64()
        .unwrap()
}

#[wasm_bindgen_test]
fn web_storage_round_trips_both_areas() {
    storage::clear_all();
    assert!(storage::available());
    let s = WebStorage;
    for area in [Area::Local, Area::Session] {
        assert_eq!(s.get(area, "k"), None);
        s.set(area, "k", "v");
        assert_eq!(s.get(area, "k").as_deref(), Some("v"));
        s.remove(area, "k");
        assert_eq!(s.get(area, "k"), None);
    }
}

#[wasm_bindgen_test]
async fn a_real_timer_fires() {
    let clock = BrowserClock;
    let start = clock.now_ms();
    let fired = within(2_000, BrowserSleeper.sleep(30.0)).await;
    assert!(fired.is_some(), "the gloo timer never fired");
    assert!(clock.now_ms() - start >= 25.0);
}

#[wasm_bindgen_test]
async fn broadcast_channel_carries_messages_between_tabs() {
    let a = BrowserTabs::new("yew-session-test-channel");
    let b = BrowserTabs::new("yew-session-test-channel");
    assert!(a.uses_broadcast_channel());
    let (tx, rx) = oneshot::channel::<TabMessage>();
    let tx = RefCell::new(Some(tx));
    b.set_receiver(Box::new(move |m| {
        if let Some(tx) = tx.borrow_mut().take() {
            let _ = tx.send(m);
        }
    }));
    let msg = TabMessage::LoggedOut {
        from: "tab-a".into(),
        reason: LogoutReason::UserAction,
    };
    a.post(&msg);
    let got = within(2_000, rx).await.expect("delivered").unwrap();
    assert_eq!(got, msg);
}

#[wasm_bindgen_test]
async fn the_lock_excludes_a_second_holder_until_released() {
    storage::clear_all();
    assert!(
        BrowserLock::web_locks_available(),
        "navigator.locks is used"
    );
    let a = BrowserLock::new("yew-session-test-lock");
    let b = BrowserLock::new("yew-session-test-lock");
    let now = BrowserClock.now_ms();
    assert!(a.try_acquire("tab-a", now, 5_000.0).await);
    assert!(!b.try_acquire("tab-b", now, 5_000.0).await);
    assert_eq!(a.holder(now).as_deref(), Some("tab-a"));
    a.release("tab-a");
    // Web Locks release asynchronously: give the browser a few turns.
    let mut got = false;
    for _ in 0..20 {
        if b.try_acquire("tab-b", BrowserClock.now_ms(), 5_000.0).await {
            got = true;
            break;
        }
        BrowserSleeper.sleep(10.0).await;
    }
    assert!(got);
    b.release("tab-b");
}

#[wasm_bindgen_test]
async fn fetch_transport_reads_status_headers_and_errors() {
    let (_state, original) = mock_fetch("unused");
    let t = FetchTransport::default();
    let r = t
        .send(HttpRequest::new(Method::Get, "/status/429"))
        .await
        .unwrap();
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after"), Some("7"));
    assert_eq!(r.body, "slow down");
    let e = t.send(HttpRequest::new(Method::Get, "/offline")).await;
    assert!(matches!(e, Err(TransportError::Network(_))));
    restore_fetch(&original);
}

#[wasm_bindgen_test]
async fn interceptor_with_real_adapters_refreshes_once_for_concurrent_calls() {
    storage::clear_all();
    let now_s = (js_sys::Date::now() / 1000.0) as i64;
    let expired = jwt(now_s - 3_600, now_s - 3_000);
    let fresh = jwt(now_s, now_s + 600);
    let (state, original) = mock_fetch(&fresh);
    // A tutorial-client session whose token expired while the laptop slept.
    WebStorage.set(
        Area::Local,
        keys::USER,
        &format!(
            r#"{{"id":1,"username":"alice","email":"a@x.io","roles":["ROLE_USER"],"accessToken":"{expired}","refreshToken":"rt-1"}}"#
        ),
    );
    let cfg = AppConfig {
        storage_mode: StorageMode::Compat,
        ..AppConfig::default()
    };
    let engine = Engine::new(cfg, "tab-test", yew_session::browser::ports());
    engine.start();
    assert_eq!(engine.status(), SessionStatus::SignedIn);
    let api = ApiClient::new(engine.clone());
    let calls = (0..10).map(|_| {
        let api = api.clone();
        async move { api.get_text("/api/test/user").await }.boxed_local()
    });
    let results = within(5_000, join_all(calls))
        .await
        .expect("calls finished");
    restore_fetch(&original);
    assert!(
        results.iter().all(|r| r.as_deref() == Ok("User Content.")),
        "{results:?}"
    );
    assert_eq!(counter(&state, "refresh"), 1.0);
    assert_eq!(counter(&state, "api401"), 0.0);
    assert_eq!(counter(&state, "api"), 10.0);
    let stored = WebStorage.get(Area::Local, keys::USER).unwrap();
    assert!(
        stored.contains(&fresh),
        "the new token is persisted in compat mode"
    );
    storage::clear_all();
}
