//! Span times against the host's wall clock, seconds after the tracer started: the counter's
//! rate is only known to a few hundred ppm at start, which one anchor taken then turns into
//! milliseconds of drift (the issue measured +7 ms after 12 s). The time line is anchored
//! again as spans are drained. (Hours and days are simulated in `clock.rs`'s unit tests; the
//! drift over minutes is measured by `cargo bench -p lstrace-benches -- --drift 60`.)

use lstrace_core::span;
use lstrace_core::testing::TestRecorder;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn unix_nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64
}

/// What the issue asks of every timestamp: within 100 µs of `SystemTime::now()`.
const TOLERANCE_NANOS: u64 = 100_000;

#[test]
fn span_and_log_times_stay_on_the_wall_clock_and_logs_never_precede_their_span() {
    let recorder = TestRecorder::install();
    let capture = recorder.capture();
    // Wall-clock readings around each span: (before its start, after its end).
    let mut brackets = Vec::new();
    for round in 0..6 {
        // Lets drift build up between rounds (the assertions are on timestamps, not waits).
        std::thread::sleep(Duration::from_millis(500));
        capture.in_scope(|| {
            let before = unix_nanos(SystemTime::now());
            let mut detached = span(format!("detached {round}")).start_detached();
            detached.log([("event", "at start")]);
            {
                let mut entered = span(format!("entered {round}")).start();
                entered.log([("event", "at start")]);
                lstrace_core::log([("event", "current")]);
            }
            detached.log([("event", "at end")]);
            detached.finish();
            let after = unix_nanos(SystemTime::now());
            brackets.push((round, before, after));
        });
        if round % 2 == 0 {
            // Drains in between: spans converted before and after re-anchors agree.
            let _ = capture.spans();
        }
    }
    let spans = capture.spans();
    for (round, before, after) in brackets {
        for name in [format!("detached {round}"), format!("entered {round}")] {
            let s = spans.iter().find(|s| s.name() == name).unwrap();
            let start = s.start_unix_nanos();
            let end = start + s.duration().as_nanos() as u64;
            assert!(
                start + TOLERANCE_NANOS >= before && start <= after + TOLERANCE_NANOS,
                "{name}: start {} µs after the reading before it, which was {} µs before the \
                 one after it",
                (start as i128 - before as i128) / 1000,
                (after - before) / 1000
            );
            assert!(
                end <= after + TOLERANCE_NANOS,
                "{name}: ends {} µs after the reading after it",
                (end - after) / 1000
            );
            assert!(!s.logs().is_empty());
            for log in s.logs() {
                assert!(
                    log.unix_nanos() >= start && log.unix_nanos() <= end,
                    "{name}: log {} ns from the start, span {} ns long",
                    log.unix_nanos() as i128 - start as i128,
                    end - start
                );
            }
        }
    }
}

#[test]
fn an_explicit_start_time_is_on_the_same_line() {
    let recorder = TestRecorder::install();
    let capture = recorder.capture();
    std::thread::sleep(Duration::from_millis(1500));
    let start = SystemTime::now() - Duration::from_millis(5);
    let before_end = capture.in_scope(|| {
        let mut s = span("explicit").start_time(start).start_detached();
        s.log([("event", "now")]);
        // A log time given before the span's start is kept at the start.
        s.log_at(start - Duration::from_secs(1), [("event", "given")]);
        // The span finishes as it drops, between this reading and the one after the scope.
        unix_nanos(SystemTime::now())
    });
    let after = unix_nanos(SystemTime::now());
    let s = capture.span("explicit").unwrap();
    assert_eq!(s.start_unix_nanos(), unix_nanos(start));
    let end = s.start_unix_nanos() + s.duration().as_nanos() as u64;
    // The end, a clock reading, is placed on the wall clock's line that the given start is on.
    assert!(
        end + TOLERANCE_NANOS >= before_end && end <= after + TOLERANCE_NANOS,
        "ends {} µs after the reading before it, which was {} µs before the one after it",
        (end as i128 - before_end as i128) / 1000,
        (after - before_end) / 1000
    );
    for log in s.logs() {
        assert!(log.unix_nanos() >= s.start_unix_nanos());
        assert!(log.unix_nanos() <= end);
    }
}
