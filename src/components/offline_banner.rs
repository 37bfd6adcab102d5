//! A banner while the network or the server is down (the session is kept meanwhile).

use yew::prelude::*;

use crate::hooks::use_session::use_session;
use crate::session::SessionStatus;

/// Shown while the session is degraded: offline, or refreshes failing transiently.
#[function_component]
pub fn OfflineBanner() -> Html {
    let session = use_session();
    if !session.is_degraded() || session.status() != SessionStatus::SignedIn {
        return Html::default();
    }
    html! {
        <div class="banner" role="status" data-testid="offline-banner">
            { "Offline or the server is not answering — your session is kept and will carry on when it is back." }
        </div>
    }
}
