//! Login throttling: failed logins slow their own source down, never the real user.
//!
//! Each failed login counts against two keys: the login name from that client address,
//! and the client address alone (many names tried from one place). Past a number of free
//! failures, each further attempt on a key must wait twice as long as the last, up to a
//! ceiling; the wait is answered with 429 `too_many_attempts` and `Retry-After`, before
//! any password is hashed, so a throttled guesser costs the server nothing. A successful
//! login clears its name-and-address key.
//!
//! Nothing is counted per login name alone: that key is what lets a stranger lock the
//! real user out, by failing on purpose from anywhere. Guessing one password from many
//! addresses is bounded by each address's own budget and by the cost of the hash.
//! Addresses are IPv6 /64 networks (one subscriber's allocation) and IPv4 hosts.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::Digest;

/// How many failures are free and how long the waits grow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoginLimits {
    /// Failures of one login name from one address before waits begin (0 = no throttle).
    pub free_per_name: u32,
    /// Failures from one address, any names, before waits begin (0 = no throttle).
    pub free_per_address: u32,
    /// The longest wait.
    pub max_wait: Duration,
    /// Failures older than this are forgotten.
    pub forget_after: Duration,
}

impl Default for LoginLimits {
    fn default() -> Self {
        Self {
            free_per_name: 5,
            free_per_address: 30,
            max_wait: Duration::from_secs(15 * 60),
            forget_after: Duration::from_secs(60 * 60),
        }
    }
}

/// Most keys tracked; past it, forgotten and harmless ones go first.
const MAX_KEYS: usize = 100_000;

#[derive(Clone, Copy, Debug)]
struct Failures {
    count: u32,
    last: Instant,
}

/// Failed logins per key, bounded in memory.
#[derive(Debug)]
pub struct LoginThrottle {
    limits: LoginLimits,
    failures: Mutex<HashMap<[u8; 16], Failures>>,
}

/// Which login an attempt is: a kind of account (staff, customer), its tenant and the
/// name typed, from an address.
#[derive(Clone, Copy, Debug)]
pub struct Attempt<'a> {
    /// `staff` or `account`: the same name in both is two logins.
    pub kind: &'static str,
    /// The tenant, as text.
    pub tenant: &'a str,
    /// The login name as typed (compared without case).
    pub name: &'a str,
    /// The client's address.
    pub ip: IpAddr,
}

impl Attempt<'_> {
    /// The address as throttled: an IPv6 address's /64 network.
    fn address(&self) -> String {
        match self.ip {
            IpAddr::V6(v6) => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
            v4 => v4.to_string(),
        }
    }

    /// Keys are digests: names typed at a login form stay out of memory dumps.
    fn keys(&self) -> ([u8; 16], [u8; 16]) {
        let address = self.address();
        let digest = |text: String| -> [u8; 16] {
            let full = sha2::Sha256::digest(text.as_bytes());
            let mut key = [0u8; 16];
            key.copy_from_slice(&full[..16]);
            key
        };
        (
            digest(format!(
                "name\0{}\0{}\0{}\0{address}",
                self.kind,
                self.tenant,
                self.name.trim().to_lowercase()
            )),
            digest(format!("address\0{address}")),
        )
    }
}

impl LoginThrottle {
    /// A throttle with these limits.
    pub fn new(limits: LoginLimits) -> Self {
        Self {
            limits,
            failures: Mutex::new(HashMap::new()),
        }
    }

