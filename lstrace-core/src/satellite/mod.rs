//! A local LightStep satellite: a real HTTP server that receives reports, for your tests and
//! for development (feature `satellite`).
//!
//! It answers `POST /api/v2/reports` like a satellite does: the body is a binary
//! [`ReportRequest`], the answer a binary [`ReportResponse`]
//! (`Content-Type: application/octet-stream`). It also takes OTLP/HTTP exports at
//! `POST /v1/traces` ([`TRACES_PATH`]: protobuf, gzipped or not), kept as [`ReceivedOtlp`].
//! It keeps what it received, renders the spans of both protocols as trace trees, and can be
//! told to misbehave ([`Behaviour`]) so that a reporter's failure paths can be tested against
//! real HTTP.
//!
//! The server runs on a thread of its own with its own tokio runtime: it works the same from
//! sync code and from inside any tokio runtime. Dropping the [`LocalSatellite`] stops it.
//!
//! ```
//! use lstrace_core::satellite::LocalSatellite;
//! use std::time::Duration;
//!
//! let satellite = LocalSatellite::start()?;
//! assert!(satellite.url().starts_with("http://127.0.0.1:"));
//! // Point a reporter at `satellite.url()`, trace something, flush, then:
//! assert!(!satellite.wait_for_spans(1, Duration::from_millis(10)));
//! assert_eq!(satellite.tree(), "");
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # What a request gets
//! | request | answer | recorded in [`LocalSatellite::reports`] |
//! |---|---|---|
//! | with a view ([`LocalSatellite::start_with_view`]): `GET /`, `/trace/{id}`, `/api/traces...` | the page and its JSON API | no |
//! | a path other than `/api/v2/reports` and `/v1/traces` | 404 | no |
//! | a method other than `POST` | 405, `Allow: POST` | no |
//! | a body over [`MAX_REPORT_BYTES`] at `/api/v2/reports`, over [`MAX_DECOMPRESSED_BYTES`] at `/v1/traces` | 413 | no |
//! | a body that would hold more than [`Limits::max_body_bytes_held`] with the others being received | 503, `Retry-After` | no |
//! | a body of which nothing arrives for [`Limits::body_read_timeout`] | 408 | no |
//! | a body that is not a `ReportRequest` | 400, `ReportResponse.errors` says why | no |
//! | a report that would hold more than [`Limits::max_decoded_report_bytes`] decoded | 413, `ReportResponse.errors` says why | no |
//! | a report | as the [`Behaviour`] says | yes |
//! | at `/v1/traces`: a `Content-Encoding` other than `gzip` or `identity` | 415 | no |
//! | at `/v1/traces`: over [`MAX_DECOMPRESSED_BYTES`] once un-gzipped | 413 | no |
//! | at `/v1/traces`: not (gzipped) `ExportTraceServiceRequest` | 400, text says why | no |
//! | at `/v1/traces`: an export that would hold more than [`Limits::max_decoded_report_bytes`] decoded | 413, text says why | no |
//! | at `/v1/traces`: an export | as the [`Behaviour`] says | yes, in [`LocalSatellite::otlp_requests`] |
//!
//! [`LocalSatellite::requests_seen`] counts every request, answered or not. A report answered
//! 200 is one the satellite decodes: what [`LocalSatellite::wait_for_spans`] counts,
//! [`LocalSatellite::spans`] returns (with a view, the view shows).
//!
//! # Hostile clients
//! Whatever its clients do, the satellite holds a bounded amount of memory and connections
//! ([`Limits`], the same for every route): connections beyond [`Limits::max_connections`]
//! are closed as they are accepted, a connection whose request headers do not arrive within
//! [`Limits::header_read_timeout`] is closed, request bodies are bounded while they arrive
//! and once decoded, and so are the reports it keeps ([`Limits::max_kept_report_bytes`]: the
//! oldest go first). [`LocalSatellite::stats`] counts what was refused and let go.

pub mod fault;
mod ingest;
mod otlp;
mod server;
mod span;
mod store;
mod view;

pub use span::{FieldValue, ReceivedLog, ReceivedSpan, SpanReference};
pub use store::{ViewLimits, ViewStats};

pub use otlp::{ReceivedOtlp, MAX_DECOMPRESSED_BYTES};

