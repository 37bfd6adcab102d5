//! Browser test: the whole app mounts in a real Chromium, restores (no session here: the test
//! server has no API, so the restore ends signed out) and shows the signed-out nav.
#![cfg(target_arch = "wasm32")]

use std::rc::Rc;

use wasm_bindgen_test::*;
use yew_session::app::AppWithConfig;
use yew_session::config::AppConfig;

wasm_bindgen_test_configure!(run_in_browser);

/// Waits (flushing yew, in 20 ms steps, at most 3 s) until `cond` holds.
async fn wait_for(mut cond: impl FnMut() -> bool) -> bool {
    for _ in 0..150 {
        yew::scheduler::flush().await;
        if cond() {
            return true;
        }
        gloo_timers::future::TimeoutFuture::new(20).await;
    }
    false
}

#[wasm_bindgen_test]
async fn app_mounts_and_settles_signed_out_with_login_links() {
    let document = web_sys::window().unwrap().document().unwrap();
    let root = document.create_element("div").unwrap();
    document.body().unwrap().append_child(&root).unwrap();

    let props = yew_session::app::AppWithConfigProps {
        config: Rc::new(AppConfig::default()),
    };
    yew::Renderer::<AppWithConfig>::with_root_and_props(root.clone(), props).render();

    let text = || root.text_content().unwrap_or_default();
    assert!(
        wait_for(|| text().contains("Login") && text().contains("Sign up")).await,
        "never settled signed out: {}",
        text()
    );
    assert!(root
        .query_selector("nav[aria-label='Main']")
        .unwrap()
        .is_some());
    assert!(text().contains("yew-session"));
}
