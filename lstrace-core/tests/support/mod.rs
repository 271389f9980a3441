//! Helpers shared by the integration tests.
#![allow(dead_code)] // Each test binary uses its own subset.

#[cfg(feature = "satellite")]
pub(crate) mod full_buffer;
#[cfg(all(feature = "reqwest", feature = "tower"))]
pub(crate) mod http;

use lstrace_core::__private::UninstalledTracer;
use lstrace_core::protocol::lightstep::{metrics_sample, ReportRequest};
use lstrace_core::testing::TestRecorder;
use lstrace_core::{span, Event, Options, SpanRecord};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// The access token of every test: distinctive, so a leak is easy to spot.
pub(crate) const TOKEN: &str = "tok-7f3a9c51e2d4-secret";

/// Long enough for a slow shared machine; only an upper bound for "does not hang".
pub(crate) const PATIENCE: Duration = Duration::from_secs(10);

/// Options for a test: flushes drive the reports (the period is long), retries back off
/// briefly, and events go to `events`.
pub(crate) fn options(urls: &[String], events: &EventLog) -> Options {
    Options::new(TOKEN)
        .component_name("reporter-tests")
        .collector_urls(urls.iter().cloned())
        .reporting_period(Duration::from_secs(60))
        .min_reporting_period(Duration::from_millis(20))
        .report_timeout(Duration::from_secs(2))
        .event_handler(events.handler())
}

/// Keeps a tracer's events, and wakes waiters when one arrives.
#[derive(Clone, Default)]
pub(crate) struct EventLog(Arc<(Mutex<Vec<Event>>, Condvar)>);

impl EventLog {
    pub(crate) fn new() -> Self {
        EventLog::default()
    }

    pub(crate) fn handler(&self) -> impl Fn(&Event) + Send + Sync + 'static {
        let log = self.clone();
        move |event| {
            let (events, added) = &*log.0;
            events.lock().unwrap().push(event.clone());
            added.notify_all();
        }
    }

    pub(crate) fn events(&self) -> Vec<Event> {
        self.0 .0.lock().unwrap().clone()
    }

    /// Waits until an event matches; true if one did in time.
    pub(crate) fn wait_for(&self, matches: impl Fn(&Event) -> bool) -> bool {
        let deadline = Instant::now() + PATIENCE;
        let (events, added) = &*self.0;
        let mut guard = events.lock().unwrap();
        loop {
            if guard.iter().any(&matches) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            guard = added.wait_timeout(guard, left).unwrap().0;
        }
    }
}

/// An internal-metrics count of a report.
pub(crate) fn count(report: &ReportRequest, name: &str) -> Option<i64> {
    report
        .internal_metrics
        .as_ref()?
        .counts
        .iter()
        .find(|c| c.name == name)
        .and_then(|c| match c.value {
            Some(metrics_sample::Value::IntValue(v)) => Some(v),
            _ => None,
        })
}

/// The URL of a port where nothing listens (connections are refused).
pub(crate) fn dead_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    url
}

/// Traces `n` small spans inside a capture of their own, and returns them.
pub(crate) fn small_spans(n: usize) -> Vec<SpanRecord> {
    let capture = TestRecorder::install().capture();
    capture.in_scope(|| {
        for i in 0..n {
            let _s = span("work").with_tag("i", i as i64).start();
        }
    });
    capture.spans()
}

/// Hands spans to a tracer that is not the process's recorder.
pub(crate) fn feed(tracer: &UninstalledTracer, spans: Vec<SpanRecord>) {
    tracer.record(spans);
}