use crate::protocol::lightstep::{self, key_value, ReportRequest, ReportResponse};
use crate::testing::tree::{self, TreeStyle};
use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

// The satellite reads LightStep reports of up to `MAX_REPORT_BYTES`, the protocol's limit
// (OTLP exports of up to `MAX_DECOMPRESSED_BYTES`, OTLP's).
pub use crate::reporter::{COMPONENT_NAME, MAX_REPORT_BYTES, REPORT_PATH, TRACES_PATH};

/// The error a report without a component name gets, word for word a satellite's.
pub const MISSING_COMPONENT_ERROR: &str = "missing or empty component";

/// What the satellite holds at most for its clients, and how long it waits for them (see
/// [`LocalSatellite::start_with_limits`]). The defaults suit tests and development.
///
/// ```
/// use lstrace_core::satellite::{Limits, LocalSatellite};
/// use std::net::{Ipv4Addr, SocketAddr};
/// use std::time::Duration;
///
/// let mut limits = Limits::default();
/// limits.max_connections = 16;
/// limits.header_read_timeout = Duration::from_secs(2);
/// let satellite =
///     LocalSatellite::start_with_limits(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), limits)?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// A connection is closed when a request's headers have not arrived this long after it
    /// opened or after its previous answer (idle keep-alive connections too). Default: 10 s.
    pub header_read_timeout: Duration,
    /// A request body of which nothing arrives for this long is answered 408 and its
    /// connection closed. Default: 10 s.
    pub body_read_timeout: Duration,
    /// Connections open at once; those accepted beyond it are closed at once (counted in
    /// [`Stats::refused_connections`]). Default: 256.
    pub max_connections: usize,
    /// Bytes of request bodies being received, all connections together (a declared length
    /// counts in full as soon as the headers arrive); a request that would hold more is
    /// answered 503 with `Retry-After: 1`. Default: 96 MiB, an OTLP export of the largest size
    /// ([`MAX_DECOMPRESSED_BYTES`]) and eight LightStep reports of the largest size
    /// ([`MAX_REPORT_BYTES`]) at once. Set lower, a body larger than it is answered 503
    /// every time.
    pub max_body_bytes_held: usize,
    /// The memory a report (or an OTLP export) may hold once decoded (worked out on
    /// arrival, without decoding it: its values and strings, not the allocator's overheads);
    /// a report that would hold more is answered 413. Default: 64 MiB, several times what the largest reports of real
    /// spans hold (a 4 MB report of two million empty spans would hold 400 MB).
    pub max_decoded_report_bytes: usize,
    /// The memory the reports kept for [`LocalSatellite::reports`] and
    /// [`LocalSatellite::spans`] may hold (each as its body or decoded, whichever is larger);
    /// beyond it the oldest are let go and counted ([`Stats::evicted_reports`]). With a web
    /// view, its own limits apply instead. Default: 512 MiB.
    pub max_kept_report_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(10),
            max_connections: 256,
            max_body_bytes_held: 96 << 20,
            max_decoded_report_bytes: 64 << 20,
            max_kept_report_bytes: 512 << 20,
        }
    }
}

/// What the satellite holds now and what it refused so far ([`LocalSatellite::stats`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Connections open now.
    pub open_connections: usize,
    /// Connections closed as they were accepted, because [`Limits::max_connections`] were
    /// open.
    pub refused_connections: u64,
    /// Connections closed because a request's headers did not arrive in time, and requests
    /// answered 408 because their body stalled.
    pub timed_out_requests: u64,
    /// Requests answered 503 because their body would have held more than
    /// [`Limits::max_body_bytes_held`].
    pub busy_requests: u64,
    /// Reports and OTLP exports answered 413 because decoded they would hold more than
    /// [`Limits::max_decoded_report_bytes`] (or, gzipped exports, because they inflate to
    /// more than [`MAX_DECOMPRESSED_BYTES`]).
    pub oversized_reports: u64,
    /// Bytes of request bodies being received now.
    pub body_bytes_held: usize,
    /// The most bytes of request bodies held at once so far.
    pub peak_body_bytes_held: usize,
    /// Bytes the reports kept now hold (see [`Limits::max_kept_report_bytes`]).
    pub kept_report_bytes: usize,
    /// Reports let go, oldest first, to keep the others within
    /// [`Limits::max_kept_report_bytes`]: their spans are no longer in
    /// [`LocalSatellite::spans`].
    pub evicted_reports: u64,
}

