//! The reporter end to end, through real HTTP to the local satellite.
//!
//! Spans are traced with the real API and captured by the test recorder (the process's
//! recorder here); each test then hands them to a tracer of its own ([`UninstalledTracer::start`], not
//! installed), so that every scenario runs in this one binary. `init` itself is tested in
//! `reporter_init.rs` and `reporter_disable.rs`.

mod support;

use lstrace_core::__private::UninstalledTracer;
use lstrace_core::protocol::lightstep::{self, key_value::Value, ReportRequest};
use lstrace_core::reporter::{
    DropReason, ReportError, ReportFailure, StatusReport, COMPONENT_NAME, TRACER_PLATFORM,
    TRACER_PLATFORM_VERSION, TRACER_VERSION,
};
use lstrace_core::satellite::{Behaviour, LocalSatellite};
use lstrace_core::testing::TestRecorder;
use lstrace_core::{span, Event};
use std::collections::HashSet;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use support::full_buffer::overflow_a_two_span_buffer;
use support::{count, dead_url, feed, options, small_spans, EventLog, PATIENCE, TOKEN};

fn string_tag<'a>(tags: &'a [lightstep::KeyValue], key: &str) -> Option<&'a str> {
    tags.iter()
        .find(|t| t.key == key)
        .and_then(|t| match &t.value {
            Some(Value::StringValue(s)) => Some(s.as_str()),
            _ => None,
        })
}

fn unix_nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64
}

