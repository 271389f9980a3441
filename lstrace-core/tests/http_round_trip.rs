//! Sampling decisions and baggage through a service, end to end over HTTP, in each format
//! alone: the caller's headers in one format reach the tower layer, and the call the handler
//! makes with the reqwest integration goes out in that same format.
//!
//! The process-wide propagator stack (which both integrations use) changes per format, so
//! this binary holds a single test that runs the formats one after the other.

mod support;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::get;
use axum::Router;
use lstrace_core::http::{TraceLayer, TracedRequestBuilder};
use lstrace_core::propagation::{self, Format, PropagatorStack};
use lstrace_core::sampling::{self, AlwaysOff, Sampling};
use lstrace_core::testing::TestRecorder;
use lstrace_core::{span, SpanContext, SpanId, TraceId};
use std::net::SocketAddr;
use support::http::{echo_service, echoed_headers, serve, trace_spans, SendForText};

/// The handler in the middle: a span of its own (not recorded under an unsampled caller),
/// an item set on it with `EnteredSpan::set_baggage_item`, and a call downstream inside it.
async fn call_downstream(State(downstream): State<SocketAddr>) -> String {
    let call = {
        let mut handle = span("handle").start();
        handle.set_baggage_item("added", "in-rust");
        reqwest::Client::new()
            .get(format!("http://{downstream}/echo"))
            .send_traced()
    };
    call.await.unwrap().text().await.unwrap()
}

/// Sends `caller` in `stack`'s formats to `upstream`; returns the headers its downstream
/// call carried.
async fn through_the_service(
    upstream: SocketAddr,
    stack: &PropagatorStack,
    caller: &SpanContext,
) -> HeaderMap {
    let mut headers = HeaderMap::new();
    stack.inject(caller, &mut headers);
    let echoed = reqwest::Client::new()
        .get(format!("http://{upstream}/call"))
        .headers(headers)
        .send_for_text()
        .await;
    echoed_headers(&echoed)
}

fn baggage(context: &SpanContext) -> Vec<(String, String)> {
    let mut items: Vec<_> = context
        .baggage()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    items.sort();
    items
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_format_round_trips_the_decision_and_baggage_through_a_service() {
    let recorder = TestRecorder::install();
    let downstream = echo_service().await;
    let upstream = serve(
        Router::new()
            .route("/call", get(call_downstream))
            .layer(TraceLayer::new())
            .with_state(downstream),
    )
    .await;

    // B3 has no baggage of its own: next to W3C trace context (its `baggage` header), the
    // baggage goes along and the ids and decision still come from B3.
    let stacks: [(&[Format], bool); 7] = [
        (&[Format::LightStep], true),
        (&[Format::TraceContext], true),
        (&[Format::Envoy], true),
        (&[Format::B3Multi], false),
        (&[Format::B3Single], false),
        (&[Format::B3Multi, Format::TraceContext], true),
        (&[Format::B3Single, Format::TraceContext], true),
    ];
    for (formats, carries_baggage) in stacks {
        let stack = formats
            .iter()
            .fold(PropagatorStack::empty(), |stack, &f| stack.with(f));
        propagation::set_global_stack(stack.clone());
        let first = PropagatorStack::empty().with(formats[0]);

        let trace = TraceId::from_u128(u128::from(SpanId::random().get()));
        let caller =
            SpanContext::new(trace, SpanId::random(), false).with_baggage_item("user", "ann");
        let received = through_the_service(upstream, &stack, &caller).await;
        let sent = first
            .extract(&received)
            .unwrap_or_else(|| panic!("{formats:?}: no context in {received:?}"));
        assert_eq!(sent.trace_id(), trace, "{formats:?}");
        assert_ne!(
            sent.span_id(),
            caller.span_id(),
            "{formats:?}: a span of its own"
        );
        assert!(!sent.is_sampled(), "{formats:?}");
        let mut expected = vec![("added".to_owned(), "in-rust".to_owned())];
        if carries_baggage {
            expected.push(("user".to_owned(), "ann".to_owned()));
            let whole = stack.extract(&received).unwrap();
            assert_eq!(baggage(&whole), expected, "{formats:?}");
        } else {
            assert!(sent.baggage().next().is_none(), "{formats:?}");
        }
        assert!(recorder.trace(trace).is_empty(), "{formats:?}");

        // The same service continues a sampled caller's trace: recorded, and sampled downstream.
        let trace = TraceId::from_u128(u128::from(SpanId::random().get()));
        let caller = SpanContext::new(trace, SpanId::random(), true);
        let received = through_the_service(upstream, &stack, &caller).await;
        let sent = first.extract(&received).unwrap();
        assert!(sent.trace_id() == trace && sent.is_sampled(), "{formats:?}");
        // The server span, `handle` and the client span.
        assert_eq!(trace_spans(trace, 3).len(), 3, "{formats:?}");
    }

    // B3's debug flag wins over a policy that records nothing and ignores callers: the
    // trace is recorded, and the flag goes on downstream.
    sampling::set_global(Sampling::ignoring_parent(AlwaysOff));
    for format in [Format::B3Multi, Format::B3Single] {
        let stack = PropagatorStack::empty().with(format);
        propagation::set_global_stack(stack.clone());
        let trace = TraceId::from_u128(u128::from(SpanId::random().get()));
        let caller = SpanContext::new(trace, SpanId::random(), true).with_debug(true);
        let received = through_the_service(upstream, &stack, &caller).await;
        let sent = stack.extract(&received).unwrap();
        assert!(sent.is_debug() && sent.trace_id() == trace, "{format:?}");
        match format {
            Format::B3Multi => assert_eq!(received["x-b3-flags"], "1"),
            _ => assert!(received["b3"].to_str().unwrap().ends_with("-d")),
        }
        assert_eq!(trace_spans(trace, 3).len(), 3, "{format:?}");
        // Without the flag, the same policy records nothing.
        let trace = TraceId::from_u128(u128::from(SpanId::random().get()));
        let caller = SpanContext::new(trace, SpanId::random(), true);
        let sent = stack
            .extract(&through_the_service(upstream, &stack, &caller).await)
            .unwrap();
        assert!(!sent.is_sampled(), "{format:?}");
        assert!(recorder.trace(trace).is_empty(), "{format:?}");
    }
}
