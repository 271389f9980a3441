//! The reporter against satellites that misbehave the way real networks do (see
//! `lstrace_core::satellite::fault`): every span is delivered or counted, once, and the access
//! token never leaves for another origin.

mod support;

use lstrace_core::__private::UninstalledTracer;
use lstrace_core::reporter::{DropReason, ReportError, ReportFailure};
use lstrace_core::satellite::fault::{Fault, FaultServer};
use lstrace_core::{Event, Options, SpanRecord, Stats};
use std::collections::HashSet;
use std::time::Duration;
use support::{feed, small_spans, EventLog, PATIENCE, TOKEN};

/// Default options but for the collectors and the event log: what a new user gets.
fn defaults(urls: &[String], events: &EventLog) -> Options {
    Options::new(TOKEN)
        .component_name("fault-tests")
        .collector_urls(urls.iter().cloned())
        .event_handler(events.handler())
}

/// Options that leave reports to flushes and retry quickly.
fn quick(urls: &[String], events: &EventLog) -> Options {
    support::options(urls, events)
}

fn assert_adds_up(stats: &Stats) {
    assert_eq!(
        stats.spans_made,
        stats.spans_sent + stats.spans_dropped + stats.spans_buffered,
        "{stats:?}"
    );
}

/// The drops the event handler heard of.
fn dropped_events(events: &EventLog) -> u64 {
    events
        .events()
        .iter()
        .map(|e| match e {
            Event::SpansDropped { count, .. } => *count,
            _ => 0,
        })
        .sum()
}

fn warned(events: &EventLog) -> bool {
    events
        .events()
        .iter()
        .any(|e| matches!(e, Event::Warning { .. }))
}

fn ids(spans: &[lstrace_core::protocol::lightstep::LightStepSpan]) -> HashSet<u64> {
    spans
        .iter()
        .map(|s| s.span_context.as_ref().unwrap().span_id)
        .collect()
}

/// Three seconds of 50,000 spans a second (half as many again as the default buffer
/// holds), in bursts of 5,000 every 100 ms, to a satellite with `fault`, with default
/// options: nothing may be lost.
fn fifty_thousand_spans_a_second_lose_nothing(fault: Fault, bursts: &[Vec<SpanRecord>]) {
    let satellite = FaultServer::start(fault.clone()).unwrap();
    let events = EventLog::new();
    let tracer = UninstalledTracer::start(defaults(&[satellite.url()], &events)).unwrap();
    for burst in bursts.iter().cloned() {
        let started = std::time::Instant::now();
        feed(&tracer, burst);
        std::thread::sleep(Duration::from_millis(100).saturating_sub(started.elapsed()));
    }
    let flushed = tracer.flush(PATIENCE);
    let stats = tracer.stats();
    assert!(!flushed.timed_out, "{fault:?}: {stats:?}");
    assert_eq!(stats.spans_dropped, 0, "{fault:?}: {stats:?}");
    assert_eq!(stats.spans_sent, 150_000, "{fault:?}: {stats:?}");
    assert_eq!(satellite.ingested().len(), 150_000, "{fault:?}");
}

/// One test, the satellites one after another: each run is heavy on a small machine.
#[test]
fn default_options_lose_nothing_at_50k_spans_a_second_in_bursts() {
    let bursts: Vec<_> = (0..30).map(|_| small_spans(5_000)).collect();
    for fault in [
        // Answering within 50 ms.
        Fault::Slow(Duration::from_millis(50)),
        // A short outage.
        Fault::StatusThenAccept {
            status: 503,
            count: 3,
        },
        // Answering in a second.
        Fault::Slow(Duration::from_secs(1)),
    ] {
        fifty_thousand_spans_a_second_lose_nothing(fault, &bursts);
    }
}

