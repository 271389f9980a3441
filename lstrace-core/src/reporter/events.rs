//! What the reporter tells the program: failed reports, dropped spans, status, disabling.
//!
//! Events go to the tracer's own handler ([`Options::event_handler`]), else to the
//! process-wide one ([`set_event_handler`]). Without either, warnings (which come only when a
//! tracer starts, such as a defaulted component name) are printed to stderr, and so is the
//! first error, once, and no error after it. No event carries the access token.
//!
//! [`Options::event_handler`]: super::Options::event_handler

use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

/// Receives events. Called on the reporter's thread (and on the caller's thread for `init`
/// warnings, and for drops that [`Tracer::stats`](super::Tracer::stats) counts after the
/// tracer stopped); it should return quickly. A handler that panics is caught.
pub type EventHandler = Arc<dyn Fn(&Event) + Send + Sync + 'static>;

/// Something the reporter wants the program to know.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// A report was accepted by the collector.
    ReportSent(StatusReport),
    /// A report failed; it is retried (`will_retry`) or its spans are dropped and counted.
    ReportFailed(ReportFailure),
    /// Spans were dropped (each drop is reported once, and reaches the collector as
    /// `spans.dropped` with the next successful report).
    SpansDropped {
        /// How many.
        count: u64,
        /// Why.
        reason: DropReason,
    },
    /// An OTLP collector accepted a report but refused some of its spans for good
    /// (`partial_success`): they are not retried, and are counted as dropped
    /// ([`DropReason::Rejected`]).
    SpansRejected {
        /// The collector that refused them.
        endpoint: String,
        /// How many spans it refused.
        count: u64,
        /// Its reason.
        message: String,
    },
    /// A span could not be encoded into a report (it is dropped and counted).
    EncodingError {
        /// What went wrong.
        message: String,
    },
    /// The collector answered with a `disable` command: the tracer stopped, every span is
    /// now a no-op.
    TracerDisabled {
        /// The collector that said so.
        endpoint: String,
        /// Spans that were waiting and are not reported.
        discarded_spans: u64,
    },
    /// Something worth knowing that lost nothing: a setting defaulted at `init`, or a
    /// collector that accepted a report with an answer that could not be read.
    Warning {
        /// What and why.
        message: String,
    },
}

impl Event {
    /// True for events that mean something went wrong (failed reports, drops, encoding
    /// errors, disabling).
    #[must_use]
    pub fn is_error(&self) -> bool {
        !matches!(self, Event::ReportSent(_) | Event::Warning { .. })
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::ReportSent(s) => write!(
                f,
                "report of {} spans accepted by {} (since the last report: spans dropped: {}, \
                 logs dropped: {}, tags dropped: {}, baggage items dropped: {}, operation \
                 names truncated: {}, propagation fields left out: {})",
                s.spans_sent,
                s.endpoint,
                s.spans_dropped,
                s.logs_dropped,
                s.tags_dropped,
                s.baggage_items_dropped,
                s.operation_names_truncated,
                s.propagation_fields_left_out
            ),
            Event::ReportFailed(r) => {
                write!(
                    f,
                    "report of {} spans to {} failed (attempt {}): {}; ",
                    r.spans, r.endpoint, r.attempt, r.error
                )?;
                f.write_str(if r.will_retry {
                    "it will be retried"
                } else {
                    "its spans are dropped"
                })
            }
            Event::SpansDropped { count, reason } => write!(f, "{count} spans dropped: {reason}"),
            Event::SpansRejected {
                endpoint,
                count,
                message,
            } => write!(f, "{endpoint} refused {count} spans of a report: {message}"),
            Event::EncodingError { message } => write!(f, "span encoding error: {message}"),
            Event::TracerDisabled {
                endpoint,
                discarded_spans,
            } => write!(
                f,
                "the collector at {endpoint} disabled the tracer: tracing stopped, \
                 {discarded_spans} waiting spans discarded"
            ),
            Event::Warning { message } => write!(f, "warning: {message}"),
        }
    }
}

/// A report the collector accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct StatusReport {
    /// The collector URL.
    pub endpoint: String,
    /// Spans in the report.
    pub spans_sent: usize,
    /// The `spans.dropped` count the report carried (drops since the previous accepted report).
    pub spans_dropped: u64,
    /// The `logs.dropped` count the report carried.
    pub logs_dropped: u64,
    /// The `tags.dropped` count the report carried.
    pub tags_dropped: u64,
    /// The `baggage.dropped` count the report carried: baggage items refused by
    /// [`Options::max_baggage_items`](super::Options::max_baggage_items).
    pub baggage_items_dropped: u64,
    /// The `operation_names.truncated` count the report carried: names cut to
    /// [`Options::max_operation_name_len`](super::Options::max_operation_name_len).
    pub operation_names_truncated: u64,
    /// The `propagation.fields_left_out` count the report carried: fields that injection
    /// left out of carriers ([`fields_left_out`](crate::propagation::fields_left_out)).
    pub propagation_fields_left_out: u64,
}

