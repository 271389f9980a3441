//! Where the next report goes: the collectors' health. A collector that fails (an error, a
//! timeout) leaves the rotation for a backoff that doubles with each failure in a row; when
//! the backoff is over it gets one report as a probe, and is back in rotation once a report
//! succeeds. Reports go to the healthy collector with the fewest reports in flight, so a
//! slow or hung one, which keeps its reports, gets no more while another answers.

use std::time::{Duration, Instant};

/// The wait before attempt `failed + 1`, after `failed` failed attempts: `base`, doubling,
/// at most `cap`.
pub(crate) fn backoff(failed: u32, base: Duration, cap: Duration) -> Duration {
    let factor = 1u32 << failed.saturating_sub(1).min(16);
    base.saturating_mul(factor).min(cap)
}

/// `t + d`, or a time too far away to matter when that does not fit.
pub(crate) fn after(t: Instant, d: Duration) -> Instant {
    t.checked_add(d)
        .or_else(|| t.checked_add(Duration::from_secs(100 * 365 * 24 * 3600)))
        .unwrap_or(t)
}

/// One collector's health.
#[derive(Clone, Copy, Debug, Default)]
struct Health {
    /// Failures in a row; 0 when healthy.
    failures: u32,
    /// When a failing collector may be probed.
    retry_at: Option<Instant>,
    /// Reports being sent to it.
    in_flight: usize,
}

impl Health {
    /// Whether a report may go there now: healthy, or failing with its backoff over and no
    /// report (the probe) in flight.
    fn usable(&self, now: Instant) -> bool {
        match self.retry_at {
            None => true,
            Some(at) => at <= now && self.in_flight == 0,
        }
    }
}

/// The collectors' health, and the turn.
#[derive(Debug)]
pub(crate) struct Endpoints {
    next: usize,
    health: Vec<Health>,
    base: Duration,
    cap: Duration,
}

impl Endpoints {
    /// `count` collectors, all healthy; failures back off from `base`, doubling up to `cap`.
    pub(crate) fn new(count: usize, base: Duration, cap: Duration) -> Self {
        assert!(count > 0, "at least one collector");
        Endpoints {
            next: 0,
            health: vec![Health::default(); count],
            base,
            cap,
        }
    }

    /// The collector for a report's next attempt, if one may take it now: among the usable
    /// ones but `busy` (those the report is in flight at), preferably one this report has
    /// not tried, with the fewest reports in flight, in turn. `None` when every other
    /// collector is backing off or probed.
    pub(crate) fn pick(&mut self, now: Instant, tried: &[usize], busy: &[usize]) -> Option<usize> {
        let count = self.health.len();
        let choice = (0..count)
            .map(|i| (self.next + i) % count)
            .filter(|e| !busy.contains(e) && self.health[*e].usable(now))
            .min_by_key(|e| (tried.contains(e), self.health[*e].in_flight))?;
        self.next = (choice + 1) % count;
        self.health[choice].in_flight += 1;
        Some(choice)
    }

    /// A report to `endpoint` succeeded.
    pub(crate) fn succeeded(&mut self, endpoint: usize) {
        let health = &mut self.health[endpoint];
        health.in_flight -= 1;
        health.failures = 0;
        health.retry_at = None;
    }

    /// A report to `endpoint` failed: it backs off.
    pub(crate) fn failed(&mut self, endpoint: usize, now: Instant) {
        let health = &mut self.health[endpoint];
        health.in_flight -= 1;
        health.failures += 1;
        health.retry_at = Some(after(now, backoff(health.failures, self.base, self.cap)));
    }

    /// A failed `endpoint` is not probed before `at` (a `Retry-After`), whatever its backoff.
    pub(crate) fn wait(&mut self, endpoint: usize, at: Instant) {
        let health = &mut self.health[endpoint];
        health.retry_at = Some(health.retry_at.map_or(at, |r| r.max(at)));
    }

    /// A report to `endpoint` ended without an answer that says anything about it.
    pub(crate) fn abandoned(&mut self, endpoint: usize) {
        self.health[endpoint].in_flight -= 1;
    }

