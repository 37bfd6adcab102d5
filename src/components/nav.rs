//! The navigation bar: the boards the user's roles allow, the profile, and sign in/out.

use api_types::roles;
use yew::prelude::*;
use yew_router::prelude::*;

use crate::hooks::use_session::use_session;
use crate::route::Route;
use crate::session::SessionStatus;

/// Top navigation, following the session and the user's roles.
#[function_component]
pub fn Nav() -> Html {
    let session = use_session();
    let current = use_route::<Route>();
    let link = |to: Route, label: &str| {
        let active = current.as_ref() == Some(&to);
        html! {
            <li>
                <Link<Route> to={to} classes={classes!(active.then_some("active"))}>{ label.to_string() }</Link<Route>>
            </li>
        }
    };
    let logout = {
        let session = session.clone();
        Callback::from(move |_| session.logout())
    };
    let (left, right) = match (session.status(), session.user()) {
        (SessionStatus::SignedIn, Some(user)) => (
            html! {
                <>
                    { link(Route::Home, "Home") }
                    { link(Route::UserBoard, "User") }
                    { if user.has_role(roles::MODERATOR) { link(Route::ModeratorBoard, "Moderator") } else { Html::default() } }
                    { if user.has_role(roles::ADMIN) { link(Route::AdminBoard, "Admin") } else { Html::default() } }
                </>
            },
            html! {
                <>
                    { link(Route::Profile, &user.username) }
                    <li><button class="link" type="button" onclick={logout}>{ "Log out" }</button></li>
                </>
            },
        ),
        (SessionStatus::Restoring, _) => (
            link(Route::Home, "Home"),
            html! { <li class="muted" aria-live="polite"><span class="navbar-note">{ "Restoring session…" }</span></li> },
        ),
        _ => (
            link(Route::Home, "Home"),
            html! {
                <>
                    // With an OpenID provider, accounts are made there.
                    if session.engine().config().backend == crate::config::Backend::Api { { link(Route::Register, "Sign up") } }
                    { link(Route::Login, "Login") }
                </>
            },
        ),
    };
    html! {
        <header class="navbar">
            <nav class="container navbar-inner" aria-label="Main">
                <Link<Route> to={Route::Home} classes="brand">{ "yew-session" }</Link<Route>>
                <ul class="nav-links">{ left }</ul>
                <ul class="nav-links nav-right">{ right }</ul>
            </nav>
        </header>
    }
}
