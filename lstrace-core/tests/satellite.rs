//! The local satellite, driven over real HTTP.

use lstrace_core::protocol::lightstep::{
    key_value, metrics_sample, Auth, Command, InternalMetrics, KeyValue, LightStepRelationship,
    LightStepSpan, LightStepSpanContext, Log, MetricsSample, Reference, ReportRequest,
    ReportResponse, Reporter, Timestamp,
};
use lstrace_core::satellite::{
    Behaviour, Limits, LocalSatellite, Stats, MAX_REPORT_BYTES, MISSING_COMPONENT_ERROR,
    REPORT_PATH,
};
use lstrace_core::testing::tree::TreeStyle;
use prost::Message;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

/// Upper bound for "does not hang" checks; never a timing assertion.
const GENEROUS: Duration = Duration::from_secs(5);

const TOKEN: &str = "s3cr3t-t0ken";

fn kv(key: &str, value: key_value::Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(value),
    }
}

fn string(key: &str, value: &str) -> KeyValue {
    kv(key, key_value::Value::StringValue(value.into()))
}

fn context(trace_id: u64, span_id: u64) -> Option<LightStepSpanContext> {
    Some(LightStepSpanContext {
        trace_id,
        span_id,
        baggage: Default::default(),
    })
}

/// A span of `trace_id`, starting `start_micros` after a fixed second.
fn span(
    trace_id: u64,
    span_id: u64,
    parent: Option<u64>,
    name: &str,
    start_micros: u64,
) -> LightStepSpan {
    LightStepSpan {
        span_context: context(trace_id, span_id),
        operation_name: name.into(),
        references: parent
            .map(|p| Reference {
                relationship: LightStepRelationship::ChildOf as i32,
                span_context: context(trace_id, p),
            })
            .into_iter()
            .collect(),
        start_timestamp: Some(Timestamp::from_unix_nanos(
            1_700_000_000_000_000_000 + start_micros * 1000,
        )),
        duration_micros: 1500,
        tags: vec![],
        logs: vec![],
    }
}

fn report(spans: Vec<LightStepSpan>) -> ReportRequest {
    ReportRequest {
        reporter: Some(Reporter {
            reporter_id: 42,
            tags: vec![
                string("lightstep.component_name", "checkout"),
                string("lightstep.tracer_platform", "rust"),
            ],
        }),
        auth: Some(Auth {
            access_token: TOKEN.into(),
        }),
        spans,
        ..ReportRequest::default()
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// Posts a body the way a reporter does.
async fn post(satellite: &LocalSatellite, body: Vec<u8>) -> reqwest::Response {
    client()
        .post(format!("{}{REPORT_PATH}", satellite.url()))
        .header("Content-Type", "application/octet-stream")
        .header("Accept", "application/octet-stream")
        .header("Lightstep-Access-Token", TOKEN)
        .body(body)
        .send()
        .await
        .unwrap()
}

/// Posts a report and decodes the satellite's answer.
async fn send(satellite: &LocalSatellite, request: &ReportRequest) -> ReportResponse {
    let response = post(satellite, request.encode_to_vec()).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "application/octet-stream"
    );
    ReportResponse::decode(response.bytes().await.unwrap()).unwrap()
}

/// The same exchange over a bare socket: status and body of a `Connection: close` request.
fn post_raw(satellite: &LocalSatellite, body: &[u8]) -> (u16, Vec<u8>) {
    let mut stream = std::net::TcpStream::connect(satellite.addr()).unwrap();
    stream.set_read_timeout(Some(GENEROUS)).unwrap();
    write!(
        stream,
        "POST {REPORT_PATH} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/octet-stream\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        satellite.addr(),
        body.len()
    )
    .unwrap();
    stream.write_all(body).unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).unwrap();
    let split = answer.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8(answer[..split].to_vec()).unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, answer[split + 4..].to_vec())
}

