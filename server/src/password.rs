//! argon2id password hashing on a bounded blocking pool.
//!
//! Each computation holds 19 MiB; a semaphore caps how many run at once, so a sign-in burst
//! queues instead of exhausting memory or the blocking thread pool. Unknown users are verified
//! against a dummy hash so they cost the same as a wrong password.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

use crate::error::ApiError;

/// Memory cost in KiB (19 MiB, the OWASP minimum for argon2id with t=2).
pub const M_COST_KIB: u32 = 19 * 1024;
/// Iterations.
pub const T_COST: u32 = 2;
/// Parallelism.
pub const P_COST: u32 = 1;

/// The production argon2id instance.
pub fn argon2() -> Argon2<'static> {
    Argon2::new(
        Algorithm::Argon2id,
        Version::V0x13,
        Params::new(M_COST_KIB, T_COST, P_COST, None).expect("valid argon2 parameters"),
    )
}

/// Hashes and verifies passwords with at most `permits` computations at a time.
#[derive(Clone)]
pub struct Passwords {
    permits: Arc<Semaphore>,
    concurrency: usize,
    dummy_hash: Arc<str>,
    verifications: Arc<AtomicU64>,
}

impl std::fmt::Debug for Passwords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Passwords")
            .field("available", &self.permits.available_permits())
            .finish()
    }
}

fn hash_now(password: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

impl Passwords {
    /// A pool allowing `concurrency` simultaneous argon2id computations.
    pub fn new(concurrency: usize) -> Self {
        let dummy = hash_now("dummy password for unknown users").expect("argon2 hashing works");
        Self {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            concurrency: concurrency.max(1),
            dummy_hash: dummy.into(),
            verifications: Arc::new(AtomicU64::new(0)),
        }
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| ApiError::Internal(format!("hash pool closed: {e}")))?;
        // The permit moves into the blocking task: a request dropped mid-hash (client gone,
        // timeout) stops waiting, but the 19 MiB computation keeps its permit until it ends, so
        // hung-up sign-ins cannot pile up more hashes than the bound.
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            f()
        })
        .await
        .map_err(|e| ApiError::Internal(format!("hash task failed: {e}")))
    }

    /// How many argon2id computations hold a permit now (those of requests already gone
    /// included: they run to their end).
    pub fn in_flight(&self) -> usize {
        self.concurrency
            .saturating_sub(self.permits.available_permits())
    }

    /// How many argon2id verifications ran (an unknown user must cost one too).
    pub fn verifications(&self) -> u64 {
        self.verifications.load(Ordering::Relaxed)
    }

    /// Hashes a new password (PHC string, argon2id m=19 MiB t=2 p=1).
    pub async fn hash(&self, password: String) -> Result<String, ApiError> {
        self.run(move || hash_now(&password))
            .await?
            .map_err(ApiError::Internal)
    }

    /// Verifies `password` against `hash`, or against the dummy hash when `hash` is None
    /// (unknown user), which then always fails after the same amount of work.
    pub async fn verify(&self, password: String, hash: Option<String>) -> Result<bool, ApiError> {
        let known = hash.is_some();
        self.verifications.fetch_add(1, Ordering::Relaxed);
        let hash = hash.unwrap_or_else(|| self.dummy_hash.to_string());
        let ok = self
            .run(move || match PasswordHash::new(&hash) {
                // Verify with the production parameters' algorithm; the PHC string carries its own
                // m/t/p, so hashes made with older parameters still verify.
                Ok(parsed) => argon2()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok(),
                Err(_) => false,
            })
            .await?;
        Ok(ok && known)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_are_argon2id_with_the_required_parameters() {
        let p = Passwords::new(1);
        let h = p.hash("correct horse".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(p
            .verify("correct horse".into(), Some(h.clone()))
            .await
            .unwrap());
        assert!(!p.verify("wrong horse".into(), Some(h)).await.unwrap());
    }

    #[tokio::test]
    async fn unknown_user_is_never_verified_even_with_the_dummy_password() {
        let p = Passwords::new(1);
        assert!(!p
            .verify("dummy password for unknown users".into(), None)
            .await
            .unwrap());
    }

    #[tokio::test]
    async fn a_cancelled_caller_keeps_the_permit_until_its_hash_ends() {
        let p = Passwords::new(1);
        let started = Arc::new(std::sync::Barrier::new(2));
        let release = Arc::new(std::sync::Barrier::new(2));
        let (s2, r2) = (started.clone(), release.clone());
        let caller = tokio::spawn({
            let p = p.clone();
            async move {
                p.run(move || {
                    s2.wait();
                    r2.wait();
                })
                .await
            }
        });
        tokio::task::spawn_blocking(move || started.wait())
            .await
            .unwrap();
        caller.abort();
        let _ = caller.await;
        // The caller is gone but its computation still runs: no second one may start.
        let free_while_hashing = p.permits.available_permits();
        tokio::task::spawn_blocking(move || release.wait())
            .await
            .unwrap();
        assert_eq!(free_while_hashing, 0);
        let second = tokio::time::timeout(std::time::Duration::from_secs(5), p.run(|| 7)).await;
        assert_eq!(second.unwrap().unwrap(), 7);
    }

    #[tokio::test]
    async fn concurrency_is_bounded_by_the_permits() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let p = Passwords::new(2);
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (p, running, peak) = (p.clone(), running.clone(), peak.clone());
            tasks.push(tokio::spawn(async move {
                p.run(move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    running.fetch_sub(1, Ordering::SeqCst);
                })
                .await
                .unwrap()
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert!(peak.load(Ordering::SeqCst) <= 2);
    }
}
