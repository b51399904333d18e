//! Token-bucket rate limits per client IP and per bearer token, with bounded memory.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// Most keys tracked at once; past it, full (idle) buckets are forgotten first.
const MAX_KEYS: usize = 100_000;

/// A set of token buckets.
#[derive(Debug)]
pub struct Limiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl Limiter {
    /// `rate` tokens per second, at most `burst` saved up.
    pub fn new(rate: f64, burst: f64) -> Self {
        Self {
            rate,
            burst: burst.max(1.0),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Whether this limiter limits anything (a zero rate turns it off), so callers can
    /// skip building a key for it.
    pub fn is_enabled(&self) -> bool {
        self.rate > 0.0
    }

    /// Takes one token for `key`; `Err(seconds)` says how long until one is available.
    pub fn check(&self, key: &str) -> Result<(), u64> {
        if self.rate <= 0.0 {
            return Ok(());
        }
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        // Full buckets say nothing a new one would not: they go when the table is about
        // to grow, not only at the cap, so it holds the clients of the last few seconds
        // rather than every token seen since the start. Amortized O(1).
        let full = buckets.len() >= MAX_KEYS || buckets.len() == buckets.capacity();
        if full && !buckets.contains_key(key) {
            let (rate, burst) = (self.rate, self.burst);
            buckets.retain(|_, (tokens, at)| {
                *tokens + now.duration_since(*at).as_secs_f64() * rate < burst
            });
            if buckets.len() >= MAX_KEYS {
                // Everyone is busy: refuse newcomers rather than grow without bound.
                return Err(1);
            }
        }
        let (tokens, at) = buckets.entry(key.to_owned()).or_insert((self.burst, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * self.rate).min(self.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) / self.rate).ceil() as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_the_bucket_refuses_with_a_wait() {
        let limiter = Limiter::new(1.0, 3.0);
        for _ in 0..3 {
            assert!(limiter.check("1.2.3.4").is_ok());
        }
        assert_eq!(limiter.check("1.2.3.4"), Err(1));
        assert!(limiter.check("5.6.7.8").is_ok(), "buckets are per key");
    }

    #[test]
    fn idle_full_buckets_are_forgotten_as_the_table_grows() {
        let limiter = Limiter::new(1_000_000.0, 1.0);
        for n in 0..10_000 {
            limiter.check(&n.to_string()).unwrap();
            // Each bucket refills at once: none is worth keeping once the next arrives.
            std::thread::sleep(std::time::Duration::from_micros(2));
        }
        let kept = limiter.buckets.lock().unwrap().len();
        assert!(kept < 1_000, "{kept} buckets kept of 10,000 idle ones");
    }
}
