//! A per-user token bucket for the calls that spend model money (chat
//! messages from the web and Telegram), so one leaked token cannot run up a
//! family's bill. Per instance: behind a load balancer the effective limit is
//! this times the number of instances.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::domain::UserId;

/// `per_minute` requests a minute on average, bursts of up to `per_minute`.
pub struct RateLimiter {
    per_minute: u32,
    buckets: Mutex<HashMap<UserId, (f64, Instant)>>,
}

impl RateLimiter {
    /// `0` turns the limit off.
    pub fn new(per_minute: u32) -> Self {
        Self { per_minute, buckets: Mutex::new(HashMap::new()) }
    }

    /// Takes one token for `user`, or says how long until one is free.
    pub fn check(&self, user: UserId) -> Result<(), Duration> {
        self.check_at(user, Instant::now())
    }

    fn check_at(&self, user: UserId, now: Instant) -> Result<(), Duration> {
        if self.per_minute == 0 {
            return Ok(());
        }
        let capacity = f64::from(self.per_minute);
        let per_sec = capacity / 60.0;
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() > 10_000 {
            // Forget users whose buckets have refilled anyway.
            buckets.retain(|_, (tokens, at)| *tokens + now.saturating_duration_since(*at).as_secs_f64() * per_sec < capacity);
        }
        let (tokens, at) = buckets.entry(user).or_insert((capacity, now));
        *tokens = (*tokens + now.saturating_duration_since(*at).as_secs_f64() * per_sec).min(capacity);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(((1.0 - *tokens) / per_sec).max(0.001)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_allowed_then_refused_until_the_bucket_refills() {
        let limiter = RateLimiter::new(6); // one every ten seconds, bursts of six
        let (a, b) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
        let t0 = Instant::now();
        for _ in 0..6 {
            assert!(limiter.check_at(a, t0).is_ok());
        }
        let wait = limiter.check_at(a, t0).unwrap_err();
        assert!((9.0..=10.0).contains(&wait.as_secs_f64()), "{wait:?}");
        assert!(limiter.check_at(b, t0).is_ok(), "per user");
        assert!(limiter.check_at(a, t0 + Duration::from_secs(10)).is_ok(), "refilled");
        assert!(RateLimiter::new(0).check_at(a, t0).is_ok());
    }
}
