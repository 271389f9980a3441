//! Spans waiting to be reported, already encoded.
//!
//! Each span is encoded once, as it arrives, straight into the body of the report that will
//! carry it: a report is the span bytes followed by the `ReportRequest` header's fields
//! (protobuf accepts fields in any order and concatenated repeated fields), so sending a
//! report copies no span: the chunk's bytes are lent to the HTTP body and taken back after,
//! for a retry (with a new header) or, once delivered, for the next chunk to fill. Reports are
//! cut before they reach the size limit, so no batch is ever split or re-encoded afterwards.
//!
//! Memory matters at high rates: a fresh 4 MB buffer per report, grown by doubling (each
//! step a copy into pages the kernel must zero), and a copy of it as the body, cost the
//! reporter thread about half its time at a million spans a second. So a new chunk starts
//! with the capacity the last full one needed, delivered chunks' memory is reused (up to
//! [`MAX_SPARES`] kept), and spares are let go when the spans coming in between reports
//! would fill only a small part of one.
//!
//! Memory: a buffered span costs its encoded size plus the growth slack of its chunk's `Vec`
//! (at most as much again). Measured in `memory_per_span_is_its_encoding` for a span with a
//! name, a parent and three tags (string, int, bool), no logs: 120 bytes encoded, 131 bytes
//! of buffer capacity per span; the `SpanRecord` it came from is 256 bytes plus its heap.
//! So the default 100,000 buffered spans of that kind hold about 13 MB; bigger spans are
//! bounded by the bytes held (64 MB by default, see `Options::max_buffered_bytes`, which
//! counts encoded bytes: the slack can double it). Besides, up to
//! [`MAX_SPARES`] chunks' memory waits for reuse: each at most a report's size (twice that
//! for a chunk that grew by doubling), and only while spans keep coming fast enough to fill
//! a good part of one between reports.

use super::options::Protocol;
use super::protocol::otlp;
use super::wire::{self, Limits};
#[cfg(test)]
use crate::protocol::lightstep;
use crate::record::SpanRecord;
use bytes::Bytes;
#[cfg(test)]
use prost::encoding::message;
#[cfg(test)]
use prost::Message;
use std::sync::Arc;

/// The field number of `ReportRequest.spans`.
const SPANS_FIELD: u32 = 3;
/// The field number of OTLP's `ScopeSpans.spans`.
const OTLP_SPANS_FIELD: u8 = 2;

/// Encoded spans that fit in one report.
#[derive(Debug, Default)]
pub(crate) struct Chunk {
    /// Length-delimited `ReportRequest.spans` entries, back to back (empty while lent).
    pub(crate) bytes: Vec<u8>,
    /// How many spans `bytes` holds.
    pub(crate) spans: usize,
    /// The bytes, with a header after them, while a report body holds them.
    lent: Option<Lent>,
}

/// A chunk's bytes as a report body shares them.
#[derive(Debug)]
struct Lent {
    bytes: Arc<Vec<u8>>,
    /// Where the spans end and the header starts.
    spans_end: usize,
}

/// Lets a `Bytes` body read a lent chunk without copying it.
struct LentBytes(Arc<Vec<u8>>);

impl AsRef<[u8]> for LentBytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Chunk {
    /// The chunk's spans followed by `trailer` (a LightStep report's header fields:
    /// `reporter`, `auth`, `internal_metrics`, ..., encoded; nothing for OTLP, whose head
    /// goes before). The chunk's bytes are lent, not copied, until [`Chunk::reclaim`].
    pub(crate) fn lend(&mut self, trailer: &[u8]) -> Bytes {
        self.reclaim();
        let mut bytes = std::mem::take(&mut self.bytes);
        let spans_end = bytes.len();
        bytes.extend_from_slice(trailer);
        let bytes = Arc::new(bytes);
        self.lent = Some(Lent {
            bytes: Arc::clone(&bytes),
            spans_end,
        });
        Bytes::from_owner(LentBytes(bytes))
    }

    /// Takes the bytes back from the body they were lent to, without the header: the same
    /// memory when the body is gone (the transport drops it once the answer is in), a copy
    /// of the spans when something still holds it.
    pub(crate) fn reclaim(&mut self) {
        if let Some(Lent { bytes, spans_end }) = self.lent.take() {
            self.bytes = match Arc::try_unwrap(bytes) {
                Ok(mut bytes) => {
                    bytes.truncate(spans_end);
                    bytes
                }
                Err(shared) => shared[..spans_end].to_vec(),
            };
        }
    }
}

