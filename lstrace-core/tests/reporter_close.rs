//! A span open while the process's tracer closes. The tracer is global, so this binary holds
//! one test.

mod support;

use lstrace_core::satellite::LocalSatellite;
use lstrace_core::{init, span};
use support::{options, EventLog, PATIENCE};

#[test]
fn a_span_that_finishes_after_close_is_counted_as_dropped() {
    let satellite = LocalSatellite::start().unwrap();
    let events = EventLog::new();
    let tracer = init(options(&[satellite.url()], &events)).unwrap();
    let open = span("open across close").start();
    {
        let _done = span("done before close").start();
    }
    let closed = tracer.close(PATIENCE);
    assert!(closed.stopped && !closed.timed_out, "{closed:?}");
    assert_eq!(closed.spans_sent, 1);
    assert_eq!(tracer.stats().spans_dropped, 0);

    drop(open);
    let stats = tracer.stats();
    assert_eq!(stats.spans_dropped, 1, "{stats:?}");
    let names: Vec<String> = satellite.spans().into_iter().map(|s| s.name).collect();
    assert_eq!(names, ["done before close"]);
}
