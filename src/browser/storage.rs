//! localStorage / sessionStorage as raw strings, straight over web-sys (a JSON layer such as
//! gloo-storage's is not wanted here: the compat `user` value must stay byte-compatible with the
//! tutorial's client).

use crate::session::ports::{Area, KeyValueStore};

/// Web storage of the page.
pub struct WebStorage;

fn raw(area: Area) -> Option<web_sys::Storage> {
    // Storage can be unavailable (some privacy modes): that is "no storage", not a panic.
    let window = web_sys::window()?;
    match area {
        Area::Local => window.local_storage().ok().flatten(),
        Area::Session => window.session_storage().ok().flatten(),
        Area::BrowserSession => None,
    }
}

fn document() -> Option<web_sys::HtmlDocument> {
    use wasm_bindgen::JsCast;
    web_sys::window()?.document()?.dyn_into().ok()
}

/// [`Area::BrowserSession`]: a cookie without `Max-Age`, so the browser drops it when it closes.
/// Same-origin only (`SameSite=Strict`, `Path=/`), never a secret. Hand-written (a few lines
/// over `document.cookie`) rather than the `cookie` crate: wasm size.
mod browser_session {
    pub fn get(key: &str) -> Option<String> {
        let all = super::document()?.cookie().ok()?;
        all.split(';').find_map(|c| {
            let (k, v) = c.trim().split_once('=')?;
            (k == key).then(|| v.to_owned())
        })
    }
    pub fn set(key: &str, value: &str) {
        if let Some(d) = super::document() {
            let _ = d.set_cookie(&format!("{key}={value}; Path=/; SameSite=Strict; Secure"));
        }
    }
    pub fn remove(key: &str) {
        if let Some(d) = super::document() {
            let _ = d.set_cookie(&format!(
                "{key}=; Path=/; Max-Age=0; SameSite=Strict; Secure"
            ));
        }
    }
}

impl KeyValueStore for WebStorage {
    fn get(&self, area: Area, key: &str) -> Option<String> {
        if area == Area::BrowserSession {
            return browser_session::get(key);
        }
        raw(area)?.get_item(key).ok().flatten()
    }
    fn set(&self, area: Area, key: &str, value: &str) {
        if area == Area::BrowserSession {
            return browser_session::set(key, value);
        }
        if let Some(s) = raw(area) {
            let _ = s.set_item(key, value);
        }
    }
    fn remove(&self, area: Area, key: &str) {
        if area == Area::BrowserSession {
            return browser_session::remove(key);
        }
        if let Some(s) = raw(area) {
            let _ = s.remove_item(key);
        }
    }
}

/// Whether both storage areas work (used by the browser tests).
pub fn available() -> bool {
    raw(Area::Local).is_some() && raw(Area::Session).is_some()
}

/// Removes every key of both areas and the browser-session marker (browser tests start clean).
pub fn clear_all() {
    for area in [Area::Local, Area::Session] {
        if let Some(s) = raw(area) {
            let _ = s.clear();
        }
    }
    browser_session::remove(crate::session::persist::keys::BROWSER_SESSION);
}