#[tokio::test]
async fn reports_round_trip_field_by_field() {
    let satellite = LocalSatellite::start().unwrap();
    let mut root = span(7, 1, None, "handle", 0);
    root.span_context.as_mut().unwrap().baggage = [("user".to_owned(), "ada".to_owned())]
        .into_iter()
        .collect();
    root.tags = vec![
        string("span.kind", "server"),
        kv("n", key_value::Value::IntValue(-3)),
        kv("ratio", key_value::Value::DoubleValue(0.25)),
        kv("error", key_value::Value::BoolValue(true)),
        kv("body", key_value::Value::JsonValue("{\"a\":1}".into())),
    ];
    root.logs = vec![Log {
        timestamp: Some(Timestamp::from_unix_nanos(1_700_000_000_000_500_000)),
        fields: vec![string("event", "error"), string("message", "boom")],
    }];
    let mut child = span(7, 2, Some(1), "load", 100);
    child.references[0].relationship = LightStepRelationship::FollowsFrom as i32;
    let mut sent = report(vec![root, child]);
    sent.timestamp_offset_micros = -17;
    sent.internal_metrics = Some(InternalMetrics {
        start_timestamp: Some(Timestamp::from_unix_nanos(1_699_999_999_000_000_000)),
        duration_micros: 2_500_000,
        logs: vec![],
        counts: vec![MetricsSample {
            name: "spans.dropped".into(),
            value: Some(metrics_sample::Value::IntValue(5)),
        }],
        gauges: vec![],
    });

    let answer = send(&satellite, &sent).await;
    assert_eq!(answer, ReportResponse::default());

    // The spans are decoded when first asked for: before and after the reports, the same.
    assert_eq!(satellite.lightstep_spans(), sent.spans);
    let reports = satellite.reports();
    assert_eq!(reports.len(), 1);
    let received = &reports[0];
    assert_eq!(received.request, sent);
    assert_eq!(received.request.auth.as_ref().unwrap().access_token, TOKEN);
    assert_eq!(received.access_token_header.as_deref(), Some(TOKEN));
    assert_eq!(
        received.content_type.as_deref(),
        Some("application/octet-stream")
    );
    assert_eq!(received.accept.as_deref(), Some("application/octet-stream"));
    assert_eq!(received.path, REPORT_PATH);
    assert_eq!(received.method, "POST");
    assert_eq!(received.body_len, sent.encoded_len());
    assert!(received.accepted);
    assert_eq!(received.component_name(), Some("checkout"));
    assert_eq!(satellite.lightstep_spans(), sent.spans);
    assert_eq!(satellite.requests_seen(), 1);
}

#[tokio::test]
async fn failing_statuses_are_answered_and_the_spans_not_kept() {
    let satellite = LocalSatellite::start().unwrap();
    let sent = report(vec![span(1, 1, None, "lost", 0)]);
    for (code, expected) in [(401, 401), (500, 500), (503, 503), (1000, 500), (99, 500)] {
        satellite.set_behaviour(Behaviour::Status(code));
        let response = post(&satellite, sent.encode_to_vec()).await;
        assert_eq!(response.status(), expected, "Status({code})");
    }
    let reports = satellite.reports();
    assert_eq!(reports.len(), 5);
    assert!(reports.iter().all(|r| !r.accepted && r.request == sent));
    assert!(satellite.spans().is_empty());
    assert_eq!(satellite.tree(), "");

    satellite.set_behaviour(Behaviour::Accept);
    send(&satellite, &sent).await;
    assert_eq!(satellite.lightstep_spans(), sent.spans);
}

#[tokio::test]
async fn garbage_is_not_a_report_response() {
    let satellite = LocalSatellite::start().unwrap();
    satellite.set_behaviour(Behaviour::Garbage);
    let response = post(
        &satellite,
        report(vec![span(1, 1, None, "a", 0)]).encode_to_vec(),
    )
    .await;
    assert_eq!(response.status(), 200);
    let body = response.bytes().await.unwrap();
    assert!(!body.is_empty());
    assert!(ReportResponse::decode(body).is_err());
    assert!(!satellite.reports()[0].accepted);
    assert!(satellite.spans().is_empty());
}

