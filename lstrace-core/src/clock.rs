//! Time: raw ticks of a monotonic counter on the hot path; their conversion to wall-clock time
//! off it, on a time line that is re-anchored to the wall clock as spans are drained.
//!
//! A span reads the clock twice, so the reading must be as cheap as the machine allows: where
//! quanta found an invariant time-stamp counter a reading is one `rdtsc`; elsewhere it is
//! quanta's monotonic clock in nanoseconds. Readings stay raw ticks until the span is drained.
//!
//! The [`Timeline`] turns ticks into nanoseconds since the Unix epoch. It is a list of anchors,
//! readings of the counter and of the wall clock taken together; between two anchors a tick
//! is placed by interpolation, after the last one by extrapolation at the last measured rate.
//! A counter's rate is only known to a few hundred ppm from a short calibration, so one
//! anchor taken at start drifts from the wall clock by up to a millisecond a few seconds
//! later; anchors taken at every drain (at most every [`ANCHOR_INTERVAL_NANOS`]) keep every
//! tick within a few microseconds of the wall clock, at any uptime, and measure the rate
//! over whole intervals.
//!
//! The readings of one span (start, logs, end) are converted with one segment of the line,
//! that of its first reading, while they are less than [`OWN_SEGMENT_FROM_NANOS`] from it: a
//! short span's duration is then measured at one rate, even when it straddles an anchor. A
//! reading further away is placed with its own segment, so that the end and the logs of a
//! span lasting hours are on the wall clock too (one rate extrapolated over hours would
//! carry its small error that far). Logs are never placed before their span's start.

use once_cell::sync::Lazy;
use quanta::Clock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{PoisonError, RwLock, RwLockReadGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A raw reading of the monotonic clock; only differences of readings mean anything.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Ticks(pub(crate) u64);

/// Nanoseconds per tick, as a 32.32 fixed-point number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Rate(u64);

impl Rate {
    /// The rate of `ticks` ticks lasting `nanos` nanoseconds (`None` if either is zero).
    pub(crate) fn measured(ticks: u64, nanos: u64) -> Option<Rate> {
        if ticks == 0 || nanos == 0 {
            return None;
        }
        let q = (u128::from(nanos) << 32) / u128::from(ticks);
        u64::try_from(q).ok().filter(|&q| q > 0).map(Rate)
    }

    /// Nanoseconds in `ticks` ticks.
    #[inline]
    pub(crate) fn nanos(self, ticks: u64) -> u64 {
        let n = (u128::from(ticks) * u128::from(self.0)) >> 32;
        u64::try_from(n).unwrap_or(u64::MAX)
    }

    /// How far `self` is from `other`, in parts per million of `other`.
    fn ppm_from(self, other: Rate) -> u64 {
        let diff = u128::from(self.0.abs_diff(other.0));
        u64::try_from(diff * 1_000_000 / u128::from(other.0.max(1))).unwrap_or(u64::MAX)
    }
}

/// A reading of the counter and of the wall clock, taken together.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Anchor {
    pub(crate) ticks: u64,
    pub(crate) unix_nanos: u64,
}

/// A stretch of the time line: from `anchor` on, at `rate`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Segment {
    anchor: Anchor,
    rate: Rate,
}

impl Segment {
    /// Nanoseconds since the Unix epoch of a tick, on this segment's line (extended both ways).
    #[inline]
    pub(crate) fn unix_nanos(&self, at: Ticks) -> u64 {
        let Anchor { ticks, unix_nanos } = self.anchor;
        if at.0 >= ticks {
            unix_nanos.saturating_add(self.rate.nanos(at.0 - ticks))
        } else {
            unix_nanos.saturating_sub(self.rate.nanos(ticks - at.0))
        }
    }
}

/// A wall clock that moves at a rate this far from the counter's last measured rate has been
/// stepped (set by hand, or stepped by NTP), not slewed: NTP slews by at most 500 ppm.
const STEP_PPM: u64 = 1000;

/// The most anchors kept. When full, every other one of the older half goes: old ticks are
/// then interpolated over longer intervals, still between exact readings of the wall clock.
const MAX_ANCHORS: usize = 4096;

/// Anchors are at least this far apart (100 ms): the rate between two anchors is measured
/// over at least this long, so that the error of one reading weighs little.
pub(crate) const ANCHOR_INTERVAL_NANOS: u64 = 100_000_000;

/// Readings of a span at least this far (1 s) from its first one are placed with their own
/// segment of the line: the anchors' error then weighs under a ppm in the span's duration.
pub(crate) const OWN_SEGMENT_FROM_NANOS: u64 = 1_000_000_000;

