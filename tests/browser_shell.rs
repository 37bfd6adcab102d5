//! Browser test: the app mounts in a real Chromium and shows the nav and a page.
#![cfg(target_arch = "wasm32")]

use wasm_bindgen_test::*;
use yew_session::app::App;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
async fn app_mounts_with_nav_and_home_page() {
    let document = web_sys::window().unwrap().document().unwrap();
    let root = document.create_element("div").unwrap();
    document.body().unwrap().append_child(&root).unwrap();

    yew::Renderer::<App>::with_root(root.clone()).render();
    yew::scheduler::flush().await;

    let text = root.text_content().unwrap_or_default();
    assert!(text.contains("yew-session"), "nav brand missing: {text}");
    assert!(text.contains("Login"), "sign-in link missing: {text}");
    assert!(root
        .query_selector("nav[aria-label='Main']")
        .unwrap()
        .is_some());
}
