//! Host tests: every path of the tutorial app maps to the right route, unknown ones to NotFound.

use yew_router::Routable;
use yew_session::route::Route;

#[test]
fn every_tutorial_path_is_recognised() {
    let cases = [
        ("/", Route::Root),
        ("/home", Route::Home),
        ("/login", Route::Login),
        ("/register", Route::Register),
        ("/profile", Route::Profile),
        ("/user", Route::UserBoard),
        ("/mod", Route::ModeratorBoard),
        ("/admin", Route::AdminBoard),
        ("/session", Route::Session),
    ];
    for (path, route) in cases {
        assert_eq!(Route::recognize(path), Some(route.clone()), "{path}");
        assert_eq!(route.to_path(), path);
    }
}

#[test]
fn unknown_paths_fall_back_to_not_found() {
    for path in ["/nope", "/admin/extra", "/profile/1/2"] {
        assert_eq!(Route::recognize(path), Some(Route::NotFound), "{path}");
    }
}
