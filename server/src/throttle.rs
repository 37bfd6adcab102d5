//! Failed-login throttling that an attacker cannot turn against the account's owner, with its
//! counters in the database so that every instance on it applies one limit.
//!
//! Three counters of failed sign-ins, each over `--login-window`:
//! - per (account, client IP): the first `pair_free` failures are free; after that each attempt
//!   from that IP for that account waits 1 s, 2 s, 4 s ... (doubling, at most the window) after
//!   the last failure. Someone guessing one account from one address gets a handful of tries
//!   per window, while the owner signing in from their own address is not slowed at all.
//! - per account, from every address: a ceiling (`per_account`, default 100) against guessing
//!   spread over many addresses. Reaching it answers 429 to everyone, the owner included:
//!   that is the price of bounding distributed guessing, and it takes many addresses, since one
//!   address alone reaches only ~`pair_free` + log2(window in s) failures per window.
//! - per client IP, over every account (`per_ip`): against one address trying many accounts.
//!
//! Storage (table `login_failures`, [`Db::record_login_failure`]): one row per key with the
//! start of its window (its first failure), the failures since then and the latest one. A
//! failure is one upsert that counts it for all three keys and returns the new counters, so
//! concurrent failures at several instances are all counted; a failure after a key's window
//! ended starts a new window. (The in-memory version before slid over each failure's time; a
//! window that starts at the first failure allows at most one more window's worth right after
//! a window ends, the same bound per window.) A successful sign-in clears that account's pair
//! and account counters; the hourly purge deletes rows whose window ended.

use sha2::{Digest, Sha256};

use crate::db::{Db, FailureCount};

/// Limits of the throttle.
#[derive(Debug, Clone, Copy)]
pub struct ThrottleLimits {
    /// Failures per (account, IP) within the window before the growing delays start.
    pub pair_free: u32,
    /// Failures per account, from all IPs, within the window before 429 for everyone.
    pub per_account: u32,
    /// Failures per IP, over all accounts, within the window.
    pub per_ip: u32,
    /// Window length in ms.
    pub window_ms: i64,
}

impl Default for ThrottleLimits {
    fn default() -> Self {
        Self {
            pair_free: 5,
            per_account: 100,
            per_ip: 100,
            window_ms: 15 * 60 * 1000,
        }
    }
}

/// Records failures (in the database) and answers how long a sign-in attempt must wait.
#[derive(Debug, Clone)]
pub struct Throttle {
    limits: ThrottleLimits,
    db: Db,
}

/// Longest account name kept as it is in a key; longer ones (never a real account: sign-up
/// allows 20 characters) are keyed by their SHA-256, so a key stays small and indexable.
const MAX_KEY_ACCOUNT: usize = 64;

impl Throttle {
    /// A throttle with the given limits, counting in `db`.
    pub fn new(limits: ThrottleLimits, db: Db) -> Self {
        Self { limits, db }
    }

    /// The keys of (account, IP), account and IP, in that order.
    fn keys(account: &str, ip: &str) -> [String; 3] {
        let mut account = account.to_lowercase();
        if account.len() > MAX_KEY_ACCOUNT {
            account = format!("#{}", hex::encode(Sha256::digest(account.as_bytes())));
        }
        [
            format!("p:{ip}|{account}"),
            format!("a:{account}"),
            format!("i:{ip}"),
        ]
    }

    /// The delay after `n` failures of one (account, IP) pair, in ms (0 while free).
    pub fn pair_delay_ms(&self, n: usize) -> i64 {
        let free = self.limits.pair_free as usize;
        if n < free.max(1) {
            return 0;
        }
        let doublings = (n - free.max(1)).min(40) as u32;
        1000i64
            .saturating_mul(1i64 << doublings.min(40))
            .min(self.limits.window_ms)
    }

    /// Oldest start of a window that is still open at `now`, exclusive.
    fn cutoff(&self, now: i64) -> i64 {
        now.saturating_sub(self.limits.window_ms)
    }

