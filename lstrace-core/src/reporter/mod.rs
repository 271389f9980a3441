//! The reporter: ships finished spans to a LightStep collector or satellite over HTTP with
//! protobuf bodies.
//!
//! [`init`] starts the one tracer of the process and installs it as the [`Recorder`]. Spans
//! wait in per-thread rings; the reporter's thread drains them every reporting period, early
//! when a ring or its own buffer is half full, and on [`flush`]. Each span is encoded once as
//! it is drained (see the `buffer` module) and sent in reports of at most 4 MB. The reporter
//! thread runs its own current-thread tokio runtime with one reused HTTP client, so it works
//! whatever runtime (if any) the program uses, and never blocks a traced call.
//!
//! Nothing is dropped silently: every dropped span is counted ([`Stats`]), told to the event
//! handler ([`Event::SpansDropped`]) and sent to the collector as the `spans.dropped` count of
//! the next accepted report's internal metrics. Logs dropped by the per-span limit go out as
//! `logs.dropped`.
//!
//! `timestamp_offset_micros` is always 0: span times are the host's wall clock, as the Go
//! tracer sends them; estimating the clock offset from one request/answer pair would add
//! the network's asymmetry as error.
//!
//! ```no_run
//! use std::time::Duration;
//!
//! let tracer = lstrace_core::init(
//!     lstrace_core::Options::new("my-access-token").component_name("checkout"),
//! )?;
//! {
//!     let _span = lstrace_core::span("startup").start();
//! }
//! let report = tracer.close(Duration::from_secs(5));
//! assert!(!report.timed_out);
//! # Ok::<(), lstrace_core::InitError>(())
//! ```

mod buffer;
mod encode;
mod events;
mod identity;
mod options;
mod retry;
mod transport;
mod wire;
mod worker;

pub use events::{
    set_event_handler, DropReason, Event, EventHandler, ReportError, ReportFailure, StatusReport,
};
pub use identity::{
    COMMAND_LINE, COMPONENT_NAME, HOSTNAME, TRACER_PLATFORM, TRACER_PLATFORM_VERSION,
    TRACER_VERSION,
};
pub use options::{InitError, Options, DEFAULT_COLLECTOR_URL, REPORT_PATH};
pub use transport::ACCESS_TOKEN_HEADER;

use crate::collector::{self, Recorder};
use crate::record::SpanRecord;
use buffer::SpanBuffer;
use events::Events;
use once_cell::sync::OnceCell;
use options::Config;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc as async_mpsc, oneshot, Notify};
use worker::{Command, Reply, Worker};

/// Counts since the tracer started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Spans handed to the reporter.
    pub spans_received: u64,
    /// Spans in reports the collector accepted.
    pub spans_sent: u64,
    /// Spans dropped, for any [`DropReason`] (including spans dropped by a thread's full
    /// ring, which were never received).
    pub spans_dropped: u64,
    /// Spans held now: buffered, being sent, or waiting for a retry.
    pub spans_buffered: u64,
    /// Reports the collector accepted.
    pub reports_sent: u64,
    /// Report attempts that failed (a retried report counts once per failure).
    pub reports_failed: u64,
    /// Logs dropped by the per-span limit.
    pub logs_dropped: u64,
    /// Spans that could not be encoded into a report (too large).
    pub encoding_errors: u64,
}

/// What a [`flush`](Tracer::flush) or [`close`](Tracer::close) did: the counts are what
/// happened while it ran.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlushReport {
    /// Spans the collector accepted.
    pub spans_sent: u64,
    /// Spans dropped.
    pub spans_dropped: u64,
    /// Reports the collector accepted.
    pub reports_sent: u64,
    /// Report attempts that failed.
    pub reports_failed: u64,
    /// The timeout passed before every span finished so far was delivered or dropped.
    pub timed_out: bool,
    /// The tracer is not reporting any more: closed, disabled by the collector, or never
    /// initialised.
    pub stopped: bool,
}

/// State shared by the tracer's handles, the recorder side and the reporter thread.
pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) events: Events,
    buffer: Mutex<SpanBuffer>,
    pub(crate) counters: Counters,
    /// Wakes the reporter thread: early drains and sends, flushes.
    pub(crate) wake: Notify,
    wake_pending: AtomicBool,
    /// True once installed as the process's recorder: only then does the reporter drain the
    /// rings (and stop the collector on close or disable).
    pub(crate) installed: AtomicBool,
    /// Closing, closed or disabled: [`Tracer::is_stopped`].
    pub(crate) stopped: AtomicBool,
    /// The reporter thread is gone (or disabled): spans are refused. Closing still accepts
    /// what the final drain brings.
    pub(crate) refusing: AtomicBool,
}