/// A span written into the buffer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Pushed {
    /// How many of its logs were dropped on the way (the per-span limit).
    pub(crate) logs_dropped: u64,
    /// Its encoded size.
    pub(crate) bytes: usize,
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
    /// The memory of delivered chunks, for the next chunks to fill.
    spares: Vec<Vec<u8>>,
    /// The length of the last chunk that was cut: a new chunk gets that much room.
    last_chunk_len: usize,
    /// Which encoder writes the spans.
    protocol: Protocol,
}

impl SpanBuffer {
    /// An empty buffer whose chunks each hold at most `max_chunk_bytes` of spans, encoded
    /// for `protocol`.
    pub(crate) fn new(max_chunk_bytes: usize, protocol: Protocol) -> Self {
        SpanBuffer {
            full: Vec::new(),
            open: Chunk::default(),
            spans: 0,
            max_chunk_bytes,
            spares: Vec::new(),
            last_chunk_len: 0,
            protocol,
        }
    }

    /// A new chunk, in spare memory if there is some, else with the room the last one
    /// needed (so that a busy buffer's chunks do not grow by doubling, copying each time).
    fn new_chunk(&mut self) -> Chunk {
        let bytes = self.spares.pop().unwrap_or_else(|| {
            // A chunk cut at half the limit or more was cut by the limit, or nearly: the
            // next one will likely fill up to it.
            let expected = if 2 * self.last_chunk_len >= self.max_chunk_bytes {
                self.max_chunk_bytes
            } else {
                self.last_chunk_len
            };
            let room = expected + CHUNK_SLACK;
            Vec::with_capacity(if self.last_chunk_len == 0 { 0 } else { room })
        });
        Chunk {
            bytes,
            ..Chunk::default()
        }
    }

    /// Closes the open chunk and opens `next`.
    fn cut(&mut self, next: Chunk) -> Chunk {
        self.last_chunk_len = self.open.bytes.len();
        std::mem::replace(&mut self.open, next)
    }

    /// Keeps the memory of a chunk that is done with (delivered or dropped) for the open
    /// chunk, if that has none yet, or the next ones, up to [`MAX_SPARES`]; unless a body
    /// still holds it.
    pub(crate) fn recycle(&mut self, chunk: Chunk) {
        let memory = match chunk.lent {
            Some(lent) => Arc::try_unwrap(lent.bytes).ok(),
            None => Some(chunk.bytes),
        };
        if let Some(mut memory) = memory.filter(|m| m.capacity() > 0) {
            memory.clear();
            if self.open.bytes.capacity() == 0 {
                self.open.bytes = memory;
            } else if self.spares.len() < MAX_SPARES {
                self.spares.push(memory);
            }
        }
    }

    /// Encodes a span message into the buffer (the tests' way in; the reporter's is
    /// [`SpanBuffer::push_record`]).
    #[cfg(test)]
    pub(crate) fn push(&mut self, span: &lightstep::LightStepSpan) -> Result<(), TooLarge> {
        let len = message::encoded_len(SPANS_FIELD, span);
        if len > self.max_chunk_bytes {
            return Err(TooLarge { bytes: len });
        }
        if self.open.bytes.len() + len > self.max_chunk_bytes {
            let next = self.new_chunk();
            let full = self.cut(next);
            self.full.push(full);
        }
        message::encode(SPANS_FIELD, span, &mut self.open.bytes);
        self.open.spans += 1;
        self.spans += 1;
        Ok(())
    }

    /// Encodes a finished span into the buffer, straight from its record (see the `wire`
    /// module). A span too large for a report comes back with how many of its logs were
    /// dropped on the way.
    pub(crate) fn push_record(
        &mut self,
        record: &SpanRecord,
        limits: &Limits,
    ) -> Result<Pushed, (TooLarge, u64)> {
        // Written first, measured after: a span that does not fit is taken back out.
        let start = self.open.bytes.len();
        let logs_dropped = match self.protocol {
            Protocol::LightStep => {
                wire::write(&mut self.open.bytes, SPANS_FIELD as u8, record, limits)
            }
            Protocol::Otlp => {
                otlp::wire::write(&mut self.open.bytes, OTLP_SPANS_FIELD, record, limits)
            }
        };
        let len = self.open.bytes.len() - start;
        if len > self.max_chunk_bytes {
            self.open.bytes.truncate(start);
            return Err((TooLarge { bytes: len }, logs_dropped));
        }
        if start + len > self.max_chunk_bytes {
            // The span starts the next chunk.
            let mut next = self.new_chunk();
            next.bytes.extend_from_slice(&self.open.bytes[start..]);
            self.open.bytes.truncate(start);
            let full = self.cut(next);
            self.full.push(full);
        }
        self.open.spans += 1;
        self.spans += 1;
        Ok(Pushed {
            logs_dropped,
            bytes: len,
        })
    }

