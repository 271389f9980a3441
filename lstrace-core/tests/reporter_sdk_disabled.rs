//! `OTEL_SDK_DISABLED=true`: OpenTelemetry's disabled SDK is a no-op, so `init` succeeds
//! whatever else the environment holds, traced code runs, nothing is sent and nothing is
//! counted. The tracer and the environment are process-wide, so this binary holds one test.

mod support;

use lstrace_core::satellite::LocalSatellite;
use lstrace_core::{init, recorder, span, Event, Options, Stats};
use std::time::Duration;
use support::{EventLog, PATIENCE};

#[test]
fn a_disabled_sdk_starts_sends_nothing_and_counts_nothing() {
    let satellite = LocalSatellite::start().unwrap();
    // As in `reporter_sampling.rs`: nothing else in this process reads the environment.
    std::env::set_var("OTEL_SDK_DISABLED", "true");
    std::env::set_var("OTEL_EXPORTER_OTLP_ENDPOINT", satellite.url());
    // Values that `init` refuses when they are set in code.
    std::env::set_var("OTEL_EXPORTER_OTLP_HEADERS", "x y=1,k=a%0Ab");
    std::env::set_var(
        "OTEL_RESOURCE_ATTRIBUTES",
        "lightstep.guid=7,lightstep.component_name=",
    );
    std::env::set_var("OTEL_EXPORTER_OTLP_TIMEOUT", "soon");
    // An error from `init` when the SDK is not disabled.
    std::env::set_var("LS_SERVICE_NAME", " ");
    let events = EventLog::new();
    let tracer = init(
        Options::from_env()
            .event_handler(events.handler())
            .reporting_period(Duration::from_millis(50)),
    )
    .unwrap();
    assert!(tracer.is_stopped());
    assert!(
        format!("{tracer:?}").contains("collectors: []"),
        "{tracer:?}"
    );
    assert!(!recorder::is_enabled());

    let work = || {
        for i in 0..100 {
            let mut root = span("disabled").root().with_tag("i", i).start();
            root.log([("event", "start")]);
            let _child = span("child").with_tag("k", "v").start();
        }
    };
    work();
    std::thread::spawn(work).join().unwrap();
    assert!(span("after").start_detached().is_noop());

    let flushed = tracer.flush(PATIENCE);
    assert!(flushed.stopped && !flushed.timed_out, "{flushed:?}");
    // Nothing made, so nothing sent and nothing dropped: no span was lost.
    assert_eq!(tracer.stats(), Stats::default());
    let closed = tracer.close(PATIENCE);
    assert!(closed.stopped && !closed.timed_out);
    assert_eq!(closed.stats, Stats::default());
    // Several reporting periods: no reporter, so no request.
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(satellite.requests_seen(), 0);
    assert!(satellite.otlp_requests().is_empty());

    // The environment's problems are still told, and nothing else is.
    let events = events.events();
    assert!(
        events.iter().all(|e| matches!(e, Event::Warning { .. })),
        "{events:#?}"
    );
    assert!(events.iter().any(
        |e| matches!(e, Event::Warning { message } if message.contains("OTEL_EXPORTER_OTLP_TIMEOUT"))
    ));
    assert!(events
        .iter()
        .any(|e| matches!(e, Event::Warning { message } if message.contains("\"x y\""))));
}
