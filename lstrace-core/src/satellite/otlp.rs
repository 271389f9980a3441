//! The satellite's OTLP/HTTP side: `POST /v1/traces` with an `ExportTraceServiceRequest`
//! (protobuf, gzipped or not), kept alongside LightStep reports and shown in the same trees.

use super::ingest::otlp::WalkedExport;
use super::ingest::{self, Refusal};
use super::Behaviour;
use crate::protocol::{self, key_value};
use crate::reporter::protocol::otlp::wire::{
    ERROR_TAG, FOLLOWS_FROM, REF_TYPE_ATTRIBUTE, SPAN_KIND_TAG,
};
use crate::reporter::protocol::otlp::{
    any_value, ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
    KeyValue, OtlpSpan, OtlpSpanKind, StatusCode, SERVICE_NAME,
};
use std::fmt;
use std::io::Read as _;

/// The largest OTLP request body after decompression: the OTLP specification's recommended
/// server limit. Beyond it the request is answered 413.
pub const MAX_DECOMPRESSED_BYTES: usize = 64 * 1024 * 1024;

/// One OTLP export the satellite received and decoded.
#[derive(Clone)]
#[non_exhaustive]
pub struct ReceivedOtlp {
    /// The decoded request.
    pub request: ExportTraceServiceRequest,
    /// Every request header, in arrival order. Values are secrets (tokens, API keys):
    /// `Debug` shows the names only.
    pub headers: Vec<(String, String)>,
    /// The body's length in bytes, as sent (compressed, when it was).
    pub body_len: usize,
    /// Whether the answer told the exporter that the export succeeded (its spans are kept,
    /// less those refused with [`Behaviour::RejectSpans`]).
    pub accepted: bool,
    /// Spans the answer refused (`partial_success.rejected_spans`).
    pub rejected_spans: i64,
}

impl ReceivedOtlp {
    /// The value of a request header (names in any case).
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl fmt::Debug for ReceivedOtlp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReceivedOtlp")
            .field("request", &self.request)
            .field(
                "headers",
                &self.headers.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .field("body_len", &self.body_len)
            .field("accepted", &self.accepted)
            .field("rejected_spans", &self.rejected_spans)
            .finish()
    }
}

/// Why a body is not an export the satellite takes.
#[derive(Debug)]
pub(super) enum BodyError {
    /// Bigger than [`MAX_DECOMPRESSED_BYTES`] once decompressed.
    TooLarge,
    /// Decoded, it would hold more than `limit` bytes (at least `decoded_bytes`).
    Oversized {
        /// What the part of the export walked so far would hold decoded.
        decoded_bytes: usize,
        /// `Limits::max_decoded_report_bytes`.
        limit: usize,
    },
    /// Not gzip, or not an `ExportTraceServiceRequest`.
    Invalid(String),
}

/// Decompresses (for `Content-Encoding: gzip`) and reads a request body on arrival, without
/// decoding it, unless decoded it would hold more than `max_decoded_bytes` (worked out as
/// for LightStep reports). Returns the export's bytes (inflated) and what the walk found;
/// [`ingest::otlp::decode_otlp`] decodes them.
pub(super) fn read(
    body: Vec<u8>,
    gzipped: bool,
    max_decoded_bytes: usize,
) -> Result<(Vec<u8>, WalkedExport), BodyError> {
    let bytes = if gzipped { gunzip(&body)? } else { body };
    match ingest::otlp::ingest_otlp(&bytes, max_decoded_bytes) {
        Ok(walked) => Ok((bytes, walked)),
        Err(Refusal::Invalid(e)) => Err(BodyError::Invalid(format!(
            "not an ExportTraceServiceRequest: {e}"
        ))),
        Err(Refusal::TooLarge {
            decoded_bytes,
            limit,
        }) => Err(BodyError::Oversized {
            decoded_bytes,
            limit,
        }),
    }
}

/// Inflates a gzip body, refusing it as soon as it passes [`MAX_DECOMPRESSED_BYTES`]. The
/// buffer grows with what was inflated, never past the limit: a small body that inflates
/// to gigabytes holds no more than that.
fn gunzip(body: &[u8]) -> Result<Vec<u8>, BodyError> {
    let mut decoder = flate2::read::GzDecoder::new(body);
    let mut out = Vec::with_capacity(body.len().saturating_mul(4).min(MAX_DECOMPRESSED_BYTES));
    let mut piece = vec![0; 64 * 1024];
    loop {
        let read = match decoder.read(&mut piece) {
            Ok(0) => return Ok(out),
            Ok(read) => read,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(BodyError::Invalid(format!("not gzip: {e}"))),
        };
        let needed = out.len() + read;
        if needed > MAX_DECOMPRESSED_BYTES {
            return Err(BodyError::TooLarge);
        }
        if needed > out.capacity() {
            let capacity = needed.max(out.capacity() * 2).min(MAX_DECOMPRESSED_BYTES);
            out.reserve_exact(capacity - out.len());
        }
        out.extend_from_slice(&piece[..read]);
    }
}