#[tokio::test]
async fn errors_are_answered_and_the_spans_not_kept() {
    let satellite = LocalSatellite::start().unwrap();
    let errors = vec!["rate limited".to_owned(), "try later".to_owned()];
    satellite.set_behaviour(Behaviour::Errors(errors.clone()));
    let answer = send(&satellite, &report(vec![span(1, 1, None, "a", 0)])).await;
    assert_eq!(answer.errors, errors);
    assert!(answer.commands.is_empty());
    assert!(!satellite.reports()[0].accepted);
    assert!(satellite.spans().is_empty());
}

#[tokio::test]
async fn disable_sends_the_command_and_keeps_the_spans() {
    let satellite = LocalSatellite::start().unwrap();
    satellite.set_behaviour(Behaviour::Disable);
    let sent = report(vec![span(1, 1, None, "a", 0)]);
    let answer = send(&satellite, &sent).await;
    assert_eq!(
        answer.commands,
        [Command {
            disable: true,
            dev_mode: false
        }]
    );
    assert!(answer.errors.is_empty());
    assert_eq!(satellite.lightstep_spans(), sent.spans);
}

#[tokio::test]
async fn delay_answers_accept_later() {
    let satellite = LocalSatellite::start().unwrap();
    let delay = Duration::from_millis(200);
    satellite.set_behaviour(Behaviour::Delay(delay));
    let sent = report(vec![span(1, 1, None, "a", 0)]);
    let started = Instant::now();
    let answer = send(&satellite, &sent).await;
    // A sleep never ends early: a lower bound is not a timing assumption.
    assert!(started.elapsed() >= delay);
    assert_eq!(answer, ReportResponse::default());
    assert_eq!(satellite.lightstep_spans(), sent.spans);
}

#[tokio::test]
async fn never_leaves_the_client_waiting_until_it_times_out() {
    let satellite = LocalSatellite::start().unwrap();
    satellite.set_behaviour(Behaviour::Never);
    let sent = report(vec![span(1, 1, None, "a", 0)]);
    let error = client()
        .post(format!("{}{REPORT_PATH}", satellite.url()))
        .timeout(Duration::from_millis(300))
        .body(sent.encode_to_vec())
        .send()
        .await
        .unwrap_err();
    assert!(error.is_timeout(), "{error}");
    assert!(satellite.wait_for_reports(1, GENEROUS));
    assert!(!satellite.reports()[0].accepted);
    assert!(satellite.spans().is_empty());
}

#[tokio::test]
async fn a_report_without_a_component_name_is_refused() {
    let satellite = LocalSatellite::start().unwrap();
    let mut unnamed = report(vec![span(1, 1, None, "a", 0)]);
    unnamed.reporter.as_mut().unwrap().tags[0] = string("lightstep.component_name", "");
    let mut anonymous = unnamed.clone();
    anonymous.reporter = None;
    for behaviour in [Behaviour::Accept, Behaviour::Disable] {
        satellite.set_behaviour(behaviour);
        for request in [&unnamed, &anonymous] {
            let answer = send(&satellite, request).await;
            assert_eq!(answer.errors, [MISSING_COMPONENT_ERROR]);
            assert!(answer.commands.is_empty());
        }
    }
    assert_eq!(satellite.reports().len(), 4);
    assert!(satellite
        .reports()
        .iter()
        .all(|r| !r.accepted && r.component_name().is_none()));
    assert!(satellite.spans().is_empty());
}

