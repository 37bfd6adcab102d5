//! localStorage / sessionStorage as raw strings (gloo-storage's JSON layer is not wanted here:
//! the compat `user` value must stay byte-compatible with the tutorial's client).

use gloo_storage::{LocalStorage, SessionStorage, Storage};

use crate::session::ports::{Area, KeyValueStore};

/// Web storage of the page.
pub struct WebStorage;

fn raw(area: Area) -> Option<web_sys::Storage> {
    // `raw()` panics when storage is unavailable (some privacy modes); treat that as "no storage".
    let window = web_sys::window()?;
    match area {
        Area::Local => window.local_storage().ok().flatten(),
        Area::Session => window.session_storage().ok().flatten(),
    }
}

impl KeyValueStore for WebStorage {
    fn get(&self, area: Area, key: &str) -> Option<String> {
        raw(area)?.get_item(key).ok().flatten()
    }
    fn set(&self, area: Area, key: &str, value: &str) {
        if let Some(s) = raw(area) {
            let _ = s.set_item(key, value);
        }
    }
    fn remove(&self, area: Area, key: &str) {
        if let Some(s) = raw(area) {
            let _ = s.remove_item(key);
        }
    }
}

/// Whether both storage areas work (used by the browser tests).
pub fn available() -> bool {
    raw(Area::Local).is_some() && raw(Area::Session).is_some()
}

/// Removes every key of both areas (browser tests start clean).
pub fn clear_all() {
    LocalStorage::clear();
    SessionStorage::clear();
}