/// The rate of the counter against the wall clock from one anchor to a later one (`None` if
/// either clock did not move forward).
fn stretch_rate(from: Anchor, to: Anchor) -> Option<Rate> {
    let nanos = to.unix_nanos.checked_sub(from.unix_nanos)?;
    Rate::measured(to.ticks.checked_sub(from.ticks)?, nanos)
}

/// The map from ticks to wall-clock time: anchors, and the rate of each stretch between two.
pub(crate) struct Timeline {
    /// Ordered by ticks; never empty. `segments[i].rate` runs from anchor `i` to anchor
    /// `i + 1` (for the last one: the rate measured last, extrapolated).
    segments: Vec<Segment>,
    /// The rate of the last stretch, when it was too far from the rate before to be taken.
    doubted: Option<Rate>,
}

impl Timeline {
    /// A time line that starts at `anchor` with a calibrated `rate`.
    pub(crate) fn new(anchor: Anchor, rate: Rate) -> Timeline {
        Timeline {
            segments: vec![Segment { anchor, rate }],
            doubted: None,
        }
    }

    /// A time line that starts at `first`, at the rate measured from `first` to `second`
    /// (`fallback` if the wall clock did not move forward between them).
    pub(crate) fn calibrated(first: Anchor, second: Anchor, fallback: Rate) -> Timeline {
        let rate = stretch_rate(first, second).unwrap_or(fallback);
        let mut timeline = Timeline::new(first, rate);
        timeline.anchor(second);
        timeline
    }

    fn last(&self) -> &Segment {
        &self.segments[self.segments.len() - 1]
    }

    /// The rate measured last.
    pub(crate) fn rate(&self) -> Rate {
        self.last().rate
    }

    /// Ticks since the last anchor (zero for a reading older than it).
    pub(crate) fn ticks_since_anchor(&self, now: Ticks) -> u64 {
        now.0.saturating_sub(self.last().anchor.ticks)
    }

    /// Adds an anchor: the stretch from the last one gets the rate measured across it, and
    /// ticks from `anchor` on are extrapolated at that rate until the next anchor. A reading
    /// that is not later than the last one on both clocks is ignored, and so is the rate of a
    /// stretch across which the wall clock stepped (the stretch keeps the rate before it).
    pub(crate) fn anchor(&mut self, anchor: Anchor) {
        let last = *self.last();
        if anchor.ticks <= last.anchor.ticks {
            return;
        }
        let rate = match stretch_rate(last.anchor, anchor) {
            Some(measured) if measured.ppm_from(last.rate) <= STEP_PPM => {
                self.doubted = None;
                measured
            }
            // Two stretches in a row at one rate far from the one before: the counter's rate
            // was wrong (a poor first calibration), the wall clock did not step twice.
            Some(measured)
                if self
                    .doubted
                    .is_some_and(|d| measured.ppm_from(d) <= STEP_PPM / 10) =>
            {
                self.doubted = None;
                measured
            }
            measured => {
                self.doubted = measured;
                last.rate
            }
        };
        let end = self.segments.len() - 1;
        self.segments[end].rate = rate;
        self.segments.push(Segment { anchor, rate });
        if self.segments.len() > MAX_ANCHORS {
            self.thin();
        }
    }

    /// Removes every other anchor of the older half (never the first), and re-measures the
    /// rate across the stretches that merged.
    fn thin(&mut self) {
        let half = self.segments.len() / 2;
        let mut kept: Vec<Segment> = Vec::with_capacity(self.segments.len());
        for (i, segment) in self.segments.iter().enumerate() {
            if i >= half || i % 2 == 0 {
                kept.push(*segment);
            }
        }
        let merged = half.div_ceil(2).min(kept.len() - 1);
        for i in 0..merged {
            let (from, to) = (kept[i], kept[i + 1]);
            // A stretch with a step keeps the rate its first part had.
            if let Some(rate) = stretch_rate(from.anchor, to.anchor)
                .filter(|rate| rate.ppm_from(from.rate) <= STEP_PPM)
            {
                kept[i].rate = rate;
            }
        }
        self.segments = kept;
    }

    /// The segment that places `at`: the last one anchored at or before it (the first one for
    /// a tick older than every anchor).
    #[inline]
    pub(crate) fn segment(&self, at: Ticks) -> &Segment {
        let last = self.last();
        if at.0 >= last.anchor.ticks {
            return last;
        }
        let after = self.segments.partition_point(|s| s.anchor.ticks <= at.0);
        &self.segments[after.saturating_sub(1)]
    }

