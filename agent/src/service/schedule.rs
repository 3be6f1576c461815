//! When the service does things: the schedule chosen from the configuration and what the
//! server expects, the next full collection (interval plus random splay), the next heartbeat
//! attestation, and the delay before retrying a failed delivery (exponential backoff with
//! jitter, or the server's Retry-After).
//!
//! Pure arithmetic on [`Instant`]s and durations, plus the system random source (ring's
//! `SystemRandom`) for splay and jitter, so a fleet started together spreads out.

use std::time::{Duration, Instant};

use ring::rand::{SecureRandom, SystemRandom};

use crate::config::{ScheduleConfig, FALLBACK_HEARTBEAT_SECS, FALLBACK_INTERVAL_SECS};
use crate::state::Enrollment;

/// A derived heartbeat is this fraction of the server's report interval: the host reports
/// several times per interval whatever the splay, and the server's default hour gives the
/// agent's historical 15 minutes.
const HEARTBEATS_PER_SERVER_INTERVAL: u32 = 4;

/// When the server expects reports, as it said at enrollment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerExpectation {
    pub report_interval: Duration,
    /// Intervals without a report after which the server calls the host stale; `None` when the
    /// enrollment predates the agent storing it.
    pub stale_after_intervals: Option<u32>,
}

impl ServerExpectation {
    /// What `enroll` stored; `None` for a server that gave no usable interval.
    pub fn from_enrollment(enrollment: &Enrollment) -> Option<ServerExpectation> {
        (enrollment.report_interval_secs > 0).then(|| ServerExpectation {
            report_interval: Duration::from_secs(enrollment.report_interval_secs),
            stale_after_intervals: enrollment.stale_after_intervals,
        })
    }

