//! The reporter over OTLP/HTTP end to end, through real HTTP to the local satellite's
//! `/v1/traces`: what the LightStep tests check in `reporter.rs`, for the second protocol,
//! plus OTLP's own rules (retries per status, `Retry-After`, partial success, gzip).

mod support;

use lstrace_core::__private::UninstalledTracer;
use lstrace_core::protocol::otlp::{any_value::Value, KeyValue};
use lstrace_core::reporter::{
    Compression, DropReason, Protocol, ReportError, ReportFailure, StatusReport,
};
use lstrace_core::satellite::fault::{Fault, FaultServer};
use lstrace_core::satellite::{Behaviour, FieldValue, LocalSatellite};
use lstrace_core::testing::TestRecorder;
use lstrace_core::{span, Event, Options};
use std::collections::HashSet;
use std::time::Duration;
use support::full_buffer::overflow_a_two_span_buffer;
use support::{dead_url, feed, small_spans, EventLog, PATIENCE, TOKEN};

/// OTLP options for a test, as `support::options` makes LightStep ones.
fn options(urls: &[String], events: &EventLog) -> Options {
    support::options(urls, events).protocol(Protocol::Otlp)
}

fn attribute<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a Value> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| v.value.as_ref())
}

fn span_ids(satellite: &LocalSatellite) -> Vec<u64> {
    satellite.spans().iter().map(|s| s.span_id).collect()
}

#[test]
fn exports_carry_what_was_traced_and_render_as_lightstep_reports_do() {
    let satellite = LocalSatellite::start().unwrap();
    let events = EventLog::new();
    let tracer = UninstalledTracer::start(
        options(&[satellite.url()], &events)
            .reporter_tag("deployment", "canary")
            .header("x-api-key", "key-5ec2e7"),
    )
    .unwrap();
    let capture = TestRecorder::install().capture();
    capture.in_scope(|| {
        let _root = span("checkout")
            .kind(lstrace_core::SpanKind::Server)
            .start();
        let mut child = span("charge").with_tag("amount", 12).start();
        child.log([("event", "retry")]);
    });
    let spans = capture.spans();
    let trace_id = spans[0].context().trace_id();
    let expected_tree = capture.tree();
    feed(&tracer, spans);
    let flushed = tracer.flush(PATIENCE);
    assert!(!flushed.timed_out);
    assert_eq!(flushed.spans_sent, 2);

    let exports = satellite.otlp_requests();
    assert_eq!(exports.len(), 1);
    let export = &exports[0];
    assert_eq!(
        export.header("content-type"),
        Some("application/x-protobuf")
    );
    assert_eq!(export.header("lightstep-access-token"), Some(TOKEN));
    assert_eq!(export.header("x-api-key"), Some("key-5ec2e7"));
    assert_eq!(export.header("content-encoding"), None);
    // The head and the lent spans go as one body of a known length, not chunked.
    assert_eq!(
        export.header("content-length"),
        Some(export.body_len.to_string().as_str())
    );
    assert_eq!(export.header("transfer-encoding"), None);
    let resource_spans = &export.request.resource_spans;
    assert_eq!(resource_spans.len(), 1);
    let resource = resource_spans[0].resource.as_ref().unwrap();
    assert_eq!(
        attribute(&resource.attributes, "service.name"),
        Some(&Value::StringValue("reporter-tests".into()))
    );
    assert_eq!(
        attribute(&resource.attributes, "deployment"),
        Some(&Value::StringValue("canary".into()))
    );
    let scope = resource_spans[0].scope_spans[0].scope.as_ref().unwrap();
    assert_eq!(scope.name, "lstrace");
    let root = satellite.span("checkout").unwrap();
    let child = satellite.span("charge").unwrap();
    assert_eq!(root.trace_id, trace_id.to_u128(), "all 128 bits");
    assert_eq!(satellite.trace(trace_id).len(), 2);
    assert_eq!(root.kind, Some(lstrace_core::SpanKind::Server));
    assert_eq!(root.service, "reporter-tests");
    assert_eq!(child.parent_id, Some(root.span_id));
    assert_eq!(child.tag("amount"), Some(&FieldValue::Int(12)));
    assert_eq!(
        child.logs[0].fields,
        [("event".to_owned(), FieldValue::Str("retry".into()))]
    );
    assert_eq!(satellite.tree(), expected_tree, "the same tree either way");
    assert!(events.wait_for(|e| matches!(e, Event::ReportSent(StatusReport { spans_sent: 2, .. }))));
}

