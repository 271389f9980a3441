//! A tracer whose sampling policy comes from the environment: sampled-out work reaches
//! neither the reporter's counts nor the collector. The tracer and the environment are
//! process-wide, so this binary holds one test.

mod support;

use lstrace_core::satellite::LocalSatellite;
use lstrace_core::{init, span, Options, SpanContext, SpanId, TraceId};
use std::time::Duration;
use support::{PATIENCE, TOKEN};

#[test]
fn sampled_out_work_is_not_counted_or_sent() {
    let satellite = LocalSatellite::start().unwrap();
    std::env::set_var("LS_ACCESS_TOKEN", TOKEN);
    std::env::set_var("LS_SERVICE_NAME", "sampling-test");
    std::env::set_var("LS_SAMPLING_RATIO", "0");
    let tracer = init(
        Options::from_env()
            .collector_url(satellite.url())
            .reporting_period(Duration::from_secs(60))
            .min_reporting_period(Duration::from_millis(20)),
    )
    .unwrap();

    // New traces, sampled out by the ratio: roots with children, tags, logs and baggage, on
    // this thread and on another; and the child of an unsampled caller.
    let work = || {
        for i in 0..500 {
            let mut root = span("sampled out").root().with_tag("i", i).start();
            root.log([("event", "start")]);
            root.set_baggage_item("user", "ann");
            assert!(!root.context().unwrap().is_sampled());
            for _ in 0..3 {
                let mut child = span("child").with_tag("k", "v").start();
                child.set_tag("more", true);
                child.log([("event", "child")]);
            }
        }
    };
    work();
    std::thread::spawn(work).join().unwrap();
    let caller = SpanContext::new(TraceId::random(), SpanId::random(), false);
    drop(span("handle").child_of(&caller).start());

    let flushed = tracer.flush(PATIENCE);
    assert!(!flushed.timed_out && !flushed.stopped);
    let stats = tracer.stats();
    assert_eq!(
        (
            stats.spans_made,
            stats.spans_received,
            stats.spans_sent,
            stats.spans_dropped,
            stats.spans_buffered,
            stats.tags_dropped,
            stats.logs_dropped
        ),
        (0, 0, 0, 0, 0, 0, 0),
        "{stats:?}"
    );
    assert!(satellite.spans().is_empty());

    // A trace recorded anyway (an explicit decision wins over the ratio) is counted and sent.
    {
        let _kept = span("kept").root().sampled(true).start();
        let _child = span("kept child").start();
    }
    let flushed = tracer.flush(PATIENCE);
    assert_eq!(flushed.spans_sent, 2);
    let stats = tracer.stats();
    assert_eq!((stats.spans_made, stats.spans_sent), (2, 2), "{stats:?}");
    assert_eq!(
        stats.spans_made,
        stats.spans_sent + stats.spans_dropped + stats.spans_buffered
    );
    assert_eq!(satellite.tree(), "kept\n  kept child\n");
    tracer.close(PATIENCE);
}
