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
mod config;
mod env;
mod events;
mod exit;
mod identity;
mod options;
pub(crate) mod protocol;
mod retry;
mod transport;
mod wire;
mod worker;

pub use config::InitError;
pub use events::{
    set_event_handler, DropReason, Event, EventHandler, ReportError, ReportFailure, StatusReport,
};
pub use identity::{
    COMMAND_LINE, COMPONENT_NAME, HOSTNAME, TRACER_PLATFORM, TRACER_PLATFORM_VERSION,
    TRACER_VERSION,
};
pub use options::{
    Compression, Options, Protocol, DEFAULT_COLLECTOR_URL, DEFAULT_EXIT_CLOSE_TIMEOUT,
    DEFAULT_MAX_BUFFERED_BYTES, DEFAULT_MAX_BUFFERED_SPANS, DEFAULT_OTLP_URL,
    DEFAULT_REPORT_TIMEOUT, MAX_REPORT_BYTES, REPORT_PATH, TRACES_PATH,
};
pub use protocol::lightstep::ACCESS_TOKEN_HEADER;

use crate::record::SpanRecord;
use crate::recorder::{self, Recorder, Spans};
use buffer::SpanBuffer;
use config::Config;
use events::Events;
use once_cell::sync::OnceCell;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc as async_mpsc, oneshot, Notify};
use worker::{Command, Reply, Worker};

/// Counts since the tracer started. They are read together, so that
/// `spans_made == spans_sent + spans_dropped + spans_buffered` holds in every snapshot.
///
/// A disabled tracer ([`Options::disabled`], `OTEL_SDK_DISABLED=true`) is never installed:
/// spans are no-ops that reach no tracer, so every count stays zero. Nothing is sent, and
/// nothing counts as dropped either, as nothing was lost.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Spans finished while the tracer ran and taken in by the reporter, or dropped before
    /// it could take them in (a thread's full ring). Spans still waiting in a thread's ring
    /// are not counted yet: a flush takes them in.
    pub spans_made: u64,
    /// Spans handed to the reporter (`spans_made` without the rings' drops).
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
    /// Tags dropped by the per-span limit.
    pub tags_dropped: u64,
    /// Baggage items dropped by the per-context limit while the tracer was installed
    /// ([`Options::max_baggage_items`]).
    pub baggage_items_dropped: u64,
    /// Operation names cut to the length limit while the tracer was installed
    /// ([`Options::max_operation_name_len`]).
    pub operation_names_truncated: u64,
    /// Fields that injection left out of carriers while the tracer was installed
    /// ([`fields_left_out`](crate::propagation::fields_left_out)).
    pub propagation_fields_left_out: u64,
    /// Spans that could not be encoded into a report (too large).
    pub encoding_errors: u64,
}

/// What a [`flush`](Tracer::flush) or [`close`](Tracer::close) did: the counts are what
/// happened while it ran, and [`FlushReport::stats`] the tracer's counts when it returned.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
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
    /// The tracer is not reporting any more: closed, disabled (by the collector, or from the
    /// start with [`Options::disabled`]), or never initialised.
    pub stopped: bool,
    /// The tracer's counts when the flush returned. After a `close`, nothing is buffered:
    /// what could not be delivered in time is counted as dropped before `close` returns.
    pub stats: Stats,
}

/// State shared by the tracer's handles, the recorder side and the reporter thread.
pub(crate) struct TracerState {
    pub(crate) config: Config,
    pub(crate) events: Events,
    buffer: Mutex<SpanBuffer>,
    pub(crate) counters: Counters,
    /// Wakes the reporter thread: early drains and sends, flushes.
    pub(crate) wake: Notify,
    wake_pending: AtomicBool,
    /// Drops already told to the event handler, per [`DropReason`].
    told_drops: Mutex<[u64; DropReason::ALL.len()]>,
    /// The process-wide drop counts already added to `counters`.
    process_drops_seen: Mutex<ProcessDrops>,
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
    /// Where every span is: one lock, so that a snapshot always adds up.
    tally: Mutex<Tally>,
    pub(crate) reports_sent: AtomicU64,
    pub(crate) reports_failed: AtomicU64,
    pub(crate) logs_dropped: AtomicU64,
    pub(crate) tags_dropped: AtomicU64,
    pub(crate) baggage_dropped: AtomicU64,
    pub(crate) names_truncated: AtomicU64,
    pub(crate) fields_left_out: AtomicU64,
    pub(crate) encoding_errors: AtomicU64,
}