/// A report that failed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReportFailure {
    /// The collector URL.
    pub endpoint: String,
    /// What went wrong.
    pub error: ReportError,
    /// Spans in the report.
    pub spans: usize,
    /// Which attempt failed (1 for the first).
    pub attempt: u32,
    /// Whether the report will be tried again (else its spans are dropped and counted).
    pub will_retry: bool,
}

/// Why a report failed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReportError {
    /// No answer: the connection failed or broke.
    Connection(String),
    /// No answer within the report timeout (or the flush deadline).
    Timeout,
    /// 401 or 403: the access token was refused.
    Unauthorized {
        /// The HTTP status.
        status: u16,
    },
    /// Any other status but 200.
    Status {
        /// The HTTP status.
        status: u16,
    },
    /// 200, but the response lists errors: the collector rejected the report.
    Rejected {
        /// The collector's messages.
        errors: Vec<String>,
    },
    /// An answer the protocol cannot use. (A 2xx answer whose body cannot be read is not
    /// this: the report was received, and counts as accepted with a warning event.)
    InvalidResponse(String),
    /// OTLP: 429, 502, 503 or 504, the statuses the OTLP rules retry (after `Retry-After`).
    Throttled {
        /// The HTTP status.
        status: u16,
        /// How long the server asked to wait (in seconds, capped at a minute), if it did.
        retry_after: Option<std::time::Duration>,
    },
    /// OTLP: a status the OTLP rules do not retry (400, 413, 500, ...).
    Refused {
        /// The HTTP status.
        status: u16,
    },
}

impl ReportError {
    /// Whether sending the same report again (possibly elsewhere) can help.
    pub(crate) fn is_retryable(&self) -> bool {
        match self {
            ReportError::Connection(_) | ReportError::Timeout | ReportError::InvalidResponse(_) => {
                true
            }
            // A redirect is not followed, but another collector may take the report.
            ReportError::Status { status } => {
                *status >= 500 || (300..400).contains(status) || matches!(status, 408 | 429)
            }
            ReportError::Throttled { .. } => true,
            ReportError::Unauthorized { .. }
            | ReportError::Rejected { .. }
            | ReportError::Refused { .. } => false,
        }
    }
}

impl fmt::Display for ReportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReportError::Connection(e) => write!(f, "connection error: {e}"),
            ReportError::Timeout => f.write_str("timed out"),
            ReportError::Unauthorized { status } => {
                write!(f, "unauthorized (HTTP {status}): check the access token")
            }
            ReportError::Status { status } if (300..400).contains(status) => write!(
                f,
                "HTTP status {status}: a redirect, not followed (the access token stays with \
                 the configured collectors)"
            ),
            ReportError::Status { status } => write!(f, "HTTP status {status}"),
            ReportError::Rejected { errors } => {
                write!(f, "rejected by the collector: {}", errors.join("; "))
            }
            ReportError::InvalidResponse(e) => write!(f, "invalid response: {e}"),
            ReportError::Throttled {
                status,
                retry_after,
            } => {
                write!(f, "HTTP status {status}")?;
                match retry_after {
                    Some(wait) => write!(f, " (retry after {wait:?})"),
                    None => Ok(()),
                }
            }
            ReportError::Refused { status } => {
                write!(f, "HTTP status {status} (not retried: OTLP's rules)")
            }
        }
    }
}

/// Why spans were dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DropReason {
    /// The reporter already held `max_buffered_spans` spans (the collector is slow or down).
    BufferFull,
    /// A thread's ring of finished spans was full before the reporter drained it.
    RingFull,
    /// The report carrying them failed for good.
    ReportFailed,
    /// The span alone is bigger than a report may be.
    TooLarge,
    /// The tracer stopped (closed, disabled, or dropped) before they could be reported.
    Stopped,
    /// An OTLP collector refused them for good (`partial_success`).
    Rejected,
}

impl DropReason {
    pub(crate) const ALL: [DropReason; 6] = [
        DropReason::BufferFull,
        DropReason::RingFull,
        DropReason::ReportFailed,
        DropReason::TooLarge,
        DropReason::Stopped,
        DropReason::Rejected,
    ];

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DropReason::BufferFull => "the reporter's buffer is full",
            DropReason::RingFull => "a thread's span ring was full",
            DropReason::ReportFailed => "their report failed",
            DropReason::TooLarge => "too large for a report",
            DropReason::Stopped => "the tracer stopped",
            DropReason::Rejected => "the collector refused them",
        })
    }
}

