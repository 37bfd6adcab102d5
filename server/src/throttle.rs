//! Failed-login throttling per account and per client IP (sliding window, in memory).
//!
//! In memory is enough for one instance; several instances behind a balancer each apply the
//! limit (documented as a known limitation). The map is pruned so it cannot grow without bound.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// Limits of the throttle.
#[derive(Debug, Clone, Copy)]
pub struct ThrottleLimits {
    /// Failures per account within the window.
    pub per_account: u32,
    /// Failures per IP within the window.
    pub per_ip: u32,
    /// Window length in ms.
    pub window_ms: i64,
}

impl Default for ThrottleLimits {
    fn default() -> Self {
        Self {
            per_account: 10,
            per_ip: 100,
            window_ms: 15 * 60 * 1000,
        }
    }
}

/// Records failures and answers how long a key must wait.
#[derive(Debug)]
pub struct Throttle {
    limits: ThrottleLimits,
    failures: Mutex<HashMap<String, VecDeque<i64>>>,
}

const MAX_KEYS: usize = 100_000;

impl Throttle {
    /// A throttle with the given limits.
    pub fn new(limits: ThrottleLimits) -> Self {
        Self {
            limits,
            failures: Mutex::new(HashMap::new()),
        }
    }

    fn keys(account: &str, ip: &str) -> [(String, u32); 2] {
        [
            (format!("a:{}", account.to_lowercase()), 0),
            (format!("i:{ip}"), 1),
        ]
    }

    fn limit(&self, which: u32) -> u32 {
        if which == 0 {
            self.limits.per_account
        } else {
            self.limits.per_ip
        }
    }

    /// Seconds to wait before another attempt for this account/IP, or None when allowed.
    pub fn retry_after(&self, account: &str, ip: &str, now: i64) -> Option<u64> {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let mut wait: Option<i64> = None;
        for (key, which) in Self::keys(account, ip) {
            if let Some(q) = map.get_mut(&key) {
                while q.front().is_some_and(|t| *t <= now - self.limits.window_ms) {
                    q.pop_front();
                }
                if q.len() >= self.limit(which) as usize {
                    let oldest = *q.front().unwrap_or(&now);
                    let w = oldest + self.limits.window_ms - now;
                    wait = Some(wait.map_or(w, |x| x.max(w)));
                }
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
        for (key, which) in Self::keys(account, ip) {
            let cap = self.limit(which) as usize;
            let q = map.entry(key).or_default();
            q.push_back(now);
            while q.len() > cap.max(1) {
                q.pop_front();
            }
        }
    }

    /// Clears the account's failures after a successful sign-in.
    pub fn record_success(&self, account: &str) {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(&format!("a:{}", account.to_lowercase()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t() -> Throttle {
        Throttle::new(ThrottleLimits {
            per_account: 3,
            per_ip: 5,
            window_ms: 60_000,
        })
    }

    #[test]
    fn account_is_throttled_after_its_limit_and_released_after_the_window() {
        let th = t();
        for i in 0..3 {
            assert_eq!(th.retry_after("Bob", "1.1.1.1", i), None);
            th.record_failure("bob", "1.1.1.1", i);
        }
        assert_eq!(th.retry_after("BOB", "2.2.2.2", 10_000), Some(50));
        assert_eq!(th.retry_after("bob", "2.2.2.2", 60_001), None);
    }

    #[test]
    fn ip_is_throttled_across_accounts() {
        let th = t();
        for i in 0..5 {
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
        th.record_success("amy");
        assert_eq!(th.retry_after("amy", "4.3.2.1", 1), None);
    }
}
