//! The local satellite's OTLP side (`POST /v1/traces`), driven over real HTTP: it holds no
//! more for an export than its limits allow, whatever the body, and answers 200 only to
//! exports it decoded.

use lstrace_core::protocol::otlp::{
    ExportTraceServiceRequest, ExportTraceServiceResponse, OtlpSpan, ResourceSpans, ScopeSpans,
};
use lstrace_core::satellite::{
    Limits, LocalSatellite, COMPONENT_NAME, MAX_DECOMPRESSED_BYTES, MAX_REPORT_BYTES, REPORT_PATH,
    TRACES_PATH,
};
use prost::Message;
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How an export is sent.
#[derive(Clone, Copy)]
enum Encoding {
    Plain,
    Gzip,
    Other(&'static str),
}

fn gzip(body: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(body).unwrap();
    encoder.finish().unwrap()
}

/// Posts a body to `/v1/traces` as an OTLP exporter does: the status and the body.
async fn export(satellite: &LocalSatellite, body: &[u8], encoding: Encoding) -> (u16, Vec<u8>) {
    let request = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .post(format!("{}{TRACES_PATH}", satellite.url()))
        .header("content-type", "application/x-protobuf");
    let request = match encoding {
        Encoding::Plain => request.body(body.to_vec()),
        Encoding::Gzip => request.header("content-encoding", "gzip").body(gzip(body)),
        Encoding::Other(name) => request.header("content-encoding", name).body(body.to_vec()),
    };
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.bytes().await.unwrap().to_vec())
}

/// An export of `n` spans, one resource, one scope.
fn spans(n: usize) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans: (0..n)
                    .map(|i| OtlpSpan {
                        trace_id: vec![1; 16],
                        span_id: (i as u64 + 1).to_be_bytes().to_vec(),
                        name: "an operation".into(),
                        ..OtlpSpan::default()
                    })
                    .collect(),
                ..ScopeSpans::default()
            }],
            ..ResourceSpans::default()
        }],
    }
}

/// `ExportTraceServiceRequest { resource_spans: [{ scope_spans: [{ spans }] }] }` around
/// span fields written by hand.
fn around(span_fields: &[u8]) -> Vec<u8> {
    let field = |tag: u8, content: &[u8]| {
        let mut out = vec![tag << 3 | 2];
        prost::encoding::encode_varint(content.len() as u64, &mut out);
        out.extend_from_slice(content);
        out
    };
    field(1, &field(2, &field(2, span_fields)))
}

#[tokio::test]
async fn exports_are_taken_plain_or_gzipped() {
    let satellite = LocalSatellite::start().unwrap();
    let sent = spans(3);
    for encoding in [Encoding::Plain, Encoding::Gzip, Encoding::Other("identity")] {
        let (status, body) = export(&satellite, &sent.encode_to_vec(), encoding).await;
        assert_eq!(status, 200);
        assert_eq!(
            ExportTraceServiceResponse::decode(body.as_slice()).unwrap(),
            ExportTraceServiceResponse::default()
        );
    }
    assert!(satellite.wait_for_spans(9, Duration::ZERO));
    assert_eq!(satellite.otlp_spans().len(), 9);
}

/// A key above `u32::MAX`, a span cut short, a name that is not UTF-8, garbage, and gzip
/// that is not: answered 400, not counted, not kept.
#[tokio::test]
async fn an_export_it_cannot_decode_is_refused_not_counted() {
    let satellite = LocalSatellite::start().unwrap();
    let mut high_key = spans(1).encode_to_vec();
    prost::encoding::encode_varint(1 << 32, &mut high_key);
    high_key.push(1);
    let cut = spans(2).encode_to_vec();
    let cut = cut[..cut.len() - 3].to_vec();
    let not_utf8 = around(b"\x2a\x02\xc3\x28");
    for (body, encoding) in [
        (high_key.clone(), Encoding::Plain),
        (high_key, Encoding::Gzip),
        (cut, Encoding::Plain),
        (not_utf8, Encoding::Gzip),
        (b"<html>502 Bad Gateway</html>".to_vec(), Encoding::Plain),
    ] {
        let (status, answer) = export(&satellite, &body, encoding).await;
        assert_eq!(status, 400, "{body:x?}");
        let answer = String::from_utf8(answer).unwrap();
        assert!(answer.contains("ExportTraceServiceRequest"), "{answer}");
    }
    let (status, answer) = export(&satellite, b"not gzip", Encoding::Other("gzip")).await;
    assert_eq!(status, 400);
    assert!(String::from_utf8(answer).unwrap().contains("gzip"));
    // A compression it does not speak is not guessed at.
    let (status, _) = export(&satellite, &spans(1).encode_to_vec(), Encoding::Other("br")).await;
    assert_eq!(status, 415);
    assert!(!satellite.wait_for_spans(1, Duration::ZERO));
    assert!(satellite.otlp_requests().is_empty());
    assert_eq!(satellite.reports_received(), 0);
}

