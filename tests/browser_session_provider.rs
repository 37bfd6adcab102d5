//! Browser tests of the Yew glue: `SessionProvider` restores the session before a page's first
//! API call, `use_session()` exposes state and verbs, `use_session_events()` unsubscribes when
//! its component unmounts.
#![cfg(target_arch = "wasm32")]

mod browser_support;

use std::cell::RefCell;
use std::rc::Rc;

use browser_support::*;
use wasm_bindgen_test::*;
use yew::prelude::*;

use yew_session::browser::storage::{self, WebStorage};
use yew_session::components::session_provider::SessionProvider;
use yew_session::config::{AppConfig, StorageMode};
use yew_session::hooks::use_api::use_api;
use yew_session::hooks::use_session::{use_session, use_session_events, UseSessionHandle};
use yew_session::session::persist::keys;
use yew_session::session::ports::{Area, KeyValueStore};
use yew_session::session::{LogoutReason, SessionEvent, SessionStatus};

wasm_bindgen_test_configure!(run_in_browser);

thread_local! {
    static HANDLE: RefCell<Option<UseSessionHandle>> = const { RefCell::new(None) };
    static FIRST_CALL: RefCell<Option<Result<String, yew_session::session::ClientError>>> =
        const { RefCell::new(None) };
    static EVENTS: RefCell<Vec<SessionEvent>> = const { RefCell::new(Vec::new()) };
}

#[function_component]
fn Probe() -> Html {
    let session = use_session();
    let api = use_api();
    HANDLE.with(|h| *h.borrow_mut() = Some(session.clone()));
    use_session_events(Callback::from(|(_, ev): (f64, SessionEvent)| {
        EVENTS.with(|e| e.borrow_mut().push(ev))
    }));
    // A page that calls the API as soon as it mounts (its effect runs before the provider's).
    use_effect_with((), move |_| {
        wasm_bindgen_futures::spawn_local(async move {
            let r = api.get_text("/api/test/user").await;
            FIRST_CALL.with(|c| *c.borrow_mut() = Some(r));
        });
    });
    let status = match session.status() {
        SessionStatus::Restoring => "restoring",
        SessionStatus::SignedOut { .. } => "signed-out",
        SessionStatus::SignedIn => "signed-in",
    };
    let user = session.user().map(|u| u.username).unwrap_or_default();
    html! { <div id="probe">{ format!("{status}|{user}") }</div> }
}

#[derive(Properties, PartialEq)]
struct HarnessProps {
    config: Rc<AppConfig>,
    show_probe: bool,
}

#[function_component]
fn Harness(props: &HarnessProps) -> Html {
    html! {
        <SessionProvider config={props.config.clone()}>
            if props.show_probe { <Probe /> }
        </SessionProvider>
    }
}

fn probe_text(root: &web_sys::Element) -> String {
    root.text_content().unwrap_or_default()
}

#[wasm_bindgen_test]
async fn provider_restores_compat_session_and_hooks_expose_state_and_verbs() {
    storage::clear_all();
    let now_s = (js_sys::Date::now() / 1000.0) as i64;
    let expired = jwt(now_s - 3_600, now_s - 3_000);
    let fresh = jwt(now_s, now_s + 600);
    let (state, original) = mock_fetch(&fresh);
    WebStorage.set(
        Area::Local,
        keys::USER,
        &format!(
            r#"{{"id":1,"username":"alice","email":"a@x.io","roles":["ROLE_USER"],"accessToken":"{expired}","refreshToken":"rt-1"}}"#
        ),
    );
    let document = gloo_utils_document();
    let root = document.create_element("div").unwrap();
    document.body().unwrap().append_child(&root).unwrap();
    let config = Rc::new(AppConfig {
        storage_mode: StorageMode::Compat,
        ..AppConfig::default()
    });
    let mut app = yew::Renderer::<Harness>::with_root_and_props(
        root.clone(),
        HarnessProps {
            config: config.clone(),
            show_probe: true,
        },
    )
    .render();

    assert!(
        wait_for(2_000, || probe_text(&root) == "signed-in|alice").await,
        "{}",
        probe_text(&root)
    );
    // The page's first call waited for the refresh of the expired token: one refresh, no 401.
    assert!(wait_for(2_000, || FIRST_CALL.with(|c| c.borrow().is_some())).await);
    FIRST_CALL.with(|c| assert_eq!(c.borrow().as_ref().unwrap().as_deref(), Ok("User Content.")));
    assert_eq!(counter(&state, "refresh"), 1.0);
    assert_eq!(counter(&state, "api401"), 0.0);

    let handle = HANDLE.with(|h| h.borrow().clone()).unwrap();
    assert_eq!(handle.transport(), "storage");
    assert!(handle.user().unwrap().has_role("ROLE_USER"));
    assert!(handle.timeline().is_some());
    let engine = handle.engine();
    let subscribers = engine.bus().subscriber_count();

    handle.logout();
    assert!(wait_for(2_000, || probe_text(&root) == "signed-out|").await);
    assert!(
        EVENTS.with(|e| e.borrow().contains(&SessionEvent::LoggedOut {
            reason: LogoutReason::UserAction
        }))
    );
    assert!(WebStorage.get(Area::Local, keys::USER).is_none());

    // Unmounting the probe ends its event subscription; the provider's own stays.
    app.update(HarnessProps {
        config,
        show_probe: false,
    });
    assert!(wait_for(1_000, || engine.bus().subscriber_count() == subscribers - 1).await);
    app.destroy();
    assert!(wait_for(1_000, || engine.bus().subscriber_count() == subscribers - 2).await);
    restore_fetch(&original);
    storage::clear_all();
}

fn gloo_utils_document() -> web_sys::Document {
    web_sys::window().unwrap().document().unwrap()
}