/// How the satellite answers the reports it receives from now on (see
/// [`LocalSatellite::set_behaviour`]).
///
/// A report's spans are kept (in [`LocalSatellite::spans`] and the trees) exactly when the
/// answer tells the reporter that the report succeeded: HTTP 200 and a `ReportResponse`
/// without errors. [`Accept`](Behaviour::Accept), [`Disable`](Behaviour::Disable) and
/// [`Delay`](Behaviour::Delay) keep them; a report without a non-empty
/// `lightstep.component_name` reporter tag is refused even then, as a real satellite does:
/// HTTP 200 with `errors: ["missing or empty component"]`.
#[non_exhaustive]
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Behaviour {
    /// HTTP 200 and an empty `ReportResponse`; the spans are kept. The default.
    #[default]
    Accept,
    /// That HTTP status (401, 500, ...) with a short text body; the spans are not kept.
    /// Codes outside 200..=599 are answered 500.
    Status(u16),
    /// HTTP 200 with a body that is not a valid `ReportResponse`; the spans are not kept.
    Garbage,
    /// Reads the report, then never answers: the connection is held until the satellite
    /// shuts down. The spans are not kept.
    Never,
    /// HTTP 200 with a `ReportResponse` carrying these `errors`; the spans are not kept.
    Errors(Vec<String>),
    /// HTTP 200 with `commands: [{disable: true}]`: the reporter must stop. The spans are kept.
    Disable,
    /// Answers like [`Accept`](Behaviour::Accept) after this delay.
    Delay(Duration),
    /// That HTTP status with a `Retry-After: seconds` header (OTLP's throttling answer: 429,
    /// 503...); the spans are not kept.
    RetryAfter {
        /// The HTTP status.
        status: u16,
        /// The `Retry-After` value.
        seconds: u64,
    },
    /// OTLP: HTTP 200 with `partial_success` refusing `count` spans (at most all of them),
    /// with `message`; the export counts as accepted. A LightStep report is refused with
    /// `errors: [message]`.
    RejectSpans {
        /// How many spans to refuse.
        count: i64,
        /// Why.
        message: String,
    },
}

/// One report the satellite received and decoded.
#[derive(Clone)]
#[non_exhaustive]
pub struct ReceivedReport {
    /// The decoded report.
    pub request: ReportRequest,
    /// The `Lightstep-Access-Token` header (a secret: `Debug` hides it).
    pub access_token_header: Option<String>,
    /// The `Content-Type` header.
    pub content_type: Option<String>,
    /// The `Accept` header.
    pub accept: Option<String>,
    /// The request path.
    pub path: String,
    /// The request method.
    pub method: String,
    /// The body's length in bytes.
    pub body_len: usize,
    /// Whether the answer told the reporter that the report succeeded (its spans are kept).
    pub accepted: bool,
}

impl ReceivedReport {
    /// The report's spans, read as [`ReceivedSpan`]s (as [`LocalSatellite::spans`] returns
    /// them, when the report was accepted).
    #[must_use]
    pub fn spans(&self) -> Vec<ReceivedSpan> {
        span::report_spans(&self.request, span::Resource::Kept).collect()
    }

    /// The service that sent the report: its reporter's `lightstep.component_name` tag, when
    /// that is a non-empty string (reports without one are refused).
    #[must_use]
    pub fn component_name(&self) -> Option<&str> {
        component_name(&self.request)
    }
}

impl fmt::Debug for ReceivedReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReceivedReport")
            .field("request", &self.request) // `lightstep::Auth` redacts its token.
            .field(
                "access_token_header",
                &self.access_token_header.as_ref().map(|_| "<redacted>"),
            )
            .field("content_type", &self.content_type)
            .field("accept", &self.accept)
            .field("path", &self.path)
            .field("method", &self.method)
            .field("body_len", &self.body_len)
            .field("accepted", &self.accepted)
            .finish()
    }
}

