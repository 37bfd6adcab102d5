//! When to refresh on its own: a timer armed for the token's refresh point (or the end of a
//! backoff wait), re-checked against the wall clock by every wake trigger and a periodic check,
//! because a sleeping or hidden tab's timers do not fire on time.

use std::rc::{Rc, Weak};

use super::super::events::SessionEvent;
use super::state::{Effect, Phase, State};
use super::{Inner, WALL_CHECK_MS};

/// When the timer should fire next: the end of the backoff wait, else the refresh point.
pub(crate) fn next_due(st: &State) -> Option<f64> {
    match &st.phase {
        // Backend for frontend: no proactive read (see `super::bff`), only the retry of one
        // that failed transiently.
        Phase::SignedIn { trouble, .. } if st.tab.bff => trouble.as_ref().and_then(|t| t.retry_at),
        Phase::SignedIn { token, trouble } => trouble
            .as_ref()
            .and_then(|t| t.retry_at)
            .or_else(|| token.timeline.as_ref().map(|t| t.refresh_at_ms)),
        Phase::Restoring { trouble } => trouble.as_ref().and_then(|t| t.retry_at),
        Phase::SignedOut { .. } => None,
    }
}

/// What a timer or a wake trigger at `now` should do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tick {
    /// Refresh the token of this generation.
    Refresh(u64),
    /// Woken before the refresh is due (a timer is only as precise as its whole-millisecond
    /// delay, and wake triggers come any time): re-arm, or the session would wait for the next
    /// wake trigger.
    Rearm,
    /// Nothing to do (offline, backing off, signed out, nothing known about expiry).
    Idle,
}

/// Decides at `now`; `refreshing`: a refresh is already in flight in this tab.
pub(crate) fn tick(st: &State, now: f64, refreshing: bool) -> Tick {
    if !st.online || refreshing || st.backing_off(now) {
        return Tick::Idle;
    }
    match &st.phase {
        Phase::SignedIn { token, .. } => match next_due(st) {
            Some(due) if now >= due => Tick::Refresh(token.generation),
            Some(_) => Tick::Rearm,
            None => Tick::Idle,
        },
        // A silent restore that failed transiently: try again.
        Phase::Restoring { trouble: Some(_) } => Tick::Refresh(st.generation),
        _ => Tick::Idle,
    }
}

/// The browser's online state changed. Offline pauses proactive refreshes and shows the session
/// as degraded; online skips the backoff wait.
pub(crate) fn set_online(st: &mut State, online: bool) -> Vec<Effect> {
    if st.online == online {
        return Vec::new();
    }
    let was_degraded = st.degraded();
    st.online = online;
    if online {
        st.skip_backoff();
    }
    match (was_degraded, st.degraded()) {
        (false, true) => vec![Effect::Emit(SessionEvent::Degraded)],
        (true, false) => vec![Effect::Emit(SessionEvent::Recovered)],
        _ => Vec::new(),
    }
}

impl Inner {
    /// Arms the timer for [`next_due`]; a timer armed before is void.
    pub(super) fn reschedule(self: &Rc<Self>) {
        let seq = {
            let mut flight = self.flight.borrow_mut();
            flight.schedule_seq += 1;
            flight.schedule_seq
        };
        let Some(due) = next_due(&self.st.borrow()) else {
            return;
        };
        // Rounded up: a sleeper that truncates to whole milliseconds would wake early.
        let delay = (due - self.now()).max(0.0).ceil();
        let weak = Rc::downgrade(self);
        let sleep = self.ports.sleeper.sleep(delay);
        self.ports.spawner.spawn(Box::pin(async move {
            sleep.await;
            if let Some(inner) = weak.upgrade() {
                if inner.flight.borrow().schedule_seq == seq {
                    Inner::tick(&inner);
                }
            }
        }));
    }

    /// Refreshes if the wall clock says it is time. Called by the timer and every wake trigger;
    /// single-flight makes duplicates harmless.
    pub(super) fn tick(self: &Rc<Self>) {
        let refreshing = self.refreshing();
        match tick(&self.st.borrow(), self.now(), refreshing) {
            Tick::Refresh(base) => {
                let inner = self.clone();
                self.ports.spawner.spawn(Box::pin(async move {
                    let _ = Inner::refresh_from(&inner, base).await;
                }));
            }
            Tick::Rearm => self.reschedule(),
            Tick::Idle => {}
        }
    }

    /// The periodic wall-clock check that catches timers a sleeping or hidden tab never fired.
    pub(super) fn spawn_wall_check(weak: Weak<Inner>) {
        let Some(inner) = weak.upgrade() else { return };
        let sleep = inner.ports.sleeper.sleep(WALL_CHECK_MS);
        let spawner = inner.ports.spawner.clone();
        drop(inner);
        spawner.spawn(Box::pin(async move {
            sleep.await;
            if let Some(inner) = weak.upgrade() {
                Inner::tick(&inner);
                drop(inner);
                Inner::spawn_wall_check(weak);
            }
        }));
    }
}