static GLOBAL_HANDLER: RwLock<Option<EventHandler>> = RwLock::new(None);

/// Sends the events of every tracer without a handler of its own to `handler`, replacing
/// the previous one.
///
/// ```
/// lstrace_core::set_event_handler(|event| {
///     if event.is_error() {
///         eprintln!("tracing: {event}");
///     }
/// });
/// ```
pub fn set_event_handler(handler: impl Fn(&Event) + Send + Sync + 'static) {
    *GLOBAL_HANDLER
        .write()
        .unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(handler));
}

/// One tracer's way out for events.
pub(crate) struct Events {
    own: Option<EventHandler>,
    printed_error: AtomicBool,
}

impl Events {
    pub(crate) fn new(own: Option<EventHandler>) -> Self {
        Events {
            own,
            printed_error: AtomicBool::new(false),
        }
    }

    pub(crate) fn emit(&self, event: &Event) {
        let handler = self.own.clone().or_else(|| {
            GLOBAL_HANDLER
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .clone()
        });
        match handler {
            // A panicking handler must not take the reporter down with it.
            Some(handler) => drop(catch_unwind(AssertUnwindSafe(|| handler(event)))),
            None => {
                if let Some(line) = self.unhandled_line(event) {
                    eprintln!("{line}");
                }
            }
        }
    }

    /// What is printed to stderr for an event nobody handles, if anything: every warning, and
    /// the first error only, so a dead collector does not fill the program's stderr.
    fn unhandled_line(&self, event: &Event) -> Option<String> {
        if matches!(event, Event::Warning { .. }) {
            Some(format!(
                "lstrace: {event} (see lstrace::set_event_handler to handle events)"
            ))
        } else if event.is_error() && !self.printed_error.swap(true, Ordering::Relaxed) {
            Some(format!(
                "lstrace: {event} (later errors are not printed: see \
                 lstrace::set_event_handler)"
            ))
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn the_tracers_own_handler_gets_events_and_panics_are_caught() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&seen);
        let events = Events::new(Some(Arc::new(move |e: &Event| {
            sink.lock().unwrap().push(e.clone());
            panic!("handler bug");
        })));
        let event = Event::SpansDropped {
            count: 2,
            reason: DropReason::BufferFull,
        };
        events.emit(&event);
        events.emit(&event);
        assert_eq!(*seen.lock().unwrap(), [event.clone(), event]);
    }

    #[test]
    fn without_a_handler_warnings_and_the_first_error_are_printed() {
        let events = Events::new(None);
        let warning = Event::Warning {
            message: "no component name set".into(),
        };
        let printed = events
            .unhandled_line(&warning)
            .expect("warnings are printed");
        assert!(
            printed.contains("warning: no component name set"),
            "{printed}"
        );
        assert!(events.unhandled_line(&warning).is_some());
        let error = Event::EncodingError {
            message: "printed once, to stderr".into(),
        };
        assert!(events.unhandled_line(&error).is_some());
        assert_eq!(events.unhandled_line(&error), None);
        let sent = Event::ReportSent(StatusReport {
            endpoint: "http://127.0.0.1:1/".into(),
            spans_sent: 1,
            spans_dropped: 0,
            logs_dropped: 0,
            tags_dropped: 0,
            baggage_items_dropped: 0,
            operation_names_truncated: 0,
            propagation_fields_left_out: 0,
        });
        assert_eq!(events.unhandled_line(&sent), None);
    }

    #[test]
    fn retry_policy_follows_the_error() {
        assert!(ReportError::Connection("refused".into()).is_retryable());
        assert!(ReportError::Timeout.is_retryable());
        assert!(ReportError::Status { status: 503 }.is_retryable());
        assert!(ReportError::Status { status: 429 }.is_retryable());
        assert!(!ReportError::Status { status: 400 }.is_retryable());
        assert!(ReportError::Status { status: 307 }.is_retryable());
        assert!(!ReportError::Unauthorized { status: 401 }.is_retryable());
        assert!(!ReportError::Rejected { errors: vec![] }.is_retryable());
        assert!(ReportError::InvalidResponse("garbage".into()).is_retryable());
    }

    #[test]
    fn events_read_well() {
        let failed = Event::ReportFailed(ReportFailure {
            endpoint: "http://127.0.0.1:1/api/v2/reports".into(),
            error: ReportError::Unauthorized { status: 401 },
            spans: 3,
            attempt: 1,
            will_retry: false,
        });
        assert!(failed.is_error());
        assert_eq!(
            failed.to_string(),
            "report of 3 spans to http://127.0.0.1:1/api/v2/reports failed (attempt 1): \
             unauthorized (HTTP 401): check the access token; its spans are dropped"
        );
        assert!(!Event::Warning {
            message: String::new()
        }
        .is_error());
    }
}
