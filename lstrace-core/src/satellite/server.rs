//! The satellite's HTTP/1 server: a current-thread tokio runtime on a thread of its own.

use super::{ingest, view, Answer, ReceivedReport, Shared, Stored, MAX_BODY_BYTES, REPORTS_PATH};
use crate::protocol::ReportResponse;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use prost::Message;
use std::convert::Infallible;
use std::io;
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

const OCTET_STREAM: &str = "application/octet-stream";

/// The server thread: serves until `stop` fires (or its sender is dropped), then drops every
/// connection.
pub(super) fn run(
    listener: std::net::TcpListener,
    shared: Arc<Shared>,
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
    shared: Arc<Shared>,
    mut stop: oneshot::Receiver<()>,
) {
    loop {
        tokio::select! {
            _ = &mut stop => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    tokio::spawn(serve_connection(stream, Arc::clone(&shared)));
                }
                Err(_) => tokio::time::sleep(ACCEPT_RETRY).await,
            },
        }
    }
}

async fn serve_connection(stream: tokio::net::TcpStream, shared: Arc<Shared>) {
    let service = hyper::service::service_fn(move |request| {
        let shared = Arc::clone(&shared);
        async move { Ok::<_, Infallible>(answer(request, &shared).await) }
    });
    // A connection error (the client hung up mid-request) concerns that client only.
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

async fn answer(request: Request<Incoming>, shared: &Shared) -> Response<Full<Bytes>> {
    let behaviour = shared.request_arrived();
    if let Some(store) = &shared.view {
        let uri = request.uri();
        if let Some(response) = view::answer(request.method(), uri.path(), uri.query(), store) {
            return response;
        }
    }
    if request.uri().path() != REPORTS_PATH {
        return text(
            StatusCode::NOT_FOUND,
            format!("not found: the local satellite serves POST {REPORTS_PATH}"),
        );
    }
    if request.method() != Method::POST {
        let mut response = text(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{REPORTS_PATH} takes POST only"),
        );
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return response;
    }
    let (parts, body) = request.into_parts();
    let body = match read_body(body, &parts.headers).await {
        Ok(body) => body,
        Err(BodyError::TooLarge) => {
            return text(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("a report body may not exceed {MAX_BODY_BYTES} bytes"),
            )
        }
        Err(BodyError::Broken(e)) => {
            return text(
                StatusCode::BAD_REQUEST,
                format!("could not read the request body: {e}"),
            )
        }
    };
    // Every field but the spans, which wait, undecoded, until someone asks for them.
    let report = match ingest::ingest(&body) {
        Ok(report) => report,
        Err(e) => {
            return protobuf(
                StatusCode::BAD_REQUEST,
                &ReportResponse {
                    errors: vec![format!("the body is not a valid ReportRequest: {e}")],
                    ..ReportResponse::default()
                },
            )
        }
    };
    if let super::Behaviour::Delay(delay) = behaviour {
        tokio::time::sleep(delay).await;
    }
    let (accepted, reply) = behaviour.answer(&report.header);
    let header = |name: header::HeaderName| {
        parts
            .headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    };
    let received = ReceivedReport {
        request: report.header,
        access_token_header: header(header::HeaderName::from_static("lightstep-access-token")),
        content_type: header(header::CONTENT_TYPE),
        accept: header(header::ACCEPT),
        path: parts.uri.path().to_owned(),
        method: parts.method.to_string(),
        body_len: body.len(),
        accepted,
    };
    shared.record(Stored {
        received,
        // A report without spans is already whole.
        body: (report.spans > 0).then_some(body),
        spans: report.spans,
    });
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

enum BodyError {
    TooLarge,
    Broken(hyper::Error),
}

/// Reads a body of at most [`MAX_BODY_BYTES`]. A longer one is drained (up to
/// [`DRAIN_LIMIT`]) before it is refused, so that the client gets to read the refusal.
async fn read_body(mut body: Incoming, headers: &HeaderMap) -> Result<Vec<u8>, BodyError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > DRAIN_LIMIT) {
        return Err(BodyError::TooLarge);
    }
    let mut data = Vec::with_capacity(declared.unwrap_or(0).min(MAX_BODY_BYTES));
    let mut total = 0usize;
    while let Some(frame) = body.frame().await {
        let Ok(chunk) = frame.map_err(BodyError::Broken)?.into_data() else {
            continue; // Trailers.
        };
        total = total.saturating_add(chunk.len());
        if total <= MAX_BODY_BYTES {
            data.extend_from_slice(&chunk);
        } else if total > DRAIN_LIMIT {
            return Err(BodyError::TooLarge);
        } else {
            data = Vec::new();
        }
    }
    if total > MAX_BODY_BYTES {
        return Err(BodyError::TooLarge);
    }
    Ok(data)
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
