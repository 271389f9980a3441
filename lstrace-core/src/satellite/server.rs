//! The satellite's HTTP/1 server: a current-thread tokio runtime on a thread of its own.
//!
//! The connection layer bounds what clients can make it hold, whatever the route (see
//! [`Limits`](super::Limits)): connections beyond the cap are closed as they are accepted,
//! headers must arrive in time, and request bodies are read through [`read_body`], which
//! times out stalled bodies and counts the bytes they hold against a limit shared by all
//! connections.

use super::ingest::{self, Refusal};
use super::otlp::{self, ReceivedOtlp};
use super::{
    view, Answer, Inbox, ReceivedReport, Stored, MAX_REPORT_BYTES, REPORT_PATH, TRACES_PATH,
};
use crate::protocol::lightstep::ReportResponse;
use crate::protocol::otlp::ExportTraceServiceRequest;
use crate::reporter::protocol::lightstep::{ACCESS_TOKEN_HEADER, OCTET_STREAM};
use crate::reporter::protocol::otlp::PROTOBUF;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use prost::Message;
use std::convert::Infallible;
use std::io;
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};
use std::time::Duration;
use tokio::sync::oneshot;

/// Connections still open at shutdown are dropped; this bounds the wait for the runtime's
/// blocking threads (there are none, but the bound makes "shutdown is prompt" unconditional).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// How long to pause after a failed `accept` (e.g. out of file descriptors) before trying
/// again, so that a persistent error does not spin the thread.
const ACCEPT_RETRY: Duration = Duration::from_millis(50);

/// An oversized body is still read (and thrown away) up to this size, so that the client,
/// which may still be sending, receives the 413 instead of a connection reset.
const DRAIN_LIMIT: usize = 64 * 1024 * 1024;

/// Body of [`Behaviour::Garbage`](super::Behaviour::Garbage) answers: an HTML error page, as a
/// misconfigured proxy would send. As protobuf, its first byte is an unmatched end-group tag.
const GARBAGE: &[u8] = b"<html><body>502 Bad Gateway</body></html>";

/// The most a connection buffers (request headers included, which are refused beyond it):
/// with the connection cap, it bounds what idle and slow connections hold.
const CONNECTION_BUFFER_BYTES: usize = 64 * 1024;

/// The server thread: serves until `stop` fires (or its sender is dropped), then drops every
/// connection.
pub(super) fn run(
    listener: std::net::TcpListener,
    shared: Arc<Inbox>,
    stop: oneshot::Receiver<()>,
    ready: mpsc::Sender<io::Result<()>>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let listener = {
        let _entered = runtime.enter();
        match tokio::net::TcpListener::from_std(listener) {
            Ok(listener) => listener,
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        }
    };
    let _ = ready.send(Ok(()));
    runtime.block_on(accept_until_stopped(listener, shared, stop));
    // Drops the connection tasks, hung ones included, and with them their sockets.
    runtime.shutdown_timeout(SHUTDOWN_GRACE);
}

async fn accept_until_stopped(
    listener: tokio::net::TcpListener,
    shared: Arc<Inbox>,
    mut stop: oneshot::Receiver<()>,
) {
    loop {
        tokio::select! {
            _ = &mut stop => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    if let Some(open) = OpenConnection::count(&shared) {
                        tokio::spawn(serve_connection(stream, open));
                    }
                    // Else the stream is dropped: the connection is closed at once.
                }
                Err(_) => tokio::time::sleep(ACCEPT_RETRY).await,
            },
        }
    }
}

/// An open connection, counted against [`Limits::max_connections`](super::Limits) until it
/// is dropped.
struct OpenConnection(Arc<Inbox>);

impl OpenConnection {
    /// Counts a connection just accepted; `None` (and counted as refused) when as many as
    /// the limit allows are open.
    fn count(shared: &Arc<Inbox>) -> Option<OpenConnection> {
        let counters = &shared.counters;
        let max = shared.limits.max_connections;
        let counted =
            counters
                .open_connections
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
                    (open < max).then_some(open + 1)
                });
        match counted {
            Ok(_) => Some(OpenConnection(Arc::clone(shared))),
            Err(_) => {
                counters.refused_connections.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0
            .counters
            .open_connections
            .fetch_sub(1, Ordering::AcqRel);
    }
}