#[test]
fn reports_carry_what_was_traced() {
    let satellite = LocalSatellite::start().unwrap();
    let events = EventLog::new();
    let tracer = UninstalledTracer::start(
        options(&[satellite.url()], &events).reporter_tag("deployment", "canary"),
    )
    .unwrap();

    let before = SystemTime::now();
    let capture = TestRecorder::install().capture();
    let (parent_ctx, follower_ctx) = capture.in_scope(|| {
        let mut parent = span("parent")
            .with_tag("text", "héllo")
            .with_tag("count", 42)
            .with_tag("ratio", 0.5)
            .with_tag("flag", true)
            .start();
        parent.set_baggage_item("user", "ann");
        parent.log([("event", "cache_miss"), ("key", "user:7")]);
        std::thread::sleep(Duration::from_millis(20));
        let parent_ctx = parent.context().unwrap();
        let _child = span("child").start();
        let follower = span("follower").follows_from(&parent_ctx).start_detached();
        let follower_ctx = follower.context().unwrap();
        follower.finish();
        (parent_ctx, follower_ctx)
    });
    let after = SystemTime::now();
    let recorded = capture.spans();
    assert_eq!(recorded.len(), 3);
    let parent_duration = recorded
        .iter()
        .find(|s| s.name() == "parent")
        .unwrap()
        .duration();
    feed(&tracer, recorded);
    let flushed = tracer.flush(PATIENCE);
    assert!(!flushed.timed_out);
    assert_eq!((flushed.spans_sent, flushed.reports_sent), (3, 1));

    let reports = satellite.reports();
    assert_eq!(reports.len(), 1);
    let report = &reports[0];
    assert!(report.accepted);
    assert_eq!(report.method, "POST");
    assert_eq!(report.path, "/api/v2/reports");
    assert_eq!(
        report.content_type.as_deref(),
        Some("application/octet-stream")
    );
    assert_eq!(report.accept.as_deref(), Some("application/octet-stream"));
    assert_eq!(report.access_token_header.as_deref(), Some(TOKEN));
    let request: &ReportRequest = &report.request;
    assert_eq!(request.auth.as_ref().unwrap().access_token, TOKEN);
    assert_eq!(request.timestamp_offset_micros, 0);
    assert_eq!(count(request, "spans.dropped"), Some(0));

    let reporter = request.reporter.as_ref().unwrap();
    assert_ne!(reporter.reporter_id, 0);
    let tags = &reporter.tags;
    assert_eq!(string_tag(tags, COMPONENT_NAME), Some("reporter-tests"));
    assert_eq!(string_tag(tags, TRACER_PLATFORM), Some("rust"));
    assert!(string_tag(tags, TRACER_PLATFORM_VERSION)
        .unwrap()
        .starts_with("rustc "));
    assert_eq!(
        string_tag(tags, TRACER_VERSION),
        Some(env!("CARGO_PKG_VERSION"))
    );
    assert!(string_tag(tags, "lightstep.hostname").is_some());
    assert!(string_tag(tags, "lightstep.command_line").is_some());
    assert_eq!(string_tag(tags, "deployment"), Some("canary"));

    assert_eq!(
        satellite.tree(),
        "parent [count=42, flag=true, ratio=0.5, text=héllo]\n  child\n  follower\n"
    );
    // The report as the reporter encoded it: 64-bit trace ids, baggage, whole microseconds.
    let spans = satellite.lightstep_spans();
    let find = |name: &str| spans.iter().find(|s| s.operation_name == name).unwrap();
    let (parent, child, follower) = (find("parent"), find("child"), find("follower"));

    let trace_low = parent_ctx.trace_id().low();
    assert_ne!(parent_ctx.trace_id().high(), 0, "a 128-bit trace id");
    for s in [parent, child, follower] {
        let context = s.span_context.as_ref().unwrap();
        assert_eq!(context.trace_id, trace_low);
        let start = s.start_timestamp.unwrap().to_unix_nanos();
        assert!(start >= unix_nanos(before) - 1_000_000_000, "{start}");
        assert!(start <= unix_nanos(after) + 1_000_000_000, "{start}");
    }
    let parent_context = parent.span_context.as_ref().unwrap();
    assert_eq!(parent_context.span_id, parent_ctx.span_id().get());
    assert_eq!(
        parent_context.baggage.get("user").map(String::as_str),
        Some("ann")
    );
    assert_eq!(parent.references.len(), 1, "the capture's invisible parent");
    // The recorded duration in whole microseconds, truncated (the parent's sleep makes
    // nanoseconds, microseconds and milliseconds all differ).
    assert_eq!(
        u128::from(parent.duration_micros),
        parent_duration.as_micros()
    );

    let values: Vec<(&str, &Value)> = parent
        .tags
        .iter()
        .map(|t| (t.key.as_str(), t.value.as_ref().unwrap()))
        .collect();
    assert_eq!(
        values,
        [
            ("text", &Value::StringValue("héllo".into())),
            ("count", &Value::IntValue(42)),
            ("ratio", &Value::DoubleValue(0.5)),
            ("flag", &Value::BoolValue(true)),
        ]
    );
    assert_eq!(parent.logs.len(), 1);
    let log = &parent.logs[0];
    let log_time = log.timestamp.unwrap().to_unix_nanos();
    assert!(log_time >= parent.start_timestamp.unwrap().to_unix_nanos());
    assert_eq!(string_tag(&log.fields, "event"), Some("cache_miss"));
    assert_eq!(string_tag(&log.fields, "key"), Some("user:7"));

    let reference = |s: &lightstep::LightStepSpan| {
        let r = &s.references[0];
        let context = r.span_context.as_ref().unwrap();
        (r.relationship, context.trace_id, context.span_id)
    };
    let parent_id = parent_ctx.span_id().get();
    assert_eq!(
        reference(child),
        (
            lightstep::LightStepRelationship::ChildOf as i32,
            trace_low,
            parent_id
        )
    );
    assert_eq!(
        reference(follower),
        (
            lightstep::LightStepRelationship::FollowsFrom as i32,
            trace_low,
            parent_id
        )
    );
    assert_eq!(
        follower.span_context.as_ref().unwrap().span_id,
        follower_ctx.span_id().get()
    );
    // The child inherits the parent's baggage.
    assert_eq!(
        child
            .span_context
            .as_ref()
            .unwrap()
            .baggage
            .get("user")
            .map(String::as_str),
        Some("ann")
    );

    assert!(events.wait_for(|e| matches!(
        e,
        Event::ReportSent(StatusReport {
            spans_sent: 3,
            spans_dropped: 0,
            ..
        })
    )));
    assert!(
        !events.events().iter().any(Event::is_error),
        "{:?}",
        events.events()
    );
}

