//! Where the BFF keeps what the browser must never hold: the upstream tokens of each session and
//! the PKCE verifier of each sign-in under way, in the database (so every instance on it shares
//! them), sealed with XChaCha20-Poly1305 under a key derived from `--secret-file`.
//!
//! - `bff_sessions`: one row per browser session, keyed by the SHA-256 of the cookie's random
//!   value (the value itself is never stored). `sealed` is the tokens' JSON, encrypted with the
//!   row's key as associated data, so a sealed blob copied into another row does not open.
//!   `version` goes up at every refresh: a refresh decides under the row lock whether someone
//!   else refreshed first (the single flight across instances, [`crate::bff::proxy`]).
//! - `bff_logins`: one row per sign-in under way (`state`'s hash), ten minutes at most, taken
//!   (deleted) by its callback, so a state is used once even when two instances see the callback.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::{AnyPool, Row};

use crate::db::{Backend, Db};

/// Sealed blobs start with this (a later key or algorithm gets `v2.`).
const SEAL_VERSION: &str = "v1.";

/// The AEAD key of the token store: HKDF-SHA256 of the server secret, its own `info`, so it is
/// independent of the access-token signing key derived from the same secret.
#[derive(Clone)]
pub struct Sealer {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(..)")
    }
}

/// A sealed blob did not open (wrong key, wrong row, altered).
#[derive(Debug, thiserror::Error)]
#[error("sealed data does not open: {0}")]
pub struct OpenError(&'static str);

impl Sealer {
    /// The key for `secret` (the bytes of `--secret-file`).
    pub fn new(secret: &[u8]) -> Self {
        let hk = hkdf::Hkdf::<Sha256>::new(Some(b"yew-session/session-api"), secret);
        let mut key = [0u8; 32];
        hk.expand(b"bff token store v1 (XChaCha20-Poly1305)", &mut key)
            .expect("32 bytes is a valid HKDF-SHA256 length");
        Self {
            cipher: XChaCha20Poly1305::new(&key.into()),
        }
    }

    /// `v1.` + base64url(nonce ‖ ciphertext ‖ tag), bound to `context`.
    pub fn seal(&self, plaintext: &[u8], context: &str) -> String {
        let mut nonce = [0u8; 24];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let ct = self
            .cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: context.as_bytes(),
                },
            )
            .expect("XChaCha20-Poly1305 encryption does not fail for in-memory data");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        format!("{SEAL_VERSION}{}", URL_SAFE_NO_PAD.encode(out))
    }

    /// The plaintext of [`Sealer::seal`]'s output, if it was sealed with this key for `context`.
    pub fn open(&self, sealed: &str, context: &str) -> Result<Vec<u8>, OpenError> {
        let b64 = sealed
            .strip_prefix(SEAL_VERSION)
            .ok_or(OpenError("unknown version"))?;
        let raw = URL_SAFE_NO_PAD
            .decode(b64)
            .map_err(|_| OpenError("not base64url"))?;
        if raw.len() < 24 + 16 {
            return Err(OpenError("too short"));
        }
        let (nonce, ct) = raw.split_at(24);
        self.cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ct,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| OpenError("authentication failed"))
    }
}

/// SHA-256 hex of a browser-held random value (cookie, state): what the tables key on.
pub fn hash_id(value: &str) -> String {
    hex::encode(Sha256::digest(value.as_bytes()))
}

/// The associated data of a session's sealed tokens.
fn session_context(id_hash: &str) -> String {
    format!("bff_sessions:{id_hash}")
}

fn login_context(state_hash: &str) -> String {
    format!("bff_logins:{state_hash}")
}

/// The upstream tokens of one session (never sent to the browser).
#[derive(Clone, Serialize, Deserialize)]
pub struct Tokens {
    /// The upstream access token.
    pub access_token: String,
    /// The upstream refresh token, if the provider issued one.
    pub refresh_token: Option<String>,
    /// The latest ID token (for logout's `id_token_hint`, never shown).
    pub id_token: Option<String>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tokens(..)")
    }
}