/// A running local satellite. Dropping it (or [`LocalSatellite::shutdown`]) stops the
/// server: its thread is joined and its port freed, within a bounded time even when
/// connections hang.
pub struct LocalSatellite {
    addr: SocketAddr,
    shared: Arc<Inbox>,
    /// Dropping the sender tells the server thread to stop.
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl LocalSatellite {
    /// Starts a satellite on `127.0.0.1`, on a free port (see [`LocalSatellite::addr`]).
    ///
    /// # Errors
    /// When the port cannot be bound or the server thread cannot start.
    pub fn start() -> io::Result<LocalSatellite> {
        Self::start_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
    }

    /// Starts a satellite on `addr`, e.g. `127.0.0.1:8360` where tracers look for a local
    /// developer satellite. Any address is allowed, but the satellite checks no access token
    /// and keeps whatever it receives: bind it to a loopback address unless you mean to
    /// receive reports from other machines.
    ///
    /// # Errors
    /// When `addr` cannot be bound (in use, not local, no permission) or the server thread
    /// cannot start.
    pub fn start_on(addr: SocketAddr) -> io::Result<LocalSatellite> {
        Self::start_with(addr, None, Limits::default())
    }

    /// Starts a satellite on `addr` (as [`LocalSatellite::start_on`] does) with other
    /// [`Limits`].
    ///
    /// # Errors
    /// As [`LocalSatellite::start_on`].
    pub fn start_with_limits(addr: SocketAddr, limits: Limits) -> io::Result<LocalSatellite> {
        Self::start_with(addr, None, limits)
    }

    /// Starts a satellite on `addr` that also serves a web view of the traces it receives
    /// (see [`LocalSatellite::view_url`]): a list of the traces, and each as a waterfall,
    /// with a JSON API under `/api/traces`.
    ///
    /// It keeps the most recent traces within `limits` and nothing else: unlike
    /// [`LocalSatellite::start_on`]'s, it holds no list of reports ([`LocalSatellite::reports`],
    /// [`LocalSatellite::spans`] and the trees are empty), so that it can run for as long as
    /// the programs that report to it.
    ///
    /// # Errors
    /// As [`LocalSatellite::start_on`].
    pub fn start_with_view(addr: SocketAddr, limits: ViewLimits) -> io::Result<LocalSatellite> {
        Self::start_with(addr, Some(limits), Limits::default())
    }

    fn start_with(
        addr: SocketAddr,
        view: Option<ViewLimits>,
        limits: Limits,
    ) -> io::Result<LocalSatellite> {
        // Bound here, not on the server thread, so that the caller gets bind errors and the
        // real address at once.
        let listener = std::net::TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Inbox {
            view: view.map(|limits| Mutex::new(store::TraceStore::new(limits))),
            limits,
            ..Inbox::default()
        });
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let (ready_tx, ready_rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name(format!("lstrace-satellite-{}", addr.port()))
            .spawn({
                let shared = Arc::clone(&shared);
                move || server::run(listener, shared, stopped, ready_tx)
            })?;
        let started = ready_rx.recv().unwrap_or_else(|_| {
            Err(io::Error::other(
                "the local satellite's thread ended before it started serving",
            ))
        });
        let satellite = LocalSatellite {
            addr,
            shared,
            stop: Some(stop),
            thread: Some(thread),
        };
        // On error, dropping the satellite joins the thread that already gave up.
        started.map(|()| satellite)
    }

    /// The address the satellite listens on.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The satellite's base URL, e.g. `http://127.0.0.1:40123`: what a reporter's collector
    /// setting takes.
    #[must_use]
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The address of the web view (`http://127.0.0.1:PORT/`), for a satellite started with
    /// [`LocalSatellite::start_with_view`].
    #[must_use]
    pub fn view_url(&self) -> Option<String> {
        self.shared
            .view
            .as_ref()
            .map(|_| format!("{}/", self.url()))
    }

    /// What the web view holds and what it evicted, for a satellite started with
    /// [`LocalSatellite::start_with_view`].
    #[must_use]
    pub fn view_stats(&self) -> Option<ViewStats> {
        self.shared.view.as_ref().map(|view| lock(view).stats())
    }

    /// How the requests that arrive from now on are answered.
    pub fn set_behaviour(&self, behaviour: Behaviour) {
        self.shared.lock().behaviour = behaviour;
    }

    /// Every report received so far, in arrival order, accepted or not. A report is recorded
    /// when its answer is decided: for [`Behaviour::Delay`], after the delay.
    #[must_use]
    pub fn reports(&self) -> Vec<ReceivedReport> {
        self.shared
            .lock()
            .reports
            .iter_mut()
            .map(|r| r.decoded().clone())
            .collect()
    }

    /// The spans of every accepted report and export, of both protocols, in arrival order, as
    /// one type to query and assert on (see [`ReceivedSpan`]).
    #[must_use]
    pub fn spans(&self) -> Vec<ReceivedSpan> {
        let mut state = self.shared.lock();
        let State { reports, otlp, .. } = &mut *state;
        let mut arrived: Vec<(usize, Vec<ReceivedSpan>)> = Vec::new();
        for report in reports.iter_mut().filter(|r| r.received.accepted) {
            arrived.push((report.arrival, report.decoded().spans()));
        }
        for kept in otlp.iter_mut().filter(|e| e.export.accepted) {
            arrived.push((kept.arrival, kept.decoded().spans()));
        }
        arrived.sort_by_key(|(arrival, _)| *arrival);
        arrived.into_iter().flat_map(|(_, spans)| spans).collect()
    }

    /// The spans of every accepted LightStep report as the report carried them, in arrival
    /// order ([`LocalSatellite::spans`] has those of both protocols, easier to read).
    #[must_use]
    pub fn lightstep_spans(&self) -> Vec<lightstep::LightStepSpan> {
        self.shared
            .lock()
            .reports
            .iter_mut()
            .filter(|r| r.received.accepted)
            .flat_map(|r| r.decoded().request.spans.iter().cloned())
            .collect()
    }

    /// The first accepted span named `name` (see [`LocalSatellite::spans`]).
    #[must_use]
    pub fn span(&self, name: &str) -> Option<ReceivedSpan> {
        self.spans().into_iter().find(|s| s.name == name)
    }

    /// The accepted spans of one trace, in arrival order (see [`ReceivedSpan::in_trace`]).
    #[must_use]
    pub fn trace(&self, trace_id: crate::TraceId) -> Vec<ReceivedSpan> {
        let mut spans = self.spans();
        spans.retain(|s| s.in_trace(trace_id));
        spans
    }

    /// Every OTLP export received so far, in arrival order, accepted or not (none with a
    /// view, which keeps their spans in its traces instead).
    #[must_use]
    pub fn otlp_requests(&self) -> Vec<ReceivedOtlp> {
        self.shared
            .lock()
            .otlp
            .iter_mut()
            .map(|kept| kept.decoded().clone())
            .collect()
    }

    /// The spans of every accepted OTLP export as the export carried them, in arrival order
    /// ([`LocalSatellite::spans`] has those of both protocols, easier to read).
    #[must_use]
    pub fn otlp_spans(&self) -> Vec<crate::protocol::otlp::OtlpSpan> {
        self.shared
            .lock()
            .otlp
            .iter_mut()
            .map(KeptExport::decoded)
            .filter(|r| r.accepted)
            .flat_map(|r| r.request.spans().cloned().collect::<Vec<_>>())
            .collect()
    }

    /// Blocks until accepted reports (of either protocol) hold at least `count` spans, or
    /// `timeout` passes.
    /// True when they do.
    ///
    /// It blocks the calling thread (on a condition variable): inside a current-thread
    /// runtime, that runtime's other tasks wait too, so whatever sends the spans must run
    /// elsewhere (a reporter's own thread, another runtime, a multi-thread runtime).
    #[must_use]
    pub fn wait_for_spans(&self, count: usize, timeout: Duration) -> bool {
        self.shared
            .wait_until(timeout, |state| state.accepted_spans >= count)
    }

    /// Blocks until at least `count` reports (LightStep reports and OTLP exports) were
    /// received (accepted or not), or `timeout` passes. True when they were.
    ///
    /// It blocks the calling thread, like [`LocalSatellite::wait_for_spans`].
    #[must_use]
    pub fn wait_for_reports(&self, count: usize, timeout: Duration) -> bool {
        self.shared
            .wait_until(timeout, |state| state.reports_received >= count)
    }

    /// The accepted spans of both protocols ([`LocalSatellite::spans`]) as trace trees of
    /// names and tags: stable text for assertions (see [`tree::render`]). Spans are drawn as
    /// [`ReceivedSpan`] reads them (an OTLP span's kind as a `span.kind` tag, an ERROR status as
    /// `error=true`, events as logs), with the trace id's low 64 bits and whole microseconds,
    /// what LightStep reports carry: the same spans render the same whichever protocol
    /// carried them.
    #[must_use]
    pub fn tree(&self) -> String {
        self.tree_with(TreeStyle::default())
    }

    /// The accepted spans as trace trees, with durations and logs as `style` says.
    #[must_use]
    pub fn tree_with(&self, style: TreeStyle) -> String {
        tree::render(&self.spans(), style)
    }

    /// How many reports were received, accepted or not (with a view too, which keeps no
    /// list of them).
    #[must_use]
    pub fn reports_received(&self) -> usize {
        self.shared.lock().reports_received
    }

    /// How many requests arrived, including those answered with an error.
    #[must_use]
    pub fn requests_seen(&self) -> usize {
        self.shared.lock().requests_seen
    }

    /// What the satellite holds now and what it refused so far, under its [`Limits`].
    #[must_use]
    pub fn stats(&self) -> Stats {
        let counters = &self.shared.counters;
        let (kept_report_bytes, evicted_reports) = {
            let state = self.shared.lock();
            (state.kept_bytes, state.evicted_reports)
        };
        Stats {
            kept_report_bytes,
            evicted_reports,
            open_connections: counters.open_connections.load(Ordering::Acquire),
            refused_connections: counters.refused_connections.load(Ordering::Relaxed),
            timed_out_requests: counters.timed_out_requests.load(Ordering::Relaxed),
            busy_requests: counters.busy_requests.load(Ordering::Relaxed),
            oversized_reports: counters.oversized_reports.load(Ordering::Relaxed),
            body_bytes_held: counters.body_bytes_held.load(Ordering::Acquire),
            peak_body_bytes_held: counters.peak_body_bytes_held.load(Ordering::Acquire),
        }
    }

    /// Stops the server and waits for its thread (what dropping the satellite does).
    pub fn shutdown(self) {
        drop(self);
    }
}

impl Drop for LocalSatellite {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            // The server thread catches nothing that could panic; if it did, there is nobody
            // to tell from a drop.
            let _ = thread.join();
        }
    }
}

