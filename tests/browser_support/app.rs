//! The whole app mounted in the test page, and what the page tests do with it: find, read,
//! type, wait. One copy for every browser test file (each adds its own set-up: the fake
//! `window.fetch`, the storage a session leaves).

use std::rc::Rc;

use wasm_bindgen::{JsCast, JsValue};
use web_sys::{Element, HtmlInputElement};
use yew::AppHandle;
use yew_session::app::{AppWithConfig, AppWithConfigProps};
use yew_session::browser::storage;
use yew_session::config::AppConfig;

/// The app at a root element of its own.
pub struct Mounted {
    pub root: Element,
    app: Option<AppHandle<AppWithConfig>>,
    /// The fake server's state object (`JsValue::NULL` without one).
    pub state: JsValue,
    /// Set on the page's first mount: on drop, `window.fetch` (when it was replaced) and the
    /// storage are put back. Another tab of the same page leaves them.
    restore: Option<Option<JsValue>>,
}

pub fn window() -> web_sys::Window {
    web_sys::window().unwrap()
}

/// Puts `path` in the address bar, as the browser would on navigating there.
pub fn go(path: &str) {
    window()
        .history()
        .unwrap()
        .replace_state_with_url(&JsValue::NULL, "", Some(path))
        .unwrap();
}

/// Replaces `window.fetch` by a fake: `factory` is the body of a JS function of `initial`
/// returning `[fetch, state]`. Returns the state and the original fetch.
pub fn fake_fetch(factory: &str, initial: &JsValue) -> (JsValue, JsValue) {
    let w = window();
    let original = js_sys::Reflect::get(&w, &"fetch".into()).unwrap();
    let make = js_sys::Function::new_with_args("initial", factory);
    let pair: js_sys::Array = make.call1(&JsValue::NULL, initial).unwrap().into();
    js_sys::Reflect::set(&w, &"fetch".into(), &pair.get(0)).unwrap();
    (pair.get(1), original)
}

impl Mounted {
    /// Mounts the app with `config`, its root `width_px` wide when given. `page`: this is the
    /// page's first mount, which restores `window.fetch` (the original, when it was replaced)
    /// and clears the storage when dropped.
    pub fn mount(
        config: AppConfig,
        state: JsValue,
        page: Option<Option<JsValue>>,
        width_px: Option<u32>,
    ) -> Mounted {
        let document = window().document().unwrap();
        let root = document.create_element("div").unwrap();
        if let Some(px) = width_px {
            let style = ["width: ", &px.to_string(), "px"].concat();
            root.set_attribute("style", &style).unwrap();
        }
        document.body().unwrap().append_child(&root).unwrap();
        let props = AppWithConfigProps {
            config: Rc::new(config),
        };
        let app = yew::Renderer::<AppWithConfig>::with_root_and_props(root.clone(), props).render();
        Mounted {
            root,
            app: Some(app),
            state,
            restore: page,
        }
    }

    pub fn text(&self) -> String {
        self.root.text_content().unwrap_or_default()
    }

    pub fn find(&self, selector: &str) -> Option<Element> {
        self.root.query_selector(selector).unwrap()
    }

    pub fn text_of(&self, selector: &str) -> String {
        self.find(selector)
            .and_then(|e| e.text_content())
            .unwrap_or_default()
    }

    /// The address bar's path and query.
    pub fn path(&self) -> String {
        let loc = window().location();
        [loc.pathname().unwrap(), loc.search().unwrap()].concat()
    }

    /// A number of the fake server's state.
    pub fn counter(&self, name: &str) -> f64 {
        js_sys::Reflect::get(&self.state, &name.into())
            .unwrap()
            .as_f64()
            .unwrap()
    }

    /// A list of the fake server's state.
    pub fn array(&self, name: &str) -> js_sys::Array {
        js_sys::Reflect::get(&self.state, &name.into())
            .unwrap()
            .dyn_into()
            .unwrap()
    }

    /// Waits (flushing yew, 10 ms steps, at most 3 s) until `cond` holds; panics with `what`.
    pub async fn until(&self, what: &str, cond: impl Fn(&Mounted) -> bool) {
        for _ in 0..300 {
            yew::scheduler::flush().await;
            if cond(self) {
                return;
            }
            gloo_timers::future::TimeoutFuture::new(10).await;
        }
        panic!(
            "timed out waiting for {what}; path {}; page: {}",
            self.path(),
            self.text()
        );
    }

    /// Lets the app run for `ms` (for "nothing happens" checks).
    pub async fn idle(&self, ms: u32) {
        yew::scheduler::flush().await;
        gloo_timers::future::TimeoutFuture::new(ms).await;
        yew::scheduler::flush().await;
    }

    /// Types into an input the way a person does (value + input event).
    pub fn type_into(&self, selector: &str, value: &str) {
        let input: HtmlInputElement = self.find(selector).expect(selector).dyn_into().unwrap();
        input.set_value(value);
        let ev = web_sys::InputEvent::new("input").unwrap();
        ev.init_event_with_bubbles("input", true);
        input.dispatch_event(&ev).unwrap();
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if let Some(app) = self.app.take() {
            app.destroy();
        }
        self.root.remove();
        if let Some(fetch) = &self.restore {
            if let Some(original) = fetch {
                js_sys::Reflect::set(&window(), &"fetch".into(), original).unwrap();
            }
            storage::clear_all();
        }
    }
}
