//! The OTLP/HTTP protocol: `POST /v1/traces` with a binary `ExportTraceServiceRequest`
//! (one resource and one scope around the spans, optionally gzipped), and an
//! `ExportTraceServiceResponse` answer whose `partial_success` counts refused spans. The
//! messages are in [`messages`].

use super::lightstep::ACCESS_TOKEN_HEADER;
use super::{Answer, AnswerBody, Carried, ReportBody, ReportProtocol};
use crate::protocol::otlp::{
    any_value, ExportTraceServiceResponse, InstrumentationScope, KeyValue, Resource,
};
use crate::reporter::buffer::Chunk;
use crate::reporter::config::{Config, InitError};
use crate::reporter::events::ReportError;
use crate::reporter::identity::otlp_scope;
use crate::reporter::options::Compression;
use bytes::Bytes;
use prost::Message;
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, CONTENT_ENCODING, CONTENT_TYPE};
use std::io::Write as _;
use std::time::Duration;

pub mod messages;
pub(crate) mod wire;

/// The content type of exports and of their answers.
pub(crate) const PROTOBUF: &str = "application/x-protobuf";

/// The resource attribute that names the service (OpenTelemetry's semantic conventions).
pub(crate) const SERVICE_NAME: &str = "service.name";

/// The bytes before the spans in a request that carries one resource and one scope:
/// `ExportTraceServiceRequest { resource_spans: [{ resource, scope_spans: [{ scope, spans }] }] }`
/// up to where the spans (`ScopeSpans.spans` fields, `spans_len` bytes) start. Followed by
/// the spans, it is the whole request.
#[must_use]
pub(crate) fn request_head(
    resource: &Resource,
    scope: &InstrumentationScope,
    spans_len: usize,
) -> Vec<u8> {
    use prost::encoding::{encode_key, encode_varint, encoded_len_varint, WireType};
    let scope_field = prost::encoding::message::encoded_len(1, scope);
    let scope_spans_len = scope_field + spans_len;
    let resource_field = prost::encoding::message::encoded_len(1, resource);
    let resource_spans_len =
        resource_field + 1 + encoded_len_varint(scope_spans_len as u64) + scope_spans_len;
    let mut head = Vec::with_capacity(resource_spans_len - spans_len + 12);
    encode_key(1, WireType::LengthDelimited, &mut head);
    encode_varint(resource_spans_len as u64, &mut head);
    prost::encoding::message::encode(1, resource, &mut head);
    encode_key(2, WireType::LengthDelimited, &mut head);
    encode_varint(scope_spans_len as u64, &mut head);
    prost::encoding::message::encode(1, scope, &mut head);
    head
}

/// OTLP/HTTP reports for one tracer: one resource and one scope around the spans.
pub(crate) struct Otlp {
    resource: Resource,
    token: String,
    gzip: bool,
}

impl Otlp {
    pub(crate) fn new(config: &Config) -> Self {
        Otlp {
            resource: config.resource.clone(),
            token: config.access_token.clone(),
            gzip: config.compression == Compression::Gzip,
        }
    }
}

/// The scope of a report, with the drop counts it carries as attributes (the counts a
/// LightStep report carries as internal metrics), when they are not zero.
fn scope_with_drops(carried: Carried) -> InstrumentationScope {
    let mut scope = otlp_scope();
    for (name, count) in carried.named() {
        if count > 0 {
            scope.attributes.push(KeyValue::new(
                name,
                any_value::Value::IntValue(i64::try_from(count).unwrap_or(i64::MAX)),
            ));
        }
    }
    scope
}