impl fmt::Debug for LocalSatellite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.shared.lock();
        f.debug_struct("LocalSatellite")
            .field("addr", &self.addr)
            .field("behaviour", &state.behaviour)
            .field("requests_seen", &state.requests_seen)
            .field("reports", &state.reports_received)
            .field("accepted_spans", &state.accepted_spans)
            .finish()
    }
}

/// The non-empty string value of the reporter's `lightstep.component_name` tag.
fn component_name(request: &ReportRequest) -> Option<&str> {
    request
        .reporter
        .as_ref()
        .and_then(|r| r.tags.iter().find(|t| t.key == COMPONENT_NAME))
        .and_then(|t| match &t.value {
            Some(key_value::Value::StringValue(name)) if !name.is_empty() => Some(name.as_str()),
            _ => None,
        })
}

/// Why a report is refused whatever the behaviour, if it is.
fn refusal(request: &ReportRequest) -> Option<&'static str> {
    match component_name(request) {
        Some(_) => None,
        None => Some(MISSING_COMPONENT_ERROR),
    }
}

/// Everything the satellite received (reports, exports, the view's traces), with the limits it
/// holds them to and the counts of what it refused: written by the server thread, read through
/// the [`LocalSatellite`] handle.
#[derive(Default)]
struct Inbox {
    state: Mutex<State>,
    /// Signalled whenever a report is recorded.
    changed: Condvar,
    /// The traces of the web view, when there is one: accepted spans go there, decoded on
    /// arrival, instead of into `State::reports`.
    view: Option<Mutex<store::TraceStore>>,
    limits: Limits,
    /// What the connection layer holds and refused, counted outside the lock.
    counters: Counters,
}