/// What is dropped outside any span record, counted process-wide: baggage items past the
/// per-context cap, operation names cut, fields that injection left out. The installed tracer
/// takes in what was counted while it was installed.
#[derive(Clone, Copy, Default)]
struct ProcessDrops {
    baggage_items: u64,
    operation_names: u64,
    propagation_fields: u64,
}

impl ProcessDrops {
    fn now() -> Self {
        ProcessDrops {
            baggage_items: recorder::baggage_items_dropped(),
            operation_names: recorder::operation_names_truncated(),
            propagation_fields: crate::propagation::fields_left_out(),
        }
    }
}

/// Span counts that change together: every span made is sent, dropped or held.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Tally {
    pub(crate) made: u64,
    pub(crate) received: u64,
    pub(crate) sent: u64,
    /// Per [`DropReason`], indexed by [`DropReason::index`].
    pub(crate) dropped: [u64; DropReason::ALL.len()],
    /// Buffered, in a report being sent, or waiting for a retry.
    pub(crate) held: u64,
    /// The encoded size of the spans held.
    pub(crate) held_bytes: u64,
}

impl Tally {
    /// Spans dropped before the reporter held them.
    pub(crate) fn drop_new(&mut self, count: u64, reason: DropReason) {
        self.made += count;
        self.dropped[reason.index()] += count;
    }

    /// Held spans dropped.
    pub(crate) fn drop_held(&mut self, count: u64, bytes: u64, reason: DropReason) {
        self.release(count, bytes);
        self.dropped[reason.index()] += count;
    }

    /// Held spans that a collector accepted.
    pub(crate) fn deliver(&mut self, count: u64, bytes: u64) {
        self.release(count, bytes);
        self.sent += count;
    }

    fn release(&mut self, count: u64, bytes: u64) {
        debug_assert!(self.held >= count && self.held_bytes >= bytes);
        self.held -= count;
        self.held_bytes -= bytes;
    }

    pub(crate) fn dropped_total(&self) -> u64 {
        self.dropped.iter().sum()
    }
}

impl Counters {
    pub(crate) fn tally(&self) -> MutexGuard<'_, Tally> {
        // Counts are updated whole under the lock: they stay usable after a panic elsewhere.
        self.tally.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn snapshot(&self) -> Stats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let tally = *self.tally();
        Stats {
            spans_made: tally.made,
            spans_received: tally.received,
            spans_sent: tally.sent,
            spans_dropped: tally.dropped_total(),
            spans_buffered: tally.held,
            reports_sent: get(&self.reports_sent),
            reports_failed: get(&self.reports_failed),
            logs_dropped: get(&self.logs_dropped),
            tags_dropped: get(&self.tags_dropped),
            baggage_items_dropped: get(&self.baggage_dropped),
            operation_names_truncated: get(&self.names_truncated),
            propagation_fields_left_out: get(&self.fields_left_out),
            encoding_errors: get(&self.encoding_errors),
        }
    }
}

impl TracerState {
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

    /// Encodes a drain's spans into the buffer, dropping (and counting) what does not fit.
    fn record(&self, spans: &mut Spans<'_>) {
        match self.intake() {
            Some(mut intake) => {
                while let Some(span) = spans.next() {
                    intake.take(span);
                }
            }
            None => self.refuse(spans.discard()),
        }
    }

