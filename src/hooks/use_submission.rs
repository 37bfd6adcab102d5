//! `use_submission()`: a form's call to the server — whether one is in flight, and how the last
//! one ended, a failure already in the forms' words ([`login_error_message`]). The sign-in page,
//! the sign-up page and the session-end notice share it.

use yew::prelude::*;

use crate::components::words::login_error_message;
use crate::session::ClientError;

enum State<T> {
    Idle,
    Busy,
    Done(Result<T, String>),
}

/// Handle returned by [`use_submission`].
pub struct UseSubmissionHandle<T> {
    state: UseStateHandle<State<T>>,
}

impl<T> Clone for UseSubmissionHandle<T> {
    fn clone(&self) -> Self {
        Self {
            state: self.state.clone(),
        }
    }
}

impl<T: 'static> UseSubmissionHandle<T> {
    /// A call is in flight.
    pub fn busy(&self) -> bool {
        matches!(*self.state, State::Busy)
    }

    /// What the last call gave, when it succeeded.
    pub fn succeeded(&self) -> Option<&T> {
        match &*self.state {
            State::Done(Ok(value)) => Some(value),
            _ => None,
        }
    }

    /// What to say about the last failure.
    pub fn error(&self) -> Option<&str> {
        match &*self.state {
            State::Done(Err(message)) => Some(message),
            _ => None,
        }
    }

    /// Starts a call: the form is busy (the last outcome cleared) and the returned callback records
    /// how the call ended. `None` while a call is already in flight (a second press of Enter).
    pub fn start(&self) -> Option<Callback<Result<T, ClientError>>> {
        if self.busy() {
            return None;
        }
        self.state.set(State::Busy);
        let state = self.state.clone();
        Some(Callback::from(move |result: Result<T, ClientError>| {
            state.set(State::Done(result.map_err(|e| login_error_message(&e))))
        }))
    }

    /// Records a failure found before any call was made (an empty field).
    pub fn fail(&self, message: &str) {
        self.state.set(State::Done(Err(message.to_string())));
    }
}

/// A form's submission, idle until [`UseSubmissionHandle::start`].
#[hook]
pub fn use_submission<T: 'static>() -> UseSubmissionHandle<T> {
    UseSubmissionHandle {
        state: use_state(|| State::Idle),
    }
}
