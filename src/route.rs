//! The one place for routes: the `Routable` enum, its paths, and where sign-in may send the user
//! back to. A leaf: it imports nothing of the app (the route → page `switch` is in `crate::app`).

use yew_router::prelude::*;

/// Every page of the app. Unknown paths fall through to [`Route::NotFound`].
#[derive(Clone, Debug, PartialEq, Eq, Routable)]
pub enum Route {
    #[at("/")]
    Root,
    #[at("/home")]
    Home,
    #[at("/login")]
    Login,
    #[at("/register")]
    Register,
    #[at("/profile")]
    Profile,
    #[at("/user")]
    UserBoard,
    #[at("/mod")]
    ModeratorBoard,
    #[at("/admin")]
    AdminBoard,
    /// The session inspector as a page.
    #[at("/session")]
    Session,
    #[not_found]
    #[at("/404")]
    NotFound,
}

/// Where to go after sign-in: the route of the `redirect` query value when it is a page of this
/// app that a signed-in user visits, else the profile. A path, never a URL: no open redirect.
pub fn after_login_target(redirect: Option<&str>) -> Route {
    let Some(path) = redirect else {
        return Route::Profile;
    };
    if !path.starts_with('/') || path.starts_with("//") || path.contains('\\') {
        return Route::Profile;
    }
    let bare = path.split(['?', '#']).next().unwrap_or(path);
    match Route::recognize(bare) {
        Some(Route::Login | Route::Register | Route::NotFound) | None => Route::Profile,
        Some(route) => route,
    }
}