#[test]
fn a_root_span_has_no_reference() {
    let satellite = LocalSatellite::start().unwrap();
    let events = EventLog::new();
    let tracer = UninstalledTracer::start(options(&[satellite.url()], &events)).unwrap();
    let recorder = TestRecorder::install();
    let root = span("lonely").root().start_detached();
    let trace_id = root.context().unwrap().trace_id();
    root.finish();
    feed(&tracer, recorder.trace(trace_id));
    assert!(!tracer.flush(PATIENCE).timed_out);
    let spans = satellite.spans();
    assert_eq!(spans.len(), 1);
    assert!(spans[0].references.is_empty());
    assert!(spans[0].in_trace(trace_id));
}

#[test]
fn a_full_buffer_drops_the_newest_and_tells_the_collector() {
    let satellite = overflow_a_two_span_buffer(options);
    let reports = satellite.reports();
    assert_eq!(count(&reports[0].request, "spans.dropped"), Some(3 + 4));
    // Once told, the count starts again from zero.
    assert_eq!(count(&reports[1].request, "spans.dropped"), Some(0));
}

#[test]
fn an_unauthorized_report_is_dropped_and_counted() {
    let satellite = LocalSatellite::start().unwrap();
    satellite.set_behaviour(Behaviour::Status(401));
    let events = EventLog::new();
    let tracer = UninstalledTracer::start(options(&[satellite.url()], &events)).unwrap();
    feed(&tracer, small_spans(3));
    let flushed = tracer.flush(PATIENCE);
    assert!(!flushed.timed_out);
    assert_eq!((flushed.spans_sent, flushed.spans_dropped), (0, 3));
    assert_eq!(flushed.reports_failed, 1, "a refused token is not retried");
    assert!(events.wait_for(|e| matches!(
        e,
        Event::ReportFailed(ReportFailure {
            error: ReportError::Unauthorized { status: 401 },
            spans: 3,
            will_retry: false,
            ..
        })
    )));
    assert!(events.wait_for(|e| *e
        == Event::SpansDropped {
            count: 3,
            reason: DropReason::ReportFailed
        }));

    // When the collector is back, it learns about the loss.
    satellite.set_behaviour(Behaviour::Accept);
    feed(&tracer, small_spans(1));
    assert!(!tracer.flush(PATIENCE).timed_out);
    let reports = satellite.reports();
    assert_eq!(reports.len(), 2);
    assert!(reports[1].accepted);
    assert_eq!(count(&reports[1].request, "spans.dropped"), Some(3));
}

#[test]
fn server_errors_are_retried_then_dropped() {
    let satellite = LocalSatellite::start().unwrap();
    satellite.set_behaviour(Behaviour::Status(500));
    let events = EventLog::new();
    let tracer =
        UninstalledTracer::start(options(&[satellite.url()], &events).max_report_attempts(3))
            .unwrap();
    feed(&tracer, small_spans(2));
    let flushed = tracer.flush(PATIENCE);
    assert!(!flushed.timed_out);
    assert_eq!((flushed.reports_failed, flushed.spans_dropped), (3, 2));
    assert_eq!(satellite.requests_seen(), 3);
    // Every attempt sent the same spans.
    let reports = satellite.reports();
    assert!(reports
        .iter()
        .all(|r| r.request.spans == reports[0].request.spans));
    let failures: Vec<(u32, bool)> = events
        .events()
        .iter()
        .filter_map(|e| match e {
            Event::ReportFailed(f) => {
                assert_eq!(f.error, ReportError::Status { status: 500 });
                Some((f.attempt, f.will_retry))
            }
            _ => None,
        })
        .collect();
    assert_eq!(failures, [(1, true), (2, true), (3, false)]);
}

