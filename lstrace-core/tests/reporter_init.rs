//! `init`: the process's tracer, fed by the real span API through the per-thread rings.
//! The tracer is global, so this binary holds one test that walks through its life.

mod support;

use lstrace_core::propagation::{self, Format};
use lstrace_core::satellite::LocalSatellite;
use lstrace_core::{init, recorder, span, Event, InitError, Options};
use std::collections::HashMap;
use std::time::Duration;
use support::{count, EventLog, PATIENCE, TOKEN};

#[test]
fn the_process_tracer_from_init_to_close() {
    let satellite = LocalSatellite::start().unwrap();
    let events = EventLog::new();
    lstrace_core::set_event_handler(events.handler());
    let options = || {
        Options::new(TOKEN)
            .component_name("init-test")
            .collector_url(satellite.url())
            .reporting_period(Duration::from_secs(60))
            .min_reporting_period(Duration::from_millis(20))
    };

    // Before init: nothing to flush, spans are no-ops.
    assert!(lstrace_core::flush(Duration::from_millis(10)).stopped);
    assert!(span("too early").start_detached().is_noop());

    // Bad options are an error and install nothing.
    assert_eq!(
        init(Options::new("")).err(),
        Some(InitError::MissingAccessToken)
    );
    assert!(recorder::installed().is_none());

    let tracer = init(options().propagators([Format::B3Single].into_iter().collect())).unwrap();
    assert!(lstrace_core::tracer().is_some());
    // The propagators chosen at init are the process's.
    let mut headers = HashMap::new();
    let root = span("propagated").start_detached();
    propagation::inject(&root.context().unwrap(), &mut headers);
    assert_eq!(headers.keys().collect::<Vec<_>>(), ["b3"]);
    drop(root);

    let second = init(options().component_name("second")).unwrap_err();
    assert_eq!(second, InitError::AlreadyInitialized);
    assert!(second.to_string().contains("already initialised"));

    // Spans of this thread and of another, through the rings.
    {
        let _root = span("root").start();
        let _child = span("child").with_tag("n", 1).start();
    }
    std::thread::spawn(|| {
        let _s = span("on a thread").root().start();
    })
    .join()
    .unwrap();
    let flushed = lstrace_core::flush(PATIENCE);
    assert!(!flushed.timed_out && !flushed.stopped);
    assert_eq!(flushed.spans_sent, 4);
    assert_eq!(
        satellite.tree(),
        "propagated\nroot\n  child [n=1]\non a thread\n"
    );
    assert!(events.wait_for(|e| matches!(e, Event::ReportSent(_))));

    // A burst bigger than a thread's ring: the reporter drains it as it fills. Whatever it
    // could not keep up with is counted, and the collector hears of it.
    let burst = 3000;
    for i in 0..burst {
        let _s = span("burst").with_tag("i", i).start();
    }
    assert!(!lstrace_core::flush(PATIENCE).timed_out);
    let stats = tracer.stats();
    let reports = satellite.reports();
    let received = satellite
        .spans()
        .iter()
        .filter(|s| s.name == "burst")
        .count() as u64;
    let told: i64 = reports
        .iter()
        .filter_map(|r| count(&r.request, "spans.dropped"))
        .sum();
    assert_eq!(received + stats.spans_dropped, burst as u64, "{stats:?}");
    assert_eq!(told as u64, stats.spans_dropped);
    assert!(reports.iter().all(|r| r.accepted));

    // Close: what is left is sent, then every span is a no-op.
    {
        let _last = span("last").start();
    }
    let closed = lstrace_core::close(PATIENCE);
    assert!(closed.stopped && !closed.timed_out);
    assert_eq!(closed.spans_sent, 1);
    assert!(!recorder::is_enabled());
    assert!(span("after close").start_detached().is_noop());
    assert!(lstrace_core::flush(PATIENCE).stopped);
    assert!(!events
        .events()
        .iter()
        .any(|e| format!("{e:?}").contains(TOKEN)));
}
