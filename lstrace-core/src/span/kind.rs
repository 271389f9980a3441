//! The role of a span in a request.

/// The role of a span in a request, recorded as the `span.kind` tag.
///
/// `Server` and `Consumer` spans are entry spans (work arriving from another process),
/// `Client` and `Producer` spans are exit spans (work handed to another process).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SpanKind {
    /// Handles a request from another process (an entry span).
    Server,
    /// Calls another process and waits for its answer (an exit span).
    Client,
    /// Hands a message to another process without waiting (an exit span).
    Producer,
    /// Handles a message from another process (an entry span).
    Consumer,
}

impl SpanKind {
    /// The tag value: `server`, `client`, `producer` or `consumer`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            SpanKind::Server => "server",
            SpanKind::Client => "client",
            SpanKind::Producer => "producer",
            SpanKind::Consumer => "consumer",
        }
    }
}