/// The counters behind [`Stats`].
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) received: AtomicU64,
    pub(crate) sent: AtomicU64,
    /// Per [`DropReason`], indexed by [`DropReason::index`].
    pub(crate) dropped: [AtomicU64; 5],
    pub(crate) held: AtomicU64,
    pub(crate) reports_sent: AtomicU64,
    pub(crate) reports_failed: AtomicU64,
    pub(crate) logs_dropped: AtomicU64,
    pub(crate) encoding_errors: AtomicU64,
}

impl Counters {
    pub(crate) fn drop_spans(&self, count: u64, reason: DropReason) {
        self.dropped[reason.index()].fetch_add(count, Ordering::Relaxed);
    }

    pub(crate) fn dropped_total(&self) -> u64 {
        self.dropped.iter().map(|d| d.load(Ordering::Relaxed)).sum()
    }

    fn snapshot(&self) -> Stats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Stats {
            spans_received: get(&self.received),
            spans_sent: get(&self.sent),
            spans_dropped: self.dropped_total(),
            spans_buffered: get(&self.held),
            reports_sent: get(&self.reports_sent),
            reports_failed: get(&self.reports_failed),
            logs_dropped: get(&self.logs_dropped),
            encoding_errors: get(&self.encoding_errors),
        }
    }
}

impl Shared {
    pub(crate) fn buffer(&self) -> MutexGuard<'_, SpanBuffer> {
        // Encoding cannot leave the buffer half-written: keep going after a panic elsewhere.
        self.buffer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn wake(&self) {
        // One notification per drain is enough; the flag keeps busy threads off the Notify.
        if !self.wake_pending.swap(true, Ordering::AcqRel) {
            self.wake.notify_one();
        }
    }

    /// Called by the reporter thread as it wakes.
    pub(crate) fn woken(&self) {
        self.wake_pending.store(false, Ordering::Release);
    }

    /// Encodes spans into the buffer, dropping (and counting) what does not fit.
    fn record(&self, spans: &mut dyn Iterator<Item = SpanRecord>) {
        let counters = &self.counters;
        let max = self.config.max_buffered_spans as u64;
        let mut buffer = self.buffer();
        // Checked under the lock: the reporter sets it before it empties the buffer.
        if self.refusing.load(Ordering::Acquire) {
            counters.drop_spans(spans.count() as u64, DropReason::Stopped);
            return;
        }
        for record in spans {
            counters.received.fetch_add(1, Ordering::Relaxed);
            // Only this (locked) path adds to `held`, so the bound holds.
            if counters.held.load(Ordering::Relaxed) >= max {
                counters.drop_spans(1, DropReason::BufferFull);
                continue;
            }
            match buffer.push_record(&record, &self.config.limits) {
                Ok(logs_dropped) => {
                    counters
                        .logs_dropped
                        .fetch_add(logs_dropped, Ordering::Relaxed);
                    counters.held.fetch_add(1, Ordering::Relaxed);
                }
                Err((_, logs_dropped)) => {
                    counters
                        .logs_dropped
                        .fetch_add(logs_dropped, Ordering::Relaxed);
                    counters.encoding_errors.fetch_add(1, Ordering::Relaxed);
                    counters.drop_spans(1, DropReason::TooLarge);
                }
            }
        }
        let half_full = buffer.len() as u64 >= (max / 2).max(1);
        drop(buffer);
        if half_full {
            self.wake();
        }
    }
}

/// A running tracer: flush it, close it, read its counts. Cheap to clone; every clone is
/// the same tracer.
///
/// [`init`] starts the process's tracer. [`Tracer::start`] starts one that is not installed
/// as the process's recorder: it reports only the spans given to its
/// [`Recorder::record`], and stops when its last handle is dropped.
#[derive(Clone)]
pub struct Tracer {
    handle: Arc<Handle>,
}

/// Dropping the last handle closes the command channel, which ends the reporter thread.
struct Handle {
    shared: Arc<Shared>,
    commands: async_mpsc::UnboundedSender<Command>,
}

static GLOBAL: OnceCell<Tracer> = OnceCell::new();