/// The counts behind [`Stats`].
#[derive(Default)]
struct Counters {
    open_connections: AtomicUsize,
    refused_connections: AtomicU64,
    timed_out_requests: AtomicU64,
    busy_requests: AtomicU64,
    oversized_reports: AtomicU64,
    body_bytes_held: AtomicUsize,
    peak_body_bytes_held: AtomicUsize,
}

#[derive(Default)]
struct State {
    behaviour: Behaviour,
    /// The reports received, unless there is a view; the oldest first.
    reports: VecDeque<Stored>,
    /// What `reports` hold, in [`Stored::bytes`].
    kept_bytes: usize,
    evicted_reports: u64,
    reports_received: usize,
    /// The OTLP exports received, unless there is a view; the oldest first. Their bytes
    /// count in `kept_bytes` with the reports'.
    otlp: VecDeque<KeptExport>,
    accepted_spans: usize,
    requests_seen: usize,
}

/// A report as the satellite keeps it: its spans are decoded when first asked for (see the
/// `ingest` module).
struct Stored {
    /// The report; until it is decoded, its request holds every field but the spans.
    received: ReceivedReport,
    /// The body, until it is decoded into `received.request`.
    body: Option<Vec<u8>>,
    /// How many spans the report carries.
    spans: usize,
    /// The memory it holds, as its body or decoded, whichever is larger.
    bytes: usize,
    /// Its place among the reports and exports received (set when it is recorded).
    arrival: usize,
}