    /// When a collector that is backing off may next be probed.
    pub(crate) fn next_probe(&self) -> Option<Instant> {
        self.health
            .iter()
            .filter(|h| h.in_flight == 0)
            .filter_map(|h| h.retry_at)
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let waits: Vec<Duration> = (1..=6).map(|n| backoff(n, MS(500), MS(2500))).collect();
        assert_eq!(
            waits,
            [MS(500), MS(1000), MS(2000), MS(2500), MS(2500), MS(2500)]
        );
        assert_eq!(
            backoff(40, MS(1), Duration::from_secs(1)),
            Duration::from_secs(1)
        );
        assert_eq!(backoff(0, MS(500), MS(2500)), MS(500));
    }

    #[test]
    fn reports_go_in_turn_to_the_least_busy() {
        let now = Instant::now();
        let mut endpoints = Endpoints::new(3, MS(100), MS(1000));
        let picks: Vec<Option<usize>> = (0..3).map(|_| endpoints.pick(now, &[], &[])).collect();
        assert_eq!(picks, [Some(0), Some(1), Some(2)]);
        endpoints.succeeded(1);
        endpoints.succeeded(2);
        // 0 still has its report in flight (hung, perhaps): the others take the next ones.
        let picks: Vec<Option<usize>> = (0..2)
            .map(|_| {
                let pick = endpoints.pick(now, &[], &[]);
                endpoints.succeeded(pick.unwrap());
                pick
            })
            .collect();
        assert_eq!(picks, [Some(1), Some(2)]);
    }

    #[test]
    fn a_failing_collector_backs_off_and_is_probed_back_in() {
        let now = Instant::now();
        let mut endpoints = Endpoints::new(2, MS(100), MS(1000));
        assert_eq!(endpoints.pick(now, &[], &[]), Some(0));
        endpoints.failed(0, now);
        // A retry goes elsewhere, and so does everything while 0 backs off.
        assert_eq!(endpoints.pick(now, &[0], &[]), Some(1));
        endpoints.succeeded(1);
        assert_eq!(endpoints.pick(now, &[], &[]), Some(1));
        endpoints.succeeded(1);
        assert_eq!(endpoints.next_probe(), Some(now + MS(100)));
        // Backoff over: one probe, and nothing else while it is out.
        let later = now + MS(100);
        assert_eq!(endpoints.pick(later, &[], &[]), Some(0));
        assert_eq!(endpoints.pick(later, &[], &[]), Some(1));
        assert_eq!(endpoints.pick(later, &[], &[]), Some(1));
        endpoints.failed(0, later);
        assert_eq!(endpoints.next_probe(), Some(later + MS(200)));
        let probe = later + MS(200);
        assert_eq!(endpoints.pick(probe, &[1], &[]), Some(0));
        endpoints.succeeded(0);
        assert_eq!(endpoints.next_probe(), None);
    }

    #[test]
    fn a_hedge_goes_to_another_collector_or_nowhere() {
        let now = Instant::now();
        let mut endpoints = Endpoints::new(2, MS(100), MS(1000));
        assert_eq!(endpoints.pick(now, &[], &[]), Some(0));
        // The report is in flight at 0: its hedge goes to 1 even though 1 is busier.
        assert_eq!(endpoints.pick(now, &[], &[]), Some(1));
        assert_eq!(endpoints.pick(now, &[], &[0]), Some(1));
        endpoints.failed(1, now);
        assert_eq!(endpoints.pick(now, &[], &[0]), None);
        let mut single = Endpoints::new(1, MS(100), MS(1000));
        assert_eq!(single.pick(now, &[], &[0]), None);
    }

    #[test]
    fn when_every_collector_backs_off_reports_wait() {
        let now = Instant::now();
        let mut single = Endpoints::new(1, MS(100), MS(1000));
        assert_eq!(single.pick(now, &[], &[]), Some(0));
        single.failed(0, now);
        assert_eq!(single.pick(now, &[0], &[]), None);
        assert_eq!(single.pick(now + MS(100), &[0], &[]), Some(0));
        single.abandoned(0);
        assert_eq!(single.next_probe(), Some(now + MS(100)));
    }
}
