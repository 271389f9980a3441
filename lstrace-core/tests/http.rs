//! The HTTP integrations against real servers on 127.0.0.1: reqwest client spans, the tower
//! layer's server spans, and one trace across two services.

mod support;

use axum::extract::{MatchedPath, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use lstrace_core::http::{TraceLayer, TracedRequestBuilder};
use lstrace_core::propagation::{self, Format, PropagatorStack};
use lstrace_core::testing::tree::{self, TreeStyle};
use lstrace_core::testing::TestRecorder;
use lstrace_core::{span, SpanContext, SpanId, SpanRecord, TagValue, TraceId};
use std::net::SocketAddr;
use support::http::{
    call_as, calling_service, echo_service, echoed_headers, header, serve, trace_spans, SendForText,
};

/// A handler that does traced work across an await.
async fn work() -> &'static str {
    {
        let _load = span("load").with_tag("step", 1).start();
    }
    tokio::task::yield_now().await;
    let _render = span("render").start();
    "done"
}

async fn fail() -> (StatusCode, &'static str) {
    let _inner = span("inner").start();
    (StatusCode::SERVICE_UNAVAILABLE, "down")
}

fn tree(spans: &[SpanRecord]) -> String {
    tree::render(spans, TreeStyle::default())
}

#[tokio::test]
async fn client_span_injects_its_context() {
    let capture = TestRecorder::install().capture();
    let addr = echo_service().await;
    let url = format!("http://ann:s3cr3t@{addr}/echo?q=1");
    let echoed = capture
        .scope(async {
            reqwest::Client::new()
                .get(&url)
                .send_traced_for_text()
                .await
        })
        .await;
    let client = capture.span("HTTP GET").expect("client span recorded");
    assert_eq!(
        capture.tree(),
        format!(
            "HTTP GET [http.method=GET, http.status_code=200, http.url=http://{addr}/echo?q=1, span.kind=client]\n"
        )
    );
    let ctx = client.context();
    assert_eq!(ctx.trace_id(), capture.context().trace_id());
    assert_eq!(
        header(&echoed, "traceparent"),
        Some(format!("00-{}-{}-01", ctx.trace_id(), ctx.span_id()).as_str())
    );
    assert_eq!(
        header(&echoed, "ot-tracer-spanid"),
        Some(ctx.span_id().to_string().as_str())
    );
    assert_eq!(
        header(&echoed, "x-b3-traceid"),
        Some(ctx.trace_id().to_string().as_str())
    );
    assert_eq!(header(&echoed, "ot-tracer-sampled"), Some("true"));
}

#[tokio::test]
async fn client_span_marks_failures() {
    let capture = TestRecorder::install().capture();
    let addr = serve(Router::new().route("/fail", get(fail))).await;
    // A port nobody listens on any more: the connection is refused.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    capture
        .scope(async {
            let client = reqwest::Client::new();
            let response = client
                .get(format!("http://{addr}/fail"))
                .send_traced()
                .await
                .unwrap();
            assert_eq!(response.status(), 503);
            let refused = client.get(format!("http://{closed}/")).send_traced().await;
            assert!(refused.is_err());
        })
        .await;
    let spans = capture.spans();
    assert_eq!(spans.len(), 2);
    let unavailable = spans
        .iter()
        .find(|s| s.tag("http.status_code") == Some(&TagValue::Int(503)))
        .expect("the 503 span");
    assert_eq!(unavailable.tag("error"), Some(&TagValue::Bool(true)));
    let refused = spans
        .iter()
        .find(|s| s.tag("http.status_code").is_none())
        .expect("the refused span");
    assert_eq!(refused.tag("error"), Some(&TagValue::Bool(true)));
    assert_eq!(
        refused.logs()[0].field("event"),
        Some(&TagValue::from_static("error"))
    );
}

#[tokio::test]
async fn server_span_continues_the_callers_trace_in_every_format() {
    let _recorder = TestRecorder::install();
    let addr = serve(
        Router::new()
            .route("/work", get(work))
            .layer(TraceLayer::new()),
    )
    .await;
    let client = reqwest::Client::new();
    let (w3c_trace, b3_trace) = (TraceId::random(), TraceId::random());
    let trace_64 = TraceId::from_u128(u128::from(TraceId::random().low()));
    let parent = "00f067aa0ba902b7";
    let cases = [
        (
            vec![("traceparent", format!("00-{w3c_trace}-{parent}-01"))],
            w3c_trace,
        ),
        (
            vec![
                ("X-B3-TraceId", b3_trace.to_string()),
                ("X-B3-SpanId", parent.to_owned()),
            ],
            b3_trace,
        ),
        (
            vec![
                ("ot-tracer-traceid", format!("{:X}", trace_64.low())),
                ("OT-Tracer-SpanId", "F067AA0BA902B7".to_owned()),
            ],
            trace_64,
        ),
    ];
    for (headers, trace) in cases {
        let name = headers[0].0;
        let request = headers.iter().fold(
            client.get(format!("http://{addr}/work?x=1")),
            |r, (k, v)| r.header(*k, v),
        );
        let response = request.send().await.unwrap();
        assert_eq!(response.text().await.unwrap(), "done");
        let spans = trace_spans(trace, 3);
        assert_eq!(
            tree(&spans),
            "HTTP GET [http.method=GET, http.status_code=200, http.url=/work?x=1, span.kind=server]\n  load [step=1]\n  render\n",
            "{name}"
        );
        let server = spans.iter().find(|s| s.name() == "HTTP GET").unwrap();
        assert_eq!(server.parent_id(), Some(0x00f0_67aa_0ba9_02b7), "{name}");
        assert!(spans.iter().all(|s| s.context().trace_id() == trace));
    }
}

