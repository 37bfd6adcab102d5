//! Property tests: arbitrary bytes and single-byte flips of a valid token are rejected, never a panic.

mod common;

use std::sync::OnceLock;

use axum::http::StatusCode;
use common::{Backend, TestApp};
use proptest::prelude::*;
use session_api::keys::Keys;

fn keys() -> &'static Keys {
    static K: OnceLock<Keys> = OnceLock::new();
    K.get_or_init(|| Keys::new(&[3u8; 32], "session-api", "yew-session"))
}

const NOW: i64 = 1_800_000_000_000;

fn valid_token() -> &'static str {
    static T: OnceLock<String> = OnceLock::new();
    T.get_or_init(|| {
        keys().issue_access(
            7,
            &["ROLE_USER".into(), "ROLE_ADMIN".into()],
            "fam",
            NOW,
            900,
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_are_never_a_valid_token(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let s = String::from_utf8_lossy(&bytes);
        prop_assert!(keys().verify_access(&s, NOW).is_err());
    }

    #[test]
    fn arbitrary_three_part_tokens_are_rejected(a in "[A-Za-z0-9_-]{0,80}", b in "[A-Za-z0-9_-]{0,200}", c in "[A-Za-z0-9_-]{0,90}") {
        let t = format!("{a}.{b}.{c}");
        prop_assert!(keys().verify_access(&t, NOW).is_err());
    }

    #[test]
    fn flipping_any_byte_of_a_valid_token_is_rejected(pos in 0usize..10_000, mask in 1u8..=255) {
        let t = valid_token();
        prop_assert!(keys().verify_access(t, NOW).is_ok());
        let mut bytes = t.as_bytes().to_vec();
        let i = pos % bytes.len();
        bytes[i] ^= mask;
        let s = String::from_utf8_lossy(&bytes);
        prop_assert!(keys().verify_access(&s, NOW).is_err(), "flip at {} with {:#x}: {}", i, mask, s);
    }
}

#[test]
fn every_single_bit_flip_of_a_valid_token_is_rejected() {
    let t = valid_token();
    for i in 0..t.len() {
        for bit in 0..8 {
            let mut bytes = t.as_bytes().to_vec();
            bytes[i] ^= 1 << bit;
            let s = String::from_utf8_lossy(&bytes);
            assert!(
                keys().verify_access(&s, NOW).is_err(),
                "flip at {i} bit {bit}: {s}"
            );
        }
    }
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    })
}

fn app() -> &'static TestApp {
    static APP: OnceLock<TestApp> = OnceLock::new();
    APP.get_or_init(|| runtime().block_on(TestApp::new(&Backend::Sqlite)))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn arbitrary_access_headers_get_a_json_4xx(v in "[ -~]{0,300}") {
        let r = runtime().block_on(app().get("/api/test/user", &[("x-access-token", v.as_str())]));
        prop_assert!(r.status == StatusCode::UNAUTHORIZED || r.status == StatusCode::FORBIDDEN, "{}", r.status);
        prop_assert!(r.json()["message"].is_string());
    }

    #[test]
    fn arbitrary_refresh_bodies_get_a_json_4xx(body in proptest::collection::vec(any::<u8>(), 0..400)) {
        let r = runtime().block_on(app().raw(
            "POST",
            "/api/auth/refreshtoken",
            &[("content-type", "application/json")],
            body,
        ));
        prop_assert!(r.status.is_client_error(), "{}", r.status);
        prop_assert!(r.json()["message"].is_string());
    }

    #[test]
    fn arbitrary_refresh_tokens_are_not_in_the_database(t in "\\PC{0,200}") {
        let r = runtime().block_on(app().refresh(&t));
        prop_assert_eq!(r.status, StatusCode::FORBIDDEN);
    }
}
