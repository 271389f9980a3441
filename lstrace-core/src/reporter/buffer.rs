//! Spans waiting to be reported, already encoded.
//!
//! Each span is encoded once, as it arrives, straight into the body of the report that will
//! carry it: a report is the `ReportRequest` header followed by the span bytes (protobuf
//! accepts fields in any order and concatenated repeated fields), so building a report copies
//! no span and a retry re-sends the same bytes. Reports are cut before they reach the size
//! limit, so no batch is ever split or re-encoded afterwards.
//!
//! Memory: a buffered span costs its encoded size plus the growth slack of its chunk's `Vec`
//! (at most as much again). Measured in `memory_per_span_is_its_encoding` for a span with a
//! name, a parent and three tags (string, int, bool), no logs: 120 bytes encoded, 131 bytes
//! of buffer capacity per span; the `SpanRecord` it came from is 256 bytes plus its heap.
//! So the default 1000 buffered spans of that kind hold about 130 KB.

use super::encode::Limits;
use super::wire;
use crate::protocol;
use crate::record::SpanRecord;
#[cfg(test)]
use prost::encoding::message;
use prost::Message;

/// The field number of `ReportRequest.spans`.
const SPANS_FIELD: u32 = 3;

/// Encoded spans that fit in one report.
#[derive(Debug, Default)]
pub(crate) struct Chunk {
    /// Length-delimited `ReportRequest.spans` entries, back to back.
    pub(crate) bytes: Vec<u8>,
    /// How many spans `bytes` holds.
    pub(crate) spans: usize,
}

/// A span too big for any report: it is dropped and counted.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct TooLarge {
    /// Its encoded size.
    pub(crate) bytes: usize,
}

/// The spans waiting for the next report, cut into chunks of at most `max_chunk_bytes`.
#[derive(Debug)]
pub(crate) struct SpanBuffer {
    full: Vec<Chunk>,
    open: Chunk,
    spans: usize,
    max_chunk_bytes: usize,
}

impl SpanBuffer {
    /// An empty buffer whose chunks each hold at most `max_chunk_bytes` of spans.
    pub(crate) fn new(max_chunk_bytes: usize) -> Self {
        SpanBuffer {
            full: Vec::new(),
            open: Chunk::default(),
            spans: 0,
            max_chunk_bytes,
        }
    }

    /// Encodes a span message into the buffer (the tests' way in; the reporter's is
    /// [`SpanBuffer::push_record`]).
    #[cfg(test)]
    pub(crate) fn push(&mut self, span: &protocol::Span) -> Result<(), TooLarge> {
        let len = message::encoded_len(SPANS_FIELD, span);
        if len > self.max_chunk_bytes {
            return Err(TooLarge { bytes: len });
        }
        if self.open.bytes.len() + len > self.max_chunk_bytes {
            self.full.push(std::mem::take(&mut self.open));
        }
        message::encode(SPANS_FIELD, span, &mut self.open.bytes);
        self.open.spans += 1;
        self.spans += 1;
        Ok(())
    }

    /// Encodes a finished span into the buffer, straight from its record (see the `wire`
    /// module). Returns how many of its logs were dropped on the way.
    pub(crate) fn push_record(
        &mut self,
        record: &SpanRecord,
        limits: &Limits,
    ) -> Result<u64, (TooLarge, u64)> {
        // Written first, measured after: a span that does not fit is taken back out.
        let start = self.open.bytes.len();
        let logs_dropped = wire::write(&mut self.open.bytes, SPANS_FIELD as u8, record, limits);
        let len = self.open.bytes.len() - start;
        if len > self.max_chunk_bytes {
            self.open.bytes.truncate(start);
            return Err((TooLarge { bytes: len }, logs_dropped));
        }
        if start + len > self.max_chunk_bytes {
            // The span starts the next chunk.
            let span = self.open.bytes.split_off(start);
            self.full.push(std::mem::replace(
                &mut self.open,
                Chunk {
                    bytes: span,
                    spans: 0,
                },
            ));
        }
        self.open.spans += 1;
        self.spans += 1;
        Ok(logs_dropped)
    }

    /// Spans in the buffer.
    pub(crate) fn len(&self) -> usize {
        self.spans
    }

    /// Takes every chunk, oldest first.
    pub(crate) fn take(&mut self) -> Vec<Chunk> {
        let mut chunks = std::mem::take(&mut self.full);
        if self.open.spans > 0 {
            chunks.push(std::mem::take(&mut self.open));
        }
        self.spans = 0;
        chunks
    }
}