/// The answer to an export, by the behaviour: whether its spans are kept, the HTTP status,
/// a `Retry-After`, and the response (`None` for a text or garbage body, or no answer).
pub(super) enum Answer {
    Response(ExportTraceServiceResponse),
    Status(u16, Option<u64>),
    Garbage,
    Never,
}

impl Behaviour {
    /// Whether an export is kept, how many of its spans are refused, and what answers it.
    /// OTLP has no `disable` command and no component check: those answer as `Accept`.
    pub(super) fn answer_otlp(&self, spans: usize) -> (bool, i64, Answer) {
        let accept = (
            true,
            0,
            Answer::Response(ExportTraceServiceResponse::default()),
        );
        match self {
            Behaviour::Accept | Behaviour::Delay(_) | Behaviour::Disable => accept,
            Behaviour::Status(code) => (false, 0, Answer::Status(*code, None)),
            Behaviour::RetryAfter { status, seconds } => {
                (false, 0, Answer::Status(*status, Some(*seconds)))
            }
            // A 200: the exporter takes it as delivered.
            Behaviour::Garbage => (true, 0, Answer::Garbage),
            Behaviour::Never => (false, 0, Answer::Never),
            Behaviour::Errors(errors) => {
                let rejected = i64::try_from(spans).unwrap_or(i64::MAX);
                (true, rejected, partial(rejected, errors.join("; ")))
            }
            Behaviour::RejectSpans { count, message } => {
                let rejected = (*count).min(i64::try_from(spans).unwrap_or(i64::MAX));
                (true, rejected, partial(rejected, message.clone()))
            }
        }
    }
}

fn partial(rejected_spans: i64, error_message: String) -> Answer {
    Answer::Response(ExportTraceServiceResponse {
        partial_success: Some(ExportTracePartialSuccess {
            rejected_spans,
            error_message,
        }),
    })
}

/// The id in 8 (or 16: the low half) big-endian bytes; 0 for anything else.
pub(super) fn id(bytes: &[u8]) -> u64 {
    match bytes.len() {
        8 => u64::from_be_bytes(bytes.try_into().unwrap_or_default()),
        16 => u64::from_be_bytes(bytes[8..].try_into().unwrap_or_default()),
        _ => 0,
    }
}

/// An OTLP span in the LightStep model, as the trees and the web view show spans: the low
/// 64 bits of the trace id (what LightStep reports carry, so that a trace reported over both
/// protocols is one), the parent as the reference (FOLLOWS_FROM when a link says so), the
/// kind as a `span.kind` tag, an ERROR status as `error = true`, events as logs whose
/// `event` field is their name. Times keep whole microseconds.
pub(super) fn lightstep_span(span: &OtlpSpan) -> protocol::LightStepSpan {
    let trace_id = id(&span.trace_id);
    let parent = id(&span.parent_span_id);
    let follows = span.links.iter().any(|link| {
        id(&link.span_id) == parent
            && link.attributes.iter().any(|kv| {
                kv.key == REF_TYPE_ATTRIBUTE
                    && kv.value.as_ref().and_then(|v| v.value.as_ref())
                        == Some(&any_value::Value::StringValue(FOLLOWS_FROM.into()))
            })
    });
    let mut tags: Vec<protocol::KeyValue> = span.attributes.iter().map(key_value).collect();
    let kind = match OtlpSpanKind::try_from(span.kind) {
        Ok(OtlpSpanKind::Server) => Some("server"),
        Ok(OtlpSpanKind::Client) => Some("client"),
        Ok(OtlpSpanKind::Producer) => Some("producer"),
        Ok(OtlpSpanKind::Consumer) => Some("consumer"),
        _ => None,
    };
    if let Some(kind) = kind {
        tags.push(protocol::KeyValue {
            key: SPAN_KIND_TAG.into(),
            value: Some(key_value::Value::StringValue(kind.into())),
        });
    }
    if span.status.as_ref().map(|s| s.code) == Some(StatusCode::Error as i32) {
        tags.push(protocol::KeyValue {
            key: ERROR_TAG.into(),
            value: Some(key_value::Value::BoolValue(true)),
        });
    }
    protocol::LightStepSpan {
        span_context: Some(protocol::LightStepSpanContext {
            trace_id,
            span_id: id(&span.span_id),
            baggage: Default::default(),
        }),
        operation_name: span.name.clone(),
        references: (parent != 0)
            .then(|| protocol::Reference {
                relationship: if follows {
                    protocol::LightStepRelationship::FollowsFrom
                } else {
                    protocol::LightStepRelationship::ChildOf
                } as i32,
                span_context: Some(protocol::LightStepSpanContext {
                    trace_id,
                    span_id: parent,
                    baggage: Default::default(),
                }),
            })
            .into_iter()
            .collect(),
        start_timestamp: Some(protocol::Timestamp::from_unix_nanos(
            span.start_time_unix_nano,
        )),
        duration_micros: span
            .end_time_unix_nano
            .saturating_sub(span.start_time_unix_nano)
            / 1000,
        tags,
        logs: span
            .events
            .iter()
            .map(|event| protocol::Log {
                timestamp: Some(protocol::Timestamp::from_unix_nanos(event.time_unix_nano)),
                fields: std::iter::once(protocol::KeyValue {
                    key: "event".into(),
                    value: Some(key_value::Value::StringValue(event.name.clone())),
                })
                .chain(event.attributes.iter().map(key_value))
                .collect(),
            })
            .collect(),
    }
}