#[test]
fn a_retry_that_succeeds_loses_nothing() {
    let satellite = LocalSatellite::start().unwrap();
    satellite.set_behaviour(Behaviour::Status(503));
    let events = EventLog::new();
    let tracer = UninstalledTracer::start(
        options(&[satellite.url()], &events).min_reporting_period(Duration::from_millis(300)),
    )
    .unwrap();
    feed(&tracer, small_spans(2));
    // The first attempt fails; the retry waits out its backoff, by which time the
    // collector is healthy again.
    let flush = std::thread::spawn({
        let tracer = tracer.clone();
        move || tracer.flush(PATIENCE)
    });
    assert!(satellite.wait_for_reports(1, PATIENCE));
    satellite.set_behaviour(Behaviour::Accept);
    let flushed = flush.join().unwrap();
    assert!(!flushed.timed_out);
    assert_eq!((flushed.spans_sent, flushed.spans_dropped), (2, 0));
    assert_eq!(satellite.spans().len(), 2);
}

#[test]
fn garbage_is_a_warning_and_rejections_are_failed_reports() {
    let satellite = LocalSatellite::start().unwrap();
    let events = EventLog::new();
    let tracer =
        UninstalledTracer::start(options(&[satellite.url()], &events).max_report_attempts(1))
            .unwrap();

    // A 200 means the satellite has the report, whatever its body says.
    satellite.set_behaviour(Behaviour::Garbage);
    feed(&tracer, small_spans(1));
    let flushed = tracer.flush(PATIENCE);
    assert_eq!((flushed.spans_sent, flushed.spans_dropped), (1, 0));
    assert!(events.wait_for(|e| matches!(
        e,
        Event::Warning { message } if message.contains("not a ReportResponse")
    )));

    satellite.set_behaviour(Behaviour::Errors(vec!["quota exceeded".into()]));
    feed(&tracer, small_spans(1));
    let flushed = tracer.flush(PATIENCE);
    assert_eq!((flushed.spans_sent, flushed.spans_dropped), (0, 1));
    assert!(events.wait_for(|e| matches!(
        e,
        Event::ReportFailed(ReportFailure { error: ReportError::Rejected { errors }, .. })
            if errors == &["quota exceeded".to_owned()]
    )));
    assert!(!tracer.is_stopped());
}

#[test]
fn a_collector_that_never_answers_cannot_hold_a_flush() {
    let satellite = LocalSatellite::start().unwrap();
    satellite.set_behaviour(Behaviour::Never);
    let events = EventLog::new();
    // The attempt outlives the test: it is cut short by close.
    let tracer = UninstalledTracer::start(
        options(&[satellite.url()], &events).report_timeout(Duration::from_secs(60)),
    )
    .unwrap();
    feed(&tracer, small_spans(1));
    let timeout = Duration::from_millis(300);

    let started = Instant::now();
    let flushed = tracer.flush(timeout);
    assert!(flushed.timed_out);
    assert!(started.elapsed() < PATIENCE);

    // Blocking flush inside async code, on either kind of runtime, and the async flush.
    let current = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let flushed = current.block_on(async { tracer.flush(timeout) });
    assert!(flushed.timed_out);
    let flushed = current.block_on(tracer.flush_async(timeout));
    assert!(flushed.timed_out);
    let multi = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let flushed = multi.block_on(async {
        let tracer = tracer.clone();
        tokio::spawn(async move { tracer.flush(timeout) })
            .await
            .unwrap()
    });
    assert!(flushed.timed_out);
    // The async flush needs no runtime at all.
    assert!(futures::executor::block_on(tracer.flush_async(timeout)).timed_out);

    let started = Instant::now();
    let closed = tracer.close(timeout);
    assert!(closed.timed_out && closed.stopped);
    assert!(started.elapsed() < PATIENCE);
    assert!(events.wait_for(|e| matches!(
        e,
        Event::SpansDropped {
            reason: DropReason::Stopped,
            ..
        }
    )));
    assert_eq!(tracer.stats().spans_buffered, 0);
}

#[test]
fn disable_stops_the_tracer() {
    let satellite = LocalSatellite::start().unwrap();
    satellite.set_behaviour(Behaviour::Disable);
    let events = EventLog::new();
    let tracer = UninstalledTracer::start(options(&[satellite.url()], &events)).unwrap();
    feed(&tracer, small_spans(2));
    let flushed = tracer.flush(PATIENCE);
    assert!(flushed.stopped && !flushed.timed_out);
    assert!(tracer.is_stopped());
    assert!(events.wait_for(|e| matches!(e, Event::TracerDisabled { .. })));

    // Later spans are refused (and counted), and nothing more is sent.
    let requests = satellite.requests_seen();
    feed(&tracer, small_spans(1));
    let flushed = tracer.flush(PATIENCE);
    assert!(flushed.stopped);
    assert_eq!(satellite.requests_seen(), requests);
}