    /// Starts taking spans into the buffer; `None` once the tracer refuses spans (it is
    /// stopping), when the caller counts them with [`TracerState::refuse`].
    fn intake(&self) -> Option<Intake<'_>> {
        let buffer = self.buffer();
        // Checked under the lock: the reporter sets it before it empties the buffer.
        if self.refusing.load(Ordering::Acquire) {
            return None;
        }
        // Only this (locked) path adds to what is held, so the bounds hold.
        let (held, held_bytes) = {
            let tally = self.counters.tally();
            (tally.held, tally.held_bytes)
        };
        Some(Intake {
            shared: self,
            buffer,
            held,
            held_bytes,
            added: 0,
            added_bytes: 0,
            full: 0,
            too_large: 0,
            logs_dropped: 0,
            tags_dropped: 0,
        })
    }

    /// Counts spans that came while the tracer refused them.
    fn refuse(&self, count: usize) {
        let count = count as u64;
        let mut tally = self.counters.tally();
        tally.received += count;
        tally.drop_new(count, DropReason::Stopped);
    }

    /// Counts spans that a thread's full ring dropped before the reporter could take them in.
    fn ring_dropped(&self, count: u64) {
        self.counters.tally().drop_new(count, DropReason::RingFull);
    }

    /// Adds to this tracer's counts what was dropped process-wide since the last call (see
    /// [`ProcessDrops`]).
    pub(crate) fn take_in_process_drops(&self) {
        let now = ProcessDrops::now();
        let mut seen = self
            .process_drops_seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let counters = &self.counters;
        let add = |counter: &AtomicU64, now: u64, seen: u64| {
            counter.fetch_add(now.saturating_sub(seen), Ordering::Relaxed);
        };
        add(
            &counters.baggage_dropped,
            now.baggage_items,
            seen.baggage_items,
        );
        add(
            &counters.names_truncated,
            now.operation_names,
            seen.operation_names,
        );
        add(
            &counters.fields_left_out,
            now.propagation_fields,
            seen.propagation_fields,
        );
        *seen = now;
    }

    /// Tells the event handler about drops counted since the last call: each drop once.
    pub(crate) fn tell_new_drops(&self) {
        let news: Vec<(DropReason, u64)> = {
            let mut told = self
                .told_drops
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let dropped = self.counters.tally().dropped;
            DropReason::ALL
                .into_iter()
                .filter_map(|reason| {
                    let i = reason.index();
                    let count = dropped[i] - told[i];
                    told[i] = dropped[i];
                    (count > 0).then_some((reason, count))
                })
                .collect()
        };
        // Told outside the lock: a handler may read the tracer's stats.
        for (reason, count) in news {
            if reason == DropReason::TooLarge {
                self.events.emit(&Event::EncodingError {
                    message: format!(
                        "{count} spans are larger than a report may be ({} bytes)",
                        self.config.max_report_bytes
                    ),
                });
            }
            self.events.emit(&Event::SpansDropped { count, reason });
        }
    }
}

/// A running tracer: flush it, close it, read its counts. Cheap to clone; every clone is
/// the same tracer.
///
/// [`init`] starts the process's tracer and installs it as the recorder of every span.
#[derive(Clone)]
pub struct Tracer {
    handle: Arc<Handle>,
}

/// Dropping the last handle closes the command channel, which ends the reporter thread.
struct Handle {
    shared: Arc<TracerState>,
    commands: async_mpsc::UnboundedSender<Command>,
}

static GLOBAL: OnceCell<Tracer> = OnceCell::new();

/// How much earlier than a flush's timeout the reporter gives up (at most a tenth of the
/// timeout): time for its answer to reach the waiting caller.
const REPLY_MARGIN: Duration = Duration::from_millis(50);

