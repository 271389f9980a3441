//! Baggage that extraction leaves out of a context (beyond the bounds) is counted, like what
//! injection leaves out. A process of its own: the count is process-wide.

use lstrace_core::propagation::{self, Format, Propagator, MAX_BAGGAGE_ITEMS};
use std::collections::HashMap;

const ITEMS: usize = MAX_BAGGAGE_ITEMS + 36;

fn left_out_by(extract: impl FnOnce() -> Option<lstrace_core::SpanContext>) -> (usize, u64) {
    let before = propagation::fields_left_out();
    let context = extract().expect("a context");
    (
        context.baggage().count(),
        propagation::fields_left_out() - before,
    )
}

#[test]
fn baggage_beyond_the_bounds_is_counted_when_extracted() {
    let w3c: HashMap<String, String> = [
        (
            "traceparent".to_owned(),
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".to_owned(),
        ),
        (
            "baggage".to_owned(),
            (0..ITEMS)
                .map(|i| format!("k{i}=v{i}"))
                .collect::<Vec<_>>()
                .join(","),
        ),
    ]
    .into_iter()
    .collect();
    assert_eq!(
        left_out_by(|| Format::TraceContext.extract(&w3c)),
        (MAX_BAGGAGE_ITEMS, 36)
    );

    let mut lightstep: HashMap<String, String> = [
        (
            "ot-tracer-traceid".to_owned(),
            "0af7651916cd43dd".to_owned(),
        ),
        ("ot-tracer-spanid".to_owned(), "b7ad6b7169203331".to_owned()),
        ("ot-tracer-sampled".to_owned(), "true".to_owned()),
    ]
    .into_iter()
    .collect();
    lightstep.extend((0..ITEMS).map(|i| (format!("ot-baggage-k{i}"), format!("v{i}"))));
    assert_eq!(
        left_out_by(|| Format::LightStep.extract(&lightstep)),
        (MAX_BAGGAGE_ITEMS, 36)
    );

    // A value too long to decode within the bounds is left out before it is decoded.
    let long = [
        (
            "traceparent".to_owned(),
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".to_owned(),
        ),
        ("baggage".to_owned(), format!("k={}", "v".repeat(20_000))),
    ]
    .into_iter()
    .collect::<HashMap<String, String>>();
    assert_eq!(left_out_by(|| Format::TraceContext.extract(&long)), (0, 1));
}
