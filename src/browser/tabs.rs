//! Cross-tab messages: BroadcastChannel where it exists (same-origin, in memory), else the
//! `storage` event of a key written and removed at once.

use std::cell::RefCell;
use std::rc::Rc;

use gloo_events::EventListener;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use crate::session::persist::keys;
use crate::session::ports::CrossTab;
use crate::session::TabMessage;

/// Channel name shared by the app's tabs.
pub const CHANNEL_NAME: &str = "yew-session";

type Receiver = Rc<RefCell<Option<Box<dyn Fn(TabMessage)>>>>;

/// The real cross-tab channel.
pub struct BrowserTabs {
    channel: Option<web_sys::BroadcastChannel>,
    receiver: Receiver,
    _on_message: Option<Closure<dyn FnMut(web_sys::MessageEvent)>>,
    _storage_listener: Option<EventListener>,
}

fn deliver(receiver: &Receiver, text: &str) {
    // Messages from other tabs are input like any other: ignore what does not parse.
    if let Ok(msg) = serde_json::from_str::<TabMessage>(text) {
        if let Some(r) = receiver.borrow().as_ref() {
            r(msg);
        }
    }
}

impl BrowserTabs {
    /// Opens the channel `name` (or the storage fallback).
    pub fn new(name: &str) -> Self {
        Self::open(name, false)
    }

    /// The storage-event fallback even where BroadcastChannel exists (for its tests).
    pub fn storage_fallback() -> Self {
        Self::open("unused", true)
    }

    fn open(name: &str, force_fallback: bool) -> Self {
        let receiver: Receiver = Rc::new(RefCell::new(None));
        let channel = if force_fallback {
            None
        } else {
            web_sys::BroadcastChannel::new(name).ok()
        };
        if let Some(ch) = &channel {
            let r = receiver.clone();
            let cb = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(
                move |e: web_sys::MessageEvent| {
                    if let Some(text) = e.data().as_string() {
                        deliver(&r, &text);
                    }
                },
            );
            ch.set_onmessage(Some(cb.as_ref().unchecked_ref()));
            return Self {
                channel,
                receiver,
                _on_message: Some(cb),
                _storage_listener: None,
            };
        }
        let listener = web_sys::window().map(|w| {
            let r = receiver.clone();
            EventListener::new(&w, "storage", move |e| {
                let Some(e) = e.dyn_ref::<web_sys::StorageEvent>() else {
                    return;
                };
                if e.key().as_deref() == Some(keys::TAB_MESSAGE) {
                    if let Some(v) = e.new_value() {
                        deliver(&r, &v);
                    }
                }
            })
        });
        Self {
            channel: None,
            receiver,
            _on_message: None,
            _storage_listener: listener,
        }
    }

    /// True when BroadcastChannel is used (false: storage-event fallback).
    pub fn uses_broadcast_channel(&self) -> bool {
        self.channel.is_some()
    }
}

impl Drop for BrowserTabs {
    fn drop(&mut self) {
        if let Some(ch) = &self.channel {
            ch.set_onmessage(None);
            ch.close();
        }
    }
}

impl CrossTab for BrowserTabs {
    fn post(&self, msg: &TabMessage) {
        match &self.channel {
            Some(ch) => {
                let Ok(text) = serde_json::to_string(msg) else {
                    return;
                };
                let _ = ch.post_message(&JsValue::from_str(&text));
            }
            None => {
                // localStorage must never see an access token (cookie mode promises that), so the
                // fallback strips it; receivers then adopt from storage or refresh themselves.
                let mut msg = msg.clone();
                if let TabMessage::TokenUpdated {
                    access_token,
                    refresh_token,
                    id_token,
                    ..
                } = &mut msg
                {
                    access_token.clear();
                    *refresh_token = None;
                    *id_token = None;
                }
                let Ok(text) = serde_json::to_string(&msg) else {
                    return;
                };
                // Written and removed at once: other tabs get the event, nothing lingers.
                if let Some(s) = web_sys::window().and_then(|w| w.local_storage().ok().flatten()) {
                    let _ = s.set_item(keys::TAB_MESSAGE, &text);
                    let _ = s.remove_item(keys::TAB_MESSAGE);
                }
            }
        }
    }

    fn set_receiver(&self, receiver: Box<dyn Fn(TabMessage)>) {
        *self.receiver.borrow_mut() = Some(receiver);
    }
}
