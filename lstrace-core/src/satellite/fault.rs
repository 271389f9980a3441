//! A satellite that misbehaves the way real networks and servers do, to test a reporter
//! against: it hangs, answers slowly, refuses, resets connections, answers with garbage,
//! truncated or huge bodies, redirects, and can be killed and restarted on the same port.
//!
//! It speaks just enough HTTP/1.1 by hand (request line, headers, `Content-Length` body,
//! keep-alive) to answer in ways a correct server never would. It binds `127.0.0.1` only.
//!
//! A report counts as *ingested* when the server kept it: on every answer that starts with
//! `200` (even a broken one, as a real satellite that stored the report and then failed to
//! answer would), and on a black hole (which read the whole report). A reporter that resends
//! such a report makes the server ingest its spans twice, which [`FaultServer::ingested`]
//! shows.
//!
//! Report bodies are kept as they arrive and decoded when the test reads them: decoding on
//! the server's one thread would make it, not the reporter, the bottleneck of a test that
//! sends tens of thousands of spans a second (unoptimised builds decode slowly).

use crate::protocol::lightstep::{self, metrics_sample, ReportRequest, ReportResponse};
use crate::reporter::protocol::lightstep::{ACCESS_TOKEN_HEADER, SPANS_DROPPED};
use prost::Message;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How the server answers a report.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// 200 with an empty `ReportResponse`: a healthy satellite.
    Accept,
    /// Reads the report and never answers; the connection stays open.
    BlackHole,
    /// Accepts after this delay.
    Slow(Duration),
    /// This status, with an empty body.
    Status(u16),
    /// This status for the next `count` reports, then [`Fault::Accept`].
    StatusThenAccept {
        /// The status of the failing answers.
        status: u16,
        /// How many reports get it.
        count: usize,
    },
    /// Reads the report, then resets the connection (TCP RST) without answering.
    Reset,
    /// 200 whose body is not a `ReportResponse`.
    Garbage,
    /// 200 announcing a 1000-byte body, of which it sends 10 before closing.
    Truncated,
    /// 200 with a body of this many bytes (zeros, which decode as nothing useful), sent as
    /// fast as the reader takes them.
    Huge(u64),
    /// This redirect status (301, 302, 307, 308) to this URL.
    Redirect(u16, String),
    /// 200 with a `disable` command.
    Disable,
}

/// A request the server received.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct FaultRequest {
    /// The request path.
    pub path: String,
    /// The `Lightstep-Access-Token` header, if any.
    pub access_token_header: Option<String>,
    /// The decoded report, when the body is one.
    pub report: Option<ReportRequest>,
    /// Whether the server kept the report (see the module's documentation).
    pub ingested: bool,
}

impl FaultRequest {
    /// The report's `spans.dropped` count, if it has one.
    #[must_use]
    pub fn spans_dropped(&self) -> Option<i64> {
        self.report
            .as_ref()?
            .internal_metrics
            .as_ref()?
            .counts
            .iter()
            .find(|c| c.name == SPANS_DROPPED)
            .and_then(|c| match c.value {
                Some(metrics_sample::Value::IntValue(v)) => Some(v),
                _ => None,
            })
    }
}

#[derive(Default)]
struct State {
    fault: Option<Fault>,
    /// Every request; the bodies of the last `undecoded.len()` are in `undecoded`.
    requests: Vec<FaultRequest>,
    /// Bodies not decoded yet, oldest first.
    undecoded: Vec<Vec<u8>>,
    /// Answers written, or given up because the client had gone.
    answers: usize,
}

/// The server's state, and a signal for the test waiting on it to change.
#[derive(Default)]
struct WatchedState {
    state: Mutex<State>,
    changed: Condvar,
}

impl WatchedState {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The state, with every report decoded: what the test reads.
    fn decoded(&self) -> std::sync::MutexGuard<'_, State> {
        let mut state = self.state();
        state.decode();
        state
    }
}

impl State {
    fn decode(&mut self) {
        let first = self.requests.len() - self.undecoded.len();
        for (request, body) in self.requests[first..]
            .iter_mut()
            .zip(std::mem::take(&mut self.undecoded))
        {
            request.report = ReportRequest::decode(&body[..]).ok();
        }
    }
}

/// A misbehaving satellite on `127.0.0.1`. Dropping it stops it and closes its connections.
pub struct FaultServer {
    addr: SocketAddr,
    shared: Arc<WatchedState>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for FaultServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl FaultServer {
    /// Starts a server on a free port of `127.0.0.1`.
    ///
    /// # Errors
    /// When no port can be bound or the thread cannot start.
    pub fn start(fault: Fault) -> io::Result<FaultServer> {
        let server = Self::serve(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), Arc::default())?;
        server.set_fault(fault);
        Ok(server)
    }

