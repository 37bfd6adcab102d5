//! The typed event bus. The engine publishes every session change here; the Yew store, toasts,
//! the inspector and cross-tab sync subscribe. A subscription ends when its handle drops, so a
//! component that unmounts cannot leak a listener.

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};

use super::error::FailureKind;
use super::types::LogoutReason;

/// Something that happened to the session.
#[derive(Debug, Clone, PartialEq)]
pub enum SessionEvent {
    /// A sign-in succeeded (here, or adopted from another tab).
    LoggedIn {
        /// Who.
        username: String,
    },
    /// A session that already existed was found when the tab started (the silent refresh, the
    /// stored session, or another tab's): not news to the user, unlike [`LoggedIn`](Self::LoggedIn).
    Restored {
        /// Who.
        username: String,
    },
    /// A new access token is in use.
    Refreshed {
        /// The engine's generation of the new token.
        generation: u64,
        /// True when another tab refreshed and this one adopted the result.
        adopted: bool,
    },
    /// A refresh attempt failed (transient kinds keep the session).
    RefreshFailed(FailureKind),
    /// The refresh-token family expired: the user must sign in again.
    SessionExpired,
    /// The session ended.
    LoggedOut {
        /// Why.
        reason: LogoutReason,
    },
    /// Offline or failing refreshes: the session is kept but may be stale.
    Degraded,
    /// Back to normal after `Degraded`.
    Recovered,
}

impl SessionEvent {
    /// A short sentence for toasts and the inspector.
    pub fn describe(&self) -> String {
        match self {
            SessionEvent::LoggedIn { username } => format!("Signed in as {username}"),
            SessionEvent::Restored { username } => format!("Session of {username} restored"),
            SessionEvent::Refreshed {
                generation,
                adopted: false,
            } => format!("Access token refreshed (generation {generation})"),
            SessionEvent::Refreshed {
                generation,
                adopted: true,
            } => format!("Adopted the token another tab refreshed (generation {generation})"),
            SessionEvent::RefreshFailed(kind) => format!("Refresh failed: {}", kind.describe()),
            SessionEvent::SessionExpired => "Session expired".into(),
            SessionEvent::LoggedOut { reason } => format!("Signed out: {}", reason.describe()),
            SessionEvent::Degraded => "Offline or degraded: keeping the session, retrying".into(),
            SessionEvent::Recovered => "Back online".into(),
        }
    }
}

/// Listeners by id: the one mechanism behind [`EventBus`] and [`ChangeNotifier`]. Listeners are
/// called from a copy of the list, so one may subscribe, unsubscribe (or emit) while called.
struct Registry<L: ?Sized> {
    listeners: RefCell<Vec<(u64, Rc<L>)>>,
    next_id: Cell<u64>,
}

impl<L: ?Sized> Default for Registry<L> {
    fn default() -> Self {
        Self {
            listeners: RefCell::new(Vec::new()),
            next_id: Cell::new(0),
        }
    }
}

impl<L: ?Sized> Registry<L> {
    fn add(&self, listener: Rc<L>) -> u64 {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        self.listeners.borrow_mut().push((id, listener));
        id
    }

    fn remove(&self, id: u64) {
        self.listeners.borrow_mut().retain(|(i, _)| *i != id);
    }

    fn snapshot(&self) -> Vec<Rc<L>> {
        self.listeners
            .borrow()
            .iter()
            .map(|(_, l)| l.clone())
            .collect()
    }

    fn len(&self) -> usize {
        self.listeners.borrow().len()
    }
}

type EventListener = dyn Fn(f64, &SessionEvent);

/// Publish/subscribe of [`SessionEvent`]s with their wall-clock time.
#[derive(Default)]
pub struct EventBus {
    listeners: Registry<EventListener>,
}

/// Keeps a subscription alive; dropping it unsubscribes.
#[must_use = "the subscription ends when this handle is dropped"]
pub struct Subscription {
    bus: Weak<EventBus>,
    id: u64,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some(bus) = self.bus.upgrade() {
            bus.listeners.remove(self.id);
        }
    }
}

impl EventBus {
    /// A new, empty bus.
    pub fn new() -> Rc<Self> {
        Rc::new(Self::default())
    }

    /// Subscribes `f` until the returned handle drops.
    pub fn subscribe(self: &Rc<Self>, f: impl Fn(f64, &SessionEvent) + 'static) -> Subscription {
        Subscription {
            bus: Rc::downgrade(self),
            id: self.listeners.add(Rc::new(f)),
        }
    }

    /// Delivers `event` to every current subscriber.
    pub fn emit(&self, at_ms: f64, event: &SessionEvent) {
        for l in self.listeners.snapshot() {
            l(at_ms, event);
        }
    }

    /// Number of live subscriptions (for tests and the inspector).
    pub fn subscriber_count(&self) -> usize {
        self.listeners.len()
    }
}

/// "Something changed, re-read the snapshot": lets the Yew store follow state that is not an
/// event (the lock holder, a restore finishing) without widening [`SessionEvent`].
#[derive(Default)]
pub struct ChangeNotifier {
    listeners: Registry<dyn Fn()>,
}

/// Keeps a change subscription alive; dropping it unsubscribes.
#[must_use = "the subscription ends when this handle is dropped"]
pub struct ChangeSubscription {
    notifier: Weak<ChangeNotifier>,
    id: u64,
}

impl Drop for ChangeSubscription {
    fn drop(&mut self) {
        if let Some(n) = self.notifier.upgrade() {
            n.listeners.remove(self.id);
        }
    }
}

impl ChangeNotifier {
    /// A new notifier.
    pub fn new() -> Rc<Self> {
        Rc::new(Self::default())
    }

    /// Calls `f` after every change until the handle drops.
    pub fn subscribe(self: &Rc<Self>, f: impl Fn() + 'static) -> ChangeSubscription {
        ChangeSubscription {
            notifier: Rc::downgrade(self),
            id: self.listeners.add(Rc::new(f)),
        }
    }

    /// Notifies every subscriber.
    pub fn notify(&self) {
        for l in self.listeners.snapshot() {
            l();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropping_the_handle_unsubscribes_even_during_an_emit() {
        let bus = EventBus::new();
        let seen = Rc::new(Cell::new(0));
        let s = seen.clone();
        let first = bus.subscribe(move |_, _| s.set(s.get() + 1));
        let holder: Rc<RefCell<Option<Subscription>>> = Rc::new(RefCell::new(None));
        let h = holder.clone();
        let second = bus.subscribe(move |_, _| {
            // A listener that unsubscribes another one while being called.
            h.borrow_mut().take();
        });
        *holder.borrow_mut() = Some(first);
        assert_eq!(bus.subscriber_count(), 2);
        bus.emit(0.0, &SessionEvent::Degraded);
        assert_eq!(seen.get(), 1);
        assert_eq!(bus.subscriber_count(), 1);
        bus.emit(0.0, &SessionEvent::Recovered);
        assert_eq!(seen.get(), 1, "the dropped subscriber is not called again");
        drop(second);
        assert_eq!(bus.subscriber_count(), 0);
    }
}