/// The spans of an export in the LightStep model, with the service each resource names
/// (its `service.name`, else empty).
pub(super) fn lightstep_spans(
    request: &ExportTraceServiceRequest,
) -> Vec<(String, Vec<protocol::LightStepSpan>)> {
    request
        .resource_spans
        .iter()
        .map(|resource_spans| {
            let service = resource_spans
                .resource
                .as_ref()
                .and_then(|r| r.attributes.iter().find(|kv| kv.key == SERVICE_NAME))
                .and_then(|kv| kv.value.as_ref())
                .and_then(|v| match &v.value {
                    Some(any_value::Value::StringValue(name)) => Some(name.clone()),
                    _ => None,
                })
                .unwrap_or_default();
            let spans = resource_spans
                .scope_spans
                .iter()
                .flat_map(|s| s.spans.iter().map(lightstep_span))
                .collect();
            (service, spans)
        })
        .collect()
}

/// An attribute as a LightStep tag, typed; arrays, lists and bytes as their text.
fn key_value(kv: &KeyValue) -> protocol::KeyValue {
    let value = kv
        .value
        .as_ref()
        .and_then(|v| v.value.as_ref())
        .map(|v| match v {
            any_value::Value::StringValue(s) => key_value::Value::StringValue(s.clone()),
            any_value::Value::BoolValue(b) => key_value::Value::BoolValue(*b),
            any_value::Value::IntValue(i) => key_value::Value::IntValue(*i),
            any_value::Value::DoubleValue(x) => key_value::Value::DoubleValue(*x),
            other => key_value::Value::StringValue(value_text(other)),
        });
    protocol::KeyValue {
        key: kv.key.clone(),
        value,
    }
}