    /// Nanoseconds since the Unix epoch of a tick.
    pub(crate) fn unix_nanos(&self, at: Ticks) -> u64 {
        self.segment(at).unix_nanos(at)
    }

    /// Nanoseconds since the Unix epoch of `at`, one of a span's readings, which are placed
    /// with `segment`, that of its reading `first`: with `segment` while `at` is less than
    /// [`OWN_SEGMENT_FROM_NANOS`] from `first`, else with its own segment, unless the wall
    /// clock stepped in between (the span then keeps its own measure of time).
    pub(crate) fn place(&self, segment: &Segment, first: Ticks, at: Ticks) -> u64 {
        let by_first = segment.unix_nanos(at);
        let apart = segment.rate.nanos(at.0.abs_diff(first.0));
        if apart < OWN_SEGMENT_FROM_NANOS {
            return by_first;
        }
        let own = self.unix_nanos(at);
        let disagreement = u128::from(own.abs_diff(by_first)) * 1_000_000;
        if disagreement <= u128::from(apart) * u128::from(STEP_PPM) {
            own
        } else {
            by_first
        }
    }
}

/// quanta's clock: its calibration gives the first rate, and its raw readings are the ticks
/// where the time-stamp counter is not used.
static CLOCK: Lazy<Clock> = Lazy::new(|| {
    let clock = Clock::new();
    READ_TSC.store(
        quanta_reads_the_tsc() && reads_agree(&clock),
        Ordering::Relaxed,
    );
    clock
});

static TIMELINE: Lazy<RwLock<Timeline>> = Lazy::new(|| {
    let clock = &*CLOCK;
    let first = read_anchor();
    // The first rate is measured over a short stretch (quanta's calibration, a few hundred
    // ppm off, only if that fails); the anchors taken at drains measure it over longer ones.
    let quanta_rate =
        Rate::measured(1 << 32, clock.delta_as_nanos(0, 1 << 32)).unwrap_or(Rate(1 << 32));
    std::thread::sleep(Duration::from_millis(CALIBRATION_MILLIS));
    let timeline = Timeline::calibrated(first, read_anchor(), quanta_rate);
    LATEST_RATE.store(timeline.rate().0, Ordering::Relaxed);
    RwLock::new(timeline)
});

/// How long the first measurement of the counter's rate takes, at the first span.
const CALIBRATION_MILLIS: u64 = 20;

/// The rate measured last, for coarse intervals measured on the instrumented thread.
static LATEST_RATE: AtomicU64 = AtomicU64::new(0);

/// Whether quanta's raw readings are the time-stamp counter, which `now` then reads itself:
/// inline, without a call into quanta. False until the clock is set up, so the first reading
/// sets it up.
static READ_TSC: AtomicBool = AtomicBool::new(false);

/// Quanta's own test for using the counter (`has_counter_support`): an invariant TSC, and
/// RDTSCP.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
fn quanta_reads_the_tsc() -> bool {
    use std::arch::x86_64::__cpuid;
    // SAFETY: CPUID exists on every x86_64 CPU (the intrinsic is safe from Rust 1.87 on, and
    // unsafe before); the extended leaves are read only when the CPU says it has them.
    #[allow(unused_unsafe)]
    unsafe {
        let max_extended = __cpuid(0x8000_0000).eax;
        max_extended >= 0x8000_0007
            && __cpuid(0x8000_0007).edx & (1 << 8) != 0
            && __cpuid(0x8000_0001).edx & (1 << 27) != 0
    }
}

#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
fn quanta_reads_the_tsc() -> bool {
    false
}

/// Checks that quanta's raw reading falls between two readings of the counter, as it does
/// when quanta reads the counter too; anything else keeps this module on quanta's readings.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
fn reads_agree(clock: &Clock) -> bool {
    use std::arch::x86_64::_rdtsc;
    // SAFETY: RDTSC exists on every x86_64 CPU.
    let (before, raw, after) = unsafe { (_rdtsc(), clock.raw(), _rdtsc()) };
    before <= raw && raw <= after
}

#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
fn reads_agree(_clock: &Clock) -> bool {
    false
}

/// Reads the monotonic clock.
#[inline]
pub(crate) fn now() -> Ticks {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    if READ_TSC.load(Ordering::Relaxed) {
        // SAFETY: RDTSC exists on every x86_64 CPU.
        return Ticks(unsafe { std::arch::x86_64::_rdtsc() });
    }
    Ticks(CLOCK.raw())
}