#[test]
fn gzip_bodies_arrive_whole() {
    let satellite = LocalSatellite::start().unwrap();
    let events = EventLog::new();
    let tracer = UninstalledTracer::start(
        options(&[satellite.url()], &events).compression(Compression::Gzip),
    )
    .unwrap();
    let spans = small_spans(50);
    let sent: Vec<u64> = spans.iter().map(|s| s.context().span_id().get()).collect();
    feed(&tracer, spans);
    assert!(!tracer.flush(PATIENCE).timed_out);
    let exports = satellite.otlp_requests();
    assert_eq!(exports[0].header("content-encoding"), Some("gzip"));
    assert_eq!(span_ids(&satellite), sent);
    // Fifty spans that differ in a few bytes compress well.
    assert!(exports[0].body_len < 50 * 60, "{}", exports[0].body_len);
}

#[test]
fn a_full_buffer_drops_the_newest_and_tells_the_collector() {
    let satellite = overflow_a_two_span_buffer(options);
    let exports = satellite.otlp_requests();
    let counts = |export: usize| {
        let scope = &exports[export].request.resource_spans[0].scope_spans[0].scope;
        scope.clone().unwrap().attributes
    };
    assert_eq!(
        attribute(&counts(0), "spans.dropped"),
        Some(&Value::IntValue(3 + 4))
    );
    // Once told, the collector hears no count again.
    assert!(counts(1).is_empty());
}

#[test]
fn throttling_statuses_are_retried_after_retry_after() {
    for status in [429, 502, 503, 504] {
        let satellite = LocalSatellite::start().unwrap();
        satellite.set_behaviour(Behaviour::RetryAfter { status, seconds: 1 });
        let events = EventLog::new();
        let tracer = UninstalledTracer::start(options(&[satellite.url()], &events)).unwrap();
        let spans = small_spans(3);
        let sent: HashSet<u64> = spans.iter().map(|s| s.context().span_id().get()).collect();
        feed(&tracer, spans);
        let flushed = std::thread::scope(|scope| {
            let flush = scope.spawn(|| tracer.flush(PATIENCE));
            assert!(satellite.wait_for_reports(1, PATIENCE));
            satellite.set_behaviour(Behaviour::Accept);
            flush.join().unwrap()
        });
        assert!(!flushed.timed_out, "{status}");
        assert_eq!(flushed.spans_sent, 3, "{status}");
        let received: HashSet<u64> = span_ids(&satellite).into_iter().collect();
        assert_eq!(received, sent, "{status}");
        assert!(events.wait_for(|e| matches!(
            e,
            Event::ReportFailed(ReportFailure {
                error: ReportError::Throttled { status: s, retry_after: Some(wait) },
                will_retry: true,
                ..
            }) if *s == status && *wait == Duration::from_secs(1)
        )));
    }
}

#[test]
fn a_retry_waits_as_long_as_the_server_asks() {
    let satellite = LocalSatellite::start().unwrap();
    satellite.set_behaviour(Behaviour::RetryAfter {
        status: 503,
        seconds: 3600,
    });
    let events = EventLog::new();
    let tracer = UninstalledTracer::start(options(&[satellite.url()], &events)).unwrap();
    feed(&tracer, small_spans(1));
    let flushed = std::thread::scope(|scope| {
        let flush = scope.spawn(|| tracer.flush(Duration::from_secs(2)));
        assert!(satellite.wait_for_reports(1, PATIENCE));
        satellite.set_behaviour(Behaviour::Accept);
        flush.join().unwrap()
    });
    // Without Retry-After the retry would leave after the 20 ms backoff and succeed; the
    // server asked for an hour (capped at a minute), so the flush runs out first.
    assert!(flushed.timed_out);
    assert_eq!(satellite.requests_seen(), 1);
    assert_eq!(tracer.stats().spans_buffered, 1, "waiting for its retry");
}

