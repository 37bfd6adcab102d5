//! Thin adapters from the session ports to the real browser (web-sys, gloo), and the fetch of
//! `config.json`. No decisions are made here: everything that can be tested lives in
//! `crate::session` (and `crate::config`).
//!
//! These compile on the host too (web-sys links stubs there) so the crate builds and its host
//! tests run; only the Web Locks binding needs wasm32 with `--cfg=web_sys_unstable_apis`.

pub mod config;
pub mod lock;
pub mod oidc;
pub mod query;
pub mod runtime;
pub mod storage;
pub mod tabs;
pub mod transport;
pub mod wake;

use std::rc::Rc;

use crate::session::Ports;

/// The real ports for this tab.
pub fn ports() -> Ports {
    Ports {
        clock: Rc::new(runtime::BrowserClock),
        sleeper: Rc::new(runtime::BrowserSleeper),
        spawner: Rc::new(runtime::BrowserSpawner),
        storage: Rc::new(storage::WebStorage),
        transport: Rc::new(transport::FetchTransport::default()),
        tabs: Rc::new(tabs::BrowserTabs::new(tabs::CHANNEL_NAME)),
        lock: Rc::new(lock::BrowserLock::new(lock::LOCK_NAME)),
        random: Rc::new(runtime::BrowserRandom),
    }
}