/// Reads the counter and the wall clock together: of a few tries, the one whose wall-clock
/// reading sits between the closest pair of counter readings, placed at their midpoint.
fn read_anchor() -> Anchor {
    let mut best: Option<(u64, Anchor)> = None;
    for _ in 0..5 {
        let before = now().0;
        let wall = system_time_to_unix_nanos(SystemTime::now());
        let after = now().0;
        let width = after.wrapping_sub(before);
        if after < before || best.is_some_and(|(w, _)| w <= width) {
            continue;
        }
        let anchor = Anchor {
            ticks: before + width / 2,
            unix_nanos: wall,
        };
        best = Some((width, anchor));
    }
    best.map_or_else(
        || Anchor {
            ticks: now().0,
            unix_nanos: system_time_to_unix_nanos(SystemTime::now()),
        },
        |(_, anchor)| anchor,
    )
}

/// The time line, for converting readings (the drain holds it while it converts a batch).
pub(crate) fn timeline() -> RwLockReadGuard<'static, Timeline> {
    // A panic while anchoring cannot leave the line inconsistent: pushes are whole.
    TIMELINE.read().unwrap_or_else(PoisonError::into_inner)
}

/// Anchors the time line to the wall clock again, if the last anchor is old enough. Called
/// where spans are drained, before their readings are converted.
pub(crate) fn reanchor() {
    let now = now();
    let due = {
        let timeline = timeline();
        timeline.rate().nanos(timeline.ticks_since_anchor(now)) >= ANCHOR_INTERVAL_NANOS
    };
    if due {
        let anchor = read_anchor();
        let mut timeline = TIMELINE.write().unwrap_or_else(PoisonError::into_inner);
        timeline.anchor(anchor);
        LATEST_RATE.store(timeline.rate().0, Ordering::Relaxed);
    }
}

/// Nanoseconds from `start` to `end` at the rate measured last (zero if `end` is not later):
/// for coarse intervals on the instrumented thread, without a lock.
#[inline]
pub(crate) fn nanos_between(start: Ticks, end: Ticks) -> u64 {
    Rate(LATEST_RATE.load(Ordering::Relaxed)).nanos(end.0.saturating_sub(start.0))
}

/// Calibrates the clock and takes the first anchors, so that the first span does not pay for
/// it.
pub(crate) fn init() {
    Lazy::force(&TIMELINE);
}

/// Nanoseconds since the Unix epoch of a wall-clock time (zero before 1970).
pub(crate) fn system_time_to_unix_nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, duration_nanos)
}

/// The wall-clock time of a number of nanoseconds since the Unix epoch.
pub(crate) fn unix_nanos_to_system_time(nanos: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(nanos)
}