/// The bytes of a report: the header fields (`reporter`, `auth`, `internal_metrics`, ...)
/// of `header`, which must have no spans, followed by the chunk's spans.
pub(crate) fn report_bytes(header: &protocol::ReportRequest, chunk: &Chunk) -> Vec<u8> {
    debug_assert!(header.spans.is_empty());
    // Only the small header moves when the span bytes are appended.
    let mut body = header.encode_to_vec();
    body.reserve_exact(chunk.bytes.len());
    body.extend_from_slice(&chunk.bytes);
    body
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reporter::encode::{self, tests::record, tests::LIMITS};
    use crate::tag::{TagList, TagValue};

    fn span(tag_bytes: usize) -> protocol::Span {
        let tags: TagList = [("payload", TagValue::from("x".repeat(tag_bytes)))]
            .into_iter()
            .collect();
        encode::span(&record("op", tags, Vec::new()), &LIMITS).span
    }

    #[test]
    fn a_report_decodes_to_its_header_and_spans() {
        let mut buffer = SpanBuffer::new(1 << 20);
        let spans = [span(3), span(10)];
        for s in &spans {
            buffer.push(s).unwrap();
        }
        assert_eq!(buffer.len(), 2);
        let chunks = buffer.take();
        assert_eq!(buffer.len(), 0);
        assert_eq!(chunks.len(), 1);
        let header = protocol::ReportRequest {
            auth: Some(protocol::Auth {
                access_token: "tok".into(),
            }),
            timestamp_offset_micros: 5,
            ..Default::default()
        };
        let body = report_bytes(&header, &chunks[0]);
        let decoded = protocol::ReportRequest::decode(&body[..]).unwrap();
        assert_eq!(decoded.auth, header.auth);
        assert_eq!(decoded.timestamp_offset_micros, 5);
        assert_eq!(decoded.spans, spans);
    }

    #[test]
    fn cuts_chunks_under_the_limit_and_keeps_order() {
        let one = message::encoded_len(SPANS_FIELD, &span(100));
        let mut buffer = SpanBuffer::new(one * 3 + one / 2);
        for _ in 0..10 {
            buffer.push(&span(100)).unwrap();
        }
        let chunks = buffer.take();
        let sizes: Vec<usize> = chunks.iter().map(|c| c.spans).collect();
        assert_eq!(sizes, [3, 3, 3, 1]);
        for c in &chunks {
            assert!(c.bytes.len() <= one * 3 + one / 2);
            let decoded = protocol::ReportRequest::decode(&c.bytes[..]).unwrap();
            assert_eq!(decoded.spans.len(), c.spans);
        }
    }

    #[test]
    fn refuses_a_span_bigger_than_a_report() {
        let mut buffer = SpanBuffer::new(200);
        let err = buffer.push(&span(500)).unwrap_err();
        assert!(err.bytes > 500);
        assert_eq!(buffer.len(), 0);
        assert!(buffer.take().is_empty());
    }

    #[test]
    fn records_are_cut_into_chunks_and_too_large_ones_refused() {
        let record = |tag_bytes: usize| {
            let tags: TagList = [("payload", TagValue::from("x".repeat(tag_bytes)))]
                .into_iter()
                .collect();
            record("op", tags, Vec::new())
        };
        let one = message::encoded_len(SPANS_FIELD, &span(100));
        let max = one * 3 + one / 2;
        let mut buffer = SpanBuffer::new(max);
        for _ in 0..7 {
            assert_eq!(buffer.push_record(&record(100), &LIMITS), Ok(0));
        }
        let (err, logs_dropped) = buffer.push_record(&record(max), &LIMITS).unwrap_err();
        assert!(err.bytes > max);
        assert_eq!(logs_dropped, 0);
        assert_eq!(buffer.push_record(&record(100), &LIMITS), Ok(0));
        assert_eq!(buffer.len(), 8);
        let chunks = buffer.take();
        let sizes: Vec<usize> = chunks.iter().map(|c| c.spans).collect();
        assert_eq!(sizes, [3, 3, 2]);
        for c in &chunks {
            assert!(c.bytes.len() <= max);
            let decoded = protocol::ReportRequest::decode(&c.bytes[..]).unwrap();
            assert_eq!(decoded.spans, vec![span(100); c.spans]);
        }
    }

    #[test]
    fn memory_per_span_is_its_encoding() {
        // A typical span: a name, three tags (string, int, bool), a parent, no logs.
        let tags: TagList = [
            ("http.method", TagValue::from("GET")),
            ("http.status_code", TagValue::Int(200)),
            ("error", TagValue::Bool(false)),
        ]
        .into_iter()
        .collect();
        let s = encode::span(&record("GET /users/:id", tags, Vec::new()), &LIMITS).span;
        let mut buffer = SpanBuffer::new(crate::reporter::options::MAX_REPORT_BYTES);
        for _ in 0..1000 {
            buffer.push(&s).unwrap();
        }
        let chunks = buffer.take();
        let bytes: usize = chunks.iter().map(|c| c.bytes.len()).sum();
        let capacity: usize = chunks.iter().map(|c| c.bytes.capacity()).sum();
        let per_span = bytes / 1000;
        eprintln!(
            "encoded span: {per_span} bytes; buffer capacity per span: {} bytes; \
             SpanRecord: {} bytes + heap",
            capacity / 1000,
            std::mem::size_of::<crate::record::SpanRecord>()
        );
        assert!((80..=140).contains(&per_span), "{per_span}");
        assert!(capacity <= 2 * bytes);
    }
}