/// The user as the ID token described them (shown by `/api/bff/session`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct BffUser {
    /// `sub`.
    pub sub: String,
    /// `name` (or `preferred_username`).
    pub name: Option<String>,
    /// `email`.
    pub email: Option<String>,
    /// `roles`, or Keycloak's `realm_access.roles`.
    pub roles: Vec<String>,
}

/// One `bff_sessions` row, opened.
#[derive(Debug, Clone)]
pub struct SessionRow {
    /// Hash of the cookie value.
    pub id_hash: String,
    /// The user.
    pub user: BffUser,
    /// The tokens (decrypted).
    pub tokens: Tokens,
    /// Refresh counter / compare-and-set version.
    pub version: i64,
    /// When the upstream access token expires (ms).
    pub access_expires_at: i64,
    /// When it was issued (ms; the refresh margin is a quarter of its lifetime, at most 30 s).
    pub access_issued_at: i64,
    /// Sign-in (ms).
    pub created_at: i64,
    /// Last refresh (ms), if any.
    pub refreshed_at: Option<i64>,
    /// Refreshes so far.
    pub refresh_count: i64,
    /// End of the session's absolute lifetime (ms).
    pub expires_at: i64,
}

impl SessionRow {
    /// When the proxy refreshes before use: at expiry minus a quarter of the token's lifetime,
    /// at most 30 s before.
    pub fn refresh_due_at(&self) -> i64 {
        let lifetime = (self.access_expires_at - self.access_issued_at).max(0);
        self.access_expires_at - (lifetime / 4).min(30_000)
    }
}

/// A sign-in under way, taken by its callback.
#[derive(Debug, Clone)]
pub struct LoginRow {
    /// Hash of the binding cookie's value (the browser that started the sign-in).
    pub binding_hash: String,
    /// PKCE verifier.
    pub code_verifier: String,
    /// `nonce`.
    pub nonce: String,
    /// Where to send the browser afterwards (a same-origin path).
    pub return_to: String,
    /// Expiry (ms).
    pub expires_at: i64,
}

/// A sign-in to store ([`Store::put_login`]).
#[derive(Debug, Clone, Copy)]
pub struct NewLogin<'a> {
    /// Hash of `state`.
    pub state_hash: &'a str,
    /// Hash of the binding cookie's value.
    pub binding_hash: &'a str,
    /// PKCE verifier (sealed).
    pub code_verifier: &'a str,
    /// `nonce` (sealed).
    pub nonce: &'a str,
    /// Same-origin path to return to.
    pub return_to: &'a str,
    /// Now (ms).
    pub now: i64,
    /// Expiry (ms).
    pub expires_at: i64,
}

#[derive(Serialize, Deserialize)]
struct LoginSecrets {
    code_verifier: String,
    nonce: String,
}

/// The BFF's tables.
#[derive(Debug, Clone)]
pub struct Store {
    db: Db,
    sealer: Sealer,
}

const SESSION_COLUMNS: &str = "id_hash, sub, claims, sealed, version, access_expires_at, \
     access_issued_at, created_at, refreshed_at, refresh_count, expires_at";

impl Store {
    /// On `db`, sealing with `sealer`.
    pub fn new(db: Db, sealer: Sealer) -> Self {
        Self { db, sealer }
    }

    /// The database.
    pub fn db(&self) -> &Db {
        &self.db
    }

    fn pool(&self) -> &AnyPool {
        self.db.pool()
    }

    /// The sealer.
    pub fn sealer(&self) -> &Sealer {
        &self.sealer
    }