/// Starts the process's tracer: checks the options, starts the reporter thread, installs
/// the tracer as the recorder of every span, and makes the options' propagators (if set)
/// the process's. Call it once, early in `main`.
///
/// # Errors
/// A clear [`InitError`] for a missing token, an empty component name, an unusable collector
/// URL, a reserved reporter tag or an out-of-range option; [`InitError::AlreadyInitialized`]
/// when a tracer (or another recorder) is already installed, which keeps working.
pub fn init(options: Options) -> Result<Tracer, InitError> {
    if collector::installed().is_some() {
        return Err(InitError::AlreadyInitialized);
    }
    let (tracer, warnings) = Tracer::launch(options)?;
    if collector::install(Box::new(tracer.clone())).is_err() {
        // Another thread won the race; dropping our handles ends our reporter thread.
        return Err(InitError::AlreadyInitialized);
    }
    let shared = tracer.shared();
    shared.installed.store(true, Ordering::Release);
    collector::set_max_logs_per_span(shared.config.limits.max_logs_per_span);
    if let Some(stack) = &shared.config.propagators {
        crate::propagation::set_global_stack(stack.clone());
    }
    // Only the first successful install gets here.
    let _ = GLOBAL.set(tracer.clone());
    for warning in &warnings {
        shared.events.emit(warning);
    }
    Ok(tracer)
}

/// The process's tracer, once [`init`] has started it.
#[must_use]
pub fn tracer() -> Option<&'static Tracer> {
    GLOBAL.get()
}

/// Flushes the process's tracer: see [`Tracer::flush`]. Without one, returns at once with
/// `stopped` set.
pub fn flush(timeout: Duration) -> FlushReport {
    GLOBAL
        .get()
        .map_or_else(FlushReport::not_running, |t| t.flush(timeout))
}

/// Closes the process's tracer: see [`Tracer::close`]. Without one, returns at once with
/// `stopped` set.
pub fn close(timeout: Duration) -> FlushReport {
    GLOBAL
        .get()
        .map_or_else(FlushReport::not_running, |t| t.close(timeout))
}

impl FlushReport {
    fn not_running() -> Self {
        FlushReport {
            stopped: true,
            ..FlushReport::default()
        }
    }
}

impl Tracer {
    /// Starts a tracer that is not installed as the process's recorder: it reports what is
    /// given to its [`Recorder::record`] (for example spans captured by a test recorder),
    /// with every other behaviour of the process's tracer.
    ///
    /// # Errors
    /// As [`init`], except that it is never [`InitError::AlreadyInitialized`].
    pub fn start(options: Options) -> Result<Tracer, InitError> {
        let (tracer, warnings) = Tracer::launch(options)?;
        for warning in &warnings {
            tracer.shared().events.emit(warning);
        }
        Ok(tracer)
    }