/// An OTLP export as the satellite keeps it: its spans are decoded when first asked for
/// (see the `ingest` module).
struct KeptExport {
    /// The export; its request is empty until it is decoded.
    export: ReceivedOtlp,
    /// The export's bytes (inflated), until they are decoded into `export.request`.
    body: Option<Vec<u8>>,
    /// The memory it holds, as its body or decoded, whichever is larger.
    bytes: usize,
    /// Its place among the reports and exports received (see `State::evict_beyond`).
    arrival: usize,
}

impl State {
    /// Lets the oldest reports and exports go, counted, until what they hold is within
    /// `limit`; the newest stays, whatever its size (it is within the decoded limit).
    fn evict_beyond(&mut self, limit: usize) {
        while self.kept_bytes > limit && self.reports.len() + self.otlp.len() > 1 {
            let report_is_older = match (self.reports.front(), self.otlp.front()) {
                (Some(report), Some(export)) => report.arrival < export.arrival,
                (report, _) => report.is_some(),
            };
            let bytes = if report_is_older {
                self.reports.pop_front().map(|r| r.bytes)
            } else {
                self.otlp.pop_front().map(|e| e.bytes)
            };
            self.kept_bytes -= bytes.unwrap_or(0);
            self.evicted_reports += 1;
        }
    }
}

impl Stored {
    /// The report with its spans, decoded once.
    fn decoded(&mut self) -> &ReceivedReport {
        if let Some(body) = self.body.take() {
            self.received.request = ingest::decode(&body);
        }
        &self.received
    }
}

impl KeptExport {
    /// The export with its spans, decoded once.
    fn decoded(&mut self) -> &ReceivedOtlp {
        if let Some(body) = self.body.take() {
            self.export.request = ingest::otlp::decode_otlp(&body);
        }
        &self.export
    }
}

impl Inbox {
    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Counts a request and returns the behaviour it is to be answered with.
    fn request_arrived(&self) -> Behaviour {
        let mut state = self.lock();
        state.requests_seen += 1;
        state.behaviour.clone()
    }

    /// Records an export of `spans` spans, not decoded yet (`body`), that holds `bytes` (its
    /// body or decoded, whichever is larger).
    fn record_otlp(&self, export: ReceivedOtlp, body: Vec<u8>, spans: usize, bytes: usize) {
        let rejected = usize::try_from(export.rejected_spans).unwrap_or(0);
        if let (true, Some(view)) = (export.accepted, &self.view) {
            // Decoded and read before the store is locked, as LightStep spans are.
            let request = ingest::otlp::decode_otlp(&body);
            let spans: Vec<ReceivedSpan> =
                span::export_spans(&request, span::Resource::Left).collect();
            lock(view).insert(spans);
        }
        let mut state = self.lock();
        if export.accepted {
            state.accepted_spans += spans.saturating_sub(rejected);
        }
        state.reports_received += 1;
        if self.view.is_none() {
            let arrival = state.reports_received;
            state.kept_bytes += bytes;
            state.otlp.push_back(KeptExport {
                export,
                body: Some(body),
                bytes,
                arrival,
            });
            state.evict_beyond(self.limits.max_kept_report_bytes);
        }
        drop(state);
        self.changed.notify_all();
    }