async fn serve_connection(stream: tokio::net::TcpStream, open: OpenConnection) {
    let shared = Arc::clone(&open.0);
    let service = hyper::service::service_fn(move |request| {
        let shared = Arc::clone(&shared);
        async move { Ok::<_, Infallible>(answer(request, &shared).await) }
    });
    let served = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(open.0.limits.header_read_timeout)
        .max_buf_size(CONNECTION_BUFFER_BYTES)
        .serve_connection(TokioIo::new(stream), service)
        .await;
    // Other connection errors (the client hung up mid-request) concern that client only.
    if served.is_err_and(|e| e.is_timeout()) {
        open.0
            .counters
            .timed_out_requests
            .fetch_add(1, Ordering::Relaxed);
    }
}

async fn answer(request: Request<Incoming>, shared: &Inbox) -> Response<Full<Bytes>> {
    let behaviour = shared.request_arrived();
    if let Some(store) = &shared.view {
        let uri = request.uri();
        if let Some(response) = view::answer(request.method(), uri.path(), uri.query(), store) {
            return response;
        }
    }
    let path = request.uri().path();
    if path != REPORT_PATH && path != TRACES_PATH {
        return text(
            StatusCode::NOT_FOUND,
            format!(
                "not found: the local satellite serves POST {REPORT_PATH} and POST {TRACES_PATH}"
            ),
        );
    }
    if request.method() != Method::POST {
        let mut response = text(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{path} takes POST only"),
        );
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return response;
    }
    // OTLP's recommended server limit (the same as for an inflated body); LightStep's
    // reporters keep to their protocol's 4 MB.
    let max_bytes = if path == TRACES_PATH {
        otlp::MAX_DECOMPRESSED_BYTES
    } else {
        MAX_REPORT_BYTES
    };
    let (parts, body) = request.into_parts();
    let (body, held) = match read_body(body, &parts.headers, max_bytes, shared).await {
        Ok(body) => body,
        Err(refused) => return refused.answer(shared),
    };
    if parts.uri.path() == TRACES_PATH {
        return answer_otlp(&parts, body, behaviour, shared).await;
    }
    // Every field but the spans, which wait, undecoded, until someone asks for them.
    let max_decoded_bytes = shared.limits.max_decoded_report_bytes;
    let report = match ingest::ingest(&body, max_decoded_bytes) {
        Ok(report) => report,
        Err(Refusal::Invalid(e)) => {
            return protobuf(
                StatusCode::BAD_REQUEST,
                &ReportResponse {
                    errors: vec![format!("the body is not a valid ReportRequest: {e}")],
                    ..ReportResponse::default()
                },
            )
        }
        Err(Refusal::TooLarge {
            decoded_bytes,
            limit,
        }) => {
            shared
                .counters
                .oversized_reports
                .fetch_add(1, Ordering::Relaxed);
            return protobuf(
                StatusCode::PAYLOAD_TOO_LARGE,
                &ReportResponse {
                    errors: vec![format!(
                        "the report would hold more than {decoded_bytes} bytes of memory \
                         decoded, over the local satellite's limit of {limit} \
                         (Limits::max_decoded_report_bytes): send smaller reports"
                    )],
                    ..ReportResponse::default()
                },
            );
        }
    };
    if let super::Behaviour::Delay(delay) = behaviour {
        tokio::time::sleep(delay).await;
    }
    let (accepted, reply) = behaviour.answer(&report.header);
    // Names in any case: `HeaderMap` looks a `&str` up case-insensitively.
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    };
    let received = ReceivedReport {
        request: report.header,
        access_token_header: header(ACCESS_TOKEN_HEADER),
        content_type: header(header::CONTENT_TYPE.as_str()),
        accept: header(header::ACCEPT.as_str()),
        path: parts.uri.path().to_owned(),
        method: parts.method.to_string(),
        body_len: body.len(),
        accepted,
    };
    shared.record(Stored {
        // Held as the body until it is decoded, then decoded.
        bytes: report.decoded_bytes.max(body.len()),
        received,
        // A report without spans is already whole.
        body: (report.spans > 0).then_some(body),
        spans: report.spans,
        arrival: 0,
    });
    // The body is the satellite's now, no longer a request's.
    drop(held);
    match reply {
        Answer::Response(response) => protobuf(StatusCode::OK, &response),
        Answer::Status(code) => {
            let status = StatusCode::from_u16(code)
                .ok()
                .filter(|s| (200..=599).contains(&s.as_u16()))
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            text(
                status,
                format!("the local satellite was told to answer {status}"),
            )
        }
        Answer::Garbage => bytes(StatusCode::OK, OCTET_STREAM, Bytes::from_static(GARBAGE)),
        // Dropped with the runtime at shutdown, which closes the connection.
        Answer::Never => std::future::pending().await,
    }
}

