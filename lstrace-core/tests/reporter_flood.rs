//! `init` under a flood: spans made faster than the reporter drains them. The tracer is
//! global, so this binary holds one test.
#![cfg(feature = "satellite")]

mod support;

use lstrace_core::satellite::LocalSatellite;
use lstrace_core::{init, log, span, Event, Options};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use support::{EventLog, PATIENCE, TOKEN};

#[test]
fn reports_leave_while_spans_arrive_faster_than_they_are_drained() {
    let satellite = LocalSatellite::start().unwrap();
    let events = EventLog::new();
    let tracer = init(
        Options::new(TOKEN)
            .component_name("flood-test")
            .collector_url(satellite.url())
            .max_buffered_spans(20_000)
            .reporting_period(Duration::from_secs(60))
            .min_reporting_period(Duration::from_millis(5))
            .event_handler(events.handler()),
    )
    .unwrap();
    // Spans with a log are the slowest to drain: a wake is pending at every turn of the
    // reporter's loop, which must still let its HTTP connection run, or no report leaves
    // until the spans stop. (Optimised, without the reporter's yield, no report left within
    // the 10 s in 2 of 3 runs; unoptimised, the reporter drains too slowly for it to show.)
    let stop = AtomicBool::new(false);
    let delivered_during_the_flood = std::thread::scope(|scope| {
        for _ in 0..3 {
            scope.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    for i in 0..1000_i64 {
                        let _span = span("flood").with_tag("i", i).start();
                        log([("event", "step")]);
                    }
                }
            });
        }
        let delivered = satellite.wait_for_spans(1, PATIENCE);
        stop.store(true, Ordering::Relaxed);
        delivered
    });
    assert!(
        delivered_during_the_flood,
        "no report left during the flood"
    );
    assert!(!tracer.close(PATIENCE).timed_out);
    let stats = tracer.stats();
    assert_eq!(stats.spans_buffered, 0, "{stats:?}");
    assert!(stats.spans_sent > 0 && stats.spans_sent <= stats.spans_received);
    // What was not delivered was dropped and counted: the ring's drops are not received.
    assert!(stats.spans_received <= stats.spans_sent + stats.spans_dropped);
    assert_eq!(satellite.spans().len() as u64, stats.spans_sent);
    assert_eq!(
        stats.spans_made,
        stats.spans_sent + stats.spans_dropped,
        "{stats:?}"
    );
    // Every drop, the rings' included, reached the event handler, once.
    let told: u64 = events
        .events()
        .iter()
        .map(|e| match e {
            Event::SpansDropped { count, .. } => *count,
            _ => 0,
        })
        .sum();
    assert_eq!(told, stats.spans_dropped, "{stats:?}");
}
