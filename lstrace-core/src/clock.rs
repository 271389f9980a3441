//! Time: raw ticks of a monotonic counter on the hot path, anchored once to the wall clock.
//!
//! A span reads the clock twice, so the reading must be as cheap as the machine allows: where
//! quanta found an invariant time-stamp counter a reading is one `rdtsc` (about 10 ns, where
//! `clock_gettime` costs 20-40 ns); elsewhere it is quanta's monotonic clock in nanoseconds.
//! Readings are raw ticks; they become nanoseconds when a span finishes, through quanta's
//! calibration. (`quanta::Instant::now` would scale every reading and look up a thread-local
//! clock override first: twice the cost.)

use once_cell::sync::Lazy;
use quanta::Clock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A raw reading of the monotonic clock; only differences of readings mean anything.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Ticks(pub(crate) u64);

/// The clock, and one reading of it with the wall-clock time it corresponds to. Every span of
/// a process is placed on this one time line, so durations and start times always agree.
struct Anchor {
    clock: Clock,
    ticks: u64,
    unix_nanos: u64,
}

static ANCHOR: Lazy<Anchor> = Lazy::new(|| {
    let clock = Clock::new();
    READ_TSC.store(
        quanta_reads_the_tsc() && reads_agree(&clock),
        Ordering::Relaxed,
    );
    Anchor {
        ticks: clock.raw(),
        unix_nanos: system_time_to_unix_nanos(SystemTime::now()),
        clock,
    }
});

/// Whether quanta's raw readings are the time-stamp counter, which `now` then reads itself:
/// inline, without a call into quanta or a look at the lazy anchor. False until the anchor
/// is taken, so the first reading takes it.
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
    Ticks(ANCHOR.clock.raw())
}

/// Nanoseconds from `start` to `end` (zero if `end` is not later).
#[inline]
pub(crate) fn nanos_between(start: Ticks, end: Ticks) -> u64 {
    ANCHOR.clock.delta_as_nanos(start.0, end.0)
}

/// Wall-clock nanoseconds since the Unix epoch of a monotonic reading.
#[inline]
pub(crate) fn unix_nanos(at: Ticks) -> u64 {
    let anchor = &*ANCHOR;
    if at.0 >= anchor.ticks {
        anchor.unix_nanos + anchor.clock.delta_as_nanos(anchor.ticks, at.0)
    } else {
        anchor
            .unix_nanos
            .saturating_sub(anchor.clock.delta_as_nanos(at.0, anchor.ticks))
    }
}

/// Calibrates the clock and takes the anchor, so that the first span does not pay for it.
pub(crate) fn init() {
    Lazy::force(&ANCHOR);
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

/// Nanoseconds since the Unix epoch, now.
pub(crate) fn unix_nanos_now() -> u64 {
    unix_nanos(now())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monotonic_readings_map_onto_the_wall_clock() {
        let before = system_time_to_unix_nanos(SystemTime::now());
        let t = unix_nanos_now();
        let after = system_time_to_unix_nanos(SystemTime::now());
        // The anchor is read once; allow generous slack for a slow machine.
        assert!(
            t + 50_000_000 >= before && t <= after + 50_000_000,
            "{before} {t} {after}"
        );
    }

    #[test]
    fn ticks_measure_nanoseconds() {
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
}