/// Answers an OTLP export (its body read) as the behaviour says, and records it; its spans
/// wait, undecoded, until someone asks for them.
async fn answer_otlp(
    parts: &hyper::http::request::Parts,
    body: Vec<u8>,
    behaviour: super::Behaviour,
    shared: &Inbox,
) -> Response<Full<Bytes>> {
    let gzipped = match parts.headers.get(header::CONTENT_ENCODING) {
        None => false,
        Some(v) if v.as_bytes().eq_ignore_ascii_case(b"identity") => false,
        Some(v) if v.as_bytes().eq_ignore_ascii_case(b"gzip") => true,
        Some(_) => {
            return text(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "the local satellite reads exports gzipped or not compressed".into(),
            )
        }
    };
    let max_decoded_bytes = shared.limits.max_decoded_report_bytes;
    let refused = |message: String| {
        shared
            .counters
            .oversized_reports
            .fetch_add(1, Ordering::Relaxed);
        text(StatusCode::PAYLOAD_TOO_LARGE, message)
    };
    let body_len = body.len();
    let (export_bytes, walked) = match otlp::read(body, gzipped, max_decoded_bytes) {
        Ok(read) => read,
        Err(otlp::BodyError::TooLarge) => {
            return refused(format!(
                "an export may not exceed {} bytes once decompressed",
                otlp::MAX_DECOMPRESSED_BYTES
            ))
        }
        Err(otlp::BodyError::Oversized {
            decoded_bytes,
            limit,
        }) => {
            return refused(format!(
                "the export would hold more than {decoded_bytes} bytes of memory decoded, \
                 over the local satellite's limit of {limit} \
                 (Limits::max_decoded_report_bytes): send smaller exports"
            ))
        }
        Err(otlp::BodyError::Invalid(reason)) => return text(StatusCode::BAD_REQUEST, reason),
    };
    if let super::Behaviour::Delay(delay) = behaviour {
        tokio::time::sleep(delay).await;
    }
    let (accepted, rejected_spans, reply) = behaviour.answer_otlp(walked.spans);
    let kept_bytes = walked.decoded_bytes.max(export_bytes.len());
    let export = ReceivedOtlp {
        // Decoded from `export_bytes` when first asked for.
        request: ExportTraceServiceRequest::default(),
        headers: parts
            .headers
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body_len,
        accepted,
        rejected_spans,
    };
    shared.record_otlp(export, export_bytes, walked.spans, kept_bytes);
    match reply {
        otlp::Answer::Response(response) => bytes(
            StatusCode::OK,
            PROTOBUF,
            Bytes::from(prost::Message::encode_to_vec(&response)),
        ),
        otlp::Answer::Status(code, retry_after) => {
            let status = StatusCode::from_u16(code)
                .ok()
                .filter(|s| (200..=599).contains(&s.as_u16()))
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut response = text(
                status,
                format!("the local satellite was told to answer {status}"),
            );
            if let Some(seconds) = retry_after {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            }
            response
        }
        otlp::Answer::Garbage => bytes(StatusCode::OK, PROTOBUF, Bytes::from_static(GARBAGE)),
        otlp::Answer::Never => std::future::pending().await,
    }
}

/// Why a request body was not read.
enum BodyError {
    /// Longer than the route's limit (given).
    TooLarge(usize),
    /// Holding it would hold more than `Limits::max_body_bytes_held`, all requests together.
    Busy,
    /// No part of it arrived within `Limits::body_read_timeout`.
    TimedOut,
    Broken(hyper::Error),
}