    fn serve(addr: SocketAddr, shared: Arc<WatchedState>) -> io::Result<FaultServer> {
        let listener = std::net::TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let thread = std::thread::Builder::new()
            .name(format!("lstrace-fault-{}", addr.port()))
            .spawn({
                let shared = Arc::clone(&shared);
                move || run(listener, shared, stopped)
            })?;
        Ok(FaultServer {
            addr,
            shared,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The server's address.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its base URL, `http://127.0.0.1:PORT`.
    #[must_use]
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Changes how the next reports are answered.
    pub fn set_fault(&self, fault: Fault) {
        self.shared.state().fault = Some(fault);
    }

    /// Every request so far, in arrival order.
    #[must_use]
    pub fn requests(&self) -> Vec<FaultRequest> {
        self.shared.decoded().requests.clone()
    }

    /// The spans of every ingested report, duplicates included.
    #[must_use]
    pub fn ingested(&self) -> Vec<lightstep::LightStepSpan> {
        self.shared
            .decoded()
            .requests
            .iter()
            .filter(|r| r.ingested)
            .filter_map(|r| r.report.as_ref())
            .flat_map(|r| r.spans.iter().cloned())
            .collect()
    }

    /// The sum of the `spans.dropped` counts of the ingested reports.
    #[must_use]
    pub fn ingested_drops(&self) -> i64 {
        self.shared
            .decoded()
            .requests
            .iter()
            .filter(|r| r.ingested)
            .filter_map(FaultRequest::spans_dropped)
            .sum()
    }

    /// Waits until at least `count` spans were ingested; false if not within `timeout`.
    #[must_use]
    pub fn wait_for_ingested(&self, count: usize, timeout: Duration) -> bool {
        self.wait(timeout, |s| {
            s.requests
                .iter()
                .filter(|r| r.ingested)
                .filter_map(|r| r.report.as_ref())
                .map(|r| r.spans.len())
                .sum::<usize>()
                >= count
        })
    }

    /// Waits until the server has answered at least `count` requests (or tried to: the
    /// client may have hung up); false if not within `timeout`. A black hole never answers.
    #[must_use]
    pub fn wait_for_answers(&self, count: usize, timeout: Duration) -> bool {
        self.wait(timeout, |s| s.answers >= count)
    }

    /// Waits until at least `count` requests arrived; false if not within `timeout`.
    #[must_use]
    pub fn wait_for_requests(&self, count: usize, timeout: Duration) -> bool {
        self.wait(timeout, |s| s.requests.len() >= count)
    }

    fn wait(&self, timeout: Duration, done: impl Fn(&State) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut state = self.shared.state();
        loop {
            state.decode();
            if done(&state) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            state = self
                .shared
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Stops listening and closes every connection, as a killed process would; the port is
    /// free until [`FaultServer::restart`].
    pub fn kill(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }

    /// Serves again on the same port, with the same fault and requests so far.
    ///
    /// # Errors
    /// When the port was taken meanwhile.
    pub fn restart(&mut self) -> io::Result<()> {
        self.kill();
        let server = Self::serve(self.addr, Arc::clone(&self.shared))?;
        let mut server = std::mem::ManuallyDrop::new(server);
        self.stop = server.stop.take();
        self.thread = server.thread.take();
        Ok(())
    }
}

impl Drop for FaultServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn run(
    listener: std::net::TcpListener,
    shared: Arc<WatchedState>,
    stopped: tokio::sync::oneshot::Receiver<()>,
) {
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return;
    };
    runtime.block_on(async move {
        let Ok(listener) = TcpListener::from_std(listener) else {
            return;
        };
        // Dropped when the server stops: every connection task is aborted, its socket closed.
        let mut connections = tokio::task::JoinSet::new();
        tokio::pin!(stopped);
        loop {
            tokio::select! {
                _ = &mut stopped => break,
                accepted = listener.accept() => {
                    if let Ok((stream, _)) = accepted {
                        connections.spawn(serve_connection(stream, Arc::clone(&shared)));
                    }
                }
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
    });
    // Hung connections' tasks never finish: the runtime is let go without waiting for them.
    runtime.shutdown_background();
}

/// A request's head and body.
struct Request {
    path: String,
    token: Option<String>,
    body: Vec<u8>,
}

/// Reads one request; `None` when the connection closed or the request is not HTTP.
async fn read_request(stream: &mut TcpStream, buffered: &mut Vec<u8>) -> Option<Request> {
    let head_end = loop {
        if let Some(at) = buffered.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let mut chunk = [0u8; 8192];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffered.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buffered[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let path = lines.next()?.split(' ').nth(1)?.to_owned();
    let mut length = 0usize;
    let mut token = None;
    for line in lines {
        if let Some((name, value)) = line.split_once(':') {
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = value.parse().ok()?;
            } else if name.eq_ignore_ascii_case(ACCESS_TOKEN_HEADER) {
                token = Some(value.to_owned());
            }
        }
    }
    buffered.drain(..head_end);
    while buffered.len() < length {
        let mut chunk = vec![0u8; (length - buffered.len()).min(1 << 16)];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffered.extend_from_slice(&chunk[..n]);
    }
    let body = buffered.drain(..length).collect();
    Some(Request { path, token, body })
}

async fn serve_connection(mut stream: TcpStream, shared: Arc<WatchedState>) {
    let mut buffered = Vec::new();
    while let Some(request) = read_request(&mut stream, &mut buffered).await {
        let fault = {
            let mut state = shared.state();
            let fault = state.fault.clone().unwrap_or(Fault::Accept);
            if let Fault::StatusThenAccept { status, count } = fault {
                state.fault = Some(if count > 1 {
                    Fault::StatusThenAccept {
                        status,
                        count: count - 1,
                    }
                } else {
                    Fault::Accept
                });
                Fault::Status(status)
            } else {
                fault
            }
        };
        let ingested = matches!(
            fault,
            Fault::Accept
                | Fault::BlackHole
                | Fault::Slow(_)
                | Fault::Garbage
                | Fault::Truncated
                | Fault::Huge(_)
                | Fault::Disable
        );
        {
            let mut state = shared.state();
            state.requests.push(FaultRequest {
                path: request.path,
                access_token_header: request.token,
                report: None,
                ingested,
            });
            state.undecoded.push(request.body);
        }
        shared.changed.notify_all();
        let open = answer(&mut stream, fault).await;
        shared.state().answers += 1;
        shared.changed.notify_all();
        if !open {
            return;
        }
    }
}

/// Answers one request as the fault says; false when the connection must end.
async fn answer(stream: &mut TcpStream, fault: Fault) -> bool {
    let head = |status: u16, extra: &str, length: u64| {
        format!(
            "HTTP/1.1 {status} Fault\r\ncontent-type: application/octet-stream\r\n\
             content-length: {length}\r\n{extra}\r\n"
        )
    };
    match fault {
        Fault::Accept | Fault::Slow(_) | Fault::Disable => {
            if let Fault::Slow(delay) = fault {
                tokio::time::sleep(delay).await;
            }
            let mut response = ReportResponse::default();
            if fault == Fault::Disable {
                response.commands.push(lightstep::Command {
                    disable: true,
                    dev_mode: false,
                });
            }
            let body = response.encode_to_vec();
            let mut bytes = head(200, "", body.len() as u64).into_bytes();
            bytes.extend_from_slice(&body);
            write(stream, &bytes).await
        }
        Fault::BlackHole => {
            // Keeps the connection open, reading nothing more, until the server stops.
            std::future::pending::<()>().await;
            false
        }
        Fault::Status(status) => write(stream, &head(status, "", 0).into_bytes()).await,
        Fault::StatusThenAccept { .. } => unreachable!("resolved to a status or accept"),
        Fault::Reset => {
            let _ = stream.set_zero_linger();
            false
        }
        Fault::Garbage => {
            let body = b"<html><body>502 Bad Gateway</body></html>\xff\xff\xff\xff";
            let mut bytes = head(200, "", body.len() as u64).into_bytes();
            bytes.extend_from_slice(body);
            write(stream, &bytes).await
        }
        Fault::Truncated => {
            let mut bytes = head(200, "", 1000).into_bytes();
            bytes.extend_from_slice(&[0x0a; 10]);
            let _ = write(stream, &bytes).await;
            false
        }
        Fault::Huge(length) => {
            if !write(stream, &head(200, "", length).into_bytes()).await {
                return false;
            }
            let block = vec![0u8; 1 << 16];
            let mut left = length;
            while left > 0 {
                let n = left.min(block.len() as u64) as usize;
                if stream.write_all(&block[..n]).await.is_err() {
                    return false;
                }
                left -= n as u64;
            }
            true
        }
        Fault::Redirect(status, location) => {
            let location = format!("location: {location}\r\n");
            write(stream, &head(status, &location, 0).into_bytes()).await
        }
    }
}

async fn write(stream: &mut TcpStream, bytes: &[u8]) -> bool {
    stream.write_all(bytes).await.is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_what_it_ingests_and_restarts_on_its_port() {
        let mut server = FaultServer::start(Fault::Accept).unwrap();
        let addr = server.addr();
        server.kill();
        assert!(std::net::TcpStream::connect(addr).is_err());
        server.restart().unwrap();
        assert_eq!(server.addr(), addr);
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        let body = ReportRequest {
            spans: vec![lightstep::LightStepSpan::default()],
            ..Default::default()
        }
        .encode_to_vec();
        use std::io::{Read, Write};
        write!(
            stream,
            "POST /api/v2/reports HTTP/1.1\r\ncontent-length: {}\r\n\r\n",
            body.len()
        )
        .unwrap();
        stream.write_all(&body).unwrap();
        let mut answer = [0u8; 12];
        stream.read_exact(&mut answer).unwrap();
        assert_eq!(&answer, b"HTTP/1.1 200");
        assert!(server.wait_for_ingested(1, Duration::from_secs(10)));
        assert_eq!(server.requests()[0].path, "/api/v2/reports");
    }
}