/// 2 M empty spans: 4 MB on the wire (40 KB gzipped) that prost would turn into hundreds of
/// megabytes.
#[tokio::test]
async fn an_export_that_would_hold_too_much_decoded_is_refused_clearly() {
    let satellite = LocalSatellite::start().unwrap();
    // As many as the largest body takes, with room for the two fields around them.
    let empty_spans = b"\x12\x00".repeat((MAX_REPORT_BYTES - 16) / 2);
    let bomb = {
        let mut body = vec![0x0a];
        let scope = [&[0x12][..], &varint(empty_spans.len()), &empty_spans].concat();
        body.extend_from_slice(&varint(scope.len()));
        body.extend_from_slice(&scope);
        body
    };
    for (count, encoding) in [(1, Encoding::Plain), (2, Encoding::Gzip)] {
        let (status, answer) = export(&satellite, &bomb, encoding).await;
        assert_eq!(status, 413);
        let answer = String::from_utf8(answer).unwrap();
        assert!(answer.contains("max_decoded_report_bytes"), "{answer}");
        assert_eq!(satellite.stats().oversized_reports, count);
    }
    assert!(satellite.otlp_requests().is_empty());
    // An export of spans as exporters send them, nearly as large, is taken.
    let sent = spans(70_000);
    assert!(sent.encoded_len() > 2_500_000);
    let (status, _) = export(&satellite, &sent.encode_to_vec(), Encoding::Plain).await;
    assert_eq!(status, 200);
    assert_eq!(satellite.otlp_spans().len(), 70_000);
}

/// A gzip bomb: 64 KB that inflate to more than the 64 MiB an export may take.
#[tokio::test]
async fn a_body_that_inflates_past_the_limit_is_refused() {
    let satellite = LocalSatellite::start().unwrap();
    let zeros = vec![0u8; MAX_DECOMPRESSED_BYTES + 1];
    let bomb = gzip(&zeros);
    assert!(bomb.len() < 1 << 20);
    let request = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .post(format!("{}{TRACES_PATH}", satellite.url()))
        .header("content-encoding", "gzip")
        .body(bomb);
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 413);
    let answer = response.text().await.unwrap();
    assert!(answer.contains("decompressed"), "{answer}");
    assert_eq!(satellite.stats().oversized_reports, 1);
    assert!(satellite.otlp_requests().is_empty());
    // The satellite still answers.
    let (status, _) = export(&satellite, &spans(1).encode_to_vec(), Encoding::Gzip).await;
    assert_eq!(status, 200);
}

/// Exports are taken up to OTLP's recommended 64 MiB as sent, not only up to the 4 MB a
/// LightStep report may take; beyond it, 413.
#[tokio::test]
async fn an_uncompressed_export_may_pass_4_mb_up_to_64_mib() {
    let satellite = LocalSatellite::start().unwrap();
    // Five spans with a name of 1 MiB each: over 5 MB on the wire, little more decoded.
    let mut sent = spans(5);
    for span in &mut sent.resource_spans[0].scope_spans[0].spans {
        span.name = "n".repeat(1 << 20);
    }
    let body = sent.encode_to_vec();
    assert!(body.len() > MAX_REPORT_BYTES);
    let (status, answer) = export(&satellite, &body, Encoding::Plain).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
    assert_eq!(satellite.otlp_spans().len(), 5);

    // A body declared one byte over the limit is refused before it is sent.
    let head = format!(
        "POST {TRACES_PATH} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n\
         Content-Length: {}\r\n\r\n",
        MAX_DECOMPRESSED_BYTES + 1
    );
    let mut stream = tokio::net::TcpStream::connect(satellite.addr())
        .await
        .unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(
        answer.contains(&MAX_DECOMPRESSED_BYTES.to_string()),
        "{answer}"
    );
    // LightStep reports keep their protocol's limit.
    let (status, _) = {
        let response = reqwest::Client::builder()
            .no_proxy()
            .build()
            .unwrap()
            .post(format!("{}{REPORT_PATH}", satellite.url()))
            .body(body)
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), ())
    };
    assert_eq!(status, 413);
    assert_eq!(satellite.otlp_requests().len(), 1);
}

fn varint(n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    prost::encoding::encode_varint(n as u64, &mut out);
    out
}

/// A LightStep report of one span, with its component name.
fn lightstep_report() -> Vec<u8> {
    use lstrace_core::protocol::lightstep::{key_value, KeyValue, ReportRequest, Reporter};
    ReportRequest {
        reporter: Some(Reporter {
            reporter_id: 1,
            tags: vec![KeyValue {
                key: COMPONENT_NAME.into(),
                value: Some(key_value::Value::StringValue("svc".into())),
            }],
        }),
        spans: vec![lstrace_core::protocol::lightstep::LightStepSpan::default()],
        ..ReportRequest::default()
    }
    .encode_to_vec()
}

/// Exports are kept within `Limits::max_kept_report_bytes` with the LightStep reports, the
/// oldest of either let go first; every span is still counted.
#[tokio::test]
async fn kept_exports_are_bounded_with_the_reports_oldest_first() {
    let mut limits = Limits::default();
    limits.max_kept_report_bytes = 8 << 20;
    let satellite =
        LocalSatellite::start_with_limits(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), limits)
            .unwrap();
    let answer = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .post(format!("{}{REPORT_PATH}", satellite.url()))
        .body(lightstep_report())
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    // Each holds about 2.5 MB decoded: a few fit.
    for _ in 0..10 {
        let (status, _) = export(&satellite, &spans(5_000).encode_to_vec(), Encoding::Plain).await;
        assert_eq!(status, 200);
    }
    let stats = satellite.stats();
    let kept = satellite.otlp_requests().len() as u64;
    assert!((1..10).contains(&kept), "{kept} kept");
    assert!(satellite.reports().is_empty(), "the oldest went first");
    assert_eq!(kept + stats.evicted_reports, 11);
    assert!(stats.kept_report_bytes <= 8 << 20, "{stats:?}");
    assert!(satellite.wait_for_spans(50_001, Duration::ZERO));
    assert_eq!(satellite.reports_received(), 11);
}