#[test]
fn reports_go_round_robin_and_skip_a_dead_collector() {
    let (a, b) = (
        LocalSatellite::start().unwrap(),
        LocalSatellite::start().unwrap(),
    );
    let events = EventLog::new();
    let tracer = UninstalledTracer::start(options(&[a.url(), b.url()], &events)).unwrap();
    for _ in 0..4 {
        feed(&tracer, small_spans(1));
        assert!(!tracer.flush(PATIENCE).timed_out);
    }
    assert_eq!((a.reports().len(), b.reports().len()), (2, 2));

    let live = LocalSatellite::start().unwrap();
    let events = EventLog::new();
    let tracer = UninstalledTracer::start(options(&[dead_url(), live.url()], &events)).unwrap();
    let mut sent = HashSet::new();
    for _ in 0..4 {
        let spans = small_spans(2);
        sent.extend(spans.iter().map(|s| s.context().span_id().get()));
        feed(&tracer, spans);
        let flushed = tracer.flush(PATIENCE);
        assert!(!flushed.timed_out);
        assert_eq!(flushed.spans_dropped, 0);
    }
    let received: HashSet<u64> = live.spans().iter().map(|s| s.span_id).collect();
    assert_eq!(received, sent);
    assert!(events.wait_for(|e| matches!(
        e,
        Event::ReportFailed(ReportFailure {
            error: ReportError::Connection(_),
            will_retry: true,
            ..
        })
    )));
}

#[test]
fn big_batches_are_split_under_4_mb() {
    let satellite = LocalSatellite::start().unwrap();
    let events = EventLog::new();
    let tracer =
        UninstalledTracer::start(options(&[satellite.url()], &events).max_log_value_len(1 << 20))
            .unwrap();
    let capture = TestRecorder::install().capture();
    let payload = "x".repeat(300_000);
    capture.in_scope(|| {
        for i in 0..40 {
            let _s = span("big")
                .with_tag("payload", payload.clone())
                .with_tag("i", i)
                .start();
        }
    });
    let spans = capture.spans();
    let sent: HashSet<u64> = spans.iter().map(|s| s.context().span_id().get()).collect();
    feed(&tracer, spans);
    let flushed = tracer.flush(PATIENCE);
    assert!(!flushed.timed_out);
    assert_eq!((flushed.spans_sent, flushed.spans_dropped), (40, 0));
    let reports = satellite.reports();
    assert!(reports.len() >= 3, "{} reports", reports.len());
    for report in &reports {
        assert!(report.accepted);
        assert!(report.body_len < 4_000_000, "{}", report.body_len);
    }
    let received: HashSet<u64> = satellite.spans().iter().map(|s| s.span_id).collect();
    assert_eq!(received, sent);
}

#[test]
fn a_span_too_big_for_any_report_is_an_encoding_error() {
    let satellite = LocalSatellite::start().unwrap();
    let events = EventLog::new();
    let tracer =
        UninstalledTracer::start(options(&[satellite.url()], &events).max_log_value_len(8 << 20))
            .unwrap();
    let capture = TestRecorder::install().capture();
    capture.in_scope(|| {
        let _huge = span("huge")
            .with_tag("payload", "y".repeat(5_000_000))
            .start();
        let _fine = span("fine").start();
    });
    feed(&tracer, capture.spans());
    // It is dropped as it arrives, before the flush.
    assert_eq!(tracer.stats().spans_dropped, 1);
    assert_eq!(tracer.stats().encoding_errors, 1);
    assert_eq!(tracer.flush(PATIENCE).spans_sent, 1);
    assert!(events.wait_for(|e| matches!(e, Event::EncodingError { .. })));
    assert!(events.wait_for(|e| *e
        == Event::SpansDropped {
            count: 1,
            reason: DropReason::TooLarge
        }));
    assert_eq!(
        count(&satellite.reports()[0].request, "spans.dropped"),
        Some(1)
    );
}

