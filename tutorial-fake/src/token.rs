//! The tutorial's access tokens, as `jsonwebtoken` makes and checks them: HS256, payload
//! `{"id","iat","exp"}` only, whole seconds, nothing random (two tokens of one second for one
//! user are byte-identical).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The header jsonwebtoken writes.
const HEADER: &[u8] = br#"{"alg":"HS256","typ":"JWT"}"#;

/// Why a token is refused: the two answers of the tutorial's `verifyToken`.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Bad signature, garbage, `alg: none`, claims missing.
    Invalid,
    /// Well signed, `exp` passed.
    Expired,
}

/// A signed access token for `user_id`, issued at `now_ms` (Unix ms), living `ttl_s` seconds
/// from the floored second (so up to 1 s less than the ttl).
pub fn sign(key: &[u8], user_id: u64, now_ms: u64, ttl_s: u64) -> String {
    let iat = now_ms / 1000;
    let payload = format!(r#"{{"id":{user_id},"iat":{iat},"exp":{}}}"#, iat + ttl_s);
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(HEADER),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let sig = URL_SAFE_NO_PAD.encode(mac(key, &input).finalize().into_bytes());
    format!("{input}.{sig}")
}

/// The user id of a valid token at `now_ms`: signature first, then `exp`, as `jwt.verify`.
pub fn verify(key: &[u8], token: &str, now_ms: u64) -> Result<u64, Refusal> {
    let [h, p, s] = token.split('.').collect::<Vec<_>>()[..] else {
        return Err(Refusal::Invalid);
    };
    let header = decode_json(h).ok_or(Refusal::Invalid)?;
    if header["alg"] != "HS256" {
        return Err(Refusal::Invalid);
    }
    let sig = URL_SAFE_NO_PAD.decode(s).map_err(|_| Refusal::Invalid)?;
    mac(key, &format!("{h}.{p}"))
        .verify_slice(&sig)
        .map_err(|_| Refusal::Invalid)?;
    let claims = decode_json(p).ok_or(Refusal::Invalid)?;
    let (Some(id), Some(exp)) = (claims["id"].as_u64(), claims["exp"].as_u64()) else {
        return Err(Refusal::Invalid);
    };
    if now_ms / 1000 >= exp {
        return Err(Refusal::Expired);
    }
    Ok(id)
}

/// A token of the tutorial's shape whose signature nobody could check (for a token a test plants
/// in storage).
pub fn unsigned(payload: &Value) -> String {
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(HEADER),
        URL_SAFE_NO_PAD.encode(payload.to_string()),
        URL_SAFE_NO_PAD.encode(b"not-a-real-signature")
    )
}

fn mac(key: &[u8], input: &str) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(input.as_bytes());
    mac
}

fn decode_json(part: &str) -> Option<Value> {
    let bytes = URL_SAFE_NO_PAD.decode(part).ok()?;
    serde_json::from_slice(&bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"k";

    #[test]
    fn a_token_lives_its_ttl_from_the_floored_second() {
        let t = sign(KEY, 3, 10_900, 4);
        let claims = decode_json(t.split('.').nth(1).unwrap()).unwrap();
        assert_eq!(claims, serde_json::json!({"id": 3, "iat": 10, "exp": 14}));
        assert_eq!(verify(KEY, &t, 13_999), Ok(3));
        assert_eq!(verify(KEY, &t, 14_000), Err(Refusal::Expired));
    }

    #[test]
    fn another_key_or_a_tampered_token_is_invalid() {
        let t = sign(KEY, 3, 0, 60);
        assert_eq!(verify(b"other", &t, 0), Err(Refusal::Invalid));
        assert_eq!(verify(KEY, &format!("{t}x"), 0), Err(Refusal::Invalid));
        assert_eq!(
            verify(KEY, &unsigned(&serde_json::json!({"id": 3, "exp": 9})), 0),
            Err(Refusal::Invalid)
        );
    }
}