#[test]
fn a_hung_satellite_does_not_hold_back_a_healthy_one() {
    let hung = FaultServer::start(Fault::BlackHole).unwrap();
    let healthy = FaultServer::start(Fault::Accept).unwrap();
    let events = EventLog::new();
    let tracer = UninstalledTracer::start(defaults(&[hung.url(), healthy.url()], &events)).unwrap();
    // Shorter than the report timeout (5 s): the report the hung satellite holds must be
    // delivered elsewhere before the flush gives up.
    let deadline = Duration::from_secs(3);
    let mut made = HashSet::new();
    for round in 0..5 {
        let spans = small_spans(200);
        made.extend(spans.iter().map(|s| s.context().span_id().get()));
        feed(&tracer, spans);
        let flushed = if round < 4 {
            tracer.flush(deadline)
        } else {
            tracer.close(deadline)
        };
        assert!(!flushed.timed_out, "{flushed:?}");
        assert_eq!(flushed.spans_dropped, 0, "{flushed:?}");
    }
    let stats = tracer.stats();
    assert_eq!(
        (stats.spans_sent, stats.spans_dropped, stats.spans_buffered),
        (1000, 0, 0),
        "{stats:?}"
    );
    assert_eq!(ids(&healthy.ingested()), made);
    // The hung satellite got the first report (it came first in turn) and was overtaken.
    assert!(!hung.requests().is_empty());
    assert!(events.wait_for(
        |e| matches!(e, Event::Warning { message } if message.starts_with(&format!("no answer from {}", hung.url())))
    ));
}

#[test]
fn a_hedged_report_counts_once_when_both_satellites_take_it() {
    // The first satellite answers, but later than the hedge delay (a fifth of the 2 s
    // report timeout): both ingest the report, the tracer counts it once.
    let slow = FaultServer::start(Fault::Slow(Duration::from_millis(1500))).unwrap();
    let healthy = FaultServer::start(Fault::Accept).unwrap();
    let events = EventLog::new();
    let tracer = UninstalledTracer::start(quick(&[slow.url(), healthy.url()], &events)).unwrap();
    feed(&tracer, small_spans(50));
    let flushed = tracer.flush(PATIENCE);
    assert!(!flushed.timed_out, "{flushed:?}");
    assert!(slow.wait_for_ingested(50, PATIENCE));
    assert_eq!(healthy.ingested().len(), 50);
    // The slow satellite's answer (due 1.5 s after the report) is never heard.
    assert!(slow.wait_for_answers(1, PATIENCE));
    let stats = tracer.stats();
    assert_eq!(
        (stats.spans_made, stats.spans_sent, stats.spans_dropped),
        (50, 50, 0),
        "{stats:?}"
    );
    assert_eq!(stats.reports_sent, 1, "{stats:?}");
}

#[test]
fn a_huge_answer_is_not_read_and_the_report_counts_as_accepted() {
    let satellite = FaultServer::start(Fault::Huge(1 << 30)).unwrap();
    let events = EventLog::new();
    let tracer = UninstalledTracer::start(quick(&[satellite.url()], &events)).unwrap();
    feed(&tracer, small_spans(100));
    let flushed = tracer.flush(PATIENCE);
    assert!(!flushed.timed_out);
    assert_eq!((flushed.spans_sent, flushed.spans_dropped), (100, 0));
    assert_eq!(satellite.ingested().len(), 100, "sent once");
    // Read up to the cap, not to its end.
    assert!(
        events.events().iter().any(
            |e| matches!(e, Event::Warning { message } if message.contains("longer than 65536 bytes"))
        ),
        "{:?}",
        events.events()
    );
    assert_adds_up(&tracer.stats());
}

#[test]
fn redirects_are_not_followed_and_the_token_stays_home() {
    for status in [302, 307] {
        let elsewhere = FaultServer::start(Fault::Accept).unwrap();
        let target = format!("{}/api/v2/reports", elsewhere.url());
        let satellite = FaultServer::start(Fault::Redirect(status, target)).unwrap();
        let events = EventLog::new();
        let tracer = UninstalledTracer::start(quick(&[satellite.url()], &events)).unwrap();
        feed(&tracer, small_spans(3));
        let flushed = tracer.flush(PATIENCE);
        assert!(!flushed.timed_out);
        assert!(elsewhere.requests().is_empty(), "{status}: followed");
        assert_eq!(flushed.spans_dropped, 3, "{status}");
        assert!(events.wait_for(|e| matches!(
            e,
            Event::ReportFailed(ReportFailure { error: ReportError::Status { status: s }, .. })
                if *s == status
        )));
        assert_adds_up(&tracer.stats());
    }
}