#[test]
fn logs_over_the_limit_are_dropped_and_counted() {
    let satellite = LocalSatellite::start().unwrap();
    let events = EventLog::new();
    let tracer =
        UninstalledTracer::start(options(&[satellite.url()], &events).max_logs_per_span(2))
            .unwrap();
    let capture = TestRecorder::install().capture();
    capture.in_scope(|| {
        let mut s = span("chatty").start();
        for i in 0..5 {
            s.log([("n", i)]);
        }
    });
    feed(&tracer, capture.spans());
    assert!(!tracer.flush(PATIENCE).timed_out);
    assert_eq!(satellite.spans()[0].logs.len(), 2);
    assert_eq!(
        count(&satellite.reports()[0].request, "logs.dropped"),
        Some(3)
    );
    assert_eq!(tracer.stats().logs_dropped, 3);

    // Dropping span logs is a choice: not counted.
    let satellite = LocalSatellite::start().unwrap();
    let tracer =
        UninstalledTracer::start(options(&[satellite.url()], &events).drop_span_logs(true))
            .unwrap();
    feed(&tracer, capture.spans());
    assert!(!tracer.flush(PATIENCE).timed_out);
    assert!(satellite.spans()[0].logs.is_empty());
    assert_eq!(
        count(&satellite.reports()[0].request, "logs.dropped"),
        Some(0)
    );
}

#[test]
fn spans_are_reported_every_period_without_a_flush() {
    let satellite = LocalSatellite::start().unwrap();
    let events = EventLog::new();
    let tracer = UninstalledTracer::start(
        options(&[satellite.url()], &events).reporting_period(Duration::from_millis(100)),
    )
    .unwrap();
    feed(&tracer, small_spans(3));
    assert!(satellite.wait_for_spans(3, PATIENCE));
}

#[test]
fn a_half_full_buffer_is_reported_early() {
    let satellite = LocalSatellite::start().unwrap();
    let events = EventLog::new();
    // The period alone would not send anything within the test.
    let tracer =
        UninstalledTracer::start(options(&[satellite.url()], &events).max_buffered_spans(10))
            .unwrap();
    feed(&tracer, small_spans(5));
    assert!(satellite.wait_for_spans(5, PATIENCE));
}

#[test]
fn close_sends_what_is_left_then_refuses_spans() {
    let satellite = LocalSatellite::start().unwrap();
    let events = EventLog::new();
    let tracer = UninstalledTracer::start(options(&[satellite.url()], &events)).unwrap();
    feed(&tracer, small_spans(3));
    let closed = tracer.close(PATIENCE);
    assert!(closed.stopped && !closed.timed_out);
    assert_eq!(closed.spans_sent, 3);
    assert!(tracer.is_stopped());
    feed(&tracer, small_spans(1));
    assert_eq!(tracer.stats().spans_dropped, 1);
    let again = tracer.flush(PATIENCE);
    assert!(again.stopped && !again.timed_out);
    assert_eq!(satellite.spans().len(), 3);
}

#[test]
fn the_token_never_shows() {
    let satellite = LocalSatellite::start().unwrap();
    satellite.set_behaviour(Behaviour::Status(403));
    let events = EventLog::new();
    let tracer = UninstalledTracer::start(
        options(&[satellite.url(), dead_url()], &events).max_report_attempts(2),
    )
    .unwrap();
    feed(&tracer, small_spans(1));
    tracer.flush(PATIENCE);
    satellite.set_behaviour(Behaviour::Disable);
    feed(&tracer, small_spans(1));
    tracer.flush(PATIENCE);
    let shown = events.events();
    assert!(shown.iter().any(Event::is_error));
    for event in &shown {
        assert!(!event.to_string().contains(TOKEN), "{event}");
        assert!(!format!("{event:?}").contains(TOKEN), "{event:?}");
    }
    assert!(!format!("{tracer:?}").contains(TOKEN));
    assert!(!format!("{:?}", satellite.reports()).contains(TOKEN));
}