    /// Seconds to wait at `now` given the counters of the three keys, or None when allowed.
    fn wait(&self, counters: &[FailureCount], now: i64) -> Option<u64> {
        let cutoff = self.cutoff(now);
        let mut wait: Option<i64> = None;
        for c in counters.iter().filter(|c| c.window_start > cutoff) {
            let n = usize::try_from(c.failures).unwrap_or(0);
            let until = match c.key.as_bytes().first() {
                Some(b'p') => {
                    let delay = self.pair_delay_ms(n);
                    (delay > 0).then(|| c.last_failure_at + delay)
                }
                Some(b'a') => (n >= self.limits.per_account.max(1) as usize)
                    .then(|| c.window_start + self.limits.window_ms),
                _ => (n >= self.limits.per_ip.max(1) as usize)
                    .then(|| c.window_start + self.limits.window_ms),
            };
            if let Some(until) = until.filter(|u| *u > now) {
                let w = until - now;
                wait = Some(wait.map_or(w, |x| x.max(w)));
            }
        }
        wait.map(|ms| ((ms + 999) / 1000).max(1) as u64)
    }

    /// Seconds to wait before another attempt for this account from this IP, or None when
    /// allowed.
    pub async fn retry_after(
        &self,
        account: &str,
        ip: &str,
        now: i64,
    ) -> Result<Option<u64>, sqlx::Error> {
        let counters = self
            .db
            .login_failures(Self::keys(account, ip), self.cutoff(now))
            .await?;
        Ok(self.wait(&counters, now))
    }

    /// Records a failed attempt; answers what the next attempt from this IP for this account
    /// will have to wait (None: nothing).
    pub async fn record_failure(
        &self,
        account: &str,
        ip: &str,
        now: i64,
    ) -> Result<Option<u64>, sqlx::Error> {
        let counters = self
            .db
            .record_login_failure(Self::keys(account, ip), now, self.cutoff(now))
            .await?;
        Ok(self.wait(&counters, now))
    }

    /// Clears the account's counters after a successful sign-in from `ip`.
    pub async fn record_success(&self, account: &str, ip: &str) -> Result<(), sqlx::Error> {
        let [pair, acct, _] = Self::keys(account, ip);
        self.db.clear_login_failures([pair, acct]).await
    }