#[test]
fn a_redirect_fails_over_to_another_collector() {
    for status in [301, 302, 307, 308] {
        let elsewhere = FaultServer::start(Fault::Accept).unwrap();
        let target = format!("{}/api/v2/reports", elsewhere.url());
        let redirecting = FaultServer::start(Fault::Redirect(status, target)).unwrap();
        let healthy = FaultServer::start(Fault::Accept).unwrap();
        let events = EventLog::new();
        let tracer =
            UninstalledTracer::start(quick(&[redirecting.url(), healthy.url()], &events)).unwrap();
        for _ in 0..3 {
            feed(&tracer, small_spans(4));
            let flushed = tracer.flush(PATIENCE);
            assert!(!flushed.timed_out, "{status}: {flushed:?}");
        }
        let stats = tracer.stats();
        assert_eq!(
            (stats.spans_sent, stats.spans_dropped),
            (12, 0),
            "{status}: {stats:?}"
        );
        assert_eq!(healthy.ingested().len(), 12, "{status}");
        // The redirecting collector had the first report, and nothing followed it.
        assert!(!redirecting.requests().is_empty(), "{status}");
        assert!(elsewhere.requests().is_empty(), "{status}: followed");
    }
}

#[test]
fn a_broken_200_answer_means_accepted_and_is_not_resent() {
    for fault in [Fault::Garbage, Fault::Truncated] {
        let satellite = FaultServer::start(fault.clone()).unwrap();
        let events = EventLog::new();
        let tracer = UninstalledTracer::start(quick(&[satellite.url()], &events)).unwrap();
        feed(&tracer, small_spans(10));
        let flushed = tracer.flush(PATIENCE);
        assert!(!flushed.timed_out, "{fault:?}");
        assert_eq!(
            (flushed.spans_sent, flushed.spans_dropped),
            (10, 0),
            "{fault:?}"
        );
        assert_eq!(satellite.ingested().len(), 10, "{fault:?}: ingested once");
        assert!(warned(&events), "{fault:?}: {:?}", events.events());
    }
}

#[test]
fn drop_counts_are_sent_until_accepted_then_never_again() {
    // Broken 200 answers (accepted) and a 503 (not accepted) on the way.
    let satellite = FaultServer::start(Fault::Garbage).unwrap();
    let events = EventLog::new();
    let tracer =
        UninstalledTracer::start(quick(&[satellite.url()], &events).max_buffered_spans(10))
            .unwrap();
    feed(&tracer, small_spans(15));
    assert!(!tracer.flush(PATIENCE).timed_out);
    satellite.set_fault(Fault::StatusThenAccept {
        status: 503,
        count: 1,
    });
    for _ in 0..4 {
        feed(&tracer, small_spans(5));
        assert!(!tracer.flush(PATIENCE).timed_out);
    }
    let stats = tracer.stats();
    assert_eq!(
        (stats.spans_sent, stats.spans_dropped),
        (30, 5),
        "{stats:?}"
    );
    assert_eq!(satellite.ingested().len(), 30);
    assert_eq!(satellite.ingested_drops(), 5);
}

#[test]
fn close_against_a_hung_satellite_counts_every_span_before_it_returns() {
    let satellite = FaultServer::start(Fault::BlackHole).unwrap();
    let events = EventLog::new();
    let tracer = UninstalledTracer::start(quick(&[satellite.url()], &events)).unwrap();
    feed(&tracer, small_spans(1000));
    let closed = tracer.close(Duration::from_secs(1));
    assert!(closed.timed_out && closed.stopped, "{closed:?}");
    assert_eq!((closed.spans_sent, closed.spans_dropped), (0, 1000));
    let stats = tracer.stats();
    assert_eq!(stats.spans_buffered, 0, "{stats:?}");
    assert_adds_up(&stats);
    let again = tracer.close(Duration::from_secs(1));
    assert_eq!(again.spans_dropped, 0, "{again:?}");
    assert_eq!(tracer.stats(), stats);
}

#[test]
fn a_report_accepted_after_close_gave_up_stays_counted_once() {
    // Answers 1.5 s after each report, after the close has given up.
    let satellite = FaultServer::start(Fault::Slow(Duration::from_millis(1500))).unwrap();
    let events = EventLog::new();
    let tracer = UninstalledTracer::start(quick(&[satellite.url()], &events)).unwrap();
    feed(&tracer, small_spans(20));
    let closed = tracer.close(Duration::from_millis(500));
    assert!(closed.timed_out, "{closed:?}");
    assert_eq!((closed.spans_sent, closed.spans_dropped), (0, 20));
    assert_adds_up(&closed.stats);
    // The satellite had the report, and its answer comes: it is not heard, so the spans are
    // not counted as sent on top of dropped, and nobody is told of them twice.
    assert!(satellite.wait_for_answers(1, PATIENCE));
    assert_eq!(satellite.ingested().len(), 20);
    let stats = tracer.stats();
    assert_eq!(stats, closed.stats);
    assert_eq!(dropped_events(&events), 20);
    assert!(!events
        .events()
        .iter()
        .any(|e| matches!(e, Event::ReportSent(_))));
}