impl ReportProtocol for Otlp {
    fn headers(&self) -> Result<HeaderMap, InitError> {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(PROTOBUF));
        headers.insert(ACCEPT, HeaderValue::from_static(PROTOBUF));
        if self.gzip {
            headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        if !self.token.is_empty() {
            let mut token =
                HeaderValue::from_str(&self.token).map_err(|_| InitError::InvalidOption {
                    option: "access_token",
                    reason: "contains characters an HTTP header cannot carry".into(),
                })?;
            // Keeps it out of the headers' Debug output.
            token.set_sensitive(true);
            headers.insert(ACCESS_TOKEN_HEADER, token);
        }
        Ok(headers)
    }

    fn max_envelope_bytes(&self) -> usize {
        // The widest counts, and the longest length prefixes.
        request_head(&self.resource, &scope_with_drops(Carried::WIDEST), 0).len() + 2 * 10 + 64
    }

    /// The head, then the chunk's spans, lent: not copied (gzipped, they are read once).
    fn body(
        &mut self,
        chunk: &mut Chunk,
        carried: Carried,
        _interval_start_nanos: u64,
    ) -> ReportBody {
        chunk.reclaim();
        let head = request_head(
            &self.resource,
            &scope_with_drops(carried),
            chunk.bytes.len(),
        );
        if self.gzip {
            ReportBody::whole(Bytes::from(gzip(&[&head, &chunk.bytes])))
        } else {
            ReportBody::parts(Bytes::from(head), chunk.lend(&[]))
        }
    }

    fn answer(
        &self,
        status: u16,
        retry_after: Option<Duration>,
        body: AnswerBody<'_>,
    ) -> Result<Answer, ReportError> {
        answer(status, retry_after, body)
    }
}

/// The parts of a body, one after the other, gzipped at the fastest level: the reporter's
/// thread has spans to encode too.
pub(crate) fn gzip(parts: &[&[u8]]) -> Vec<u8> {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let mut encoder =
        flate2::write::GzEncoder::new(Vec::with_capacity(len / 4), flate2::Compression::fast());
    for part in parts {
        // Writing to a Vec cannot fail.
        let _ = encoder.write_all(part);
    }
    encoder.finish().unwrap_or_default()
}