fn duration_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Nanoseconds since the Unix epoch, now, on the time line.
#[cfg(test)]
fn unix_nanos_now() -> u64 {
    let now = now();
    timeline().unix_nanos(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monotonic_readings_map_onto_the_wall_clock() {
        init();
        let before = system_time_to_unix_nanos(SystemTime::now());
        let t = unix_nanos_now();
        let after = system_time_to_unix_nanos(SystemTime::now());
        // Generous slack: this checks the mapping, not its precision (see the simulation).
        assert!(
            t + 50_000_000 >= before && t <= after + 50_000_000,
            "{before} {t} {after}"
        );
    }

    #[test]
    fn ticks_measure_nanoseconds() {
        init();
        let start = now();
        let wall = std::time::Instant::now();
        std::thread::sleep(Duration::from_millis(20));
        let end = now();
        let measured = nanos_between(start, end);
        let expected = duration_nanos(wall.elapsed());
        // Two clocks measuring one interval, with slack for a preempted thread: this checks
        // the scale (raw ticks left unscaled would be off by the CPU's frequency in GHz).
        assert!(measured >= 10_000_000, "{measured}");
        assert!(
            measured <= expected * 2 + 10_000_000,
            "{measured} {expected}"
        );
        assert_eq!(nanos_between(end, start), 0);
    }

    #[test]
    fn round_trips_system_time() {
        let t = UNIX_EPOCH + Duration::from_nanos(1_700_000_000_123_456_789);
        assert_eq!(unix_nanos_to_system_time(system_time_to_unix_nanos(t)), t);
    }

    /// A simulated host: a counter at `hz` ticks a second, and a wall clock that runs
    /// `wall_ppm` fast of true time (a clock that NTP slews), read with a little jitter.
    struct Host {
        hz: f64,
        wall_ppm: f64,
        /// True nanoseconds since the start.
        true_nanos: f64,
        epoch: u64,
        /// Nanoseconds the wall clock was stepped by.
        stepped: i64,
        jitter_state: u64,
    }

    impl Host {
        fn new(hz: f64, wall_ppm: f64) -> Host {
            Host {
                hz,
                wall_ppm,
                true_nanos: 0.0,
                epoch: 1_700_000_000_000_000_000,
                stepped: 0,
                jitter_state: 0x9e37_79b9_7f4a_7c15,
            }
        }

        fn ticks(&self) -> Ticks {
            Ticks(1_000_000 + (self.true_nanos * self.hz / 1e9) as u64)
        }

        /// The wall clock now, exactly.
        fn wall(&self) -> u64 {
            let drifted = self.true_nanos * (1.0 + self.wall_ppm / 1e6);
            (self.epoch as i64 + drifted as i64 + self.stepped) as u64
        }

        /// An anchor as `read_anchor` takes it: up to 200 ns of error.
        fn anchor(&mut self) -> Anchor {
            self.jitter_state ^= self.jitter_state << 13;
            self.jitter_state ^= self.jitter_state >> 7;
            self.jitter_state ^= self.jitter_state << 17;
            let jitter = (self.jitter_state % 400) as i64 - 200;
            Anchor {
                ticks: self.ticks().0,
                unix_nanos: (self.wall() as i64 + jitter) as u64,
            }
        }

        fn advance(&mut self, nanos: f64) {
            self.true_nanos += nanos;
        }
    }

    /// A day of a process on a simulated host whose counter quanta calibrated 600 ppm off
    /// and whose wall clock is slewed: spans of every length, some straddling anchors, some
    /// lasting 40 minutes with logs along the way, drained (and the line re-anchored) every
    /// 2.5 s. Every start, end and log is within 100 µs of the wall clock, every duration
    /// within 50 ppm of the wall clock's, and logs are never before starts.
    #[test]
    fn a_simulated_day_stays_on_the_wall_clock() {
        /// A reading: ticks, and the wall clock at that moment.
        type Reading = (Ticks, u64);
        let mut host = Host::new(2_999_999_000.0, 35.0);
        let first = host.anchor();
        host.advance(CALIBRATION_MILLIS as f64 * 1e6);
        let quanta = Rate::measured(3_000_000_000, 1_000_000_000 - 600_000).unwrap();
        let mut timeline = Timeline::calibrated(first, host.anchor(), quanta);
        let (mut worst_offset, mut worst_ppm) = (0u64, 0.0f64);
        // The long span open now: its start and its logs so far.
        let mut long_span: Option<(Reading, Vec<Reading>)> = None;
        let drains = 24 * 3600 * 10 / 25;
        for drain in 0..drains {
            // Spans made since the last drain: start, end, logs.
            let mut spans: Vec<(Reading, Reading, Vec<Reading>)> = Vec::new();
            for _ in 0..5 {
                let start = (host.ticks(), host.wall());
                host.advance(50_000_000.0);
                let log = (host.ticks(), host.wall());
                host.advance(50_000_000.0);
                spans.push((start, (host.ticks(), host.wall()), vec![log]));
                host.advance(400_000_000.0);
            }
            if drain % 100 == 50 {
                if let Some((_, logs)) = &mut long_span {
                    logs.push((host.ticks(), host.wall()));
                }
            }
            if drain % 1000 == 0 {
                if let Some((start, logs)) = long_span.take() {
                    spans.push((start, (host.ticks(), host.wall()), logs));
                }
                long_span = Some(((host.ticks(), host.wall()), Vec::new()));
            }
            // Anchored at the drain, as `reanchor` does, then converted as `settle` does.
            if timeline
                .rate()
                .nanos(timeline.ticks_since_anchor(host.ticks()))
                >= ANCHOR_INTERVAL_NANOS
            {
                timeline.anchor(host.anchor());
            }
            for ((start, start_wall), (end, end_wall), logs) in spans {
                let segment = timeline.segment(start);
                let s = timeline.place(segment, start, start);
                let e = timeline.place(segment, start, end);
                assert!(e >= s);
                for (at, wall) in [(s, start_wall), (e, end_wall)] {
                    worst_offset = worst_offset.max(at.abs_diff(wall));
                }
                for (log, log_wall) in logs {
                    let l = timeline.place(segment, start, log);
                    assert!(l >= s);
                    worst_offset = worst_offset.max(l.abs_diff(log_wall));
                }
                let wall_duration = (end_wall - start_wall) as f64;
                let ppm = ((e - s) as f64 - wall_duration).abs() / wall_duration * 1e6;
                worst_ppm = worst_ppm.max(ppm);
            }
        }
        assert!(
            worst_offset <= 100_000,
            "{worst_offset} ns off the wall clock"
        );
        assert!(worst_ppm <= 50.0, "durations {worst_ppm} ppm off");
        // A day of anchors every 2.5 s is more than the line keeps: it was thinned, and still
        // places the first ticks of the day.
        assert!(timeline.segments.len() <= MAX_ANCHORS);
        assert_eq!(timeline.segments[0].anchor.ticks, 1_000_000);
    }

    #[test]
    fn a_span_across_a_wall_clock_step_keeps_its_own_measure_of_time() {
        let mut host = Host::new(3e9, 0.0);
        let mut timeline = Timeline::new(host.anchor(), Rate::measured(3, 1).unwrap());
        let start = host.ticks();
        host.advance(2e9);
        timeline.anchor(host.anchor());
        host.stepped = 3_600_000_000_000;
        host.advance(2e9);
        timeline.anchor(host.anchor());
        let end = host.ticks();
        let segment = timeline.segment(start);
        let duration = timeline.place(segment, start, end) - timeline.place(segment, start, start);
        assert!(duration.abs_diff(4_000_000_000) < 1_000, "{duration}");
    }

    #[test]
    fn one_anchor_at_start_drifts_off_the_wall_clock() {
        // What the line corrects: without re-anchoring, a 600 ppm calibration error puts a
        // span 2.5 s after the start 1.5 ms off.
        let mut host = Host::new(3e9, 0.0);
        let calibrated = Rate::measured(3_000_000_000, 1_000_000_000 - 600_000).unwrap();
        let timeline = Timeline::new(host.anchor(), calibrated);
        host.advance(2.5e9);
        let offset = timeline.unix_nanos(host.ticks()).abs_diff(host.wall());
        assert!(offset > 1_000_000, "{offset}");
    }

    #[test]
    fn a_stepped_wall_clock_is_followed_without_a_wild_rate() {
        let mut host = Host::new(3e9, 0.0);
        let mut timeline = Timeline::new(host.anchor(), Rate::measured(3, 1).unwrap());
        host.advance(1e9);
        timeline.anchor(host.anchor());
        let rate = timeline.rate();
        host.advance(1e9);
        host.stepped = 3_600_000_000_000;
        timeline.anchor(host.anchor());
        assert_eq!(timeline.rate(), rate, "the step is not a rate");
        host.advance(5e8);
        let offset = timeline.unix_nanos(host.ticks()).abs_diff(host.wall());
        assert!(offset < 1_000, "{offset}");
        // And back: a wall clock set back an hour.
        host.advance(1e9);
        host.stepped = 0;
        timeline.anchor(host.anchor());
        assert_eq!(timeline.rate(), rate);
        let offset = timeline.unix_nanos(host.ticks()).abs_diff(host.wall());
        assert!(offset < 1_000, "{offset}");
    }

    #[test]
    fn a_first_rate_far_off_is_replaced_once_two_stretches_agree() {
        let mut host = Host::new(3e9, 0.0);
        // 2,000 ppm off: past what a step check lets through.
        let mut timeline =
            Timeline::new(host.anchor(), Rate::measured(3_000_000, 1_002_000).unwrap());
        for _ in 0..3 {
            host.advance(1e9);
            timeline.anchor(host.anchor());
        }
        let true_rate = Rate::measured(3, 1).unwrap();
        assert!(
            timeline.rate().ppm_from(true_rate) < 1,
            "{:?}",
            timeline.rate()
        );
    }

    #[test]
    fn every_tick_between_two_anchors_is_placed_by_interpolation() {
        let mut host = Host::new(3e9, 0.0);
        let mut timeline = Timeline::new(host.anchor(), Rate::measured(3, 1).unwrap());
        let mut ticks = Vec::new();
        for _ in 0..10 {
            host.advance(7e8);
            ticks.push((host.ticks(), host.wall()));
            host.advance(7e8);
            timeline.anchor(host.anchor());
        }
        // Stretches of the line are picked by the tick, old or new.
        for (tick, wall) in ticks {
            let offset = timeline.unix_nanos(tick).abs_diff(wall);
            assert!(offset < 1_000, "{offset}");
        }
    }
}
