//! Time: a monotonic tick source for durations, anchored once to the wall clock for start times.

use once_cell::sync::Lazy;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A reading of the monotonic clock (the CPU's time-stamp counter where it is reliable).
pub(crate) type Instant = quanta::Instant;

struct Anchor {
    instant: Instant,
    unix_nanos: u64,
}

static ANCHOR: Lazy<Anchor> = Lazy::new(|| Anchor {
    instant: Instant::now(),
    unix_nanos: system_time_to_unix_nanos(SystemTime::now()),
});

/// Reads the monotonic clock.
#[inline]
pub(crate) fn now() -> Instant {
    Instant::now()
}

/// Wall-clock nanoseconds since the Unix epoch for a monotonic reading. Every span of a
/// process is placed on one time line, so durations and start times always agree.
pub(crate) fn unix_nanos(at: Instant) -> u64 {
    let anchor = &*ANCHOR;
    if at >= anchor.instant {
        anchor.unix_nanos + duration_nanos(at.duration_since(anchor.instant))
    } else {
        anchor
            .unix_nanos
            .saturating_sub(duration_nanos(anchor.instant.duration_since(at)))
    }
}

/// Forces the anchor, so that the first span does not pay for it.
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

/// The monotonic reading that corresponds to a wall-clock time, for explicit start times.
pub(crate) fn instant_at(t: SystemTime) -> Instant {
    let anchor = &*ANCHOR;
    let target = system_time_to_unix_nanos(t);
    if target >= anchor.unix_nanos {
        anchor.instant + Duration::from_nanos(target - anchor.unix_nanos)
    } else {
        anchor
            .instant
            .checked_sub(Duration::from_nanos(anchor.unix_nanos - target))
            .unwrap_or(anchor.instant)
    }
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
    fn round_trips_system_time() {
        let t = UNIX_EPOCH + Duration::from_nanos(1_700_000_000_123_456_789);
        assert_eq!(unix_nanos_to_system_time(system_time_to_unix_nanos(t)), t);
    }
}
