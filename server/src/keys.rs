//! Signing secret, access tokens (HS256 JWT) and opaque refresh tokens.
//!
//! The secret file holds base64url text of at least 32 bytes. When the file is missing a fresh
//! random secret is written with mode 0600 (never a hard-coded dev secret); a shorter secret makes
//! the server refuse to start.
//!
//! Refresh tokens are 256 random bits, base64url, stored only as their SHA-256. The successor of a
//! token is `HMAC-SHA256(k_succ, token)` with `k_succ` derived from the secret: every request that
//! presents the same token within the grace window gets the SAME successor, recomputed instead of
//! stored, so no usable refresh token ever sits in the database, not even for the grace window.
//! Whoever can compute successors holds the secret and could forge access tokens anyway.

use std::io::Write;
use std::path::Path;

use api_types::{AccessClaims, ACCESS_TOKEN_KIND};
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use chrono::{DateTime, TimeZone, Utc};
use hmac::{Hmac, Mac};
use jwt_compact::alg::{Hs256, Hs256Key};
use jwt_compact::{AlgorithmExt, Claims, Header, TimeOptions, UntrustedToken, ValidationError};
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Minimum secret length in bytes.
pub const MIN_SECRET_BYTES: usize = 32;
/// Clock-skew tolerance for `exp`/`iat` (at most 60 s by policy).
pub const LEEWAY_SECS: i64 = 30;
/// Longest refresh token we even look at; ours are 43 characters.
pub const MAX_REFRESH_TOKEN_LEN: usize = 128;
/// Longest access token we even parse.
pub const MAX_ACCESS_TOKEN_LEN: usize = 4096;

/// Why a secret could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The file could not be read or created.
    #[error("secret file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not base64url.
    #[error("secret file {0}: not base64url text")]
    NotBase64(String),
    /// The secret is too short.
    #[error("secret file {path}: secret is {len} bytes, at least {MIN_SECRET_BYTES} are required")]
    TooShort {
        /// The file.
        path: String,
        /// Decoded length.
        len: usize,
    },
}

/// Reads the secret from `path`, or creates a new random one (mode 0600) when it does not exist.
pub fn load_or_create_secret(path: &Path) -> Result<Vec<u8>, SecretError> {
    let name = path.display().to_string();
    let io = |source| SecretError::Io {
        path: name.clone(),
        source,
    };
    match std::fs::read_to_string(path) {
        Ok(text) => decode_secret(text.trim(), &name),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(io)?;
            }
            let mut secret = vec![0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut secret);
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                opts.mode(0o600);
            }
            let mut f = opts.open(path).map_err(io)?;
            writeln!(f, "{}", URL_SAFE_NO_PAD.encode(&secret)).map_err(io)?;
            f.sync_all().map_err(io)?;
            tracing::info!(path = %name, "generated a new signing secret");
            Ok(secret)
        }
        Err(e) => Err(io(e)),
    }
}

fn decode_secret(text: &str, name: &str) -> Result<Vec<u8>, SecretError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .or_else(|_| URL_SAFE.decode(text))
        .map_err(|_| SecretError::NotBase64(name.to_owned()))?;
    if bytes.len() < MIN_SECRET_BYTES {
        return Err(SecretError::TooShort {
            path: name.to_owned(),
            len: bytes.len(),
        });
    }
    Ok(bytes)
}

/// Why an access token was refused (the contract distinguishes only "expired" from the rest).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessTokenError {
    /// `exp` is in the past beyond the leeway.
    #[error("expired")]
    Expired,
    /// Anything else: bad structure, algorithm, signature, claims.
    #[error("invalid: {0}")]
    Invalid(&'static str),
}

/// A verified access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedAccess {
    /// The user id (`sub`).
    pub user_id: i64,
    /// Roles claimed at issuance.
    pub roles: Vec<String>,
    /// The refresh-token family the token was issued under.
    pub sid: Option<String>,
    /// Issued-at, Unix seconds.
    pub issued_at: i64,
}

/// Access tokens kept at most in [`Keys`]' memo of verified tokens (emptied when full: a miss
/// only costs one full verification). About 0.5 KiB each.
pub const VERIFIED_MEMO_MAX: usize = 4096;

