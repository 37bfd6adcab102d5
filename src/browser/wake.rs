//! Wake triggers: timers in hidden or sleeping tabs are throttled or frozen, so the engine is also
//! poked on `visibilitychange`, `focus` and `online`/`offline` (the periodic wall-clock check runs
//! inside the engine).

use gloo_events::EventListener;

use crate::session::{Engine, WakeReason};

/// Keeps the listeners installed; dropping it removes them.
pub struct WakeTriggers {
    _listeners: Vec<EventListener>,
}

/// Installs the wake triggers for `engine` and reports the current online state.
pub fn install(engine: &Engine) -> WakeTriggers {
    let mut listeners = Vec::new();
    let Some(window) = web_sys::window() else {
        return WakeTriggers {
            _listeners: listeners,
        };
    };
    engine.set_online(window.navigator().on_line());
    if let Some(document) = window.document() {
        let e = engine.clone();
        let doc = document.clone();
        listeners.push(EventListener::new(
            &document,
            "visibilitychange",
            move |_| {
                if doc.visibility_state() == web_sys::VisibilityState::Visible {
                    e.wake(WakeReason::Visible);
                }
            },
        ));
    }
    let e = engine.clone();
    listeners.push(EventListener::new(&window, "focus", move |_| {
        e.wake(WakeReason::Focus)
    }));
    let e = engine.clone();
    listeners.push(EventListener::new(&window, "online", move |_| {
        e.set_online(true)
    }));
    let e = engine.clone();
    listeners.push(EventListener::new(&window, "offline", move |_| {
        e.set_online(false)
    }));
    WakeTriggers {
        _listeners: listeners,
    }
}
