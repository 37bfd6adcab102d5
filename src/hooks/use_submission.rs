//! `use_submission()`: a form's call to the server — whether one is in flight, and how the last
//! one ended, a failure already in the forms' words ([`login_error_message`]), or, for the
//! account's forms, in words of their own next to the field it concerns
//! ([`UseSubmissionHandle::start_with`]). The sign-in page, the sign-up page, the session-end
//! notice and the account's forms share it.

use yew::prelude::*;

use crate::components::words::login_error_message;
use crate::session::ClientError;

/// A failed call in words, and the form field it is about (`None`: the form as a whole).
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// The field's name (`id` of its input), if the failure is about one.
    pub field: Option<&'static str>,
    /// What to say.
    pub message: String,
}

enum State<T> {
    Idle,
    Busy,
    Done(Result<T, Failure>),
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

    /// What to say about the last failure, when it is not about one field.
    pub fn error(&self) -> Option<&str> {
        match &*self.state {
            State::Done(Err(Failure {
                field: None,
                message,
            })) => Some(message),
            _ => None,
        }
    }

    /// What to say about the last failure, when it is about `field`.
    pub fn error_on(&self, field: &str) -> Option<&str> {
        match &*self.state {
            State::Done(Err(Failure {
                field: Some(f),
                message,
            })) if *f == field => Some(message),
            _ => None,
        }
    }

    /// Starts a call: the form is busy (the last outcome cleared) and the returned callback records
    /// how the call ended. `None` while a call is already in flight (a second press of Enter).
    pub fn start(&self) -> Option<Callback<Result<T, ClientError>>> {
        self.start_with(|e: &ClientError| Failure {
            field: None,
            message: login_error_message(e),
        })
    }

    /// Like [`UseSubmissionHandle::start`], for a call whose failure `words` puts in words and
    /// attaches to a field.
    pub fn start_with<E: 'static>(
        &self,
        words: fn(&E) -> Failure,
    ) -> Option<Callback<Result<T, E>>> {
        if self.busy() {
            return None;
        }
        self.state.set(State::Busy);
        let state = self.state.clone();
        Some(Callback::from(move |result: Result<T, E>| {
            state.set(State::Done(result.map_err(|e| words(&e))))
        }))
    }

    /// Records a failure found before any call was made (an empty field).
    pub fn fail(&self, message: &str) {
        self.state.set(State::Done(Err(Failure {
            field: None,
            message: message.to_string(),
        })));
    }

    /// Forgets the last outcome (a form opened again).
    pub fn reset(&self) {
        self.state.set(State::Idle);
    }
}

/// A form's submission, idle until [`UseSubmissionHandle::start`].
#[hook]
pub fn use_submission<T: 'static>() -> UseSubmissionHandle<T> {
    UseSubmissionHandle {
        state: use_state(|| State::Idle),
    }
}