/// The time claims of a token that passed every other check, for the memo's re-check.
#[derive(Debug, Clone)]
struct Verified {
    access: VerifiedAccess,
    expiration: DateTime<Utc>,
    not_before: Option<DateTime<Utc>>,
    issued_at: DateTime<Utc>,
}

impl Verified {
    /// The time checks of [`Keys::verify_access`], in its order and with jwt-compact's
    /// arithmetic (`validate_expiration`, `validate_maturity`): all that can change for a token
    /// whose signature and other claims were found valid once.
    fn at(&self, now_ms: i64) -> Result<VerifiedAccess, AccessTokenError> {
        let now = to_datetime(now_ms);
        let leeway = chrono::Duration::seconds(LEEWAY_SECS);
        let exp = self
            .expiration
            .checked_add_signed(leeway)
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        if now > exp {
            return Err(AccessTokenError::Expired);
        }
        if let Some(nbf) = self.not_before {
            if now < nbf - leeway {
                return Err(AccessTokenError::Invalid("nbf"));
            }
        }
        if self.issued_at > now + leeway {
            return Err(AccessTokenError::Invalid("iat in the future"));
        }
        Ok(self.access.clone())
    }
}

/// All key material, derived from the one secret.
#[derive(Clone)]
pub struct Keys {
    jwt: Hs256Key,
    successor: [u8; 32],
    issuer: String,
    audience: String,
    /// Access tokens that passed the full verification, by their exact text (shared by clones).
    /// The same token comes back on every request of a session for its whole lifetime, and its
    /// signature and time-independent claims cannot change (the key is fixed for the process),
    /// so a token found here only has its time claims checked again ([`Verified::at`]); any
    /// other text, one byte different included, takes the full path. Its HMAC, base64 and
    /// claims parsing were about half of a token check's instructions.
    verified: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<Box<str>, Verified>>>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

fn to_datetime(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

impl Keys {
    /// Derives the keys from a secret of at least [`MIN_SECRET_BYTES`].
    pub fn new(secret: &[u8], issuer: &str, audience: &str) -> Self {
        let derive = |label: &[u8]| -> [u8; 32] {
            let mut mac =
                <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC takes any key length");
            mac.update(label);
            mac.finalize().into_bytes().into()
        };
        Self {
            jwt: Hs256Key::new(derive(b"session-api access-token v1")),
            successor: derive(b"session-api refresh-successor v1"),
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            verified: Default::default(),
        }
    }

    /// Issues an access token for `user_id` valid for at least `ttl_secs` from `now_ms`.
    ///
    /// JWT times are whole seconds: `iat` is rounded down (never in the future) and `exp` up,
    /// so the token lives at least the `expiresIn` the response announces, counted from the
    /// moment it leaves (clients schedule their refresh from `expiresIn`).
    pub fn issue_access(
        &self,
        user_id: i64,
        roles: &[String],
        sid: &str,
        now_ms: i64,
        ttl_secs: i64,
    ) -> String {
        let issued = to_datetime(now_ms.div_euclid(1000) * 1000);
        let expires = to_datetime((now_ms + ttl_secs * 1000 + 999).div_euclid(1000) * 1000);
        let custom = AccessClaims {
            sub: Some(user_id.to_string()),
            id: Some(serde_json::json!(user_id)),
            roles: roles.to_vec(),
            iss: Some(self.issuer.clone()),
            aud: Some(self.audience.clone()),
            kind: Some(ACCESS_TOKEN_KIND.to_owned()),
            sid: Some(sid.to_owned()),
        };
        let mut claims = Claims::new(custom);
        claims.issued_at = Some(issued);
        claims.expiration = Some(expires);
        self.sign(&claims)
    }

    /// Signs arbitrary access-token claims with HS256 (used by [`Keys::issue_access`]; tests use
    /// it to craft tokens that are validly signed but carry wrong claims).
    pub fn sign(&self, claims: &Claims<AccessClaims>) -> String {
        let header = Header::empty().with_token_type("JWT");
        Hs256
            .token(&header, claims, &self.jwt)
            .expect("serialising our own claims cannot fail")
    }

    /// The issuer this server puts in and requires from access tokens.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The audience this server puts in and requires from access tokens.
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// Verifies an access token: HS256 only, signature, `exp` (with leeway), `iat` not in the
    /// future, `nbf` if present, `iss`, `aud`, `kind` and a numeric `sub`. A token verified
    /// before (the exact text) has only its time claims checked again (see `verified`).
    pub fn verify_access(
        &self,
        token: &str,
        now_ms: i64,
    ) -> Result<VerifiedAccess, AccessTokenError> {
        let memo = self.verified.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(v) = memo.get(token) {
            return v.at(now_ms);
        }
        drop(memo);
        let v = self.verify_access_fully(token, now_ms)?;
        let mut memo = self.verified.lock().unwrap_or_else(|e| e.into_inner());
        if memo.len() >= VERIFIED_MEMO_MAX {
            memo.clear();
        }
        memo.insert(token.into(), v.clone());
        Ok(v.access)
    }

    /// How many verified access tokens the memo holds.
    pub fn verified_memo_len(&self) -> usize {
        self.verified
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    /// [`Keys::verify_access`] without the memo: every check, through jwt-compact.
    pub fn verify_access_uncached(
        &self,
        token: &str,
        now_ms: i64,
    ) -> Result<VerifiedAccess, AccessTokenError> {
        self.verify_access_fully(token, now_ms).map(|v| v.access)
    }

    fn verify_access_fully(&self, token: &str, now_ms: i64) -> Result<Verified, AccessTokenError> {
        use AccessTokenError::Invalid;
        if token.is_empty() || token.len() > MAX_ACCESS_TOKEN_LEN {
            return Err(Invalid("length"));
        }
        let untrusted = UntrustedToken::new(token).map_err(|_| Invalid("structure"))?;
        // Checked by the validator too; being explicit documents the policy: HS256 and nothing else.
        if untrusted.algorithm() != "HS256" {
            return Err(Invalid("algorithm"));
        }
        let token = Hs256
            .validator::<AccessClaims>(&self.jwt)
            .validate(&untrusted)
            .map_err(|_| Invalid("signature or claims"))?;
        let now = to_datetime(now_ms);
        let opts = TimeOptions::new(chrono::Duration::seconds(LEEWAY_SECS), move || now);
        let claims = token.claims();
        match claims.validate_expiration(&opts) {
            Ok(_) => {}
            Err(ValidationError::Expired) => return Err(AccessTokenError::Expired),
            Err(_) => return Err(Invalid("exp")),
        }
        if claims.not_before.is_some() && claims.validate_maturity(&opts).is_err() {
            return Err(Invalid("nbf"));
        }
        let issued_at = claims.issued_at.ok_or(Invalid("iat"))?;
        if issued_at > now + chrono::Duration::seconds(LEEWAY_SECS) {
            return Err(Invalid("iat in the future"));
        }
        let c = &claims.custom;
        if c.iss.as_deref() != Some(self.issuer.as_str()) {
            return Err(Invalid("iss"));
        }
        if c.aud.as_deref() != Some(self.audience.as_str()) {
            return Err(Invalid("aud"));
        }
        if c.kind.as_deref() != Some(ACCESS_TOKEN_KIND) {
            return Err(Invalid("kind"));
        }
        let user_id = c
            .sub
            .as_deref()
            .and_then(|s| s.parse::<i64>().ok())
            .ok_or(Invalid("sub"))?;
        Ok(Verified {
            access: VerifiedAccess {
                user_id,
                roles: c.roles.clone(),
                sid: c.sid.clone(),
                issued_at: issued_at.timestamp(),
            },
            expiration: claims.expiration.ok_or(Invalid("exp"))?,
            not_before: claims.not_before,
            issued_at,
        })
    }

    /// The successor of a refresh token: deterministic, so a retry within grace gets the same one.
    pub fn successor_of(&self, token: &str) -> String {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.successor).expect("any key length");
        mac.update(token.as_bytes());
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }
}

/// A fresh random refresh token (256 bits, base64url).
pub fn new_refresh_token() -> String {
    random_id(32)
}

/// `n` random bytes as base64url text.
pub fn random_id(n: usize) -> String {
    let mut b = vec![0u8; n];
    rand::rngs::OsRng.fill_bytes(&mut b);
    URL_SAFE_NO_PAD.encode(b)
}

/// What the database stores for a refresh token: hex SHA-256.
pub fn hash_refresh_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Whether a presented refresh token is worth a database look-up.
pub fn plausible_refresh_token(token: &str) -> bool {
    !token.is_empty()
        && token.len() <= MAX_REFRESH_TOKEN_LEN
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Keys {
        Keys::new(&[7u8; 32], "iss", "aud")
    }

    #[test]
    fn issued_token_verifies_and_carries_claims() {
        let k = keys();
        let t = k.issue_access(42, &["ROLE_USER".into()], "fam", 1_700_000_000_000, 900);
        let v = k.verify_access(&t, 1_700_000_000_000).unwrap();
        assert_eq!(v.user_id, 42);
        assert_eq!(v.roles, vec!["ROLE_USER".to_owned()]);
        assert_eq!(v.sid.as_deref(), Some("fam"));
    }

    #[test]
    fn expiry_honours_a_leeway_of_at_most_sixty_seconds() {
        let k = keys();
        let t = k.issue_access(1, &[], "f", 0, 60);
        assert!(k.verify_access(&t, (60 + LEEWAY_SECS) * 1000).is_ok());
        assert_eq!(
            k.verify_access(&t, (61 + LEEWAY_SECS) * 1000),
            Err(AccessTokenError::Expired)
        );
        const { assert!(LEEWAY_SECS <= 60) };
    }

    #[test]
    fn token_lives_at_least_its_ttl_in_whole_seconds() {
        let k = keys();
        let claims = |t: &str| {
            let untrusted = jwt_compact::UntrustedToken::new(t).unwrap();
            let c = untrusted
                .deserialize_claims_unchecked::<AccessClaims>()
                .unwrap();
            (
                c.issued_at.unwrap().timestamp(),
                c.expiration.unwrap().timestamp(),
            )
        };
        // Issued 0.4 s into a second: iat rounds down, exp up, so the token outlives now + ttl.
        assert_eq!(
            claims(&k.issue_access(1, &[], "f", 1_700_000_000_400, 4)),
            (1_700_000_000, 1_700_000_005)
        );
        // On a whole second nothing is rounded.
        assert_eq!(
            claims(&k.issue_access(1, &[], "f", 1_700_000_000_000, 4)),
            (1_700_000_000, 1_700_000_004)
        );
    }

    #[test]
    fn token_issued_in_the_future_is_rejected() {
        let k = keys();
        let t = k.issue_access(1, &[], "f", 10_000_000, 900);
        assert!(matches!(
            k.verify_access(&t, 10_000_000 - 120_000),
            Err(AccessTokenError::Invalid(_))
        ));
    }

    /// A token with `nbf` (ours carry none; a signed one must still be honoured).
    fn with_nbf(k: &Keys, iat_s: i64, nbf_s: i64, exp_s: i64) -> String {
        let custom = AccessClaims {
            sub: Some("5".into()),
            id: None,
            roles: vec!["ROLE_USER".into()],
            iss: Some("iss".into()),
            aud: Some("aud".into()),
            kind: Some(ACCESS_TOKEN_KIND.to_owned()),
            sid: Some("f".into()),
        };
        let mut claims = Claims::new(custom);
        claims.issued_at = Some(to_datetime(iat_s * 1000));
        claims.not_before = Some(to_datetime(nbf_s * 1000));
        claims.expiration = Some(to_datetime(exp_s * 1000));
        k.sign(&claims)
    }

    #[test]
    fn a_memoised_token_gets_the_full_verifications_answer_at_every_time() {
        // First verified at a time when it is valid (so it is memoised), then asked at every
        // half second around iat, nbf and exp, forwards and backwards (a manual clock may go
        // back): the memo's answer is the full verification's each time.
        let k = keys();
        let t0 = 1_700_000_000;
        let tokens = [
            k.issue_access(7, &["ROLE_USER".into()], "fam", t0 * 1000, 60),
            with_nbf(&k, t0, t0 + 100, t0 + 200),
        ];
        for (i, t) in tokens.iter().enumerate() {
            let valid_at = if i == 0 { t0 * 1000 } else { (t0 + 150) * 1000 };
            assert!(k.verify_access(t, valid_at).is_ok());
            assert_eq!(k.verified_memo_len(), i + 1, "memoised once");
            let times: Vec<i64> = (-400..=600).map(|h| t0 * 1000 + h * 500).collect();
            for &now in times.iter().chain(times.iter().rev()) {
                assert_eq!(
                    k.verify_access(t, now),
                    k.verify_access_uncached(t, now),
                    "token {i} at {now}"
                );
            }
            assert_eq!(k.verified_memo_len(), i + 1, "asked again, not added again");
        }
        // The expired answer and the nbf refusal really come from the memo's re-check.
        assert_eq!(
            k.verify_access(&tokens[0], (t0 + 60 + LEEWAY_SECS + 1) * 1000),
            Err(AccessTokenError::Expired)
        );
        assert_eq!(
            k.verify_access(&tokens[1], (t0 + 100 - LEEWAY_SECS - 1) * 1000),
            Err(AccessTokenError::Invalid("nbf"))
        );
    }

    #[test]
    fn only_the_exact_text_of_a_verified_token_skips_the_signature_check() {
        let k = keys();
        let t = k.issue_access(7, &["ROLE_USER".into()], "fam", 0, 900);
        assert!(k.verify_access(&t, 0).is_ok());
        let other = Keys::new(&[8u8; 32], "iss", "aud");
        assert!(other.verify_access(&t, 0).is_err(), "the memo is per key");
        for i in 0..t.len() {
            let mut b = t.clone().into_bytes();
            b[i] = if b[i] == b'A' { b'B' } else { b'A' };
            let Ok(flipped) = String::from_utf8(b) else {
                continue;
            };
            if flipped == t {
                continue;
            }
            // A flip in the base64 padding bits may decode to the same bytes: then the full
            // verification accepts it too, and so may the memo; never one without the other.
            assert_eq!(
                k.verify_access(&flipped, 0).is_ok(),
                k.verify_access_uncached(&flipped, 0).is_ok(),
                "byte {i}"
            );
        }
        // Tokens refused are never memoised.
        let refused = k.verified_memo_len();
        assert!(k.verify_access("a.b.c", 0).is_err());
        assert!(k.verify_access(&t, 10_000_000).is_err());
        assert_eq!(k.verified_memo_len(), refused);
    }

    #[test]
    fn the_memo_of_verified_tokens_is_bounded() {
        let k = keys();
        for user in 0..(VERIFIED_MEMO_MAX as i64 + 10) {
            let t = k.issue_access(user, &[], "f", 0, 900);
            assert_eq!(k.verify_access(&t, 0).map(|v| v.user_id), Ok(user));
            assert!(k.verified_memo_len() <= VERIFIED_MEMO_MAX);
        }
        assert!(
            k.verified_memo_len() <= 10,
            "emptied when full, then refilled"
        );
    }

    #[test]
    fn successor_is_deterministic_and_differs_per_key() {
        let a = keys();
        let b = Keys::new(&[8u8; 32], "iss", "aud");
        assert_eq!(a.successor_of("t"), a.successor_of("t"));
        assert_ne!(a.successor_of("t"), b.successor_of("t"));
        assert_ne!(a.successor_of("t"), a.successor_of("u"));
        assert!(plausible_refresh_token(&a.successor_of("t")));
    }

    #[test]
    fn refresh_tokens_are_long_random_and_hashed() {
        let t = new_refresh_token();
        assert!(t.len() >= 22, "at least 128 bits");
        assert_ne!(t, new_refresh_token());
        assert_eq!(hash_refresh_token(&t).len(), 64);
        assert_ne!(hash_refresh_token(&t), t);
    }

    #[test]
    fn missing_secret_is_generated_with_private_permissions_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/secret.key");
        let s1 = load_or_create_secret(&path).unwrap();
        assert!(s1.len() >= MIN_SECRET_BYTES);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        assert_eq!(load_or_create_secret(&path).unwrap(), s1);
    }

    #[test]
    fn short_or_garbled_secret_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret.key");
        std::fs::write(&path, URL_SAFE_NO_PAD.encode([1u8; 31])).unwrap();
        assert!(matches!(
            load_or_create_secret(&path),
            Err(SecretError::TooShort { len: 31, .. })
        ));
        std::fs::write(&path, "not base64 !!").unwrap();
        assert!(matches!(
            load_or_create_secret(&path),
            Err(SecretError::NotBase64(_))
        ));
        std::fs::write(&path, URL_SAFE_NO_PAD.encode([1u8; 32])).unwrap();
        assert_eq!(load_or_create_secret(&path).unwrap(), vec![1u8; 32]);
    }
}
