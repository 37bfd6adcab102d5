//! The one place for routes: the `Routable` enum, its paths, and where sign-in may send the user
//! back to. A leaf: it imports nothing of the app (the route → page `switch` is in `crate::app`).

use std::collections::HashMap;

use yew_router::Routable;

/// Every page of the app. Unknown paths fall through to [`Route::NotFound`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    Root,
    Home,
    Login,
    Register,
    Profile,
    /// Change the password (reached from the profile; session-api only).
    ChangePassword,
    UserBoard,
    ModeratorBoard,
    AdminBoard,
    /// The session inspector as a page.
    Session,
    NotFound,
}

/// Each route's path.
const PATHS: [(&str, Route); 11] = [
    ("/", Route::Root),
    ("/home", Route::Home),
    ("/login", Route::Login),
    ("/register", Route::Register),
    ("/profile", Route::Profile),
    ("/profile/password", Route::ChangePassword),
    ("/user", Route::UserBoard),
    ("/mod", Route::ModeratorBoard),
    ("/admin", Route::AdminBoard),
    ("/session", Route::Session),
    ("/404", Route::NotFound),
];

/// A path as yew-router's matcher compares it: without one trailing and one leading `/`.
fn bare(path: &str) -> &str {
    let path = path.strip_suffix('/').unwrap_or(path);
    path.strip_prefix('/').unwrap_or(path)
}

/// Hand-written for wasm size: `#[derive(Routable)]` builds a route_recognizer NFA in a
/// thread-local on first use (with route_recognizer, 6.8 KB gzip of wasm) for eleven fixed paths
/// without parameters. Same answers: the derive's matcher strips one trailing `/`, then one leading
/// `/`, and compares static segments as text; anything else is `NotFound`.
impl Routable for Route {
    fn from_path(path: &str, _params: &HashMap<&str, &str>) -> Option<Self> {
        PATHS
            .iter()
            .find(|(p, _)| *p == path)
            .map(|(_, r)| r.clone())
    }

    fn to_path(&self) -> String {
        PATHS
            .iter()
            .find(|(_, r)| r == self)
            .map_or("/404", |(p, _)| *p)
            .to_string()
    }

    fn routes() -> Vec<&'static str> {
        PATHS.iter().map(|(p, _)| *p).collect()
    }

    fn not_found_route() -> Option<Self> {
        Some(Route::NotFound)
    }

    fn recognize(pathname: &str) -> Option<Self> {
        let wanted = bare(pathname);
        PATHS
            .iter()
            .find(|(p, _)| bare(p) == wanted)
            .map_or(Some(Route::NotFound), |(_, r)| Some(r.clone()))
    }
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