#[test]
fn other_statuses_are_not_retried() {
    for status in [400, 401, 403, 413, 500, 501] {
        let satellite = LocalSatellite::start().unwrap();
        satellite.set_behaviour(Behaviour::Status(status));
        let events = EventLog::new();
        let tracer = UninstalledTracer::start(options(&[satellite.url()], &events)).unwrap();
        feed(&tracer, small_spans(2));
        let flushed = tracer.flush(PATIENCE);
        assert!(!flushed.timed_out);
        assert_eq!(
            (flushed.spans_sent, flushed.spans_dropped),
            (0, 2),
            "{status}"
        );
        assert_eq!(satellite.requests_seen(), 1, "{status}: one attempt only");
        assert!(events.wait_for(|e| matches!(
            e,
            Event::ReportFailed(ReportFailure {
                will_retry: false,
                ..
            })
        )));
        assert!(events.wait_for(|e| *e
            == Event::SpansDropped {
                count: 2,
                reason: DropReason::ReportFailed
            }));
    }
}

#[test]
fn partial_success_counts_the_refused_spans() {
    let satellite = LocalSatellite::start().unwrap();
    satellite.set_behaviour(Behaviour::RejectSpans {
        count: 2,
        message: "spans too old".into(),
    });
    let events = EventLog::new();
    let tracer = UninstalledTracer::start(options(&[satellite.url()], &events)).unwrap();
    feed(&tracer, small_spans(5));
    let flushed = tracer.flush(PATIENCE);
    assert!(!flushed.timed_out);
    assert_eq!((flushed.spans_sent, flushed.spans_dropped), (3, 2));
    assert_eq!(satellite.requests_seen(), 1, "never retried");
    let stats = tracer.stats();
    assert_eq!(
        stats.spans_received,
        stats.spans_sent + stats.spans_dropped + stats.spans_buffered
    );
    assert!(events.wait_for(|e| *e
        == Event::SpansRejected {
            endpoint: format!("{}/v1/traces", satellite.url()),
            count: 2,
            message: "spans too old".into(),
        }));
    assert!(events.wait_for(|e| *e
        == Event::SpansDropped {
            count: 2,
            reason: DropReason::Rejected
        }));
}

/// A `partial_success` that refuses no span but says something is OTLP's warning: told to
/// the event handler, and every span counts as sent.
#[test]
fn a_partial_success_without_rejected_spans_is_a_warning() {
    let satellite = LocalSatellite::start().unwrap();
    satellite.set_behaviour(Behaviour::RejectSpans {
        count: 0,
        message: "attribute values were truncated".into(),
    });
    let events = EventLog::new();
    let tracer = UninstalledTracer::start(options(&[satellite.url()], &events)).unwrap();
    feed(&tracer, small_spans(5));
    let flushed = tracer.flush(PATIENCE);
    assert!(!flushed.timed_out);
    assert_eq!((flushed.spans_sent, flushed.spans_dropped), (5, 0));
    assert_eq!(satellite.requests_seen(), 1, "never retried");
    assert!(events.wait_for(|e| matches!(e,
        Event::Warning { message }
            if message.contains("attribute values were truncated")
                && message.contains(&satellite.url()))));
    assert!(!events
        .events()
        .iter()
        .any(|e| matches!(e, Event::SpansRejected { .. } | Event::SpansDropped { .. })));
}

#[test]
fn a_dead_endpoint_fails_over_to_a_live_one() {
    let live = LocalSatellite::start().unwrap();
    let events = EventLog::new();
    let tracer = UninstalledTracer::start(options(&[dead_url(), live.url()], &events)).unwrap();
    let mut sent = HashSet::new();
    for _ in 0..3 {
        let spans = small_spans(2);
        sent.extend(spans.iter().map(|s| s.context().span_id().get()));
        feed(&tracer, spans);
        let flushed = tracer.flush(PATIENCE);
        assert!(!flushed.timed_out);
        assert_eq!(flushed.spans_dropped, 0);
    }
    let received: HashSet<u64> = span_ids(&live).into_iter().collect();
    assert_eq!(received, sent);
}