#[test]
fn counts_add_up_at_every_moment() {
    let satellite = FaultServer::start(Fault::Slow(Duration::from_millis(5))).unwrap();
    let events = EventLog::new();
    let tracer = UninstalledTracer::start(
        quick(&[satellite.url()], &events)
            .max_buffered_spans(3000)
            .reporting_period(Duration::from_millis(20)),
    )
    .unwrap();
    let batches: Vec<_> = (0..20).map(|_| small_spans(500)).collect();
    std::thread::scope(|scope| {
        let feeder = scope.spawn(|| {
            for batch in batches {
                feed(&tracer, batch);
            }
        });
        while !feeder.is_finished() {
            assert_adds_up(&tracer.stats());
        }
    });
    let closed = tracer.close(PATIENCE);
    assert!(!closed.timed_out);
    let stats = tracer.stats();
    assert_eq!(stats.spans_made, 10_000);
    assert_eq!(stats.spans_buffered, 0);
    assert_adds_up(&stats);
    assert_eq!(satellite.ingested().len() as u64, stats.spans_sent);
}

#[test]
fn the_report_that_carries_disable_was_delivered() {
    let satellite = FaultServer::start(Fault::Disable).unwrap();
    let events = EventLog::new();
    let tracer = UninstalledTracer::start(quick(&[satellite.url()], &events)).unwrap();
    feed(&tracer, small_spans(5));
    let flushed = tracer.flush(PATIENCE);
    assert!(flushed.stopped);
    let stats = tracer.stats();
    assert_eq!((stats.spans_sent, stats.spans_dropped), (5, 0), "{stats:?}");
    assert_adds_up(&stats);
}

#[test]
fn every_drop_reaches_the_event_handler() {
    let satellite = FaultServer::start(Fault::Accept).unwrap();
    let events = EventLog::new();
    let tracer =
        UninstalledTracer::start(quick(&[satellite.url()], &events).max_buffered_spans(4)).unwrap();
    feed(&tracer, small_spans(10));
    assert!(!tracer.close(PATIENCE).timed_out);
    // Spans that arrive after the close are dropped too.
    feed(&tracer, small_spans(7));
    let stats = tracer.stats();
    assert_eq!(stats.spans_dropped, 6 + 7, "{stats:?}");
    assert_eq!(dropped_events(&events), stats.spans_dropped);
    assert!(events.events().contains(&Event::SpansDropped {
        count: 7,
        reason: DropReason::Stopped
    }));
}

#[test]
fn a_satellite_killed_and_restarted_gets_every_span_after_it_is_back() {
    let mut satellite = FaultServer::start(Fault::Accept).unwrap();
    let events = EventLog::new();
    let tracer =
        UninstalledTracer::start(quick(&[satellite.url()], &events).max_report_attempts(10))
            .unwrap();
    feed(&tracer, small_spans(10));
    assert!(!tracer.flush(PATIENCE).timed_out);
    satellite.kill();
    feed(&tracer, small_spans(10));
    let restart = std::thread::scope(|scope| {
        let flush = scope.spawn(|| tracer.flush(PATIENCE));
        assert!(events.wait_for(|e| matches!(e, Event::ReportFailed(_))));
        satellite.restart().unwrap();
        flush.join().unwrap()
    });
    assert!(!restart.timed_out, "{restart:?}");
    let stats = tracer.stats();
    assert_eq!(
        (stats.spans_sent, stats.spans_dropped),
        (20, 0),
        "{stats:?}"
    );
    assert_eq!(satellite.ingested().len(), 20);
}

#[test]
fn a_reset_connection_is_retried_elsewhere() {
    let resetting = FaultServer::start(Fault::Reset).unwrap();
    let healthy = FaultServer::start(Fault::Accept).unwrap();
    let events = EventLog::new();
    let tracer =
        UninstalledTracer::start(quick(&[resetting.url(), healthy.url()], &events)).unwrap();
    for _ in 0..3 {
        feed(&tracer, small_spans(4));
        assert!(!tracer.flush(PATIENCE).timed_out);
    }
    let stats = tracer.stats();
    assert_eq!(
        (stats.spans_sent, stats.spans_dropped),
        (12, 0),
        "{stats:?}"
    );
    assert_eq!(healthy.ingested().len(), 12);
}
