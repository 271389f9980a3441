//! When and where a failed report goes next: exponential backoff, and round robin over the
//! collectors that skips the ones that just failed.

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

/// Round robin over the collectors. One that fails is skipped for a while, as long as
/// another is not known to be failing.
#[derive(Debug)]
pub(crate) struct Endpoints {
    next: usize,
    failing_until: Vec<Option<Instant>>,
}

impl Endpoints {
    pub(crate) fn new(count: usize) -> Self {
        assert!(count > 0, "at least one collector");
        Endpoints {
            next: 0,
            failing_until: vec![None; count],
        }
    }

    fn healthy(&self, endpoint: usize, now: Instant) -> bool {
        self.failing_until[endpoint].is_none_or(|until| until <= now)
    }

    /// The collector for the next attempt: the next healthy one in turn that this report has
    /// not tried yet, else the next healthy one, else the next untried one, else the next.
    pub(crate) fn pick(&mut self, now: Instant, tried: &[usize]) -> usize {
        let count = self.failing_until.len();
        let order: Vec<usize> = (0..count).map(|i| (self.next + i) % count).collect();
        let untried = |e: &usize| !tried.contains(e);
        let choice = order
            .iter()
            .copied()
            .find(|e| self.healthy(*e, now) && untried(e))
            .or_else(|| order.iter().copied().find(|e| self.healthy(*e, now)))
            .or_else(|| order.iter().copied().find(untried))
            .unwrap_or(order[0]);
        self.next = (choice + 1) % count;
        choice
    }

    /// Whether a healthy collector that this report has not tried is available now.
    pub(crate) fn has_fresh(&self, now: Instant, tried: &[usize]) -> bool {
        (0..self.failing_until.len()).any(|e| self.healthy(e, now) && !tried.contains(&e))
    }

    pub(crate) fn failed(&mut self, endpoint: usize, until: Instant) {
        self.failing_until[endpoint] = Some(until);
    }

    pub(crate) fn succeeded(&mut self, endpoint: usize) {
        self.failing_until[endpoint] = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let ms = Duration::from_millis;
        let waits: Vec<Duration> = (1..=6).map(|n| backoff(n, ms(500), ms(2500))).collect();
        assert_eq!(
            waits,
            [ms(500), ms(1000), ms(2000), ms(2500), ms(2500), ms(2500)]
        );
        assert_eq!(
            backoff(40, ms(1), Duration::from_secs(1)),
            Duration::from_secs(1)
        );
        assert_eq!(backoff(0, ms(500), ms(2500)), ms(500));
    }

    #[test]
    fn round_robin_skips_failing_collectors() {
        let now = Instant::now();
        let later = now + Duration::from_secs(10);
        let mut endpoints = Endpoints::new(3);
        let picks: Vec<usize> = (0..4).map(|_| endpoints.pick(now, &[])).collect();
        assert_eq!(picks, [0, 1, 2, 0]);
        endpoints.failed(1, later);
        let picks: Vec<usize> = (0..4).map(|_| endpoints.pick(now, &[])).collect();
        assert_eq!(picks, [2, 0, 2, 0]);
        // Once its time is up, it is back in turn.
        assert_eq!(endpoints.pick(later, &[]), 1);
        endpoints.succeeded(1);
        assert_eq!(endpoints.pick(now, &[]), 2);
    }

    #[test]
    fn a_retry_goes_elsewhere() {
        let now = Instant::now();
        let mut endpoints = Endpoints::new(2);
        assert_eq!(endpoints.pick(now, &[]), 0);
        endpoints.failed(0, now + Duration::from_secs(1));
        assert!(endpoints.has_fresh(now, &[0]));
        assert_eq!(endpoints.pick(now, &[0]), 1);
        endpoints.failed(1, now + Duration::from_secs(1));
        assert!(!endpoints.has_fresh(now, &[0, 1]));
        // Everything failed: still pick one, in turn.
        assert_eq!(endpoints.pick(now, &[0, 1]), 0);
        // One collector: always it.
        let mut single = Endpoints::new(1);
        single.failed(0, now + Duration::from_secs(1));
        assert_eq!(single.pick(now, &[0]), 0);
    }
}
