//! What differs between the wire protocols a reporter can speak: the body around the spans,
//! the headers, and what an answer means. The worker, the transport, the buffer's chunks,
//! retries and accounting are shared. Each protocol keeps its messages in its `messages`
//! module, public as [`crate::protocol`].

pub(crate) mod lightstep;
pub(crate) mod otlp;

use super::buffer::Chunk;
use super::config::InitError;
use super::events::ReportError;
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use reqwest::header::HeaderMap;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

/// A collector's answer to a report that it accepted.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Answer {
    /// Accepted; `warning` when the answer itself could not be read (a 2xx status means the
    /// report was received: it is not sent again), or when it carries the collector's
    /// warning (an OTLP `partial_success` that refuses no span but has a message).
    Accepted {
        /// What to tell the event handler.
        warning: Option<String>,
    },
    /// Accepted, and the collector says: stop tracing.
    Disable,
    /// OTLP `partial_success`: accepted, but `rejected` of its spans refused for good.
    Partial {
        /// How many spans the collector refused.
        rejected: u64,
        /// Why, in its words.
        message: String,
    },
}

/// An answer body as the transport read it: at most [`MAX_ANSWER_BYTES`].
pub(crate) type AnswerBody<'a> = Result<&'a [u8], String>;

/// The most bytes of an answer that are read: answers are small, and a bigger one is not
/// read further (it is a broken or hostile server).
pub(crate) const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// The counts a report carries besides its spans.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Carried {
    /// Spans dropped that no accepted report has carried yet.
    pub(crate) spans_dropped: u64,
    /// Logs dropped by the per-span limit, likewise.
    pub(crate) logs_dropped: u64,
    /// Tags dropped by the per-span limit, likewise.
    pub(crate) tags_dropped: u64,
    /// Baggage items dropped by the per-context limit, likewise.
    pub(crate) baggage_dropped: u64,
    /// Operation names cut to the length limit, likewise.
    pub(crate) names_truncated: u64,
    /// Fields that injection left out of carriers, likewise.
    pub(crate) fields_left_out: u64,
}

/// One wire protocol.
pub(crate) trait ReportProtocol: Send {
    /// The headers of every report (content type, access token: marked sensitive).
    fn headers(&self) -> Result<HeaderMap, InitError>;

    /// The most bytes a report's envelope (everything but the spans) takes.
    fn max_envelope_bytes(&self) -> usize;

    /// A report's body: the chunk's spans, lent (see [`Chunk::lend`]), in the protocol's
    /// envelope, with the counts it carries. `interval_start_nanos` is the wall-clock time
    /// the counts were first carried since.
    fn body(
        &mut self,
        chunk: &mut Chunk,
        carried: Carried,
        interval_start_nanos: u64,
    ) -> ReportBody;

    /// What an answer means. `body` is read only for a 2xx status; `retry_after` is the
    /// answer's `Retry-After` in seconds (capped), when it has one.
    fn answer(
        &self,
        status: u16,
        retry_after: Option<std::time::Duration>,
        body: AnswerBody<'_>,
    ) -> Result<Answer, ReportError>;
}

/// A report body: `head`, then `rest`, sent as one HTTP body of their total length. Either
/// part may share memory with the span buffer (see [`Chunk::lend`]): nothing is copied to
/// put them together. Cloning shares them too (a hedge sends the same body again).
#[derive(Clone, Debug, Default)]
pub(crate) struct ReportBody {
    head: Bytes,
    rest: Bytes,
}

impl ReportBody {
    /// A body of one part.
    pub(crate) fn whole(bytes: Bytes) -> Self {
        ReportBody {
            head: bytes,
            rest: Bytes::new(),
        }
    }

    /// `head`, then `rest`.
    pub(crate) fn parts(head: Bytes, rest: Bytes) -> Self {
        ReportBody { head, rest }
    }

    /// Its length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.head.len() + self.rest.len()
    }

    /// The HTTP request body: a body of one part is sent as it is.
    pub(crate) fn into_http(self) -> reqwest::Body {
        if self.rest.is_empty() {
            reqwest::Body::from(self.head)
        } else {
            reqwest::Body::wrap(self)
        }
    }
}

impl http_body::Body for ReportBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        let part = if this.head.is_empty() {
            &mut this.rest
        } else {
            &mut this.head
        };
        Poll::Ready((!part.is_empty()).then(|| Ok(Frame::data(std::mem::take(part)))))
    }

    fn is_end_stream(&self) -> bool {
        self.len() == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.len() as u64)
    }
}

impl Carried {
    /// Every count at its widest, for sizing a report's envelope.
    pub(crate) const WIDEST: Carried = Carried {
        spans_dropped: u64::MAX,
        logs_dropped: u64::MAX,
        tags_dropped: u64::MAX,
        baggage_dropped: u64::MAX,
        names_truncated: u64::MAX,
        fields_left_out: u64::MAX,
    };

    /// The counts by the names reports give them (LightStep's internal metrics, OTLP scope
    /// attributes).
    pub(crate) fn named(self) -> [(&'static str, u64); 6] {
        use lightstep::{
            BAGGAGE_DROPPED, FIELDS_LEFT_OUT, LOGS_DROPPED, NAMES_TRUNCATED, SPANS_DROPPED,
            TAGS_DROPPED,
        };
        [
            (SPANS_DROPPED, self.spans_dropped),
            (LOGS_DROPPED, self.logs_dropped),
            (TAGS_DROPPED, self.tags_dropped),
            (BAGGAGE_DROPPED, self.baggage_dropped),
            (NAMES_TRUNCATED, self.names_truncated),
            (FIELDS_LEFT_OUT, self.fields_left_out),
        ]
    }

    pub(crate) fn plus(self, other: Carried) -> Carried {
        Carried {
            spans_dropped: self.spans_dropped + other.spans_dropped,
            logs_dropped: self.logs_dropped + other.logs_dropped,
            tags_dropped: self.tags_dropped + other.tags_dropped,
            baggage_dropped: self.baggage_dropped + other.baggage_dropped,
            names_truncated: self.names_truncated + other.names_truncated,
            fields_left_out: self.fields_left_out + other.fields_left_out,
        }
    }

    pub(crate) fn minus(self, other: Carried) -> Carried {
        Carried {
            spans_dropped: self.spans_dropped - other.spans_dropped,
            logs_dropped: self.logs_dropped - other.logs_dropped,
            tags_dropped: self.tags_dropped - other.tags_dropped,
            baggage_dropped: self.baggage_dropped - other.baggage_dropped,
            names_truncated: self.names_truncated - other.names_truncated,
            fields_left_out: self.fields_left_out - other.fields_left_out,
        }
    }
}
