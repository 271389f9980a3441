//! The satellite's OTLP/HTTP side: `POST /v1/traces` with an `ExportTraceServiceRequest`
//! (protobuf, gzipped or not), kept alongside LightStep reports and shown in the same trees.

use super::ingest::otlp::WalkedExport;
use super::ingest::{self, Refusal};
use super::span::{self, ReceivedSpan};
use super::Behaviour;
use crate::protocol::otlp::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use std::fmt;
use std::io::Read as _;

/// The largest OTLP request body, as sent and after decompression: the OTLP
/// specification's recommended server limit. Beyond it the request is answered 413.
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
    /// The export's spans, read as [`ReceivedSpan`]s (as
    /// [`LocalSatellite::spans`](super::LocalSatellite::spans) returns them, when the export
    /// was accepted).
    #[must_use]
    pub fn spans(&self) -> Vec<ReceivedSpan> {
        span::export_spans(&self.request, span::Resource::Kept).collect()
    }

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::otlp::{any_value, KeyValue, OtlpSpan, ResourceSpans, ScopeSpans};
    use prost::Message;
    use std::io::Write as _;

    /// A span with a value of each kind of field (bytes, string, fixed64, a message).
    fn span(name: &str) -> OtlpSpan {
        OtlpSpan {
            span_id: 2u64.to_be_bytes().to_vec(),
            name: name.into(),
            start_time_unix_nano: 1_000,
            attributes: vec![KeyValue::new("n", any_value::Value::IntValue(3))],
            ..OtlpSpan::default()
        }
    }

    #[test]
    fn bodies_decode_plain_or_gzipped() {
        let request = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans: vec![span("GET /users"), span("SELECT")],
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