#[tokio::test]
async fn server_layer_takes_a_stack_and_names_spans_by_route() {
    let _recorder = TestRecorder::install();
    let layer = TraceLayer::new()
        .with_propagators(
            lstrace_core::propagation::PropagatorStack::empty()
                .with(lstrace_core::propagation::Format::B3Single),
        )
        .with_operation_name(|request| {
            let route = request
                .extensions
                .get::<MatchedPath>()
                .map_or("?", |r| r.as_str());
            format!("{} {route}", request.method)
        });
    let app = Router::new()
        .route("/users/{id}", get(work))
        .route("/fail", get(fail))
        .layer(layer);
    let addr = serve(app).await;
    let client = reqwest::Client::new();
    let trace = TraceId::random();
    for path in ["/users/7", "/fail"] {
        client
            .get(format!("http://{addr}{path}"))
            .header("b3", format!("{trace}-00f067aa0ba902b7-1"))
            // Not in this layer's stack: ignored.
            .header(
                "traceparent",
                "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            )
            .send()
            .await
            .unwrap();
    }
    let spans = trace_spans(trace, 5);
    assert_eq!(
        tree(&spans),
        "GET /users/{id} [http.method=GET, http.status_code=200, http.url=/users/7, span.kind=server]\n  load [step=1]\n  render\n\
         GET /fail [error=true, http.method=GET, http.status_code=503, http.url=/fail, span.kind=server]\n  inner\n"
    );
}

/// Two services: an upstream one, traced by `TraceLayer`, that calls the downstream echo
/// service through the reqwest integration. Returns (upstream, downstream).
async fn two_services() -> (SocketAddr, SocketAddr) {
    let downstream = echo_service().await;
    (
        calling_service(downstream, TraceLayer::new()).await,
        downstream,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_spans_two_services() {
    let _recorder = TestRecorder::install();
    let (upstream, downstream) = two_services().await;
    let trace = TraceId::random();
    let echoed = reqwest::Client::new()
        .get(format!("http://{upstream}/call"))
        .header("traceparent", format!("00-{trace}-00f067aa0ba902b7-01"))
        .header("tracestate", "congo=t61rcWkgMzE")
        .header("baggage", "user=ann")
        .send_for_text()
        .await;
    let spans = trace_spans(trace, 3);
    assert_eq!(
        tree(&spans),
        format!(
            "HTTP GET [http.method=GET, http.status_code=200, http.url=/call, span.kind=server]\n  \
             prepare\n  \
             HTTP GET [http.method=GET, http.status_code=200, http.url=http://{downstream}/echo, span.kind=client]\n"
        )
    );
    let client = spans
        .iter()
        .find(|s| s.tag("span.kind") == Some(&TagValue::from_static("client")))
        .unwrap();
    // The downstream service received the whole 128-bit trace id, the trace state and the
    // baggage, with the client span as parent.
    assert_eq!(
        header(&echoed, "traceparent"),
        Some(format!("00-{trace}-{}-01", client.context().span_id()).as_str())
    );
    assert_eq!(header(&echoed, "tracestate"), Some("congo=t61rcWkgMzE"));
    assert_eq!(header(&echoed, "baggage"), Some("user=ann"));
    assert_eq!(header(&echoed, "ot-baggage-user"), Some("ann"));
    assert_eq!(
        header(&echoed, "x-b3-traceid"),
        Some(trace.to_string().as_str())
    );
}

#[tokio::test]
async fn a_not_sampled_request_records_nothing_and_passes_the_decision_on() {
    let _recorder = TestRecorder::install();
    let (upstream, _) = two_services().await;
    let trace = TraceId::random();
    let echoed = reqwest::Client::new()
        .get(format!("http://{upstream}/call"))
        .header("traceparent", format!("00-{trace}-00f067aa0ba902b7-00"))
        .send_for_text()
        .await;
    // The client span is not recorded, but it has a context of its own: same trace, a new
    // span id, not sampled.
    let traceparent = header(&echoed, "traceparent").expect("a traceparent");
    assert!(
        traceparent.starts_with(&format!("00-{trace}-")) && traceparent.ends_with("-00"),
        "{traceparent}"
    );
    assert!(!traceparent.contains("00f067aa0ba902b7"), "{traceparent}");
    assert_eq!(header(&echoed, "x-b3-sampled"), Some("0"));
    assert!(TestRecorder::install().trace(trace).is_empty());
}

/// Every format's "not sampled" and baggage go through a service traced by the tower layer
/// to the service it calls with the reqwest integration, with an item the handler adds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_unsampled_decision_and_baggage_go_through_a_service_in_every_format() {
    let _recorder = TestRecorder::install();
    let downstream = echo_service().await;
    async fn call_downstream(State(downstream): State<SocketAddr>) -> String {
        let context = {
            let mut handle = span("handle").start();
            handle.set_baggage_item("added", "in-rust");
            handle.context().expect("a context under the caller's")
        };
        let call = context.in_scope(|| {
            reqwest::Client::new()
                .get(format!("http://{downstream}/echo"))
                .send_traced()
        });
        call.await.unwrap().text().await.unwrap()
    }
    let formats = [
        Format::LightStep,
        Format::B3Multi,
        Format::B3Single,
        Format::TraceContext,
        Format::Envoy,
    ];
    for format in formats {
        let upstream = serve(
            Router::new()
                .route("/call", get(call_downstream))
                .layer(TraceLayer::new().with_propagators(PropagatorStack::empty().with(format)))
                .with_state(downstream),
        )
        .await;
        let trace = TraceId::from_u128(u128::from(SpanId::random().get()));
        let caller =
            SpanContext::new(trace, SpanId::random(), false).with_baggage_item("user", "ann");
        let echoed = call_as(&caller, format, upstream).await;
        let received = echoed_headers(&echoed);
        // The downstream service reads the default stack's formats: each one says the same.
        for read in [Format::LightStep, Format::TraceContext, Format::B3Multi] {
            let context = PropagatorStack::empty()
                .with(read)
                .extract(&received)
                .unwrap_or_else(|| panic!("{format:?} -> {read:?}: {echoed}"));
            assert_eq!(context.trace_id(), trace, "{format:?} -> {read:?}");
            assert!(!context.is_sampled(), "{format:?} -> {read:?}");
            assert_ne!(
                context.span_id(),
                caller.span_id(),
                "{format:?} -> {read:?}"
            );
        }
        let mut baggage: Vec<(String, String)> = propagation::extract(&received)
            .unwrap()
            .baggage()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        baggage.sort();
        let mut expected = vec![("added".to_owned(), "in-rust".to_owned())];
        if !matches!(format, Format::B3Multi | Format::B3Single) {
            expected.push(("user".to_owned(), "ann".to_owned()));
        }
        assert_eq!(baggage, expected, "{format:?}");
        assert!(
            TestRecorder::install().trace(trace).is_empty(),
            "{format:?}"
        );
    }
}

/// A request without a caller's context starts a trace that the sampling policy decides:
/// left out, it records nothing, and the calls it makes say "not sampled".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sampling_policy_decides_the_traces_the_layer_starts() {
    // Only spans named `sampled out*` are left out: the other tests here are not affected.
    lstrace_core::sampling::set_global(lstrace_core::sampling::Sampling::parent_based(
        |start: &lstrace_core::sampling::SamplingStart<'_>| {
            !start.name().starts_with("sampled out")
        },
    ));
    let _recorder = TestRecorder::install();
    let downstream = echo_service().await;
    async fn call(State(downstream): State<SocketAddr>) -> String {
        reqwest::Client::new()
            .get(format!("http://{downstream}/echo"))
            .send_traced_for_text()
            .await
    }
    let upstream = serve(
        Router::new()
            .route("/call", get(call))
            .layer(TraceLayer::new().with_operation_name(|_| "sampled out".to_owned()))
            .with_state(downstream),
    )
    .await;
    let echoed = reqwest::Client::new()
        .get(format!("http://{upstream}/call"))
        .send_for_text()
        .await;
    let traceparent = header(&echoed, "traceparent").expect("a traceparent");
    assert!(traceparent.ends_with("-00"), "{traceparent}");
    let trace = TraceId::from_u128(u128::from_str_radix(&traceparent[3..35], 16).unwrap());
    assert!(TestRecorder::install().trace(trace).is_empty());

    // A caller's "sampled" is followed (the policy is parent-based).
    let caller = TraceId::random();
    let echoed = reqwest::Client::new()
        .get(format!("http://{upstream}/call"))
        .header("traceparent", format!("00-{caller}-00f067aa0ba902b7-01"))
        .send_for_text()
        .await;
    assert!(header(&echoed, "traceparent").unwrap().ends_with("-01"));
    assert_eq!(trace_spans(caller, 2).len(), 2);
}
