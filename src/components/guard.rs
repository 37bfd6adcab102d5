//! The route guard: signed-out visitors go to `/login?redirect=…`, signed-in users without the
//! role see a clear "not allowed" page (not a blank page, not a logout), and while the session is
//! being restored after a reload the page shows a loading state instead of flashing the login.

use yew::prelude::*;
use yew_router::prelude::*;
use yew_router::query::Raw;

use crate::browser::query::redirect_query;
use crate::hooks::use_session::use_session;
use crate::route::Route;
use crate::session::SessionStatus;

/// Props of [`RequireAuth`].
#[derive(Properties, PartialEq)]
pub struct RequireAuthProps {
    /// The role the page needs (`ROLE_…`), if any beyond being signed in.
    #[prop_or_default]
    pub role: Option<&'static str>,
    #[prop_or_default]
    pub children: Html,
}

/// Renders its children only for a signed-in user (with the role, when one is given).
#[function_component]
pub fn RequireAuth(props: &RequireAuthProps) -> Html {
    let session = use_session();
    let navigator = use_navigator();
    let location = use_location();
    let status = session.status();
    let signed_out = matches!(status, SessionStatus::SignedOut { .. });
    use_effect_with(signed_out, move |&signed_out| {
        if signed_out {
            if let (Some(nav), Some(loc)) = (navigator, location) {
                let back = format!("{}{}", loc.path(), loc.query_str());
                let query = Raw(redirect_query(&back));
                let _ = nav.replace_with_query(&Route::Login, query);
            }
        }
    });
    match status {
        SessionStatus::Restoring => html! {
            <section class="card" aria-busy="true" data-testid="restoring">
                <p class="muted"><span class="spinner" aria-hidden="true"></span>{ " Restoring your session…" }</p>
            </section>
        },
        SessionStatus::SignedOut { .. } => html! {
            <section class="card" aria-busy="true"><p class="muted">{ "Redirecting to sign in…" }</p></section>
        },
        SessionStatus::SignedIn => {
            let allowed = match props.role {
                None => true,
                Some(role) => session.user().is_some_and(|u| u.has_role(role)),
            };
            if allowed {
                props.children.clone()
            } else {
                html! { <NotAllowed role={props.role.unwrap_or_default()} /> }
            }
        }
    }
}

/// Props of [`NotAllowed`].
#[derive(Properties, PartialEq)]
pub struct NotAllowedProps {
    pub role: &'static str,
}

/// What a signed-in user without the role sees.
#[function_component]
pub fn NotAllowed(props: &NotAllowedProps) -> Html {
    // ASCII: the roles are `ROLE_[A-Z]+`; `to_lowercase` linked core's Unicode case tables (8.0 KB gzip).
    let role = props.role.trim_start_matches("ROLE_").to_ascii_lowercase();
    html! {
        <section class="card" data-testid="not-allowed">
            <h1>{ "Not allowed" }</h1>
            <div class="alert alert-warning" role="alert">
                { format!("This page needs the {role} role, which your account does not have. You are still signed in.") }
            </div>
            <Link<Route> to={Route::Profile} classes="btn btn-secondary">{ "Go to your profile" }</Link<Route>>
        </section>
    }
}
