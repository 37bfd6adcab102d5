//! Browser tests of the real adapters in headless Chromium: storage, BroadcastChannel, the lock,
//! a real timer, the fetch transport and the whole interceptor against a mocked `fetch` (no
//! network: `window.fetch` is replaced by a tiny in-page fake).
#![cfg(target_arch = "wasm32")]

use std::cell::RefCell;

use futures::channel::oneshot;
use futures::future::join_all;
use futures::FutureExt;
use wasm_bindgen::{JsCast, JsValue};
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

mod browser_support;

use browser_support::*;

wasm_bindgen_test_configure!(run_in_browser);

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

#[wasm_bindgen_test]
async fn storage_lease_fallback_excludes_and_expires() {
    storage::clear_all();
    let a = BrowserLock::lease_only("unused");
    let b = BrowserLock::lease_only("unused");
    let now = BrowserClock.now_ms();
    assert!(a.try_acquire("tab-a", now, 30.0).await);
    assert!(!b.try_acquire("tab-b", now, 30.0).await);
    assert_eq!(b.holder(now).as_deref(), Some("tab-a"));
    // tab-a "dies" without releasing: its lease runs out.
    BrowserSleeper.sleep(40.0).await;
    let later = BrowserClock.now_ms();
    assert_eq!(b.holder(later), None);
    assert!(b.try_acquire("tab-b", later, 30.0).await);
    b.release("tab-b");
    assert_eq!(a.holder(BrowserClock.now_ms()), None);
}

#[wasm_bindgen_test]
async fn offline_and_online_events_reach_the_engine() {
    storage::clear_all();
    let now_s = (js_sys::Date::now() / 1000.0) as i64;
    WebStorage.set(
        Area::Local,
        keys::USER,
        &format!(
            r#"{{"id":1,"username":"alice","accessToken":"{}","refreshToken":"rt-1"}}"#,
            jwt(now_s, now_s + 600)
        ),
    );
    let engine = Engine::new(
        AppConfig {
            storage_mode: StorageMode::Compat,
            ..AppConfig::default()
        },
        "tab-wake",
        yew_session::browser::ports(),
    );
    engine.start();
    let _triggers = yew_session::browser::wake::install(&engine);
    let window = web_sys::window().unwrap();
    assert!(!engine.is_degraded());
    window
        .dispatch_event(&web_sys::Event::new("offline").unwrap())
        .unwrap();
    assert!(engine.is_degraded());
    window
        .dispatch_event(&web_sys::Event::new("online").unwrap())
        .unwrap();
    assert!(!engine.is_degraded());
    storage::clear_all();
}

#[wasm_bindgen_test]
async fn cookie_mode_leaves_no_token_in_storage_or_document_cookie() {
    storage::clear_all();
    let now_s = (js_sys::Date::now() / 1000.0) as i64;
    let fresh = jwt(now_s, now_s + 600);
    let (state, original) = mock_fetch(&fresh);
    let engine = Engine::new(
        AppConfig::default(),
        "tab-cookie",
        yew_session::browser::ports(),
    );
    engine.start();
    let r = within(2_000, engine.login("alice".into(), "pw".into(), true))
        .await
        .expect("login finished");
    assert_eq!(r, Ok(()));
    assert_eq!(engine.status(), SessionStatus::SignedIn);
    let window = web_sys::window().unwrap();
    for s in [
        window.local_storage().unwrap().unwrap(),
        window.session_storage().unwrap().unwrap(),
    ] {
        for i in 0..s.length().unwrap() {
            let key = s.key(i).unwrap().unwrap();
            let value = s.get_item(&key).unwrap().unwrap_or_default();
            assert!(!value.contains(&fresh), "token in storage key {key}");
        }
    }
    let html: web_sys::HtmlDocument = window.document().unwrap().dyn_into().unwrap();
    assert!(!html.cookie().unwrap().contains(&fresh));
    // Sign-out answered 404 (tutorial backend): still signed out locally.
    engine.logout();
    assert!(wait_for(1_000, || counter(&state, "signout") == 1.0).await);
    assert!(matches!(engine.status(), SessionStatus::SignedOut { .. }));
    restore_fetch(&original);
    storage::clear_all();
}

