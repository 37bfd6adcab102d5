//! `use_session()`: the session state plus its verbs; `use_session_events()`: the event bus for
//! the lifetime of a component.

use std::cell::RefCell;
use std::rc::Rc;

use yew::prelude::*;

use crate::browser::oidc;
use crate::components::session_provider::{SessionContext, SessionSnapshot};
use crate::session::Engine;
/// Re-exported so pages can import the session vocabulary from the hook's module.
pub use crate::session::{
    ClientError, FailureKind, LogoutReason, SessionEvent, SessionStatus, Timeline, UserInfo,
};

/// Handle returned by [`use_session`].
#[derive(Clone, PartialEq)]
pub struct UseSessionHandle {
    ctx: SessionContext,
}

impl UseSessionHandle {
    /// Restoring / signed out (with reason) / signed in.
    pub fn status(&self) -> SessionStatus {
        self.ctx.state.status.clone()
    }
    /// The signed-in user.
    pub fn user(&self) -> Option<UserInfo> {
        self.ctx.state.user.clone()
    }
    /// Offline or refreshes failing transiently (the session is kept).
    pub fn is_degraded(&self) -> bool {
        self.ctx.state.degraded
    }
    /// The current token's timeline in browser wall-clock ms.
    pub fn timeline(&self) -> Option<Timeline> {
        self.ctx.state.timeline.clone()
    }
    /// `"cookie"` or `"storage"`.
    pub fn transport(&self) -> &'static str {
        self.ctx.engine.transport_name()
    }
    /// This tab's id.
    pub fn tab_id(&self) -> String {
        self.ctx.engine.tab_id()
    }
    /// The tab holding the cross-tab refresh lock (read live).
    pub fn lock_holder(&self) -> Option<String> {
        self.ctx.engine.lock_holder()
    }
    /// A sentence about the last sign-out (reason, corrupt storage...), for the login page.
    pub fn message(&self) -> Option<String> {
        self.ctx.state.message.clone()
    }
    /// The token generation in use.
    pub fn generation(&self) -> u64 {
        self.ctx.state.generation
    }
    /// The whole snapshot.
    pub fn snapshot(&self) -> SessionSnapshot {
        (*self.ctx.state).clone()
    }
    /// The engine (for the inspector).
    pub fn engine(&self) -> Engine {
        self.ctx.engine.clone()
    }

    /// Signs in; `on_done` gets the outcome (`Http { status: 401, message }` for a wrong
    /// password).
    pub fn login(
        &self,
        username: String,
        password: String,
        remember: bool,
        on_done: Callback<Result<(), ClientError>>,
    ) {
        let engine = self.ctx.engine.clone();
        wasm_bindgen_futures::spawn_local(async move {
            let done = if engine.config().bff() {
                engine.bff_sign_in(username, password).await
            } else {
                engine.login(username, password, remember).await
            };
            on_done.emit(done);
        });
    }

    /// Registers; `Ok` carries the server's message.
    pub fn register(
        &self,
        req: api_types::SignupRequest,
        on_done: Callback<Result<String, ClientError>>,
    ) {
        let engine = self.ctx.engine.clone();
        wasm_bindgen_futures::spawn_local(async move {
            on_done.emit(engine.register(req).await);
        });
    }

    /// Signs out here, on the server and in every tab. OpenID Connect: the refresh token is
    /// revoked at the provider first, then the browser goes to the provider's end-session page
    /// (when it has one) to end the provider's own session.
    pub fn logout(&self) {
        self.bff_logout(false)
    }

    /// [`UseSessionHandle::logout`]; backend for frontend: `everywhere` asks the server to end
    /// every session of the user, then the browser goes to the provider's end-session page
    /// when the server names one. (One task for both provider kinds: each `spawn_local` of
    /// another future is code of its own in the wasm.)
    pub fn bff_logout(&self, everywhere: bool) {
        let engine = self.ctx.engine.clone();
        if !engine.config().oidc() && !engine.config().bff() {
            return engine.logout();
        }
        wasm_bindgen_futures::spawn_local(async move {
            if let Some(url) = engine.logout_at_provider(&oidc::origin(), everywhere).await {
                oidc::go(&url);
            }
        });
    }

    /// Backend for frontend: sends the browser to the server's sign-in, to come back to
    /// `return_to`.
    pub fn sign_in_at_server(&self, return_to: &str) {
        oidc::go(&self.ctx.engine.bff_login_url(return_to));
    }

    /// OpenID Connect: sends the browser to the provider's sign-in, to come back to
    /// `return_to`; `on_error` gets what stopped it (no Web Crypto, provider not discovered).
    pub fn sign_in_at_provider(
        &self,
        return_to: String,
        remember: bool,
        on_error: Callback<String>,
    ) {
        let engine = self.ctx.engine.clone();
        wasm_bindgen_futures::spawn_local(async move {
            let url = match oidc::secrets().await {
                Ok(s) => engine.oidc_sign_in_url(s, &oidc::origin(), &return_to, remember),
                Err(why) => Err(format!(
                    "Signing in needs this browser's Web Crypto: {why}."
                )),
            };
            match url {
                Ok(url) => oidc::go(&url),
                Err(why) => on_error.emit(why),
            }
        });
    }

    /// Refreshes now (the inspector's button).
    pub fn refresh(&self) {
        let engine = self.ctx.engine.clone();
        wasm_bindgen_futures::spawn_local(async move {
            let _ = engine.refresh().await;
        });
    }
}

/// The session of the surrounding `SessionProvider`.
///
/// # Panics
/// When used outside a `SessionProvider` (a programming error).
#[hook]
pub fn use_session() -> UseSessionHandle {
    let ctx = use_context::<SessionContext>().expect("use_session() needs a SessionProvider above");
    UseSessionHandle { ctx }
}

/// Calls `on_event` with `(wall ms, event)` for every session event while the component is
/// mounted; the subscription ends on unmount (its handle is dropped).
#[hook]
pub fn use_session_events(on_event: Callback<(f64, SessionEvent)>) {
    let ctx = use_context::<SessionContext>()
        .expect("use_session_events() needs a SessionProvider above");
    // The latest callback is used without resubscribing on every render.
    let latest: Rc<RefCell<Callback<(f64, SessionEvent)>>> = use_mut_ref(|| on_event.clone());
    *latest.borrow_mut() = on_event;
    use_effect_with(ctx.engine.clone(), move |engine| {
        let sub = engine.subscribe(move |at, ev| {
            let cb = latest.borrow().clone();
            cb.emit((at, ev.clone()));
        });
        move || drop(sub)
    });
}