/// What an OTLP answer means: a 2xx is success (its body, if any, may refuse some spans for
/// good: `partial_success`, which refusing none but with a message is a warning; one that
/// cannot be read is a warning too, as the report arrived);
/// 429, 502, 503 and 504 are worth retrying, after `Retry-After` when the server gives one;
/// every other status is final.
pub(crate) fn answer(
    status: u16,
    retry_after: Option<Duration>,
    body: AnswerBody<'_>,
) -> Result<Answer, ReportError> {
    match status {
        200..=299 => {}
        429 | 502 | 503 | 504 => {
            return Err(ReportError::Throttled {
                status,
                retry_after,
            })
        }
        401 | 403 => return Err(ReportError::Unauthorized { status }),
        _ => return Err(ReportError::Refused { status }),
    }
    let response = body.and_then(|b| {
        // An empty body (some servers send none) decodes as a full success.
        ExportTraceServiceResponse::decode(b)
            .map_err(|e| format!("not an ExportTraceServiceResponse: {e}"))
    });
    Ok(match response {
        Ok(response) => match response.partial_success {
            Some(p) if p.rejected_spans > 0 => Answer::Partial {
                rejected: u64::try_from(p.rejected_spans).unwrap_or(0),
                message: p.error_message,
            },
            // Every span accepted, with a message: OTLP's way to warn the exporter.
            Some(p) if !p.error_message.trim().is_empty() => Answer::Accepted {
                warning: Some(format!(
                    "every span was accepted, with a warning from the collector: {}",
                    p.error_message.trim()
                )),
            },
            _ => Answer::Accepted { warning: None },
        },
        Err(warning) => Answer::Accepted {
            warning: Some(warning),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::otlp::{
        ExportTracePartialSuccess, ExportTraceServiceRequest, OtlpSpan, OtlpSpanKind,
        ResourceSpans, ScopeSpans, Status, StatusCode,
    };

    #[test]
    fn retries_429_502_503_504_only() {
        let seconds = Duration::from_secs;
        for status in [429, 502, 503, 504] {
            let error = answer(status, Some(seconds(3)), Ok(&[])).unwrap_err();
            assert!(error.is_retryable(), "{status}");
            assert_eq!(
                error,
                ReportError::Throttled {
                    status,
                    retry_after: Some(seconds(3))
                }
            );
        }
        for status in [400, 404, 408, 413, 500, 501, 505, 302] {
            let error = answer(status, None, Ok(&[])).unwrap_err();
            assert!(!error.is_retryable(), "{status}");
            assert_eq!(error, ReportError::Refused { status });
        }
        for status in [401, 403] {
            let error = answer(status, None, Ok(&[])).unwrap_err();
            assert_eq!(error, ReportError::Unauthorized { status });
            assert!(!error.is_retryable());
        }
    }

    #[test]
    fn success_and_partial_success() {
        assert_eq!(
            answer(200, None, Ok(&[])),
            Ok(Answer::Accepted { warning: None })
        );
        let response = |rejected_spans: i64| {
            ExportTraceServiceResponse {
                partial_success: Some(ExportTracePartialSuccess {
                    rejected_spans,
                    error_message: "too old".into(),
                }),
            }
            .encode_to_vec()
        };
        assert_eq!(
            answer(200, None, Ok(&response(3))),
            Ok(Answer::Partial {
                rejected: 3,
                message: "too old".into()
            })
        );
        // No span refused, but a message: a warning, as OTLP has it.
        assert_eq!(
            answer(200, None, Ok(&response(0))),
            Ok(Answer::Accepted {
                warning: Some(
                    "every span was accepted, with a warning from the collector: too old".into()
                )
            })
        );
        let quiet = ExportTraceServiceResponse {
            partial_success: Some(ExportTracePartialSuccess::default()),
        };
        assert_eq!(
            answer(200, None, Ok(&quiet.encode_to_vec())),
            Ok(Answer::Accepted { warning: None })
        );
        // The report arrived: an answer that cannot be read is a warning.
        assert!(matches!(
            answer(200, None, Ok(b"\xff\xff garbage")),
            Ok(Answer::Accepted { warning: Some(_) })
        ));
    }

    #[test]
    fn a_body_lends_the_spans_instead_of_copying_them() {
        use crate::reporter::buffer::SpanBuffer;
        use crate::reporter::options::{Options, Protocol};
        use crate::reporter::wire::tests::{record, LIMITS};
        use crate::tag::TagList;
        let (config, _) = Options::new("t")
            .protocol(Protocol::Otlp)
            .component_name("svc")
            .validate()
            .unwrap();
        let mut buffer = SpanBuffer::new(1 << 20, Protocol::Otlp);
        for _ in 0..3 {
            let span = record("op", TagList::new(), Vec::new());
            buffer.push_record(&span, &LIMITS).unwrap();
        }
        let mut chunk = buffer.take().pop().unwrap();
        let spans_at = chunk.bytes.as_ptr();
        let carried = Carried {
            spans_dropped: 2,
            ..Carried::default()
        };
        let body = Otlp::new(&config).body(&mut chunk, carried, 0);
        assert_eq!(body.rest.as_ptr(), spans_at, "lent, not copied");
        let whole = [&body.head[..], &body.rest[..]].concat();
        let request = ExportTraceServiceRequest::decode(&whole[..]).unwrap();
        assert_eq!(request.spans().count(), 3);
        let scope = request.resource_spans[0].scope_spans[0]
            .scope
            .clone()
            .unwrap();
        assert_eq!(scope.attributes.len(), 1, "spans.dropped");
        // Once the body is gone, the chunk has its memory back, for a retry or the next spans.
        drop(body);
        chunk.reclaim();
        assert_eq!(chunk.bytes.as_ptr(), spans_at);
        // Gzipped, the same request.
        let gzipped = Otlp::new(&Config {
            compression: Compression::Gzip,
            ..config
        })
        .body(&mut chunk, carried, 0);
        let mut unzipped = Vec::new();
        std::io::Read::read_to_end(
            &mut flate2::read::GzDecoder::new(&gzipped.head[..]),
            &mut unzipped,
        )
        .unwrap();
        assert_eq!(unzipped, whole);
    }

    #[test]
    fn gzip_round_trips() {
        use std::io::Read as _;
        let body: Vec<u8> = (0..10_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        let zipped = gzip(&[&body[..5], &body[5..]]);
        assert_eq!(&zipped[..2], [0x1f, 0x8b], "the gzip magic");
        assert!(zipped.len() < body.len());
        let mut unzipped = Vec::new();
        flate2::read::GzDecoder::new(zipped.as_slice())
            .read_to_end(&mut unzipped)
            .unwrap();
        assert_eq!(unzipped, body);
    }

    #[test]
    fn field_numbers_match_the_proto_files() {
        // Keys are (field_number << 3) | wire_type; field 16 takes two bytes.
        let span = OtlpSpan {
            trace_id: vec![1],
            kind: OtlpSpanKind::Server as i32,
            start_time_unix_nano: 1,
            dropped_links_count: 1,
            status: Some(Status::default()),
            flags: 1,
            ..Default::default()
        };
        assert_eq!(
            span.encode_to_vec(),
            [
                (1 << 3) | 2,
                1,
                1,
                6 << 3,
                2,
                (7 << 3) | 1,
                1,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                14 << 3,
                1,
                (15 << 3) | 2,
                0,
                0x85,
                0x01,
                1,
                0,
                0,
                0
            ]
        );
        let kv = KeyValue::new("k", any_value::Value::BoolValue(true));
        assert_eq!(
            kv.encode_to_vec(),
            [(1 << 3) | 2, 1, b'k', (2 << 3) | 2, 2, 2 << 3, 1]
        );
        let status = Status {
            message: "m".into(),
            code: StatusCode::Error as i32,
        };
        assert_eq!(status.encode_to_vec(), [(2 << 3) | 2, 1, b'm', 3 << 3, 2]);
        let partial = ExportTraceServiceResponse {
            partial_success: Some(ExportTracePartialSuccess {
                rejected_spans: 3,
                error_message: String::new(),
            }),
        };
        assert_eq!(partial.encode_to_vec(), [(1 << 3) | 2, 2, 1 << 3, 3]);
    }

    #[test]
    fn a_head_and_spans_decode_to_one_resource_and_scope() {
        let resource = Resource {
            attributes: vec![KeyValue::new(
                "service.name",
                any_value::Value::StringValue("svc".into()),
            )],
            dropped_attributes_count: 0,
        };
        let scope = InstrumentationScope {
            name: "lstrace".into(),
            version: "0.1.0".into(),
            ..Default::default()
        };
        for count in [0, 1, 3, 200] {
            let spans: Vec<OtlpSpan> = (0..count)
                .map(|i| OtlpSpan {
                    name: format!("span {i}"),
                    span_id: vec![i as u8; 8],
                    ..Default::default()
                })
                .collect();
            let mut span_bytes = Vec::new();
            for span in &spans {
                prost::encoding::message::encode(2, span, &mut span_bytes);
            }
            let mut body = request_head(&resource, &scope, span_bytes.len());
            body.extend_from_slice(&span_bytes);
            let request = ExportTraceServiceRequest::decode(body.as_slice()).unwrap();
            let expected = ExportTraceServiceRequest {
                resource_spans: vec![ResourceSpans {
                    resource: Some(resource.clone()),
                    scope_spans: vec![ScopeSpans {
                        scope: Some(scope.clone()),
                        spans,
                        schema_url: String::new(),
                    }],
                    schema_url: String::new(),
                }],
            };
            assert_eq!(request, expected);
            assert_eq!(body.len(), expected.encoded_len());
        }
    }
}
