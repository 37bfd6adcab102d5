//! Fuzzes the access-token verifier: arbitrary input must never panic and never verify, and a
//! valid token with any byte changed must be rejected.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use session_api::keys::Keys;

const NOW: i64 = 1_800_000_000_000;

fn keys() -> &'static Keys {
    static K: OnceLock<Keys> = OnceLock::new();
    K.get_or_init(|| Keys::new(&[3u8; 32], "session-api", "yew-session"))
}

fn valid() -> &'static str {
    static T: OnceLock<String> = OnceLock::new();
    T.get_or_init(|| keys().issue_access(7, &["ROLE_USER".into()], "fam", NOW, 900))
}

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    assert!(keys().verify_access(&s, NOW).is_err(), "fuzzer forged a token: {s}");
    // Mutate the valid token at a position and with a mask taken from the input.
    if data.len() >= 2 {
        let t = valid();
        let mut bytes = t.as_bytes().to_vec();
        let i = (usize::from(data[0]) << 8 | usize::from(data[1])) % bytes.len();
        let mask = data.get(2).copied().filter(|m| *m != 0).unwrap_or(1);
        bytes[i] ^= mask;
        let m = String::from_utf8_lossy(&bytes);
        assert!(keys().verify_access(&m, NOW).is_err(), "mutated token accepted: {m}");
    }
});