    /// Stores a sign-in under way (and drops the expired ones).
    pub async fn put_login(&self, l: NewLogin<'_>) -> Result<(), sqlx::Error> {
        let NewLogin {
            state_hash,
            binding_hash,
            code_verifier,
            nonce,
            return_to,
            now,
            expires_at,
        } = l;
        let secrets = serde_json::to_vec(&LoginSecrets {
            code_verifier: code_verifier.to_owned(),
            nonce: nonce.to_owned(),
        })
        .expect("json");
        let sealed = self.sealer.seal(&secrets, &login_context(state_hash));
        let (pool, state_hash, binding_hash, return_to) = (
            self.pool().clone(),
            state_hash.to_owned(),
            binding_hash.to_owned(),
            return_to.to_owned(),
        );
        // In a task of its own: a dropped request never cuts a statement (src/db/mod.rs).
        spawn(async move {
            sqlx::query("DELETE FROM bff_logins WHERE expires_at <= $1")
                .bind(now)
                .execute(&pool)
                .await?;
            sqlx::query(
                "INSERT INTO bff_logins (state_hash, binding_hash, sealed, return_to, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(state_hash)
            .bind(binding_hash)
            .bind(sealed)
            .bind(return_to)
            .bind(now)
            .bind(expires_at)
            .execute(&pool)
            .await?;
            Ok(())
        })
        .await
    }

    /// Takes (deletes and returns) the sign-in of `state_hash`: at most one caller gets it.
    pub async fn take_login(&self, state_hash: &str) -> Result<Option<LoginRow>, sqlx::Error> {
        let (pool, key) = (self.pool().clone(), state_hash.to_owned());
        let row = spawn(async move {
            sqlx::query(
                "DELETE FROM bff_logins WHERE state_hash = $1 \
                 RETURNING binding_hash, sealed, return_to, expires_at",
            )
            .bind(key)
            .fetch_optional(&pool)
            .await
        })
        .await?;
        let Some(row) = row else { return Ok(None) };
        let sealed: String = row.try_get("sealed")?;
        let secrets: LoginSecrets = self
            .sealer
            .open(&sealed, &login_context(state_hash))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| sqlx::Error::Decode("a bff_logins row does not open".into()))?;
        Ok(Some(LoginRow {
            binding_hash: row.try_get("binding_hash")?,
            code_verifier: secrets.code_verifier,
            nonce: secrets.nonce,
            return_to: row.try_get("return_to")?,
            expires_at: row.try_get("expires_at")?,
        }))
    }

    /// Seals `tokens` for the session `id_hash`.
    pub fn seal_tokens(&self, id_hash: &str, tokens: &Tokens) -> String {
        self.sealer.seal(
            &serde_json::to_vec(tokens).expect("json"),
            &session_context(id_hash),
        )
    }

    /// A new session.
    pub async fn create_session(&self, row: &SessionRow) -> Result<(), sqlx::Error> {
        let sealed = self.seal_tokens(&row.id_hash, &row.tokens);
        let claims = serde_json::to_string(&row.user).expect("json");
        let (pool, r) = (self.pool().clone(), row.clone());
        spawn(async move {
            sqlx::query(
                "INSERT INTO bff_sessions (id_hash, sub, claims, sealed, version, access_expires_at, \
                 access_issued_at, created_at, refreshed_at, refresh_count, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, 0, $9)",
            )
            .bind(r.id_hash)
            .bind(r.user.sub)
            .bind(claims)
            .bind(sealed)
            .bind(r.version)
            .bind(r.access_expires_at)
            .bind(r.access_issued_at)
            .bind(r.created_at)
            .bind(r.expires_at)
            .execute(&pool)
            .await?;
            Ok(())
        })
        .await
    }