    /// Checks the options and starts the reporter thread, which builds its own runtime.
    fn launch(options: Options) -> Result<(Tracer, Vec<Event>), InitError> {
        let (config, warnings) = options.validate()?;
        let transport = transport::Transport::new(&config)?;
        let chunk_bytes = worker::max_chunk_bytes(&config)?;
        let shared = Arc::new(Shared {
            buffer: Mutex::new(SpanBuffer::new(chunk_bytes)),
            events: Events::new(config.event_handler.clone()),
            config,
            counters: Counters::default(),
            wake: Notify::new(),
            wake_pending: AtomicBool::new(false),
            installed: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
            refusing: AtomicBool::new(false),
        });
        let worker = Worker::new(Arc::clone(&shared), transport);
        let (commands, receiver) = async_mpsc::unbounded_channel();
        // The runtime is built on the reporter thread, and dropped there: building or
        // dropping one inside the caller's async code is not allowed.
        let (started, start_result) = mpsc::sync_channel(1);
        std::thread::Builder::new()
            .name("lstrace-reporter".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                match runtime {
                    Ok(runtime) => {
                        let _ = started.send(Ok(()));
                        runtime.block_on(worker.run(receiver));
                    }
                    Err(e) => {
                        let _ = started.send(Err(InitError::Start(format!("runtime: {e}"))));
                    }
                }
            })
            .map_err(|e| InitError::Start(format!("thread: {e}")))?;
        start_result
            .recv()
            .map_err(|_| InitError::Start("the reporter thread exited".into()))??;
        Ok((
            Tracer {
                handle: Arc::new(Handle { shared, commands }),
            },
            warnings,
        ))
    }

    fn shared(&self) -> &Shared {
        &self.handle.shared
    }

    /// Counts since the tracer started. After `close`, spans that were still open when it
    /// closed count as dropped once they finish.
    #[must_use]
    pub fn stats(&self) -> Stats {
        let shared = self.shared();
        // Once the tracer refuses spans nothing drains the rings, where spans that finish
        // after the close land: draining them here counts them (as dropped, `Stopped`).
        if shared.refusing.load(Ordering::Acquire) && shared.installed.load(Ordering::Acquire) {
            collector::drain();
        }
        shared.counters.snapshot()
    }

    /// True once the tracer stopped: closed, or disabled by the collector.
    #[must_use]
    pub fn is_stopped(&self) -> bool {
        self.shared().stopped.load(Ordering::Acquire)
    }

    /// Sends every span finished so far (on every thread) and waits for the collector's
    /// answers, retries included, but never longer than `timeout`.
    ///
    /// This blocks the calling thread. Inside async code that is acceptable for a short
    /// timeout (the reporter runs on its own thread, so even a current-thread runtime
    /// cannot deadlock it); [`Tracer::flush_async`] waits without blocking. Do not call it
    /// from an event handler: it would wait out its timeout.
    pub fn flush(&self, timeout: Duration) -> FlushReport {
        self.request_blocking(timeout, false)
    }

    /// Flushes, then stops: every later span is a no-op. Waits no longer than `timeout`;
    /// what is still unsent then is dropped and counted. A span still open at the close is
    /// not reported: [`Tracer::stats`] counts it as dropped once it finishes.
    pub fn close(&self, timeout: Duration) -> FlushReport {
        self.request_blocking(timeout, true)
    }

    /// [`Tracer::flush`] without blocking the calling thread; the reporter thread keeps the
    /// deadline, so no timer of the caller's runtime is needed (any executor will do).
    pub async fn flush_async(&self, timeout: Duration) -> FlushReport {
        self.request_async(timeout, false).await
    }

    /// [`Tracer::close`] without blocking the calling thread.
    pub async fn close_async(&self, timeout: Duration) -> FlushReport {
        self.request_async(timeout, true).await
    }

    fn request_blocking(&self, timeout: Duration, close: bool) -> FlushReport {
        let deadline = retry::after(Instant::now(), timeout);
        let before = self.stats();
        let (reply, answer) = mpsc::sync_channel(1);
        let completed = if self.send_request(deadline, close, Reply::Blocking(reply)) {
            match answer.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(completed) => completed,
                Err(mpsc::RecvTimeoutError::Timeout) => false,
                // The reporter thread ended (closed or disabled meanwhile): nothing to wait for.
                Err(mpsc::RecvTimeoutError::Disconnected) => true,
            }
        } else {
            true
        };
        self.report_since(before, completed)
    }

    async fn request_async(&self, timeout: Duration, close: bool) -> FlushReport {
        let deadline = retry::after(Instant::now(), timeout);
        let before = self.stats();
        let (reply, answer) = oneshot::channel();
        let completed = if self.send_request(deadline, close, Reply::Async(reply)) {
            answer.await.unwrap_or(true)
        } else {
            true
        };
        self.report_since(before, completed)
    }

    /// Asks the reporter thread to flush (or close); false when it has already ended.
    fn send_request(&self, deadline: Instant, close: bool, reply: Reply) -> bool {
        if close {
            let shared = self.shared();
            shared.stopped.store(true, Ordering::Release);
            if shared.installed.load(Ordering::Acquire) {
                // Spans become no-ops now; the ones already finished are still flushed.
                collector::stop();
            }
        }
        self.handle
            .commands
            .send(Command {
                deadline,
                close,
                reply,
            })
            .is_ok()
    }

    fn report_since(&self, before: Stats, completed: bool) -> FlushReport {
        let after = self.stats();
        FlushReport {
            spans_sent: after.spans_sent - before.spans_sent,
            spans_dropped: after.spans_dropped - before.spans_dropped,
            reports_sent: after.reports_sent - before.reports_sent,
            reports_failed: after.reports_failed - before.reports_failed,
            timed_out: !completed,
            stopped: self.is_stopped(),
        }
    }
}

impl Recorder for Tracer {
    fn record(&self, spans: &mut dyn Iterator<Item = SpanRecord>) {
        self.shared().record(spans);
    }

    fn dropped(&self, count: u64) {
        self.shared()
            .counters
            .drop_spans(count, DropReason::RingFull);
    }

    fn wake(&self) {
        self.shared().wake();
    }
}

impl fmt::Debug for Tracer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shared = self.shared();
        f.debug_struct("Tracer")
            .field("component_name", &shared.config.component_name)
            .field(
                "collectors",
                &shared
                    .config
                    .endpoints
                    .iter()
                    .map(reqwest::Url::as_str)
                    .collect::<Vec<_>>(),
            )
            .field("stopped", &self.is_stopped())
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}