impl BodyError {
    /// The answer, counted.
    fn answer(self, shared: &Inbox) -> Response<Full<Bytes>> {
        let (counter, status, message) = match self {
            BodyError::TooLarge(limit) => {
                return text(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("a request body here may not exceed {limit} bytes"),
                )
            }
            BodyError::Broken(e) => {
                return text(
                    StatusCode::BAD_REQUEST,
                    format!("could not read the request body: {e}"),
                )
            }
            BodyError::Busy => (
                &shared.counters.busy_requests,
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "the local satellite holds as many request body bytes as it may ({}, \
                     Limits::max_body_bytes_held): retry",
                    shared.limits.max_body_bytes_held
                ),
            ),
            BodyError::TimedOut => (
                &shared.counters.timed_out_requests,
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "no part of the request body arrived for {:?} \
                     (Limits::body_read_timeout)",
                    shared.limits.body_read_timeout
                ),
            ),
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let mut response = text(status, message);
        // The rest of the body is not read: the connection cannot carry another request.
        let headers = response.headers_mut();
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        if status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

/// Request body bytes counted against `Limits::max_body_bytes_held` (all requests
/// together) until dropped.
struct HeldBytes<'a> {
    shared: &'a Inbox,
    bytes: usize,
}

impl<'a> HeldBytes<'a> {
    fn none(shared: &'a Inbox) -> Self {
        HeldBytes { shared, bytes: 0 }
    }

    /// Holds `bytes` in all, if the limit lets it; false (and nothing more held) otherwise.
    fn hold(&mut self, bytes: usize) -> bool {
        let more = bytes.saturating_sub(self.bytes);
        let limit = self.shared.limits.max_body_bytes_held;
        let counters = &self.shared.counters;
        let held =
            counters
                .body_bytes_held
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                    held.checked_add(more).filter(|&total| total <= limit)
                });
        match held {
            Ok(before) => {
                self.bytes += more;
                counters
                    .peak_body_bytes_held
                    .fetch_max(before + more, Ordering::AcqRel);
                true
            }
            Err(_) => false,
        }
    }

    fn release(&mut self) {
        let bytes = std::mem::take(&mut self.bytes);
        self.shared
            .counters
            .body_bytes_held
            .fetch_sub(bytes, Ordering::AcqRel);
    }
}

impl Drop for HeldBytes<'_> {
    fn drop(&mut self) {
        self.release();
    }
}

/// Reads a body of at most `max_bytes`, within the limits: its bytes are held (against
/// `Limits::max_body_bytes_held`) before they are read, a declared length at once, and a
/// body that stalls for `Limits::body_read_timeout` is given up. A longer one is drained
/// (up to [`DRAIN_LIMIT`], holding nothing) before it is refused, so that the client gets to
/// read the refusal.
async fn read_body<'a>(
    mut body: Incoming,
    headers: &HeaderMap,
    max_bytes: usize,
    shared: &'a Inbox,
) -> Result<(Vec<u8>, HeldBytes<'a>), BodyError> {
    let too_large = || BodyError::TooLarge(max_bytes);
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > DRAIN_LIMIT.max(max_bytes)) {
        return Err(too_large());
    }
    let mut held = HeldBytes::none(shared);
    let expected = declared.unwrap_or(0).min(max_bytes);
    if !held.hold(expected) {
        return Err(BodyError::Busy);
    }
    let mut data = Vec::with_capacity(expected);
    let mut total = 0usize;
    loop {
        let frame = match tokio::time::timeout(shared.limits.body_read_timeout, body.frame()).await
        {
            Err(_) => return Err(BodyError::TimedOut),
            Ok(None) => break,
            Ok(Some(frame)) => frame.map_err(BodyError::Broken)?,
        };
        let Ok(chunk) = frame.into_data() else {
            continue; // Trailers.
        };
        total = total.saturating_add(chunk.len());
        if total <= max_bytes {
            let needed = data.len() + chunk.len();
            if needed > data.capacity() {
                // Grown as a `Vec` grows, held before it is allocated.
                let capacity = needed.max(data.capacity() * 2).min(max_bytes);
                if !held.hold(capacity) {
                    return Err(BodyError::Busy);
                }
                data.reserve_exact(capacity - data.len());
            }
            data.extend_from_slice(&chunk);
        } else if total > DRAIN_LIMIT {
            return Err(too_large());
        } else {
            data = Vec::new();
            held.release();
        }
    }
    if total > max_bytes {
        return Err(too_large());
    }
    Ok((data, held))
}

fn protobuf(status: StatusCode, response: &ReportResponse) -> Response<Full<Bytes>> {
    bytes(status, OCTET_STREAM, Bytes::from(response.encode_to_vec()))
}

fn text(status: StatusCode, message: String) -> Response<Full<Bytes>> {
    bytes(status, "text/plain; charset=utf-8", Bytes::from(message))
}

pub(super) fn bytes(
    status: StatusCode,
    content_type: &'static str,
    body: Bytes,
) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}
