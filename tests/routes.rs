//! Host tests: every path of the tutorial app maps to the right route, unknown ones to NotFound,
//! and sign-in returns only to a page of this app.

use yew_router::Routable;
use yew_session::route::{after_login_target, Route};

#[test]
fn every_tutorial_path_is_recognised() {
    let cases = [
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

#[test]
fn sign_in_returns_to_the_guarded_page_that_sent_the_user() {
    assert_eq!(after_login_target(Some("/admin")), Route::AdminBoard);
    assert_eq!(after_login_target(Some("/user?x=1")), Route::UserBoard);
    assert_eq!(after_login_target(None), Route::Profile);
}

#[test]
fn sign_in_never_redirects_off_site_or_back_to_the_forms() {
    for bad in [
        "https://evil.example/",
        "//evil.example/x",
        "//",
        "/\\evil.example",
        "javascript:alert(1)",
        "/login",
        "/register",
        "/no-such-page",
        "",
    ] {
        assert_eq!(after_login_target(Some(bad)), Route::Profile, "{bad}");
    }
}

/// `Route` implements `Routable` by hand (src/route.rs); the derive it replaced, on the same
/// paths, must give the same answer for every path.
#[test]
fn the_hand_written_matcher_answers_as_the_derive_did() {
    #[derive(Clone, Debug, PartialEq, Routable)]
    enum Derived {
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
        #[at("/profile/password")]
        ChangePassword,
        #[at("/user")]
        UserBoard,
        #[at("/mod")]
        ModeratorBoard,
        #[at("/admin")]
        AdminBoard,
        #[at("/session")]
        Session,
        #[not_found]
        #[at("/404")]
        NotFound,
    }
    let paths = [
        "",
        "/",
        "//",
        "///",
        "/home",
        "/home/",
        "/home//",
        "home",
        "home/",
        "/Home",
        "/login",
        "/register/",
        "/profile",
        "/profile/x",
        "/profile/password",
        "/profile/password/",
        "profile/password",
        "/user",
        "/mod",
        "/admin",
        "/admin/",
        "/session",
        "/404",
        "/404/",
        "/nope",
        "/home?x=1",
        "/home#a",
        "/ho me",
        "/%68ome",
    ];
    for path in paths {
        let (ours, derived) = (Route::recognize(path), Derived::recognize(path));
        assert_eq!(format!("{ours:?}"), format!("{derived:?}"), "{path:?}");
        if let Some(route) = ours {
            assert_eq!(route.to_path(), derived.unwrap().to_path(), "{path:?}");
        }
    }
    assert_eq!(Route::routes(), Derived::routes());
}