    fn failures(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 16], Failures>> {
        self.failures.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How long `failures` past `free` must wait after the last one, if at all.
    fn wait(&self, failures: Option<&Failures>, free: u32, now: Instant) -> Option<Duration> {
        let f = failures?;
        if free == 0 || f.count < free || now.duration_since(f.last) >= self.limits.forget_after {
            return None;
        }
        let doublings = (f.count - free).min(30);
        let wait = Duration::from_secs(1u64 << doublings).min(self.limits.max_wait);
        let passed = now.duration_since(f.last);
        (passed < wait).then(|| wait - passed)
    }

    /// `Err(seconds)` when this attempt must wait that long first: answer 429 without
    /// checking the password.
    pub fn check(&self, attempt: &Attempt<'_>) -> Result<(), u64> {
        let (name, address) = attempt.keys();
        let now = Instant::now();
        let failures = self.failures();
        let wait = [
            self.wait(failures.get(&name), self.limits.free_per_name, now),
            self.wait(failures.get(&address), self.limits.free_per_address, now),
        ]
        .into_iter()
        .flatten()
        .max();
        match wait {
            Some(wait) => Err(wait.as_secs_f64().ceil().max(1.0) as u64),
            None => Ok(()),
        }
    }

    /// Counts a failed attempt against its keys.
    pub fn failed(&self, attempt: &Attempt<'_>) {
        let (name, address) = attempt.keys();
        let now = Instant::now();
        let forget = self.limits.forget_after;
        let mut failures = self.failures();
        if failures.len() + 2 > MAX_KEYS {
            failures.retain(|_, f| now.duration_since(f.last) < forget);
        }
        if failures.len() + 2 > MAX_KEYS {
            // Still full: keys that impose no wait yet go first.
            let free = self.limits.free_per_name.min(self.limits.free_per_address);
            failures.retain(|_, f| f.count >= free);
        }
        if failures.len() + 2 > MAX_KEYS {
            // Every key imposes a wait: keep the half with the most failures.
            let mut counts: Vec<u32> = failures.values().map(|f| f.count).collect();
            counts.sort_unstable();
            let median = counts[counts.len() / 2];
            failures.retain(|_, f| f.count > median);
        }
        for key in [name, address] {
            let f = failures.entry(key).or_insert(Failures {
                count: 0,
                last: now,
            });
            if now.duration_since(f.last) >= forget {
                f.count = 0;
            }
            f.count = f.count.saturating_add(1);
            f.last = now;
        }
    }

    /// A successful login clears its name from that address (not the address's own
    /// count: logging in to one's own account between guesses must not reset it).
    pub fn succeeded(&self, attempt: &Attempt<'_>) {
        let (name, _) = attempt.keys();
        self.failures().remove(&name);
    }

    /// How many keys are tracked (for tests and metrics).
    pub fn tracked(&self) -> usize {
        self.failures().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt<'a>(name: &'a str, ip: &str) -> Attempt<'a> {
        Attempt {
            kind: "staff",
            tenant: "t",
            name,
            ip: ip.parse().unwrap(),
        }
    }

    #[test]
    fn waits_begin_after_the_free_failures_and_double() {
        let throttle = LoginThrottle::new(LoginLimits {
            free_per_name: 3,
            ..LoginLimits::default()
        });
        let a = attempt("Ann@Acme.example", "192.0.2.1");
        for _ in 0..3 {
            assert_eq!(throttle.check(&a), Ok(()));
            throttle.failed(&a);
        }
        assert_eq!(throttle.check(&a), Err(1));
        throttle.failed(&a);
        assert_eq!(throttle.check(&a), Err(2));
        throttle.failed(&a);
        assert_eq!(throttle.check(&a), Err(4));
        // The same name in another case is the same login.
        assert_eq!(
            throttle.check(&attempt("ann@acme.example", "192.0.2.1")),
            Err(4)
        );
    }

    #[test]
    fn another_address_and_another_name_are_not_held_up() {
        let throttle = LoginThrottle::new(LoginLimits {
            free_per_name: 2,
            free_per_address: 100,
            ..LoginLimits::default()
        });
        let attacker = attempt("ann", "198.51.100.7");
        for _ in 0..10 {
            throttle.failed(&attacker);
        }
        assert!(throttle.check(&attacker).is_err());
        // Ann at her own address logs in as ever: no lockout by a stranger.
        assert_eq!(throttle.check(&attempt("ann", "192.0.2.1")), Ok(()));
        assert_eq!(throttle.check(&attempt("bob", "198.51.100.7")), Ok(()));
    }

    #[test]
    fn many_names_from_one_address_are_held_up_and_success_does_not_reset_that() {
        let throttle = LoginThrottle::new(LoginLimits {
            free_per_name: 100,
            free_per_address: 5,
            ..LoginLimits::default()
        });
        for i in 0..5 {
            throttle.failed(&attempt(&format!("user{i}"), "2001:db8:1:2::10"));
        }
        // Another address in the same /64 is the same source.
        let next = attempt("user9", "2001:db8:1:2::99");
        assert_eq!(throttle.check(&next), Err(1));
        throttle.succeeded(&attempt("mine", "2001:db8:1:2::10"));
        assert_eq!(throttle.check(&next), Err(1));
        // Another /64 is not.
        assert_eq!(throttle.check(&attempt("user9", "2001:db8:1:3::1")), Ok(()));
    }

    #[test]
    fn success_clears_the_name_and_memory_stays_bounded() {
        let throttle = LoginThrottle::new(LoginLimits {
            free_per_name: 1,
            ..LoginLimits::default()
        });
        let a = attempt("ann", "192.0.2.1");
        throttle.failed(&a);
        throttle.failed(&a);
        assert!(throttle.check(&a).is_err());
        throttle.succeeded(&a);
        assert_eq!(throttle.check(&a), Ok(()));

        for i in 0..(MAX_KEYS as u32) {
            let ip = std::net::Ipv4Addr::from(0x0a00_0000 + i).to_string();
            throttle.failed(&attempt("x", &ip));
        }
        assert!(throttle.tracked() <= MAX_KEYS, "{}", throttle.tracked());
    }
}