    /// Opens a fetched row.
    pub fn open_row(&self, row: &sqlx::any::AnyRow) -> Result<SessionRow, sqlx::Error> {
        let id_hash: String = row.try_get("id_hash")?;
        let sealed: String = row.try_get("sealed")?;
        let tokens: Tokens = self
            .sealer
            .open(&sealed, &session_context(&id_hash))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| sqlx::Error::Decode("a bff_sessions row does not open".into()))?;
        let claims: String = row.try_get("claims")?;
        let user: BffUser = serde_json::from_str(&claims)
            .map_err(|e| sqlx::Error::Decode(format!("bff_sessions.claims: {e}").into()))?;
        Ok(SessionRow {
            id_hash,
            user,
            tokens,
            version: row.try_get("version")?,
            access_expires_at: row.try_get("access_expires_at")?,
            access_issued_at: row.try_get("access_issued_at")?,
            created_at: row.try_get("created_at")?,
            refreshed_at: row.try_get("refreshed_at")?,
            refresh_count: row.try_get("refresh_count")?,
            expires_at: row.try_get("expires_at")?,
        })
    }

    /// The live session of `id_hash` (an expired one is deleted and not returned).
    pub async fn session(
        &self,
        id_hash: &str,
        now: i64,
    ) -> Result<Option<SessionRow>, sqlx::Error> {
        let (pool, key) = (self.pool().clone(), id_hash.to_owned());
        let row = spawn(async move {
            sqlx::query(&format!(
                "SELECT {SESSION_COLUMNS} FROM bff_sessions WHERE id_hash = $1"
            ))
            .bind(key)
            .fetch_optional(&pool)
            .await
        })
        .await?;
        let Some(row) = row else { return Ok(None) };
        let s = self.open_row(&row)?;
        if s.expires_at <= now {
            self.delete_session(id_hash).await?;
            return Ok(None);
        }
        Ok(Some(s))
    }

    /// Deletes one session; whether it existed.
    pub async fn delete_session(&self, id_hash: &str) -> Result<bool, sqlx::Error> {
        let (pool, key) = (self.pool().clone(), id_hash.to_owned());
        spawn(async move {
            let r = sqlx::query("DELETE FROM bff_sessions WHERE id_hash = $1")
                .bind(key)
                .execute(&pool)
                .await?;
            Ok(r.rows_affected() > 0)
        })
        .await
    }

    /// Every session of `sub` (for "sign out everywhere").
    pub async fn sessions_of(&self, sub: &str) -> Result<Vec<SessionRow>, sqlx::Error> {
        let (pool, sub) = (self.pool().clone(), sub.to_owned());
        let rows = spawn(async move {
            sqlx::query(&format!(
                "SELECT {SESSION_COLUMNS} FROM bff_sessions WHERE sub = $1"
            ))
            .bind(sub)
            .fetch_all(&pool)
            .await
        })
        .await?;
        rows.iter().map(|r| self.open_row(r)).collect()
    }

    /// Deletes the sessions past their absolute lifetime and the sign-ins past their ten
    /// minutes: (sessions, sign-ins) deleted.
    pub async fn purge_expired(&self, now: i64) -> Result<(u64, u64), sqlx::Error> {
        let pool = self.pool().clone();
        spawn(async move {
            let s = sqlx::query("DELETE FROM bff_sessions WHERE expires_at <= $1")
                .bind(now)
                .execute(&pool)
                .await?;
            let l = sqlx::query("DELETE FROM bff_logins WHERE expires_at <= $1")
                .bind(now)
                .execute(&pool)
                .await?;
            Ok((s.rows_affected(), l.rows_affected()))
        })
        .await
    }

    /// Whether this is PostgreSQL (row locks) or SQLite.
    pub fn backend(&self) -> Backend {
        self.db.backend()
    }
}

/// Runs database work in a task of its own (the request may be dropped; the work is not).
pub(crate) async fn spawn<T: Send + 'static>(
    work: impl std::future::Future<Output = Result<T, sqlx::Error>> + Send + 'static,
) -> Result<T, sqlx::Error> {
    match tokio::spawn(work).await {
        Ok(r) => r,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => Err(sqlx::Error::Protocol(format!(
            "database task ended early: {e}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_data_opens_only_with_its_key_and_its_row() {
        let s = Sealer::new(&[7u8; 32]);
        let blob = s.seal(b"refresh-token-123", "bff_sessions:a");
        assert!(blob.starts_with("v1."));
        assert!(!blob.contains("refresh-token-123"));
        assert_eq!(
            s.open(&blob, "bff_sessions:a").unwrap(),
            b"refresh-token-123"
        );
        assert!(s.open(&blob, "bff_sessions:b").is_err(), "another row");
        assert!(
            Sealer::new(&[8u8; 32])
                .open(&blob, "bff_sessions:a")
                .is_err(),
            "another key"
        );
        let mut bad = blob.clone().into_bytes();
        let n = bad.len() - 3;
        bad[n] = if bad[n] == b'A' { b'B' } else { b'A' };
        assert!(s
            .open(std::str::from_utf8(&bad).unwrap(), "bff_sessions:a")
            .is_err());
        assert_ne!(
            s.seal(b"x", "c"),
            s.seal(b"x", "c"),
            "fresh nonce each time"
        );
    }
}