#[test]
fn flush_and_close_keep_their_deadline_against_a_silent_endpoint() {
    let satellite = LocalSatellite::start().unwrap();
    satellite.set_behaviour(Behaviour::Never);
    let events = EventLog::new();
    let tracer = UninstalledTracer::start(options(&[satellite.url()], &events)).unwrap();
    feed(&tracer, small_spans(2));
    let flushed = tracer.flush(Duration::from_millis(200));
    assert!(flushed.timed_out);
    let closed = tracer.close(Duration::from_millis(200));
    assert!(closed.timed_out || closed.stopped);
    assert!(tracer.is_stopped());
    let stats = tracer.stats();
    assert_eq!(stats.spans_received, 2);
    assert_eq!(
        stats.spans_received,
        stats.spans_sent + stats.spans_dropped + stats.spans_buffered
    );
}

#[test]
fn a_token_is_optional_and_header_values_never_show() {
    let satellite = LocalSatellite::start().unwrap();
    let events = EventLog::new();
    let tracer = UninstalledTracer::start(
        Options::new("")
            .protocol(Protocol::Otlp)
            .component_name("no-token")
            .collector_url(satellite.url())
            .header("authorization", "Bearer hdr-9d1f0b")
            .event_handler(events.handler()),
    )
    .unwrap();
    feed(&tracer, small_spans(1));
    assert!(!tracer.flush(PATIENCE).timed_out);
    let export = &satellite.otlp_requests()[0];
    assert_eq!(export.header("lightstep-access-token"), None);
    assert_eq!(export.header("authorization"), Some("Bearer hdr-9d1f0b"));
    let shown = format!("{tracer:?} {export:?} {:?}", events.events());
    assert!(!shown.contains("hdr-9d1f0b"), "{shown}");
}

#[test]
fn the_web_view_shows_otlp_spans_with_lightstep_ones() {
    let satellite = LocalSatellite::start_with_view(
        std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        lstrace_core::satellite::ViewLimits::default(),
    )
    .unwrap();
    let events = EventLog::new();
    let otlp = UninstalledTracer::start(options(&[satellite.url()], &events)).unwrap();
    let lightstep =
        UninstalledTracer::start(support::options(&[satellite.url()], &events)).unwrap();
    feed(&otlp, small_spans(2));
    feed(&lightstep, small_spans(3));
    assert!(!otlp.flush(PATIENCE).timed_out);
    assert!(!lightstep.flush(PATIENCE).timed_out);
    assert!(satellite.wait_for_spans(5, PATIENCE));
    let stats = satellite.view_stats().unwrap();
    assert_eq!(stats.spans, 5);
    assert_eq!(satellite.reports_received(), 2);
}

/// A collector that redirects gets no retry at the new place: the access token and the
/// configured headers go to the configured collectors only, and never show.
#[test]
fn redirects_are_not_followed_and_headers_stay_home() {
    for status in [301, 302, 307, 308] {
        let elsewhere = LocalSatellite::start().unwrap();
        let target = format!("{}/v1/traces", elsewhere.url());
        let collector = FaultServer::start(Fault::Redirect(status, target)).unwrap();
        let events = EventLog::new();
        let tracer = UninstalledTracer::start(
            options(&[collector.url()], &events).header("authorization", "Bearer hdr-7c2e41"),
        )
        .unwrap();
        feed(&tracer, small_spans(2));
        let flushed = tracer.flush(PATIENCE);
        assert!(!flushed.timed_out, "{status}");
        assert_eq!(flushed.spans_dropped, 2, "{status}");
        assert_eq!(collector.requests().len(), 1, "{status}: one attempt");
        assert_eq!(
            collector.requests()[0].access_token_header.as_deref(),
            Some(TOKEN)
        );
        assert_eq!(elsewhere.requests_seen(), 0, "{status}: followed");
        assert!(events.wait_for(|e| matches!(
            e,
            Event::ReportFailed(ReportFailure { error: ReportError::Refused { status: s }, .. })
                if *s == status
        )));
        let shown = format!("{tracer:?} {:?}", events.events());
        assert!(!shown.contains("hdr-7c2e41"), "{shown}");
        assert!(!shown.contains(TOKEN), "{shown}");
    }
}
