//! When the service does things: the next full collection (interval plus random splay), the
//! next heartbeat attestation, and the delay before retrying a failed delivery (exponential
//! backoff with jitter, or the server's Retry-After).
//!
//! Pure arithmetic on [`Instant`]s and durations, plus the system random source (ring's
//! `SystemRandom`) for splay and jitter, so a fleet started together spreads out.

use std::time::{Duration, Instant};

use ring::rand::{SecureRandom, SystemRandom};

/// A uniformly random duration in `[0, max]` (millisecond resolution).
pub fn random_up_to(max: Duration) -> Duration {
    let max_ms = max.as_millis().min(u64::MAX as u128) as u64;
    if max_ms == 0 {
        return Duration::ZERO;
    }
    let mut bytes = [0u8; 8];
    // The system random source does not fail on Linux; without it, no jitter (still correct).
    if SystemRandom::new().fill(&mut bytes).is_err() {
        return Duration::ZERO;
    }
    Duration::from_millis(u64::from_le_bytes(bytes) % (max_ms + 1))
}

/// The full-collection schedule.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub interval: Duration,
    pub splay: Duration,
    pub heartbeat: Option<Duration>,
}

impl Schedule {
    /// The next scheduled full collection after one that happened at `now`.
    pub fn next_full(&self, now: Instant) -> Instant {
        now + self.interval + random_up_to(self.splay)
    }

    /// When an attestation is due if no report is made after `last_report`.
    pub fn next_heartbeat(&self, last_report: Instant) -> Option<Instant> {
        self.heartbeat.map(|h| last_report + h)
    }
}

/// Exponential backoff with jitter for failed deliveries.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    failures: u32,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Backoff {
        Backoff {
            initial: initial.max(Duration::from_millis(1)),
            max: max.max(initial),
            failures: 0,
        }
    }

    /// The delay after one more failure: half of `initial * 2^failures` (capped at `max`) plus
    /// a random part up to the other half ("equal jitter": never zero, never in lockstep).
    pub fn next_delay(&mut self) -> Duration {
        let exp = self.initial.saturating_mul(1u32 << self.failures.min(20));
        self.failures = self.failures.saturating_add(1);
        let ceiling = exp.min(self.max);
        ceiling / 2 + random_up_to(ceiling / 2)
    }

    /// The delay the server asked for (Retry-After), capped at `max`; counts as a failure.
    pub fn retry_after(&mut self, asked: Duration) -> Duration {
        self.failures = self.failures.saturating_add(1);
        asked.min(self.max)
    }

    /// A delivery succeeded: the next failure starts from `initial` again.
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    #[cfg(test)]
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splay_stays_within_its_bound_and_varies() {
        let schedule = Schedule {
            interval: Duration::from_secs(3600),
            splay: Duration::from_secs(300),
            heartbeat: None,
        };
        let now = Instant::now();
        let nexts: Vec<Duration> = (0..50).map(|_| schedule.next_full(now) - now).collect();
        assert!(nexts.iter().all(|d| *d >= Duration::from_secs(3600)));
        assert!(nexts.iter().all(|d| *d <= Duration::from_secs(3900)));
        assert!(nexts.iter().any(|d| *d != nexts[0]), "splay is random");
        assert_eq!(random_up_to(Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_cap_and_resets() {
        let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(10));
        let delays: Vec<Duration> = (0..8).map(|_| backoff.next_delay()).collect();
        let bounds = [1, 2, 4, 8, 10, 10, 10, 10];
        for (delay, bound) in delays.iter().zip(bounds) {
            let bound = Duration::from_secs(bound);
            assert!(
                *delay >= bound / 2 && *delay <= bound,
                "{delay:?} not in [{:?}, {bound:?}]",
                bound / 2
            );
        }
        assert_eq!(backoff.failures(), 8);
        backoff.reset();
        assert!(backoff.next_delay() <= Duration::from_secs(1));
    }

    #[test]
    fn retry_after_is_honoured_but_capped() {
        let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
        assert_eq!(
            backoff.retry_after(Duration::from_secs(7)),
            Duration::from_secs(7)
        );
        assert_eq!(
            backoff.retry_after(Duration::from_secs(3600)),
            Duration::from_secs(60)
        );
    }

    #[test]
    fn heartbeat_is_off_when_not_configured() {
        let now = Instant::now();
        let mut schedule = Schedule {
            interval: Duration::from_secs(60),
            splay: Duration::ZERO,
            heartbeat: None,
        };
        assert_eq!(schedule.next_heartbeat(now), None);
        schedule.heartbeat = Some(Duration::from_secs(5));
        assert_eq!(
            schedule.next_heartbeat(now),
            Some(now + Duration::from_secs(5))
        );
        assert_eq!(schedule.next_full(now), now + Duration::from_secs(60));
    }
}
