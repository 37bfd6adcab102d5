//! Reading the access token's claims without verifying it: the client never holds the signing
//! key, it only needs `exp`/`iat` for scheduling and `sub`/`id`/`roles` for display. The server
//! remains the only judge of a token's validity.
//!
//! Hand-written for wasm size (base64ct, which jwt-compact is built on, and serde_json): the
//! client used jwt-compact only for this, and with it linked chrono, hmac and sha2 for 7.1 KB
//! gzip more (scripts/size, README size section).

use api_types::AccessClaims;
use base64ct::{Base64UrlUnpadded, Encoding};
use serde::Deserialize;

/// What the engine uses from an access token. Times are Unix ms on the SERVER's clock.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenFacts {
    /// `exp` in ms, when present.
    pub exp_ms: Option<f64>,
    /// `iat` in ms, when present.
    pub iat_ms: Option<f64>,
    /// The custom claims (all optional: the tutorial's tokens carry only `id`).
    pub custom: AccessClaims,
}

/// Why a token could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unreadable access token: {0}")]
pub struct ClaimsError(pub String);

/// The registered time claims, in whole seconds (RFC 7519 NumericDate, as jwt-compact read them).
#[derive(Deserialize)]
struct Times {
    exp: Option<i64>,
    iat: Option<i64>,
}

/// Decodes the claims of a JWT (`header.payload.signature`, base64url without padding) without
/// checking its signature.
pub fn read_claims(token: &str) -> Result<TokenFacts, ClaimsError> {
    let fail = |why: &str| ClaimsError(why.to_string());
    let parts: Vec<&str> = token.split('.').collect();
    let [header, payload, _signature] = parts[..] else {
        return Err(fail("not three dot-separated parts"));
    };
    Base64UrlUnpadded::decode_vec(header).map_err(|_| fail("header is not base64url"))?;
    let json =
        Base64UrlUnpadded::decode_vec(payload).map_err(|_| fail("claims are not base64url"))?;
    // `from_str`, as everywhere else in the app: `from_slice` would link serde_json's second
    // reader, the whole parser again (1.5 KB gzip).
    let json = String::from_utf8(json).map_err(|_| fail("claims are not UTF-8"))?;
    let bad_json = |e: serde_json::Error| ClaimsError(format!("claims: {e}"));
    let times: Times = serde_json::from_str(&json).map_err(bad_json)?;
    let custom: AccessClaims = serde_json::from_str(&json).map_err(bad_json)?;
    let ms = |secs: i64| secs as f64 * 1000.0;
    Ok(TokenFacts {
        exp_ms: times.exp.map(ms),
        iat_ms: times.iat.map(ms),
        custom,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(claims: &str) -> String {
        let part = |s: &str| Base64UrlUnpadded::encode_string(s.as_bytes());
        format!(
            "{}.{}.{}",
            part(r#"{"alg":"HS256"}"#),
            part(claims),
            part("sig")
        )
    }

    #[test]
    fn reads_times_in_ms_and_the_custom_claims() {
        let t = token(
            r#"{"sub":"ann","id":7,"roles":["ROLE_USER"],"iat":1700000000,"exp":1700000900,"nbf":1}"#,
        );
        let facts = read_claims(&t).unwrap();
        assert_eq!(facts.iat_ms, Some(1_700_000_000_000.0));
        assert_eq!(facts.exp_ms, Some(1_700_000_900_000.0));
        assert_eq!(facts.custom.sub.as_deref(), Some("ann"));
        assert_eq!(facts.custom.id, Some(serde_json::json!(7)));
        assert_eq!(facts.custom.roles, ["ROLE_USER"]);
        assert_eq!(read_claims(&token(r#"{"id":1}"#)).unwrap().exp_ms, None);
    }

    #[test]
    fn refuses_what_is_not_a_jwt_with_json_claims() {
        for bad in [
            "not-a-jwt".to_string(),
            "a.b".to_string(),
            token("{}") + ".extra",
            token("not json"),
            token(r#"{"exp":"soon"}"#),
            format!("!!.{}.x", Base64UrlUnpadded::encode_string(b"{}")),
            format!("e30.{}.x", Base64UrlUnpadded::encode_string(b"\xff{}")),
        ] {
            let e = read_claims(&bad).unwrap_err();
            assert!(
                e.to_string().starts_with("unreadable access token: "),
                "{bad}: {e}"
            );
        }
    }
}
