//! The cross-tab refresh lock: Web Locks (`navigator.locks`, released by the browser when the
//! holding tab closes) where available, else a lease record in localStorage. Either way a lease
//! record `{owner, deadline}` is kept for the inspector and bounds every wait: past its deadline
//! the Web Lock is stolen (a frozen tab keeps its Web Lock forever otherwise) and the engine stops
//! waiting, so a frozen or dead holder cannot block the others.

use std::cell::RefCell;
use std::rc::Rc;

use futures::future::LocalBoxFuture;
use futures::FutureExt;
use serde::{Deserialize, Serialize};

use crate::session::persist::keys;
use crate::session::ports::TabLock;

/// Name of the Web Lock.
pub const LOCK_NAME: &str = "yew-session-refresh";

#[derive(Serialize, Deserialize)]
struct Lease {
    owner: String,
    deadline: f64,
}

fn local() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok().flatten()
}

fn read_lease() -> Option<Lease> {
    serde_json::from_str(&local()?.get_item(keys::LEASE).ok()??).ok()
}

fn write_lease(owner: &str, deadline: f64) {
    if let (Some(s), Ok(text)) = (
        local(),
        serde_json::to_string(&Lease {
            owner: owner.into(),
            deadline,
        }),
    ) {
        let _ = s.set_item(keys::LEASE, &text);
    }
}

/// The real lock.
pub struct BrowserLock {
    #[cfg_attr(
        not(all(target_arch = "wasm32", web_sys_unstable_apis)),
        allow(dead_code)
    )]
    name: String,
    /// Resolves the promise that keeps a granted Web Lock held.
    release_web_lock: Rc<RefCell<Option<js_sys::Function>>>,
    /// Use the storage lease even where Web Locks exist (tests of the fallback).
    #[cfg_attr(
        not(all(target_arch = "wasm32", web_sys_unstable_apis)),
        allow(dead_code)
    )]
    lease_only: bool,
}

impl BrowserLock {
    /// A lock called `name`.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.into(),
            release_web_lock: Rc::new(RefCell::new(None)),
            lease_only: false,
        }
    }

    /// A lock that always uses the localStorage lease (the fallback for browsers without
    /// `navigator.locks`).
    pub fn lease_only(name: &str) -> Self {
        Self {
            lease_only: true,
            ..Self::new(name)
        }
    }

    /// Whether `navigator.locks` is usable here.
    pub fn web_locks_available() -> bool {
        #[cfg(all(target_arch = "wasm32", web_sys_unstable_apis))]
        {
            web_sys::window().is_some_and(|w| {
                js_sys::Reflect::has(&w.navigator(), &"locks".into()).unwrap_or(false)
            })
        }
        #[cfg(not(all(target_arch = "wasm32", web_sys_unstable_apis)))]
        {
            false
        }
    }

    fn try_lease(owner: &str, now: f64, lease_ms: f64) -> bool {
        match read_lease() {
            Some(l) if l.owner != owner && l.deadline > now => false,
            _ => {
                write_lease(owner, now + lease_ms);
                // Not atomic: re-read so that of two tabs writing at once, the loser notices.
                read_lease().is_some_and(|l| l.owner == owner)
            }
        }
    }

    #[cfg(all(target_arch = "wasm32", web_sys_unstable_apis))]
    fn try_web_lock(&self, steal: bool) -> LocalBoxFuture<'static, bool> {
        use wasm_bindgen::prelude::*;
        use wasm_bindgen::JsCast;

        let (tx, rx) = futures::channel::oneshot::channel::<bool>();
        let release = self.release_web_lock.clone();
        let cb = Closure::once_into_js(move |lock: JsValue| -> js_sys::Promise {
            if lock.is_null() || lock.is_undefined() {
                let _ = tx.send(false);
                return js_sys::Promise::resolve(&JsValue::UNDEFINED);
            }
            // Hold the lock until `release` resolves this promise.
            let held = js_sys::Promise::new(&mut |resolve, _reject| {
                *release.borrow_mut() = Some(resolve);
            });
            let _ = tx.send(true);
            held
        });
        let options = web_sys::LockOptions::new();
        // `steal` and `ifAvailable` are mutually exclusive; a steal is always granted.
        if steal {
            options.set_steal(true);
        } else {
            options.set_if_available(true);
        }
        let Some(window) = web_sys::window() else {
            return futures::future::ready(false).boxed_local();
        };
        let _ = window.navigator().locks().request_with_options(
            &self.name,
            &options,
            cb.unchecked_ref(),
        );
        rx.map(|r| r.unwrap_or(false)).boxed_local()
    }
}

impl TabLock for BrowserLock {
    fn try_acquire(
        &self,
        owner: &str,
        now_ms: f64,
        lease_ms: f64,
    ) -> LocalBoxFuture<'static, bool> {
        #[cfg(all(target_arch = "wasm32", web_sys_unstable_apis))]
        if !self.lease_only && Self::web_locks_available() {
            let owner = owner.to_string();
            // The browser releases a Web Lock when its tab closes, never when it freezes. A lease
            // record of another tab that is past its deadline means that holder is gone or
            // frozen: take the lock from it, so the lease (not the freeze) bounds every wait.
            let steal = read_lease().is_some_and(|l| l.owner != owner && l.deadline <= now_ms);
            let fut = self.try_web_lock(steal);
            return async move {
                let got = fut.await;
                if got {
                    write_lease(&owner, now_ms + lease_ms);
                }
                got
            }
            .boxed_local();
        }
        futures::future::ready(Self::try_lease(owner, now_ms, lease_ms)).boxed_local()
    }

    fn release(&self, owner: &str) {
        if let Some(resolve) = self.release_web_lock.borrow_mut().take() {
            let _ = resolve.call0(&wasm_bindgen::JsValue::UNDEFINED);
        }
        if read_lease().is_some_and(|l| l.owner == owner) {
            if let Some(s) = local() {
                let _ = s.remove_item(keys::LEASE);
            }
        }
    }

    fn holder(&self, now_ms: f64) -> Option<String> {
        read_lease()
            .filter(|l| l.deadline > now_ms)
            .map(|l| l.owner)
    }
}