    /// Spans in the buffer.
    pub(crate) fn len(&self) -> usize {
        self.spans
    }

    /// Whether a chunk is full: a report of the largest size is ready.
    pub(crate) fn has_full_chunk(&self) -> bool {
        !self.full.is_empty()
    }

    /// Takes every chunk, oldest first.
    pub(crate) fn take(&mut self) -> Vec<Chunk> {
        let mut chunks = std::mem::take(&mut self.full);
        // Spares much bigger than what arrives between reports are let go (spans come
        // slowly again).
        let taken = chunks.len() * self.max_chunk_bytes + self.open.bytes.len();
        self.spares
            .retain(|spare| spare.capacity() <= SPARE_KEPT_BELOW.max(8 * taken));
        if self.open.spans > 0 {
            let next = self.new_chunk();
            let last = self.cut(next);
            chunks.push(last);
        }
        self.spans = 0;
        chunks
    }
}

/// A spare chunk this small is always kept.
const SPARE_KEPT_BELOW: usize = 64 * 1024;

/// The most spare chunks kept. At a million spans a second a report period seals three or
/// four chunks of 4 MB at once, which come back one by one as their reports are delivered,
/// while new chunks are filled: four spares let every chunk reuse memory.
pub(crate) const MAX_SPARES: usize = 4;

