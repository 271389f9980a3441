//! `init` inside async code, and a collector that disables the process's tracer.

mod support;

use lstrace_core::satellite::{Behaviour, LocalSatellite};
use lstrace_core::{init, recorder, span, Event};
use std::time::Duration;
use support::{options, EventLog, PATIENCE};

#[tokio::test(flavor = "current_thread")]
async fn the_collector_can_disable_the_process_tracer() {
    let satellite = LocalSatellite::start().unwrap();
    satellite.set_behaviour(Behaviour::Disable);
    let events = EventLog::new();
    // Started from inside a current-thread runtime: the reporter brings its own.
    let tracer = init(options(&[satellite.url()], &events)).unwrap();
    {
        let _s = span("before").start();
    }
    let flushed = tracer.flush_async(PATIENCE).await;
    assert!(flushed.stopped && !flushed.timed_out);
    assert!(events.wait_for(|e| matches!(e, Event::TracerDisabled { .. })));
    assert_eq!(satellite.spans().len(), 1);

    assert!(!recorder::is_enabled());
    assert!(span("after").start_detached().is_noop());
    let closed = tracer.close_async(Duration::from_millis(300)).await;
    assert!(closed.stopped && !closed.timed_out);
    assert_eq!(satellite.requests_seen(), 1);
}