    /// How long the server waits for a report before the host is stale, when known.
    pub fn stale_after(&self) -> Option<Duration> {
        self.stale_after_intervals
            .map(|n| self.report_interval.saturating_mul(n))
    }
}

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
    /// The schedule `run` follows. Keys set in the configuration win; a key left out follows
    /// the server (a full collection every report interval, a heartbeat a quarter of it), or
    /// the fallbacks (3600 s, 900 s) with no server interval. The splay never exceeds the
    /// interval, so the interval keeps its meaning.
    pub fn choose(config: &ScheduleConfig, server: Option<&ServerExpectation>) -> Schedule {
        let interval = match (config.interval_secs, server) {
            (Some(secs), _) => Duration::from_secs(secs),
            (None, Some(server)) => server.report_interval,
            (None, None) => Duration::from_secs(FALLBACK_INTERVAL_SECS),
        };
        let heartbeat = match (config.heartbeat_secs, server) {
            (Some(0), _) => None,
            (Some(secs), _) => Some(Duration::from_secs(secs)),
            (None, Some(server)) => Some(server.report_interval / HEARTBEATS_PER_SERVER_INTERVAL),
            (None, None) => Some(Duration::from_secs(FALLBACK_HEARTBEAT_SECS)),
        };
        Schedule {
            interval,
            splay: Duration::from_secs(config.splay_secs).min(interval),
            heartbeat,
        }
    }

    /// The longest this schedule lets the host go without a report (an attestation counts).
    pub fn longest_silence(&self) -> Duration {
        let between_full = self.interval + self.splay;
        self.heartbeat
            .map_or(between_full, |heartbeat| heartbeat.min(between_full))
    }

    /// Why the server would see this host stale under this schedule, if it would.
    pub fn stale_warning(&self, server: &ServerExpectation) -> Option<String> {
        let stale_after = server.stale_after()?;
        (self.longest_silence() >= stale_after).then(|| {
            format!(
                "this host can go {} s without reporting (schedule.interval_secs {} s plus splay {} s, \
                 heartbeat {}), but the server calls a host stale after {} s without a report \
                 ({} s interval x {}): leave schedule.interval_secs and schedule.heartbeat_secs \
                 out of the configuration to follow the server",
                self.longest_silence().as_secs(),
                self.interval.as_secs(),
                self.splay.as_secs(),
                self.heartbeat
                    .map_or("off".to_string(), |h| format!("{} s", h.as_secs())),
                stale_after.as_secs(),
                server.report_interval.as_secs(),
                server.stale_after_intervals.unwrap_or_default(),
            )
        })
    }

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

    fn server(interval_secs: u64, stale_after_intervals: Option<u32>) -> ServerExpectation {
        ServerExpectation {
            report_interval: Duration::from_secs(interval_secs),
            stale_after_intervals,
        }
    }

    fn config(interval_secs: Option<u64>, heartbeat_secs: Option<u64>) -> ScheduleConfig {
        ScheduleConfig {
            interval_secs,
            heartbeat_secs,
            ..ScheduleConfig::default()
        }
    }

    #[test]
    fn without_explicit_settings_the_agent_follows_the_servers_interval() {
        let server = server(60, Some(3));
        let schedule = Schedule::choose(&ScheduleConfig::default(), Some(&server));
        assert_eq!(schedule.interval, Duration::from_secs(60));
        let heartbeat = schedule.heartbeat.expect("heartbeat on");
        assert!(heartbeat <= Duration::from_secs(30), "{heartbeat:?}");
        assert!(heartbeat > Duration::ZERO);
        assert!(schedule.longest_silence() < server.report_interval);
        assert_eq!(schedule.stale_warning(&server), None);
    }

    #[test]
    fn the_servers_default_hour_gives_the_historical_quarter_hour_heartbeat() {
        let schedule = Schedule::choose(&ScheduleConfig::default(), Some(&server(3600, Some(3))));
        assert_eq!(schedule.interval, Duration::from_secs(3600));
        assert_eq!(schedule.heartbeat, Some(Duration::from_secs(900)));
        assert_eq!(schedule.splay, Duration::from_secs(300));
    }

    #[test]
    fn the_splay_never_exceeds_the_interval() {
        let schedule = Schedule::choose(&ScheduleConfig::default(), Some(&server(3, Some(3))));
        assert_eq!(schedule.splay, Duration::from_secs(3));
        let now = Instant::now();
        assert!((0..50).all(|_| schedule.next_full(now) - now <= Duration::from_secs(6)));
    }

    #[test]
    fn explicit_operator_settings_win_over_the_server() {
        let schedule = Schedule::choose(&config(Some(7200), Some(600)), Some(&server(60, Some(3))));
        assert_eq!(schedule.interval, Duration::from_secs(7200));
        assert_eq!(schedule.heartbeat, Some(Duration::from_secs(600)));
        let heartbeat_off = Schedule::choose(&config(None, Some(0)), Some(&server(60, Some(3))));
        assert_eq!(heartbeat_off.interval, Duration::from_secs(60));
        assert_eq!(heartbeat_off.heartbeat, None);
    }

    #[test]
    fn without_a_server_interval_the_fallbacks_apply() {
        let schedule = Schedule::choose(&ScheduleConfig::default(), None);
        assert_eq!(
            schedule.interval,
            Duration::from_secs(FALLBACK_INTERVAL_SECS)
        );
        assert_eq!(
            schedule.heartbeat,
            Some(Duration::from_secs(FALLBACK_HEARTBEAT_SECS))
        );
    }

    #[test]
    fn an_explicit_schedule_that_would_go_stale_on_the_server_warns() {
        // The server calls the host stale after 3 x 60 s = 180 s without a report.
        let server = server(60, Some(3));
        let hourly_no_heartbeat = Schedule::choose(&config(Some(3600), Some(0)), Some(&server));
        let warning = hourly_no_heartbeat.stale_warning(&server).expect("warns");
        assert!(warning.contains("180 s"), "{warning}");
        let heartbeat_at_threshold =
            Schedule::choose(&config(Some(3600), Some(180)), Some(&server));
        assert!(heartbeat_at_threshold.stale_warning(&server).is_some());
        // A heartbeat inside the threshold keeps the host fresh despite the long interval.
        let kept_fresh = Schedule::choose(&config(Some(3600), Some(120)), Some(&server));
        assert_eq!(kept_fresh.stale_warning(&server), None);
    }

    #[test]
    fn an_enrollment_without_a_stale_threshold_follows_the_server_without_warning() {
        let server = server(60, None);
        let schedule = Schedule::choose(&config(Some(86_400), Some(0)), Some(&server));
        assert_eq!(schedule.stale_warning(&server), None);
        let followed = Schedule::choose(&ScheduleConfig::default(), Some(&server));
        assert_eq!(followed.interval, Duration::from_secs(60));
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