    /// Deletes the counters whose window has ended (the hourly purge).
    pub async fn purge(&self, now: i64) -> Result<u64, sqlx::Error> {
        self.db.purge_login_failures(self.cutoff(now)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A throttle on a fresh SQLite database (kept alive by the returned folder).
    struct T(Throttle, #[allow(dead_code)] tempfile::TempDir);

    impl T {
        async fn new(limits: ThrottleLimits) -> Self {
            let dir = tempfile::tempdir().unwrap();
            let url = format!("sqlite://{}", dir.path().join("t.db").display());
            let db = Db::connect(&url, 2).await.unwrap();
            T(Throttle::new(limits, db), dir)
        }
        async fn small() -> Self {
            Self::new(ThrottleLimits {
                pair_free: 3,
                per_account: 10,
                per_ip: 20,
                window_ms: 60_000,
            })
            .await
        }
        async fn after(&self, account: &str, ip: &str, now: i64) -> Option<u64> {
            self.0.retry_after(account, ip, now).await.unwrap()
        }
        async fn fail(&self, account: &str, ip: &str, now: i64) -> Option<u64> {
            self.0.record_failure(account, ip, now).await.unwrap()
        }
    }

    #[tokio::test]
    async fn one_address_gets_growing_delays_and_the_owner_elsewhere_none() {
        let th = T::small().await;
        for i in 0..3 {
            assert_eq!(
                th.after("Bob", "6.6.6.6", i).await,
                None,
                "free failure {i}"
            );
            th.fail("bob", "6.6.6.6", i).await;
        }
        // After the free ones: 1 s, then 2 s, then 4 s after each failure.
        assert_eq!(th.after("bob", "6.6.6.6", 2).await, Some(1));
        assert_eq!(th.after("bob", "6.6.6.6", 1_002).await, None);
        assert_eq!(th.fail("bob", "6.6.6.6", 1_002).await, Some(2));
        assert_eq!(th.after("bob", "6.6.6.6", 1_003).await, Some(2));
        th.fail("bob", "6.6.6.6", 3_002).await;
        assert_eq!(th.after("bob", "6.6.6.6", 3_003).await, Some(4));
        // The owner from another address is not slowed.
        assert_eq!(th.after("bob", "1.1.1.1", 3_003).await, None);
        // The window forgets, and a failure after it starts a new one.
        assert_eq!(th.after("bob", "6.6.6.6", 70_000).await, None);
        assert_eq!(th.fail("bob", "6.6.6.6", 70_000).await, None);
        assert_eq!(th.after("bob", "6.6.6.6", 70_001).await, None);
    }

    #[tokio::test]
    async fn one_address_cannot_reach_the_account_ceiling_within_a_window() {
        let th = T::new(ThrottleLimits::default()).await;
        let (mut now, mut failures) = (0i64, 0u32);
        while now < ThrottleLimits::default().window_ms {
            match th.after("carol", "6.6.6.6", now).await {
                None => {
                    th.fail("carol", "6.6.6.6", now).await;
                    failures += 1;
                }
                Some(s) => now += s as i64 * 1000,
            }
        }
        assert!(failures < 20, "{failures} failures in one window");
        assert_eq!(th.after("carol", "1.1.1.1", now - 1).await, None);
    }

    #[tokio::test]
    async fn many_addresses_reach_the_account_ceiling() {
        let th = T::small().await;
        for i in 0..10 {
            th.fail("dora", &format!("10.0.0.{i}"), 0).await;
        }
        assert!(th.after("dora", "1.1.1.1", 1).await.is_some());
        assert!(th.after("eve", "1.1.1.1", 1).await.is_none());
    }

    #[tokio::test]
    async fn ip_is_throttled_across_accounts() {
        let th = T::small().await;
        for i in 0..20 {
            th.fail(&format!("user{i}"), "9.9.9.9", 0).await;
        }
        assert!(th.after("someone-else", "9.9.9.9", 1).await.is_some());
        assert!(th.after("someone-else", "8.8.8.8", 1).await.is_none());
    }

    #[tokio::test]
    async fn success_clears_the_account_but_not_the_ip() {
        let th = T::new(ThrottleLimits {
            per_ip: 3,
            ..ThrottleLimits::default()
        })
        .await;
        for _ in 0..3 {
            th.fail("amy", "1.2.3.4", 0).await;
        }
        th.0.record_success("amy", "1.2.3.4").await.unwrap();
        assert_eq!(th.after("amy", "1.2.3.5", 1).await, None);
        assert!(
            th.after("amy", "1.2.3.4", 1).await.is_some(),
            "the IP's count stays"
        );
    }

    #[tokio::test]
    async fn long_names_get_small_distinct_keys_and_the_purge_drops_ended_windows() {
        let th = T::small().await;
        let (a, b) = ("x".repeat(5000), format!("{}y", "x".repeat(4999)));
        for _ in 0..3 {
            th.fail(&a, "5.5.5.5", 0).await;
        }
        assert!(th.after(&a, "5.5.5.5", 1).await.is_some());
        assert!(th.after(&b, "5.5.5.5", 1).await.is_none());
        let keys = Throttle::keys(&a, "5.5.5.5");
        assert!(keys.iter().all(|k| k.len() < 100), "{keys:?}");
        assert_eq!(th.0.purge(59_999).await.unwrap(), 0);
        assert_eq!(th.0.purge(60_000).await.unwrap(), 3);
    }
}