fn value_text(value: &any_value::Value) -> String {
    match value {
        any_value::Value::StringValue(s) => s.clone(),
        any_value::Value::BoolValue(b) => b.to_string(),
        any_value::Value::IntValue(i) => i.to_string(),
        any_value::Value::DoubleValue(x) => x.to_string(),
        any_value::Value::BytesValue(b) => format!("{b:02x?}"),
        any_value::Value::ArrayValue(a) => format!(
            "[{}]",
            a.values
                .iter()
                .filter_map(|v| v.value.as_ref())
                .map(value_text)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        any_value::Value::KvlistValue(l) => format!(
            "{{{}}}",
            l.values
                .iter()
                .map(|kv| {
                    let text = kv
                        .value
                        .as_ref()
                        .and_then(|v| v.value.as_ref())
                        .map_or_else(String::new, value_text);
                    format!("{}={text}", kv.key)
                })
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reporter::protocol::otlp::{OtlpEvent, ResourceSpans, ScopeSpans, Status};
    use prost::Message;
    use std::io::Write as _;

    fn span() -> OtlpSpan {
        OtlpSpan {
            trace_id: [[0xaa; 8], 7u64.to_be_bytes()].concat(),
            span_id: 2u64.to_be_bytes().to_vec(),
            parent_span_id: 1u64.to_be_bytes().to_vec(),
            name: "GET /users".into(),
            kind: OtlpSpanKind::Server as i32,
            start_time_unix_nano: 1_000,
            end_time_unix_nano: 4_000,
            attributes: vec![KeyValue::new("n", any_value::Value::IntValue(3))],
            events: vec![OtlpEvent {
                time_unix_nano: 2_000,
                name: "error".into(),
                attributes: vec![KeyValue::new(
                    "message",
                    any_value::Value::StringValue("boom".into()),
                )],
                dropped_attributes_count: 0,
            }],
            status: Some(Status {
                message: "boom".into(),
                code: StatusCode::Error as i32,
            }),
            ..OtlpSpan::default()
        }
    }

    #[test]
    fn spans_become_lightstep_spans() {
        let s = span();
        let converted = lightstep_span(&s);
        let context = converted.span_context.clone().unwrap();
        assert_eq!((context.trace_id, context.span_id), (7, 2));
        assert_eq!(converted.references.len(), 1);
        assert_eq!(
            converted.references[0].relationship,
            protocol::LightStepRelationship::ChildOf as i32
        );
        assert_eq!(
            converted.references[0]
                .span_context
                .as_ref()
                .unwrap()
                .span_id,
            1
        );
        assert_eq!(converted.duration_micros, 3);
        let tree = crate::tree::render(
            std::slice::from_ref(&converted),
            crate::tree::TreeStyle {
                durations: false,
                logs: true,
            },
        );
        assert_eq!(
            tree,
            "GET /users [error=true, n=3, span.kind=server]\n  - event=error, message=boom\n"
        );
        let follower = lightstep_span(&OtlpSpan {
            links: vec![crate::reporter::protocol::otlp::Link {
                span_id: 1u64.to_be_bytes().to_vec(),
                attributes: vec![KeyValue::new(
                    REF_TYPE_ATTRIBUTE,
                    any_value::Value::StringValue(FOLLOWS_FROM.into()),
                )],
                ..Default::default()
            }],
            ..span()
        });
        assert_eq!(
            follower.references[0].relationship,
            protocol::LightStepRelationship::FollowsFrom as i32
        );
        let root = lightstep_span(&OtlpSpan {
            parent_span_id: Vec::new(),
            kind: OtlpSpanKind::Internal as i32,
            status: None,
            ..span()
        });
        assert!(root.references.is_empty());
        assert_eq!(root.tags.len(), 1);
    }

    #[test]
    fn bodies_decode_plain_or_gzipped() {
        let request = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans: vec![span(), span()],
                    ..ScopeSpans::default()
                }],
                ..ResourceSpans::default()
            }],
        };
        let body = request.encode_to_vec();
        let decode = |body: &[u8], gzipped| {
            read(body.to_vec(), gzipped, usize::MAX).map(|(bytes, walked)| {
                assert_eq!(walked.spans, 2);
                ingest::otlp::decode_otlp(&bytes)
            })
        };
        assert_eq!(decode(&body, false).unwrap(), request);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&body).unwrap();
        let zipped = gz.finish().unwrap();
        assert_eq!(decode(&zipped, true).unwrap(), request);
        assert!(matches!(decode(&body, true), Err(BodyError::Invalid(_))));
        assert!(matches!(
            decode(b"\xff\xff garbage", false),
            Err(BodyError::Invalid(_))
        ));
        // A gzip bomb stops at the limit.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&vec![0; MAX_DECOMPRESSED_BYTES + 10]).unwrap();
        let bomb = gz.finish().unwrap();
        assert!(matches!(decode(&bomb, true), Err(BodyError::TooLarge)));
    }

    #[test]
    fn behaviours_answer_exports() {
        let kept = |b: Behaviour| b.answer_otlp(5).0;
        assert!(kept(Behaviour::Accept));
        assert!(kept(Behaviour::Disable));
        assert!(!kept(Behaviour::Status(503)));
        assert!(!kept(Behaviour::Never));
        let (kept, rejected, _) = Behaviour::RejectSpans {
            count: 9,
            message: "too old".into(),
        }
        .answer_otlp(5);
        assert!(kept);
        assert_eq!(rejected, 5, "no more than the export carried");
        assert!(matches!(
            Behaviour::RetryAfter {
                status: 429,
                seconds: 2
            }
            .answer_otlp(1)
            .2,
            Answer::Status(429, Some(2))
        ));
    }
}
