//! Toasts (an `aria-live` region) driven by the session event bus: signed in, network trouble,
//! back online, session expired or ended (with the reason), signed out in another tab, and —
//! when `debugToasts` is on — every background refresh.

use gloo_timers::callback::Timeout;
use yew::prelude::*;

use crate::hooks::use_session::{use_session, use_session_events};
use crate::session::{LogoutReason, SessionEvent};

/// How a toast looks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ToastKind {
    Info,
    Success,
    Warning,
    Danger,
}

impl ToastKind {
    fn class(self) -> &'static str {
        match self {
            ToastKind::Info => "toast",
            ToastKind::Success => "toast toast-success",
            ToastKind::Warning => "toast toast-warning",
            ToastKind::Danger => "toast toast-danger",
        }
    }
}

/// The toast an event deserves, if any. `debug` adds the routine ones (refreshes, failures).
pub fn toast_for(event: &SessionEvent, debug: bool) -> Option<(ToastKind, String)> {
    use ToastKind::*;
    Some(match event {
        SessionEvent::LoggedIn { username } => (Success, format!("Signed in as {username}.")),
        // A session found on load is not news to the user.
        SessionEvent::Restored { .. } => return None,
        SessionEvent::Degraded => (
            Warning,
            "Offline — retrying. Your session is kept.".to_string(),
        ),
        SessionEvent::Recovered => (Success, "Back online.".to_string()),
        SessionEvent::SessionExpired => (
            Danger,
            "Session expired — please sign in again.".to_string(),
        ),
        SessionEvent::LoggedOut { reason } => match reason {
            LogoutReason::UserAction
            | LogoutReason::SignedOutEverywhere
            | LogoutReason::AccountDeleted => (Info, reason.describe().to_string()),
            LogoutReason::OtherTab => (Warning, reason.describe().to_string()),
            // The expiry itself was already announced by SessionExpired.
            LogoutReason::Expired => return None,
            _ => (Danger, reason.describe().to_string()),
        },
        SessionEvent::Refreshed { .. } | SessionEvent::RefreshFailed(_) if debug => {
            (Info, event.describe())
        }
        SessionEvent::Refreshed { .. } | SessionEvent::RefreshFailed(_) => return None,
    })
}

#[derive(Clone, Debug, PartialEq)]
struct Toast {
    id: u64,
    kind: ToastKind,
    text: String,
}

enum Action {
    Push(Toast),
    Dismiss(u64),
}

#[derive(Default, PartialEq)]
struct ToastList {
    items: Vec<Toast>,
}

/// At most this many toasts are shown; older ones give way.
const MAX_TOASTS: usize = 4;

impl Reducible for ToastList {
    type Action = Action;
    fn reduce(self: std::rc::Rc<Self>, action: Action) -> std::rc::Rc<Self> {
        let mut items = self.items.clone();
        match action {
            Action::Push(toast) => {
                // The same message twice in a row is shown once.
                if items.last().is_some_and(|t| t.text == toast.text) {
                    return self;
                }
                items.push(toast);
                let excess = items.len().saturating_sub(MAX_TOASTS);
                items.drain(..excess);
            }
            Action::Dismiss(id) => items.retain(|t| t.id != id),
        }
        ToastList { items }.into()
    }
}

/// The toast stack in the corner of the page.
#[function_component]
pub fn Toasts() -> Html {
    let session = use_session();
    let debug = session.engine().config().debug_toasts;
    let list = use_reducer(ToastList::default);
    let counter = use_mut_ref(|| 0u64);
    {
        let list = list.clone();
        use_session_events(Callback::from(move |(_, event): (f64, SessionEvent)| {
            if let Some((kind, text)) = toast_for(&event, debug) {
                let id = {
                    let mut c = counter.borrow_mut();
                    *c += 1;
                    *c
                };
                let ms = if kind == ToastKind::Danger {
                    10_000
                } else {
                    6_000
                };
                list.dispatch(Action::Push(Toast { id, kind, text }));
                let dispatcher = list.dispatcher();
                Timeout::new(ms, move || dispatcher.dispatch(Action::Dismiss(id))).forget();
            }
        }));
    }
    html! {
        <div class="toasts" aria-live="polite" aria-atomic="false" data-testid="toasts">
            { for list.items.iter().map(|t| {
                let dismiss = {
                    let list = list.clone();
                    let id = t.id;
                    Callback::from(move |_| list.dispatch(Action::Dismiss(id)))
                };
                html! {
                    <div key={t.id} class={t.kind.class()} role={if t.kind == ToastKind::Danger { "alert" } else { "status" }}>
                        <span>{ t.text.clone() }</span>
                        <button class="close" type="button" aria-label="Dismiss" onclick={dismiss}>{ "×" }</button>
                    </div>
                }
            }) }
        </div>
    }
}