/// Starts the process's tracer: checks the options, starts the reporter thread, installs
/// the tracer as the recorder of every span, and makes the options' propagators (if set)
/// the process's. Call it once, early in `main`, and keep a
/// [`shutdown_guard`](Tracer::shutdown_guard) until `main` ends, so that the last spans are
/// delivered. A process that ends without closing its tracer still closes it at exit (on
/// Unix, within [`Options::exit_close_timeout`]) and says on stderr how many spans were lost.
///
/// # Errors
/// A clear [`InitError`] for a missing token, an empty component name, an unusable collector
/// URL, a reserved reporter tag or an out-of-range option; [`InitError::AlreadyInitialized`]
/// when a tracer (or another recorder) is already installed, which keeps working. With
/// [`Options::disabled`] (`OTEL_SDK_DISABLED=true`) no setting is checked: `init` returns a
/// stopped tracer that installs nothing, whatever else the options or the environment say.
pub fn init(options: Options) -> Result<Tracer, InitError> {
    if recorder::installed().is_some() {
        return Err(InitError::AlreadyInitialized);
    }
    let (tracer, warnings) = Tracer::launch(options)?;
    if tracer.shared().config.disabled {
        // Nothing is installed: every span stays a no-op, as without a tracer.
        for warning in &warnings {
            tracer.shared().events.emit(warning);
        }
        return Ok(tracer);
    }
    if recorder::install(Box::new(InstalledTracer(tracer.clone()))).is_err() {
        // Another thread won the race; dropping our handles ends our reporter thread.
        return Err(InitError::AlreadyInitialized);
    }
    let shared = tracer.shared();
    // Drops counted before this tracer was installed are not its own.
    *shared
        .process_drops_seen
        .lock()
        .unwrap_or_else(PoisonError::into_inner) = ProcessDrops::now();
    shared.installed.store(true, Ordering::Release);
    recorder::set_max_logs_per_span(shared.config.limits.max_logs_per_span);
    shared.config.span_caps.apply();
    if let Some(stack) = &shared.config.propagators {
        crate::propagation::set_global_stack(stack.clone());
    }
    if let Some(policy) = &shared.config.sampling {
        crate::sampling::set_global(policy.clone());
    }
    // Only the first successful install gets here.
    let _ = GLOBAL.set(tracer.clone());
    exit::install_hook();
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

/// Closes its tracer when dropped, waiting at most its timeout: at the end of `main`, on an
/// early `return` or `?`, and when a panic unwinds through `main`. Dereferences to the
/// [`Tracer`].
///
/// ```no_run
/// use std::time::Duration;
///
/// let _tracer = lstrace_core::init(lstrace_core::Options::from_env().component_name("users"))?
///     .shutdown_guard(Duration::from_secs(5));
/// // ... the program; its spans are delivered (or counted as lost) when `_tracer` drops.
/// # Ok::<(), lstrace_core::InitError>(())
/// ```
#[must_use = "dropping the guard closes the tracer at once: bind it, e.g. `let _tracer = ...`"]
#[derive(Debug)]
pub struct ShutdownGuard {
    tracer: Tracer,
    timeout: Duration,
}

impl std::ops::Deref for ShutdownGuard {
    type Target = Tracer;

    fn deref(&self) -> &Tracer {
        &self.tracer
    }
}

impl Drop for ShutdownGuard {
    fn drop(&mut self) {
        // Closed already (by `close`, or by the collector): nothing left to do.
        if self.tracer.is_stopped() {
            return;
        }
        let report = self.tracer.close(self.timeout);
        exit::tell_loss(&report, "the tracer closed as its shutdown guard dropped");
    }
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
    /// Starts a tracer that is not installed as the process's recorder (see
    /// [`UninstalledTracer`](uninstalled::UninstalledTracer)).
    fn start_uninstalled(options: Options) -> Result<Tracer, InitError> {
        let (tracer, warnings) = Tracer::launch(options)?;
        for warning in &warnings {
            tracer.shared().events.emit(warning);
        }
        Ok(tracer)
    }

    /// Checks the options and starts the reporter thread, which builds its own runtime.
    fn launch(options: Options) -> Result<(Tracer, Vec<Event>), InitError> {
        let (config, warnings) = options.validate()?;
        let protocol: Box<dyn protocol::ReportProtocol> = match config.protocol {
            Protocol::LightStep => Box::new(protocol::lightstep::LightStep::new(&config)),
            Protocol::Otlp => Box::new(protocol::otlp::Otlp::new(&config)),
        };
        let chunk_bytes = worker::max_chunk_bytes(&config, &*protocol)?;
        let shared = Arc::new(TracerState {
            buffer: Mutex::new(SpanBuffer::new(chunk_bytes, config.protocol)),
            events: Events::new(config.event_handler.clone()),
            config,
            counters: Counters::default(),
            wake: Notify::new(),
            wake_pending: AtomicBool::new(false),
            told_drops: Mutex::new([0; DropReason::ALL.len()]),
            process_drops_seen: Mutex::new(ProcessDrops::default()),
            installed: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
            refusing: AtomicBool::new(false),
        });
        let (commands, receiver) = async_mpsc::unbounded_channel();
        if shared.config.disabled {
            // No reporter thread: flushes return at once, and the tracer refuses spans.
            shared.stopped.store(true, Ordering::Release);
            shared.refusing.store(true, Ordering::Release);
            drop(receiver);
            return Ok((
                Tracer {
                    handle: Arc::new(Handle { shared, commands }),
                },
                warnings,
            ));
        }
        let transport = transport::Transport::new(&shared.config, &*protocol)?;
        let worker = Worker::new(Arc::clone(&shared), transport, protocol);
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

    fn shared(&self) -> &TracerState {
        &self.handle.shared
    }

    /// A guard that closes this tracer, waiting at most `timeout`, when it drops: keep it in
    /// `main` so that the last spans are delivered however `main` ends (a `?`, a panic).
    pub fn shutdown_guard(&self, timeout: Duration) -> ShutdownGuard {
        ShutdownGuard {
            tracer: self.clone(),
            timeout,
        }
    }

    /// Counts since the tracer started. After `close`, spans that were still open when it
    /// closed count as dropped once they finish.
    ///
    /// Once the reporter has stopped, drops counted here (spans that arrive after the close)
    /// are told to the event handler from the calling thread.
    #[must_use]
    pub fn stats(&self) -> Stats {
        let shared = self.shared();
        // Once the tracer refuses spans nothing drains the rings, where spans that finish
        // after the close land: draining them here counts them (as dropped, `Stopped`).
        if shared.refusing.load(Ordering::Acquire) {
            if shared.installed.load(Ordering::Acquire) {
                recorder::drain();
            }
            shared.tell_new_drops();
        }
        shared.counters.snapshot()
    }

    /// True once the tracer stopped: closed, or disabled by the collector; always true for a
    /// tracer started disabled ([`Options::disabled`]).
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
        let completed = if self.send_request(timeout, close, Reply::Blocking(reply)) {
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
        let before = self.stats();
        let (reply, answer) = oneshot::channel();
        let completed = if self.send_request(timeout, close, Reply::Async(reply)) {
            answer.await.unwrap_or(true)
        } else {
            true
        };
        self.report_since(before, completed)
    }

    /// Asks the reporter thread to flush (or close); false when it has already ended. The
    /// reporter gives up a little before `timeout`, so that its answer (and, for a close,
    /// the count of what it dropped) reaches the caller in time.
    fn send_request(&self, timeout: Duration, close: bool, reply: Reply) -> bool {
        let margin = (timeout / 10).min(REPLY_MARGIN);
        let deadline = retry::after(Instant::now(), timeout - margin);
        if close {
            let shared = self.shared();
            shared.stopped.store(true, Ordering::Release);
            if shared.installed.load(Ordering::Acquire) {
                // Spans become no-ops now; the ones already finished are still flushed. They
                // are taken in here, not only by the reporter thread, so that a close that
                // gives up before the reporter reads its request counts them too.
                recorder::stop();
                recorder::drain();
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
            stats: after,
        }
    }
}

/// Spans being taken into the buffer, under its lock: counted as they come, and added to the
/// tracer's counts at once when the intake ends (on drop).
struct Intake<'a> {
    shared: &'a TracerState,
    buffer: MutexGuard<'a, SpanBuffer>,
    held: u64,
    held_bytes: u64,
    added: u64,
    added_bytes: u64,
    full: u64,
    too_large: u64,
    logs_dropped: u64,
    tags_dropped: u64,
}

impl Intake<'_> {
    /// Encodes one span into the buffer, or counts it dropped when the buffer is full or the
    /// span too large.
    #[inline]
    fn take(&mut self, span: &SpanRecord) {
        let config = &self.shared.config;
        // Counted whatever becomes of the span: the tags were dropped when it was made.
        self.tags_dropped += u64::from(span.dropped_tags());
        if self.held >= config.max_buffered_spans as u64
            || self.held_bytes >= config.max_buffered_bytes
        {
            self.full += 1;
            return;
        }
        match self.buffer.push_record(span, &config.limits) {
            Ok(pushed) => {
                self.logs_dropped += pushed.logs_dropped;
                self.held += 1;
                self.held_bytes += pushed.bytes as u64;
                self.added += 1;
                self.added_bytes += pushed.bytes as u64;
            }
            Err((_, logs)) => {
                self.logs_dropped += logs;
                self.too_large += 1;
            }
        }
    }
}

impl Drop for Intake<'_> {
    fn drop(&mut self) {
        let counters = &self.shared.counters;
        {
            let mut tally = counters.tally();
            tally.received += self.added + self.full + self.too_large;
            tally.made += self.added;
            tally.held += self.added;
            tally.held_bytes += self.added_bytes;
            tally.drop_new(self.full, DropReason::BufferFull);
            tally.drop_new(self.too_large, DropReason::TooLarge);
        }
        counters
            .logs_dropped
            .fetch_add(self.logs_dropped, Ordering::Relaxed);
        counters
            .tags_dropped
            .fetch_add(self.tags_dropped, Ordering::Relaxed);
        counters
            .encoding_errors
            .fetch_add(self.too_large, Ordering::Relaxed);
        if worker::report_due(&self.buffer, &self.shared.config) {
            self.shared.wake();
        }
    }
}