#[wasm_bindgen_test]
fn storage_event_fallback_never_writes_the_token_and_leaves_nothing() {
    storage::clear_all();
    // Record every value written to storage, however briefly.
    let spy = js_sys::Function::new_no_args(
        r#"
        const writes = [];
        const original = Storage.prototype.setItem;
        Storage.prototype.setItem = function (k, v) { writes.push(String(v)); return original.call(this, k, v); };
        return [writes, original];
        "#,
    );
    let spy: js_sys::Array = spy.call0(&JsValue::NULL).unwrap().into();
    let tabs = BrowserTabs::storage_fallback();
    assert!(!tabs.uses_broadcast_channel());
    tabs.post(&TabMessage::TokenUpdated {
        from: "tab-a".into(),
        generation: 3,
        access_token: "secret-token".into(),
        timeline: None,
        user: yew_session::session::UserInfo {
            id: "1".into(),
            username: "alice".into(),
            email: String::new(),
            roles: vec![],
        },
        login: false,
        refresh_token: Some("secret-refresh-token".into()),
        session_only: true,
        id_token: Some("secret-id-token".into()),
        bff: None,
    });
    let storage_proto = js_sys::Reflect::get(&js_sys::global(), &"Storage".into()).unwrap();
    let proto = js_sys::Reflect::get(&storage_proto, &"prototype".into()).unwrap();
    js_sys::Reflect::set(&proto, &"setItem".into(), &spy.get(1)).unwrap();
    let writes: js_sys::Array = spy.get(0).into();
    assert_eq!(writes.length(), 1, "the message went through storage");
    let written = writes.get(0).as_string().unwrap();
    assert!(written.contains("\"generation\":3"), "{written}");
    assert!(
        !written.contains("secret-token"),
        "the token passed through storage"
    );
    assert!(
        !written.contains("secret-refresh-token"),
        "the refresh token passed through storage"
    );
    assert!(
        !written.contains("secret-id-token"),
        "the ID token passed through storage"
    );
    assert_eq!(WebStorage.get(Area::Local, keys::TAB_MESSAGE), None);
    let local = web_sys::window().unwrap().local_storage().unwrap().unwrap();
    assert_eq!(local.length().unwrap(), 0);
}

#[wasm_bindgen_test]
async fn load_config_reads_config_json_or_falls_back_to_defaults() {
    let (state, original) = mock_fetch("unused");
    assert_eq!(
        yew_session::browser::config::load_config().await,
        AppConfig::default()
    );
    js_sys::Reflect::set(&state, &"config".into(), &"not json".into()).unwrap();
    assert_eq!(
        yew_session::browser::config::load_config().await,
        AppConfig::default()
    );
    js_sys::Reflect::set(
        &state,
        &"config".into(),
        &r#"{"storageMode":"compat","tokenHeader":"bearer","apiBase":"http://127.0.0.1:9/"}"#
            .into(),
    )
    .unwrap();
    let cfg = yew_session::browser::config::load_config().await;
    restore_fetch(&original);
    assert_eq!(cfg.storage_mode, StorageMode::Compat);
    assert_eq!(cfg.token_header, yew_session::config::TokenHeader::Bearer);
    assert_eq!(cfg.api_base, "http://127.0.0.1:9");
}

#[wasm_bindgen_test]
async fn a_web_lock_whose_lease_ran_out_is_stolen() {
    storage::clear_all();
    let frozen = BrowserLock::new("yew-session-test-steal");
    let other = BrowserLock::new("yew-session-test-steal");
    let now = BrowserClock.now_ms();
    assert!(frozen.try_acquire("tab-frozen", now, 30.0).await);
    assert!(
        !other.try_acquire("tab-b", now, 30.0).await,
        "held within the lease"
    );
    // tab-frozen never releases; its lease runs out.
    BrowserSleeper.sleep(40.0).await;
    let later = BrowserClock.now_ms();
    assert!(
        other.try_acquire("tab-b", later, 30.0).await,
        "stolen after the lease"
    );
    assert_eq!(other.holder(later).as_deref(), Some("tab-b"));
    other.release("tab-b");
    frozen.release("tab-frozen");
    storage::clear_all();
}