#[tokio::test]
async fn bad_requests_get_clear_answers() {
    let satellite = LocalSatellite::start().unwrap();
    let client = client();

    let wrong_method = client
        .get(format!("{}{REPORT_PATH}", satellite.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_method.status(), 405);
    assert_eq!(wrong_method.headers()["allow"], "POST");

    let wrong_path = client
        .post(format!("{}/api/v1/reports", satellite.url()))
        .body(report(vec![]).encode_to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_path.status(), 404);
    assert!(wrong_path.text().await.unwrap().contains(REPORT_PATH));

    let undecodable = post(&satellite, vec![0x0a, 0x05, 0x01]).await;
    assert_eq!(undecodable.status(), 400);
    let answer = ReportResponse::decode(undecodable.bytes().await.unwrap()).unwrap();
    assert_eq!(answer.errors.len(), 1);
    assert!(
        answer.errors[0].contains("not a valid ReportRequest"),
        "{answer:?}"
    );

    // A well-formed report header with one span whose name is not UTF-8: the spans are
    // checked on arrival even though they are decoded later.
    let mut broken_span = report(vec![span(1, 2, None, "ok", 0)]).encode_to_vec();
    broken_span.extend_from_slice(b"\x1a\x04\x12\x02\xc3\x28");
    let refused = post(&satellite, broken_span).await;
    assert_eq!(refused.status(), 400);
    let answer = ReportResponse::decode(refused.bytes().await.unwrap()).unwrap();
    assert!(answer.errors[0].contains("UTF-8"), "{answer:?}");

    assert_eq!(satellite.requests_seen(), 4);
    assert!(satellite.reports().is_empty());
    assert!(satellite.spans().is_empty());
}

#[tokio::test]
async fn bodies_over_the_limit_are_refused() {
    let satellite = LocalSatellite::start().unwrap();
    // Zeros are not protobuf (field number 0): at the limit, the body is read and decoded.
    let at_limit = post(&satellite, vec![0; MAX_REPORT_BYTES]).await;
    assert_eq!(at_limit.status(), 400);
    let over = post(&satellite, vec![0; MAX_REPORT_BYTES + 1]).await;
    assert_eq!(over.status(), 413);
    assert_eq!(satellite.requests_seen(), 2);
    assert!(satellite.reports().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_reports_are_all_kept() {
    let satellite = std::sync::Arc::new(LocalSatellite::start().unwrap());
    let tasks: Vec<_> = (0..8u64)
        .map(|task| {
            let satellite = std::sync::Arc::clone(&satellite);
            tokio::spawn(async move {
                for n in 0..5u64 {
                    let id = task * 100 + n + 1;
                    let sent = report(vec![span(id, id, None, "op", n)]);
                    assert!(send(&satellite, &sent).await.errors.is_empty());
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert!(satellite.wait_for_spans(40, GENEROUS));
    let mut ids: Vec<u64> = satellite.spans().iter().map(|s| s.span_id).collect();
    ids.sort_unstable();
    let expected: Vec<u64> = (0..8u64)
        .flat_map(|t| (0..5u64).map(move |n| t * 100 + n + 1))
        .collect();
    assert_eq!(ids, expected);
    assert_eq!(satellite.requests_seen(), 40);
}

/// A small trace with typed tags, and a second trace that started later.
fn two_traces() -> (ReportRequest, ReportRequest) {
    let mut root = span(9, 1, None, "checkout", 0);
    root.tags = vec![
        string("span.kind", "server"),
        kv("items", key_value::Value::IntValue(3)),
    ];
    let mut charge = span(9, 2, Some(1), "charge", 10);
    charge.tags = vec![
        kv("error", key_value::Value::BoolValue(true)),
        kv("amount", key_value::Value::DoubleValue(12.5)),
    ];
    charge.logs = vec![Log {
        timestamp: Some(Timestamp::from_unix_nanos(1_700_000_000_000_020_000)),
        fields: vec![string("event", "error"), string("message", "declined")],
    }];
    let mut load = span(9, 3, Some(1), "load_cart", 5);
    load.duration_micros = 2;
    let later = span(4, 5, None, "cleanup", 1_000);
    // Children arrive before their parent, the way a reporter sends them.
    (report(vec![later, charge]), report(vec![load, root]))
}

#[tokio::test]
async fn trees_render_names_tags_durations_and_logs() {
    let satellite = LocalSatellite::start().unwrap();
    let (first, second) = two_traces();
    send(&satellite, &first).await;
    send(&satellite, &second).await;
    assert_eq!(
        satellite.tree(),
        "checkout [items=3, span.kind=server]\n\
         \x20 load_cart\n\
         \x20 charge [amount=12.5, error=true]\n\
         cleanup\n"
    );
    assert_eq!(
        satellite.tree_with(TreeStyle::default().with_durations(true).with_logs(true)),
        "checkout (1.5ms) [items=3, span.kind=server]\n\
         \x20 load_cart (2µs)\n\
         \x20 charge (1.5ms) [amount=12.5, error=true]\n\
         \x20   - event=error, message=declined\n\
         cleanup (1.5ms)\n"
    );
}

#[test]
fn works_from_sync_code() {
    let satellite = LocalSatellite::start().unwrap();
    let sent = report(vec![span(1, 1, None, "sync", 0)]);
    let (status, body) = post_raw(&satellite, &sent.encode_to_vec());
    assert_eq!(status, 200);
    assert_eq!(
        ReportResponse::decode(body.as_slice()).unwrap(),
        ReportResponse::default()
    );
    assert!(satellite.wait_for_spans(1, GENEROUS));
    assert_eq!(satellite.tree(), "sync\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starts_and_stops_inside_a_multi_thread_runtime() {
    let satellite = LocalSatellite::start().unwrap();
    let sent = report(vec![span(1, 1, None, "multi", 0)]);
    send(&satellite, &sent).await;
    assert_eq!(satellite.tree(), "multi\n");
    satellite.shutdown();
}

#[test]
fn waiting_blocks_until_spans_arrive_or_time_runs_out() {
    let satellite = LocalSatellite::start().unwrap();
    assert!(!satellite.wait_for_spans(1, Duration::from_millis(50)));
    assert!(!satellite.wait_for_reports(1, Duration::from_millis(50)));
    std::thread::scope(|scope| {
        scope.spawn(|| {
            std::thread::sleep(Duration::from_millis(100));
            let (status, _) = post_raw(
                &satellite,
                &report(vec![span(1, 1, None, "a", 0), span(1, 2, Some(1), "b", 1)])
                    .encode_to_vec(),
            );
            assert_eq!(status, 200);
        });
        assert!(satellite.wait_for_spans(2, GENEROUS));
    });
    assert!(satellite.wait_for_reports(1, Duration::ZERO));
    assert!(!satellite.wait_for_spans(3, Duration::ZERO));
}

// Multi-thread: the hung request must progress while this test blocks in `wait_for_reports`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_is_prompt_with_a_hung_connection_and_frees_the_port() {
    let satellite = LocalSatellite::start().unwrap();
    let addr = satellite.addr();
    satellite.set_behaviour(Behaviour::Never);
    let url = format!("{}{REPORT_PATH}", satellite.url());
    let body = report(vec![span(1, 1, None, "a", 0)]).encode_to_vec();
    let hung = tokio::spawn(async move { client().post(url).body(body).send().await });
    assert!(satellite.wait_for_reports(1, GENEROUS));

    let started = Instant::now();
    satellite.shutdown();
    assert!(started.elapsed() < GENEROUS);
    // The hung request ends: the satellite closed its connection.
    let outcome = tokio::time::timeout(GENEROUS, hung).await.unwrap().unwrap();
    assert!(outcome.is_err());
    std::net::TcpListener::bind(addr).unwrap();
}

#[test]
fn start_on_a_taken_address_is_an_error() {
    let satellite = LocalSatellite::start().unwrap();
    let error = LocalSatellite::start_on(satellite.addr()).unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::AddrInUse);
    assert_eq!(satellite.addr().ip(), std::net::Ipv4Addr::LOCALHOST);
    assert!(satellite
        .url()
        .ends_with(&format!(":{}", satellite.addr().port())));
}

#[tokio::test]
async fn debug_output_hides_the_access_token() {
    let satellite = LocalSatellite::start().unwrap();
    send(&satellite, &report(vec![span(1, 1, None, "a", 0)])).await;
    let report = &satellite.reports()[0];
    assert_eq!(report.access_token_header.as_deref(), Some(TOKEN));
    for shown in [format!("{report:?}"), format!("{satellite:?}")] {
        assert!(!shown.contains(TOKEN), "{shown}");
    }
    assert!(format!("{report:?}").contains("<redacted>"));
}

/// The satellite's answers to what a hostile client sends; the limits are small here so that
/// the tests are quick.
fn start_with(limits: Limits) -> LocalSatellite {
    LocalSatellite::start_with_limits(std::net::SocketAddr::from(([127, 0, 0, 1], 0)), limits)
        .unwrap()
}

/// Longest wait for something the satellite is to do by itself (a timeout expiring).
const PATIENT: Duration = Duration::from_secs(30);

/// Waits until the satellite's stats say `done`, at most [`PATIENT`].
fn wait_for_stats(satellite: &LocalSatellite, done: impl Fn(&Stats) -> bool) -> Stats {
    let deadline = Instant::now() + PATIENT;
    loop {
        let stats = satellite.stats();
        if done(&stats) || Instant::now() > deadline {
            return stats;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A connection that sends `sent` and then nothing more.
fn stalled(satellite: &LocalSatellite, sent: &[u8]) -> std::net::TcpStream {
    let mut stream = std::net::TcpStream::connect(satellite.addr()).unwrap();
    stream.set_read_timeout(Some(PATIENT)).unwrap();
    stream.write_all(sent).unwrap();
    stream
}

/// What the satellite does with a connection: answers it (the status), or closes it
/// (`None`); a connection left open fails the test after [`PATIENT`].
fn outcome(mut stream: std::net::TcpStream) -> Option<u16> {
    let mut answer = Vec::new();
    match stream.read_to_end(&mut answer) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("the satellite kept the connection open: {e}"),
    }
    let head = String::from_utf8_lossy(&answer);
    head.split(' ').nth(1).map(|status| status.parse().unwrap())
}

/// The head of a report upload that declares `len` bytes of body.
fn upload_head(satellite: &LocalSatellite, len: usize) -> Vec<u8> {
    format!(
        "POST {REPORT_PATH} HTTP/1.1\r\nHost: {}\r\nContent-Length: {len}\r\n\r\n",
        satellite.addr()
    )
    .into_bytes()
}

/// A valid report with one more top-level field whose key (field number 2^29, wire type 0)
/// is above `u32::MAX`: the schema walk took it (200, counted by `wait_for_spans`) but prost
/// refuses it, so `spans()` returned nothing.
#[tokio::test]
async fn a_report_it_cannot_decode_is_refused_not_counted() {
    let satellite = LocalSatellite::start().unwrap();
    let mut body = report(vec![span(1, 1, None, "a", 0)]).encode_to_vec();
    prost::encoding::encode_varint(1 << 32, &mut body);
    body.push(1);
    let refused = post(&satellite, body).await;
    assert_eq!(refused.status(), 400);
    let answer = ReportResponse::decode(refused.bytes().await.unwrap()).unwrap();
    assert!(answer.errors[0].contains("invalid key"), "{answer:?}");
    assert!(!satellite.wait_for_spans(1, Duration::ZERO));
    assert!(satellite.reports().is_empty());
    assert!(satellite.spans().is_empty());
}

/// 4 MB of empty spans: the satellite answered 200 and the first `spans()` call took 375 MB.
#[tokio::test]
async fn a_report_that_would_hold_too_much_decoded_is_refused_clearly() {
    let satellite = LocalSatellite::start().unwrap();
    let mut body = report(vec![]).encode_to_vec();
    // As many empty spans as the largest body takes.
    body.extend_from_slice(&b"\x1a\x00".repeat((MAX_REPORT_BYTES - body.len()) / 2));
    let refused = post(&satellite, body).await;
    assert_eq!(refused.status(), 413);
    let answer = ReportResponse::decode(refused.bytes().await.unwrap()).unwrap();
    assert!(
        answer.errors[0].contains("max_decoded_report_bytes"),
        "{answer:?}"
    );
    assert_eq!(satellite.stats().oversized_reports, 1);
    assert!(satellite.reports().is_empty());
    assert!(satellite.spans().is_empty());
    // A report of spans as a reporter sends them, nearly as large, is taken.
    let spans = (1..=80_000)
        .map(|id| span(1, id, Some(1), "an operation", id))
        .collect();
    let sent = report(spans);
    assert!(sent.encoded_len() > 3_500_000);
    assert!(send(&satellite, &sent).await.errors.is_empty());
    assert_eq!(satellite.spans().len(), 80_000);
}

/// Slowloris: connections that never finish their headers were held for as long as the
/// client liked.
#[test]
fn connections_whose_headers_do_not_arrive_are_closed() {
    let mut limits = Limits::default();
    limits.header_read_timeout = Duration::from_millis(200);
    let satellite = start_with(limits);
    let connections: Vec<_> = (0..20)
        .map(|_| stalled(&satellite, b"POST /api/v2/reports HTTP/1.1\r\nHost: x\r\n"))
        .collect();
    // An idle connection too.
    let idle = stalled(&satellite, b"");
    for connection in connections {
        assert_eq!(outcome(connection), None);
    }
    assert_eq!(outcome(idle), None);
    let stats = wait_for_stats(&satellite, |s| s.open_connections == 0);
    assert_eq!(stats.open_connections, 0);
    assert_eq!(stats.timed_out_requests, 21);
    // The satellite still answers.
    let (status, _) = post_raw(&satellite, &report(vec![]).encode_to_vec());
    assert_eq!(status, 200);
}

#[test]
fn connections_beyond_the_cap_are_closed_at_once() {
    let mut limits = Limits::default();
    limits.max_connections = 4;
    limits.header_read_timeout = Duration::from_secs(3600);
    let satellite = start_with(limits);
    let held: Vec<_> = (0..4).map(|_| stalled(&satellite, b"POST /")).collect();
    let stats = wait_for_stats(&satellite, |s| s.open_connections == 4);
    assert_eq!(stats.open_connections, 4);
    let refused: Vec<_> = (0..6).map(|_| stalled(&satellite, b"")).collect();
    for connection in refused {
        assert_eq!(outcome(connection), None);
    }
    let stats = satellite.stats();
    assert_eq!((stats.open_connections, stats.refused_connections), (4, 6));
    // Once the held ones go, there is room again.
    drop(held);
    assert_eq!(
        wait_for_stats(&satellite, |s| s.open_connections == 0).open_connections,
        0
    );
    let (status, _) = post_raw(&satellite, &report(vec![]).encode_to_vec());
    assert_eq!(status, 200);
}

/// 64 stalled 4 MiB uploads raised the satellite's memory by 240 MB, for as long as the
/// clients liked: bodies are held within a limit, and stalled ones are given up.
#[test]
fn stalled_uploads_hold_no_more_than_the_limit_and_time_out() {
    let mut limits = Limits::default();
    limits.max_body_bytes_held = 2 * MAX_REPORT_BYTES;
    limits.body_read_timeout = Duration::from_millis(300);
    let satellite = start_with(limits);
    let chunk = vec![0u8; 1 << 20];
    let uploads: Vec<_> = (0..4)
        .map(|_| {
            let mut upload = stalled(&satellite, &upload_head(&satellite, MAX_REPORT_BYTES));
            // Those beyond the limit are answered at once; writing to them may fail.
            let _ = upload.write_all(&chunk);
            upload
        })
        .collect();
    let mut statuses: Vec<_> = uploads.into_iter().map(outcome).collect();
    statuses.sort_unstable();
    assert_eq!(statuses, [Some(408), Some(408), Some(503), Some(503)]);
    let stats = wait_for_stats(&satellite, |s| s.body_bytes_held == 0);
    assert_eq!(stats.body_bytes_held, 0);
    assert_eq!(stats.peak_body_bytes_held, 2 * MAX_REPORT_BYTES);
    assert_eq!((stats.busy_requests, stats.timed_out_requests), (2, 2));
    assert!(satellite.reports().is_empty());
    let (status, _) = post_raw(&satellite, &report(vec![]).encode_to_vec());
    assert_eq!(status, 200);
}

/// A body without a declared length is held as it grows.
#[test]
fn chunked_uploads_are_held_as_they_grow() {
    let mut limits = Limits::default();
    limits.max_body_bytes_held = 1 << 20;
    let satellite = start_with(limits);
    let mut upload = stalled(
        &satellite,
        format!("POST {REPORT_PATH} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
            .as_bytes(),
    );
    let piece = vec![0u8; 256 << 10];
    let mut sent = 0;
    // The satellite answers once it would hold more than the limit.
    while upload
        .write_all(format!("{:x}\r\n", piece.len()).as_bytes())
        .and_then(|()| upload.write_all(&piece))
        .and_then(|()| upload.write_all(b"\r\n"))
        .is_ok()
        && sent < 64
    {
        sent += 1;
        if satellite.stats().busy_requests == 1 {
            break;
        }
    }
    let stats = wait_for_stats(&satellite, |s| s.busy_requests == 1);
    assert_eq!(stats.busy_requests, 1);
    assert!(stats.peak_body_bytes_held <= 1 << 20);
    assert!(matches!(outcome(upload), Some(503) | None));
    assert_eq!(
        wait_for_stats(&satellite, |s| s.body_bytes_held == 0).body_bytes_held,
        0
    );
}

/// Every accepted report was kept, for as long as the satellite ran: a client sending
/// reports without end grew it without end. The oldest are let go beyond the limit.
#[test]
fn kept_reports_stay_within_their_limit_oldest_let_go_first() {
    let mut limits = Limits::default();
    limits.max_kept_report_bytes = 256 << 10;
    let satellite = start_with(limits);
    let reports = 40;
    for r in 0..reports {
        let spans = (1..=100)
            .map(|id| span(r, id, None, "an operation with a name", id))
            .collect();
        let (status, _) = post_raw(&satellite, &report(spans).encode_to_vec());
        assert_eq!(status, 200);
    }
    // Every report was accepted and counted, whatever became of it since.
    assert!(satellite.wait_for_spans(100 * reports as usize, Duration::from_secs(10)));
    assert_eq!(satellite.reports_received(), reports as usize);
    let stats = satellite.stats();
    assert!(stats.kept_report_bytes <= 256 << 10, "{stats:?}");
    assert!(stats.evicted_reports > 0, "{stats:?}");
    let kept = satellite.reports();
    assert_eq!(kept.len() as u64 + stats.evicted_reports, reports);
    // The newest are the ones kept, whole.
    let spans = satellite.spans();
    assert_eq!(spans.len(), 100 * kept.len());
    assert_eq!(spans.last().unwrap().trace_id, u128::from(reports - 1));
    assert_eq!(spans[0].trace_id, u128::from(stats.evicted_reports));
}
