//! The full-buffer scenario, which both protocols' reporter tests run (`reporter.rs`,
//! `reporter_otlp.rs`): what the tracer does is the same, only how a report tells the
//! collector about drops differs.

use super::{feed, small_spans, EventLog, PATIENCE};
use lstrace_core::__private::UninstalledTracer;
use lstrace_core::reporter::{DropReason, StatusReport};
use lstrace_core::satellite::LocalSatellite;
use lstrace_core::{Event, Options};

/// A tracer whose buffer holds two spans, after its threads' rings dropped four, is given
/// five: it sends the oldest two in one report, counts seven dropped (three by the buffer,
/// four by the rings) and tells its event handler; then it sends one span more in a second
/// report. Returns the satellite, whose two reports the caller reads for the drop counts they
/// carried.
pub(crate) fn overflow_a_two_span_buffer(
    options: fn(&[String], &EventLog) -> Options,
) -> LocalSatellite {
    let satellite = LocalSatellite::start().unwrap();
    let events = EventLog::new();
    let tracer =
        UninstalledTracer::start(options(&[satellite.url()], &events).max_buffered_spans(2))
            .unwrap();
    let spans = small_spans(5);
    let first_two: Vec<u64> = spans[..2]
        .iter()
        .map(|s| s.context().span_id().get())
        .collect();
    // Spans dropped by a thread's full ring are counted too.
    tracer.dropped(4);
    // Half of this buffer is one span: the report may leave before the flush.
    feed(&tracer, spans);
    assert!(!tracer.flush(PATIENCE).timed_out);

    let received: Vec<u64> = satellite.spans().iter().map(|s| s.span_id).collect();
    assert_eq!(received, first_two, "the oldest are kept");
    assert_eq!(satellite.reports_received(), 1);
    let stats = tracer.stats();
    assert_eq!(
        (
            stats.spans_received,
            stats.spans_sent,
            stats.spans_dropped,
            stats.spans_buffered
        ),
        (5, 2, 7, 0)
    );
    assert!(events.wait_for(|e| *e
        == Event::SpansDropped {
            count: 3,
            reason: DropReason::BufferFull
        }));
    assert!(events.wait_for(|e| *e
        == Event::SpansDropped {
            count: 4,
            reason: DropReason::RingFull
        }));
    assert!(events.wait_for(|e| matches!(
        e,
        Event::ReportSent(StatusReport {
            spans_sent: 2,
            spans_dropped: 7,
            ..
        })
    )));

    feed(&tracer, small_spans(1));
    assert!(!tracer.flush(PATIENCE).timed_out);
    assert_eq!(satellite.reports_received(), 2);
    satellite
}
