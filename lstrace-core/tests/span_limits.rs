//! Per-span caps set in `Options` apply to every span made after `init`: what a cap drops is
//! counted on the span and reported (`tags.dropped` alongside `logs.dropped`,
//! `baggage.dropped`, `operation_names.truncated`), and so is what injection leaves out of a
//! carrier (`propagation.fields_left_out`): to the collector, in `Stats` and to the event
//! handler.

mod support;

use lstrace_core::protocol::lightstep::key_value::Value;
use lstrace_core::satellite::LocalSatellite;
use lstrace_core::{propagation, recorder, span, Event};
use std::collections::HashMap;
use support::{count, options, EventLog, PATIENCE};

#[test]
fn caps_set_in_options_apply_to_every_span_and_what_they_drop_is_counted() {
    let satellite = LocalSatellite::start().unwrap();
    let events = EventLog::new();
    let tracer = lstrace_core::init(
        options(&[satellite.url()], &events)
            .max_tags_per_span(4)
            .max_baggage_items(3)
            .max_operation_name_len(11)
            .max_logs_per_span(2),
    )
    .unwrap();

    let fields_left_out_before = propagation::fields_left_out();
    let mut context = None;
    {
        // 3 tags from the builder, 7 more set on the span: 4 kept, 6 dropped.
        let mut s = span("tagged")
            .with_tag("b0", 0)
            .with_tag("b1", 1)
            .with_tag("b2", 2)
            .start();
        for i in 0..7 {
            s.set_tag(format!("s{i}"), i);
        }
        // A key the span has replaces its value: never dropped.
        s.set_tag("b0", "replaced");
        for i in 0..5 {
            s.set_baggage_item(format!("item{i}"), "v");
            s.log([("n", i)]);
        }
        context = context.or(s.context());
        // A name cut on a character boundary: "é" takes bytes 10 and 11, past the cap of 11.
        span("operation-é-long-name").start().finish();
    }
    {
        // A baggage value longer than extraction takes back is left out of every carrier.
        let mut outgoing = span("outgoing").start();
        outgoing.set_baggage_item("big", "v".repeat(propagation::MAX_BAGGAGE_VALUE_BYTES + 1));
        let mut headers = HashMap::new();
        propagation::inject(&outgoing.context().unwrap(), &mut headers);
        assert!(!headers.keys().any(|k| k.contains("big")), "{headers:?}");
    }
    let fields_left_out = propagation::fields_left_out() - fields_left_out_before;
    assert!(fields_left_out >= 1);
    let context = context.unwrap();
    assert_eq!(context.baggage().count(), 3);
    assert_eq!(context.dropped_baggage_items(), 2);

    assert!(!tracer.flush(PATIENCE).timed_out);
    // As the report carried them: typed tags, and the baggage.
    let spans = satellite.lightstep_spans();
    let tagged = spans.iter().find(|s| s.operation_name == "tagged").unwrap();
    let keys: Vec<&str> = tagged.tags.iter().map(|t| t.key.as_str()).collect();
    assert_eq!(keys, ["b0", "b1", "b2", "s0"]);
    assert_eq!(
        tagged.tags[0].value,
        Some(Value::StringValue("replaced".into()))
    );
    assert_eq!(tagged.logs.len(), 2);
    assert_eq!(tagged.span_context.as_ref().unwrap().baggage.len(), 3);
    assert!(
        spans.iter().any(|s| s.operation_name == "operation-"),
        "{:?}",
        spans.iter().map(|s| &s.operation_name).collect::<Vec<_>>()
    );

    let reports = satellite.reports();
    let total =
        |name: &str| -> i64 { reports.iter().filter_map(|r| count(&r.request, name)).sum() };
    assert_eq!(total("tags.dropped"), 6);
    assert_eq!(total("logs.dropped"), 3);
    assert_eq!(total("baggage.dropped"), 2);
    assert_eq!(total("operation_names.truncated"), 1);
    assert_eq!(total("propagation.fields_left_out"), fields_left_out as i64);
    let stats = tracer.stats();
    assert_eq!((stats.tags_dropped, stats.logs_dropped), (6, 3));
    assert_eq!(
        (
            stats.baggage_items_dropped,
            stats.operation_names_truncated,
            stats.propagation_fields_left_out
        ),
        (2, 1, fields_left_out)
    );
    assert_eq!(recorder::baggage_items_dropped(), 2);
    assert_eq!(recorder::operation_names_truncated(), 1);

    // The event handler hears the same counts, with the reports that carried them.
    let mut told = [0u64; 5];
    for event in events.events() {
        if let Event::ReportSent(report) = event {
            told[0] += report.tags_dropped;
            told[1] += report.logs_dropped;
            told[2] += report.baggage_items_dropped;
            told[3] += report.operation_names_truncated;
            told[4] += report.propagation_fields_left_out;
        }
    }
    assert_eq!(told, [6, 3, 2, 1, fields_left_out]);
    tracer.close(PATIENCE);
}