/// The tracer as the process's [`Recorder`]. A type of its own, so that the recorder's
/// methods (`dropped` counts drops) are not methods of the public [`Tracer`].
struct InstalledTracer(Tracer);

impl Recorder for InstalledTracer {
    fn record(&self, spans: &mut Spans<'_>) {
        self.0.shared().record(spans);
    }

    fn dropped(&self, count: u64) {
        self.0.shared().ring_dropped(count);
    }

    fn wake(&self) {
        self.0.shared().wake();
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

/// Re-exported by `crate::__private` only.
pub(crate) mod uninstalled {
    #[allow(unused_imports)] // `init` is named in the docs.
    use super::{init, InitError, Options, SpanRecord, Tracer};

    /// A tracer that is not installed as the process's recorder, for the reporter's own tests:
    /// it reports the spans it is given (spans captured by a test recorder, say), with every
    /// other behaviour of the process's tracer, and stops when its last handle is dropped. Not
    /// a public API.
    #[derive(Clone, Debug)]
    pub struct UninstalledTracer(Tracer);

    impl UninstalledTracer {
        /// Checks the options and starts the reporter thread.
        ///
        /// # Errors
        /// As [`init`], except that it is never [`InitError::AlreadyInitialized`].
        pub fn start(options: Options) -> Result<Self, InitError> {
            Tracer::start_uninstalled(options).map(UninstalledTracer)
        }

        /// Hands spans to the tracer, as a drain of the rings does.
        pub fn record(&self, spans: Vec<SpanRecord>) {
            let shared = self.0.shared();
            match shared.intake() {
                Some(mut intake) => spans.iter().for_each(|span| intake.take(span)),
                None => shared.refuse(spans.len()),
            }
        }

        /// Counts spans dropped by a full ring, as a drain of the rings does.
        pub fn dropped(&self, count: u64) {
            self.0.shared().ring_dropped(count);
        }
    }

    impl std::ops::Deref for UninstalledTracer {
        type Target = Tracer;

        fn deref(&self) -> &Tracer {
            &self.0
        }
    }
}