/// Room in a new chunk beyond the last one's length: the span that did not fit in it, and
/// the header a report appends.
const CHUNK_SLACK: usize = 4096;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::otlp::{ExportTraceServiceRequest, InstrumentationScope, Resource};
    use crate::reporter::wire::tests::{self, record, LIMITS};
    use crate::tag::{TagList, TagValue};

    fn span(tag_bytes: usize) -> lightstep::LightStepSpan {
        let tags: TagList = [("payload", TagValue::from("x".repeat(tag_bytes)))]
            .into_iter()
            .collect();
        tests::span(&record("op", tags, Vec::new()), &LIMITS).span
    }

    #[test]
    fn a_report_decodes_to_its_header_and_spans() {
        let mut buffer = SpanBuffer::new(1 << 20, Protocol::LightStep);
        let spans = [span(3), span(10)];
        for s in &spans {
            buffer.push(s).unwrap();
        }
        assert_eq!(buffer.len(), 2);
        let chunks = buffer.take();
        assert_eq!(buffer.len(), 0);
        assert_eq!(chunks.len(), 1);
        let header = lightstep::ReportRequest {
            auth: Some(lightstep::Auth {
                access_token: "tok".into(),
            }),
            timestamp_offset_micros: 5,
            ..Default::default()
        };
        let mut chunk = chunks.into_iter().next().unwrap();
        let body = chunk.lend(&header.encode_to_vec());
        let decoded = lightstep::ReportRequest::decode(&body[..]).unwrap();
        assert_eq!(decoded.auth, header.auth);
        assert_eq!(decoded.timestamp_offset_micros, 5);
        assert_eq!(decoded.spans, spans);

        // A retry while the first body is still held: the spans are copied back, and the
        // new header replaces the old one.
        let retry_header = lightstep::ReportRequest {
            timestamp_offset_micros: 9,
            ..header
        };
        let retry = chunk.lend(&retry_header.encode_to_vec());
        let decoded = lightstep::ReportRequest::decode(&retry[..]).unwrap();
        assert_eq!(decoded.timestamp_offset_micros, 9);
        assert_eq!(decoded.spans, spans);
        drop(body);

        // Once the body is gone, the same memory comes back, and serves the next chunk.
        let lent_at = retry.as_ptr();
        drop(retry);
        chunk.reclaim();
        assert_eq!(chunk.bytes.as_ptr(), lent_at);
        assert_eq!(chunk.spans, 2);
        buffer.recycle(chunk);
        buffer.push(&span(3)).unwrap();
        let next = buffer.take();
        assert_eq!(next[0].bytes.as_ptr(), lent_at);
        let decoded = lightstep::ReportRequest::decode(&next[0].bytes[..]).unwrap();
        assert_eq!(decoded.spans, [span(3)]);
    }

    #[test]
    fn a_spare_much_bigger_than_what_arrives_is_let_go() {
        let mut buffer = SpanBuffer::new(1 << 20, Protocol::LightStep);
        buffer.push(&span(3)).unwrap();
        let big = Chunk {
            bytes: Vec::with_capacity(1 << 20),
            ..Chunk::default()
        };
        buffer.recycle(big);
        assert_eq!(buffer.spares.len(), 1);
        buffer.take();
        assert!(buffer.spares.is_empty(), "a few bytes between reports");
        buffer.push(&span(3)).unwrap();
        buffer.recycle(Chunk {
            bytes: Vec::with_capacity(1000),
            ..Chunk::default()
        });
        assert_eq!(buffer.spares.len(), 1);
        buffer.take();
        assert!(
            buffer.open.bytes.capacity() >= 1000,
            "a small spare is kept: the next chunk fills it"
        );
    }

    #[test]
    fn cuts_chunks_under_the_limit_and_keeps_order() {
        let one = message::encoded_len(SPANS_FIELD, &span(100));
        let mut buffer = SpanBuffer::new(one * 3 + one / 2, Protocol::LightStep);
        for _ in 0..10 {
            buffer.push(&span(100)).unwrap();
        }
        let chunks = buffer.take();
        let sizes: Vec<usize> = chunks.iter().map(|c| c.spans).collect();
        assert_eq!(sizes, [3, 3, 3, 1]);
        for c in &chunks {
            assert!(c.bytes.len() <= one * 3 + one / 2);
            let decoded = lightstep::ReportRequest::decode(&c.bytes[..]).unwrap();
            assert_eq!(decoded.spans.len(), c.spans);
        }
    }

    #[test]
    fn refuses_a_span_bigger_than_a_report() {
        let mut buffer = SpanBuffer::new(200, Protocol::LightStep);
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
        let mut buffer = SpanBuffer::new(max, Protocol::LightStep);
        for _ in 0..7 {
            let pushed = buffer.push_record(&record(100), &LIMITS).unwrap();
            assert_eq!(
                pushed,
                Pushed {
                    logs_dropped: 0,
                    bytes: one
                }
            );
        }
        let (err, logs_dropped) = buffer.push_record(&record(max), &LIMITS).unwrap_err();
        assert!(err.bytes > max);
        assert_eq!(logs_dropped, 0);
        assert_eq!(
            buffer
                .push_record(&record(100), &LIMITS)
                .unwrap()
                .logs_dropped,
            0
        );
        assert_eq!(buffer.len(), 8);
        // The chunk being filled got the room the last full one needed: it does not grow.
        assert!(buffer.last_chunk_len >= 3 * one);
        assert!(buffer.open.bytes.capacity() >= buffer.last_chunk_len + CHUNK_SLACK);
        let chunks = buffer.take();
        let sizes: Vec<usize> = chunks.iter().map(|c| c.spans).collect();
        assert_eq!(sizes, [3, 3, 2]);
        for c in &chunks {
            assert!(c.bytes.len() <= max);
            let decoded = lightstep::ReportRequest::decode(&c.bytes[..]).unwrap();
            assert_eq!(decoded.spans, vec![span(100); c.spans]);
        }
    }

    #[test]
    fn otlp_chunks_after_a_head_decode_to_one_request_each() {
        let record = |tag_bytes: usize| {
            let tags: TagList = [("payload", TagValue::from("x".repeat(tag_bytes)))]
                .into_iter()
                .collect();
            record("op", tags, Vec::new())
        };
        let (one, _) = otlp::wire::message(&record(100), &LIMITS);
        let one_len = prost::encoding::message::encoded_len(2, &one);
        let mut buffer = SpanBuffer::new(one_len * 2 + one_len / 2, Protocol::Otlp);
        for _ in 0..5 {
            assert_eq!(
                buffer
                    .push_record(&record(100), &LIMITS)
                    .unwrap()
                    .logs_dropped,
                0
            );
        }
        let resource = Resource::default();
        let scope = InstrumentationScope {
            name: "lstrace".into(),
            ..Default::default()
        };
        let chunks = buffer.take();
        let sizes: Vec<usize> = chunks.iter().map(|c| c.spans).collect();
        assert_eq!(sizes, [2, 2, 1]);
        for mut chunk in chunks {
            let head = otlp::request_head(&resource, &scope, chunk.bytes.len());
            let body = [&head[..], &chunk.lend(&[])].concat();
            let request = ExportTraceServiceRequest::decode(&body[..]).unwrap();
            assert_eq!(request.resource_spans.len(), 1);
            let scope_spans = &request.resource_spans[0].scope_spans;
            assert_eq!(scope_spans[0].scope.as_ref(), Some(&scope));
            assert_eq!(scope_spans[0].spans, vec![one.clone(); chunk.spans]);
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
        let s = tests::span(&record("GET /users/:id", tags, Vec::new()), &LIMITS).span;
        let mut buffer = SpanBuffer::new(crate::reporter::MAX_REPORT_BYTES, Protocol::LightStep);
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
