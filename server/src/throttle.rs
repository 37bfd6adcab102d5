//! Failed-login throttling that an attacker cannot turn against the account's owner
//! (sliding windows, in memory).
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
//! A successful sign-in clears that account's pair and account counters. In memory is enough
//! for one instance (several instances each apply the limits: see the scale-out issue). The map
//! is pruned so it cannot grow without bound.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

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

/// Records failures and answers how long a sign-in attempt must wait.
#[derive(Debug)]
pub struct Throttle {
    limits: ThrottleLimits,
    failures: Mutex<HashMap<String, VecDeque<i64>>>,
}

const MAX_KEYS: usize = 100_000;
/// Failures kept per (account, IP): enough for the longest delay the window allows.
const PAIR_KEEP: usize = 64;

#[derive(Clone, Copy)]
enum Kind {
    Pair,
    Account,
    Ip,
}

impl Throttle {
    /// A throttle with the given limits.
    pub fn new(limits: ThrottleLimits) -> Self {
        Self {
            limits,
            failures: Mutex::new(HashMap::new()),
        }
    }

    fn keys(account: &str, ip: &str) -> [(String, Kind); 3] {
        let account = account.to_lowercase();
        [
            (format!("p:{ip}|{account}"), Kind::Pair),
            (format!("a:{account}"), Kind::Account),
            (format!("i:{ip}"), Kind::Ip),
        ]
    }

    fn keep(&self, kind: Kind) -> usize {
        match kind {
            Kind::Pair => PAIR_KEEP,
            Kind::Account => self.limits.per_account.max(1) as usize,
            Kind::Ip => self.limits.per_ip.max(1) as usize,
        }
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

    /// Seconds to wait before another attempt for this account from this IP, or None when
    /// allowed.
    pub fn retry_after(&self, account: &str, ip: &str, now: i64) -> Option<u64> {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let mut wait: Option<i64> = None;
        for (key, kind) in Self::keys(account, ip) {
            let Some(q) = map.get_mut(&key) else { continue };
            while q.front().is_some_and(|t| *t <= now - self.limits.window_ms) {
                q.pop_front();
            }
            let until = match kind {
                Kind::Pair => {
                    let delay = self.pair_delay_ms(q.len());
                    (delay > 0).then(|| q.back().copied().unwrap_or(now) + delay)
                }
                Kind::Account | Kind::Ip => (q.len() >= self.keep(kind))
                    .then(|| q.front().copied().unwrap_or(now) + self.limits.window_ms),
            };
            if let Some(until) = until.filter(|u| *u > now) {
                let w = until - now;
                wait = Some(wait.map_or(w, |x| x.max(w)));
            }
        }
        wait.map(|ms| ((ms + 999) / 1000).max(1) as u64)
    }

    /// Records a failed attempt.
    pub fn record_failure(&self, account: &str, ip: &str, now: i64) {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_KEYS {
            let cutoff = now - self.limits.window_ms;
            map.retain(|_, q| q.back().is_some_and(|t| *t > cutoff));
        }
        for (key, kind) in Self::keys(account, ip) {
            let cap = self.keep(kind);
            let q = map.entry(key).or_default();
            q.push_back(now);
            while q.len() > cap {
                q.pop_front();
            }
        }
    }

    /// Clears the account's counters after a successful sign-in from `ip`.
    pub fn record_success(&self, account: &str, ip: &str) {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let [pair, acct, _] = Self::keys(account, ip);
        map.remove(&pair.0);
        map.remove(&acct.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t() -> Throttle {
        Throttle::new(ThrottleLimits {
            pair_free: 3,
            per_account: 10,
            per_ip: 20,
            window_ms: 60_000,
        })
    }

    #[test]
    fn one_address_gets_growing_delays_and_the_owner_elsewhere_none() {
        let th = t();
        for i in 0..3 {
            assert_eq!(
                th.retry_after("Bob", "6.6.6.6", i),
                None,
                "free failure {i}"
            );
            th.record_failure("bob", "6.6.6.6", i);
        }
        // After the free ones: 1 s, then 2 s, then 4 s after each failure.
        assert_eq!(th.retry_after("bob", "6.6.6.6", 2), Some(1));
        assert_eq!(th.retry_after("bob", "6.6.6.6", 1_002), None);
        th.record_failure("bob", "6.6.6.6", 1_002);
        assert_eq!(th.retry_after("bob", "6.6.6.6", 1_003), Some(2));
        th.record_failure("bob", "6.6.6.6", 3_002);
        assert_eq!(th.retry_after("bob", "6.6.6.6", 3_003), Some(4));
        // The owner from another address is not slowed.
        assert_eq!(th.retry_after("bob", "1.1.1.1", 3_003), None);
        // The window forgets.
        assert_eq!(th.retry_after("bob", "6.6.6.6", 70_000), None);
    }

    #[test]
    fn one_address_cannot_reach_the_account_ceiling_within_a_window() {
        let th = Throttle::new(ThrottleLimits::default());
        let (mut now, mut failures) = (0i64, 0u32);
        while now < ThrottleLimits::default().window_ms {
            match th.retry_after("carol", "6.6.6.6", now) {
                None => {
                    th.record_failure("carol", "6.6.6.6", now);
                    failures += 1;
                }
                Some(s) => now += s as i64 * 1000,
            }
        }
        assert!(failures < 20, "{failures} failures in one window");
        assert_eq!(th.retry_after("carol", "1.1.1.1", now - 1), None);
    }

    #[test]
    fn many_addresses_reach_the_account_ceiling() {
        let th = t();
        for i in 0..10 {
            th.record_failure("dora", &format!("10.0.0.{i}"), 0);
        }
        assert!(th.retry_after("dora", "1.1.1.1", 1).is_some());
        assert!(th.retry_after("eve", "1.1.1.1", 1).is_none());
    }

    #[test]
    fn ip_is_throttled_across_accounts() {
        let th = t();
        for i in 0..20 {
            th.record_failure(&format!("user{i}"), "9.9.9.9", 0);
        }
        assert!(th.retry_after("someone-else", "9.9.9.9", 1).is_some());
        assert!(th.retry_after("someone-else", "8.8.8.8", 1).is_none());
    }

    #[test]
    fn success_clears_the_account_but_not_the_ip() {
        let th = t();
        for _ in 0..3 {
            th.record_failure("amy", "1.2.3.4", 0);
        }
        th.record_success("amy", "1.2.3.4");
        assert_eq!(th.retry_after("amy", "1.2.3.4", 1), None);
    }
}
