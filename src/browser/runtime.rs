//! Clock, timers, task spawning and randomness of the browser.

use futures::future::LocalBoxFuture;
use futures::FutureExt;

use crate::session::ports::{Clock, Random, Sleeper, Spawner};

/// `Date.now()`.
pub struct BrowserClock;
impl Clock for BrowserClock {
    fn now_ms(&self) -> f64 {
        js_sys::Date::now()
    }
}

/// `setTimeout` through gloo-timers.
pub struct BrowserSleeper;
impl Sleeper for BrowserSleeper {
    fn sleep(&self, ms: f64) -> LocalBoxFuture<'static, ()> {
        // setTimeout takes a signed 32-bit delay; longer ones would fire immediately.
        let ms = ms.ceil().clamp(0.0, i32::MAX as f64) as u32;
        gloo_timers::future::TimeoutFuture::new(ms).boxed_local()
    }
}

/// `wasm_bindgen_futures::spawn_local`.
pub struct BrowserSpawner;
impl Spawner for BrowserSpawner {
    fn spawn(&self, fut: LocalBoxFuture<'static, ()>) {
        wasm_bindgen_futures::spawn_local(fut);
    }
}

/// `Math.random()` (jitter only: nothing secret).
pub struct BrowserRandom;
impl Random for BrowserRandom {
    fn next_f64(&self) -> f64 {
        js_sys::Math::random()
    }
}

/// A short random id for this tab (shown by the inspector, used as lock owner).
pub fn new_tab_id() -> String {
    let n = (js_sys::Math::random() * 36f64.powi(6)) as u64;
    let mut s = String::from("tab-");
    let digits: Vec<char> = (0..6)
        .map(|i| std::char::from_digit(((n / 36u64.pow(i)) % 36) as u32, 36).unwrap_or('0'))
        .collect();
    s.extend(digits);
    s
}