    fn record(&self, mut report: Stored) {
        if let Some(view) = &self.view {
            if let (true, Some(body)) = (report.received.accepted, report.body.take()) {
                // Decoded and read before the store is locked: the page's requests wait only
                // for the insertion.
                let request = ingest::decode(&body);
                let spans: Vec<ReceivedSpan> =
                    span::report_spans(&request, span::Resource::Left).collect();
                lock(view).insert(spans);
            }
        }
        let mut state = self.lock();
        if report.received.accepted {
            state.accepted_spans += report.spans;
        }
        state.reports_received += 1;
        if self.view.is_none() {
            report.arrival = state.reports_received;
            state.kept_bytes += report.bytes;
            state.reports.push_back(report);
            state.evict_beyond(self.limits.max_kept_report_bytes);
        }
        drop(state);
        self.changed.notify_all();
    }

    fn wait_until(&self, timeout: Duration, done: impl Fn(&State) -> bool) -> bool {
        let (state, _) = self
            .changed
            .wait_timeout_while(self.lock(), timeout, |state| !done(state))
            .unwrap_or_else(PoisonError::into_inner);
        done(&state)
    }
}

/// Locks a mutex; a panic while it was held leaves data that is still consistent (every
/// update is a push or a counter), so poisoning is ignored.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The answer to a decoded report, before it is put on the wire.
enum Answer {
    Status(u16),
    Garbage,
    Never,
    Response(ReportResponse),
}

impl Behaviour {
    /// Whether the report is kept, and what answers it.
    fn answer(&self, request: &ReportRequest) -> (bool, Answer) {
        let success = |commands| match refusal(request) {
            Some(error) => (
                false,
                Answer::Response(ReportResponse {
                    errors: vec![error.to_owned()],
                    ..ReportResponse::default()
                }),
            ),
            None => (
                true,
                Answer::Response(ReportResponse {
                    commands,
                    ..ReportResponse::default()
                }),
            ),
        };
        match self {
            Behaviour::Accept | Behaviour::Delay(_) => success(Vec::new()),
            Behaviour::Disable => success(vec![lightstep::Command {
                disable: true,
                dev_mode: false,
            }]),
            Behaviour::Status(code) => (false, Answer::Status(*code)),
            Behaviour::Garbage => (false, Answer::Garbage),
            Behaviour::Never => (false, Answer::Never),
            Behaviour::Errors(errors) => (
                false,
                Answer::Response(ReportResponse {
                    errors: errors.clone(),
                    ..ReportResponse::default()
                }),
            ),
            Behaviour::RetryAfter { status, .. } => (false, Answer::Status(*status)),
            Behaviour::RejectSpans { message, .. } => (
                false,
                Answer::Response(ReportResponse {
                    errors: vec![message.clone()],
                    ..ReportResponse::default()
                }),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::lightstep::{KeyValue, Reporter};

    fn with_component(value: Option<key_value::Value>) -> ReportRequest {
        ReportRequest {
            reporter: Some(Reporter {
                reporter_id: 1,
                tags: vec![KeyValue {
                    key: COMPONENT_NAME.into(),
                    value,
                }],
            }),
            ..ReportRequest::default()
        }
    }

    #[test]
    fn a_report_needs_a_non_empty_string_component() {
        let named = with_component(Some(key_value::Value::StringValue("svc".into())));
        assert_eq!(refusal(&named), None);
        for value in [
            None,
            Some(key_value::Value::StringValue(String::new())),
            Some(key_value::Value::IntValue(1)),
        ] {
            assert_eq!(
                refusal(&with_component(value)),
                Some(MISSING_COMPONENT_ERROR)
            );
        }
        assert_eq!(
            refusal(&ReportRequest::default()),
            Some(MISSING_COMPONENT_ERROR)
        );
    }

    #[test]
    fn spans_are_kept_only_on_success() {
        let named = with_component(Some(key_value::Value::StringValue("svc".into())));
        let kept = |b: Behaviour| b.answer(&named).0;
        assert!(kept(Behaviour::Accept));
        assert!(kept(Behaviour::Disable));
        assert!(kept(Behaviour::Delay(Duration::ZERO)));
        assert!(!kept(Behaviour::Status(500)));
        assert!(!kept(Behaviour::Garbage));
        assert!(!kept(Behaviour::Never));
        assert!(!kept(Behaviour::Errors(vec!["no".into()])));
        assert!(!Behaviour::Accept.answer(&ReportRequest::default()).0);
    }
}
