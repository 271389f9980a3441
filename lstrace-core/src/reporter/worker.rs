//! The reporter thread: drains the rings, cuts reports, sends them one at a time, retries,
//! answers flushes and closes, and tells the event handler what happened.

use super::buffer::Chunk;
use super::events::{DropReason, Event, ReportFailure, StatusReport};
use super::options::{Config, InitError};
use super::retry::{after, backoff, Endpoints};
use super::transport::{Answer, Transport};
use super::Shared;
use crate::clock;
use crate::collector;
use crate::protocol::{
    metrics_sample, Auth, InternalMetrics, MetricsSample, ReportRequest, Reporter, Timestamp,
};
use crate::reporter::events::ReportError;
use prost::Message;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Instant, SystemTime};
use tokio::sync::{mpsc, oneshot};

/// The internal metric of spans dropped since the last accepted report.
pub(crate) const SPANS_DROPPED: &str = "spans.dropped";
/// The internal metric of logs dropped by the per-span limit since the last accepted report.
pub(crate) const LOGS_DROPPED: &str = "logs.dropped";

/// A request from a tracer handle.
pub(crate) struct Command {
    pub(crate) deadline: Instant,
    /// Close after flushing.
    pub(crate) close: bool,
    pub(crate) reply: Reply,
}

/// Where the answer to a flush goes: `true` when everything it covered was delivered or
/// dropped in time.
pub(crate) enum Reply {
    Blocking(std::sync::mpsc::SyncSender<bool>),
    Async(oneshot::Sender<bool>),
}

impl Reply {
    fn send(self, completed: bool) {
        // The caller may have stopped waiting: that is fine.
        match self {
            Reply::Blocking(tx) => drop(tx.try_send(completed)),
            Reply::Async(tx) => drop(tx.send(completed)),
        }
    }
}

/// A flush waiting for every batch numbered below `upto`.
struct Waiter {
    upto: u64,
    deadline: Instant,
    close: bool,
    reply: Reply,
}

/// One report's spans, as they go through attempts.
struct Batch {
    id: u64,
    chunk: Chunk,
    failed_attempts: u32,
    tried: Vec<usize>,
    not_before: Instant,
    /// The drop counts the current attempt carries: (spans, logs).
    carried: (u64, u64),
}

type InFlight = Pin<Box<dyn Future<Output = (Batch, usize, Result<Answer, ReportError>)>>>;

/// The most bytes of spans one report may carry, after its header.
pub(crate) fn max_chunk_bytes(config: &Config) -> Result<usize, InitError> {
    // The largest header: reporter, token and metrics with the widest values.
    let mut header = header(config);
    header.internal_metrics = Some(metrics(u64::MAX, u64::MAX, u64::MAX, u64::MAX));
    let header_len = header.encoded_len() + 64;
    match config.max_report_bytes.checked_sub(header_len) {
        Some(budget) if budget >= 1024 => Ok(budget),
        _ => Err(InitError::InvalidOption {
            option: "tag",
            reason: "the reporter tags leave no room for spans in a report".into(),
        }),
    }
}

fn header(config: &Config) -> ReportRequest {
    ReportRequest {
        reporter: Some(Reporter {
            reporter_id: crate::id::SpanId::random().get(),
            tags: config.reporter_tags.clone(),
        }),
        auth: Some(Auth {
            access_token: config.access_token.clone(),
        }),
        spans: Vec::new(),
        timestamp_offset_micros: 0,
        internal_metrics: None,
    }
}

fn metrics(start_nanos: u64, now_nanos: u64, spans: u64, logs: u64) -> InternalMetrics {
    let count = |name: &str, value: u64| MetricsSample {
        name: name.to_owned(),
        value: Some(metrics_sample::Value::IntValue(
            i64::try_from(value).unwrap_or(i64::MAX),
        )),
    };
    InternalMetrics {
        start_timestamp: Some(Timestamp::from_unix_nanos(start_nanos)),
        duration_micros: now_nanos.saturating_sub(start_nanos) / 1000,
        logs: Vec::new(),
        counts: vec![count(SPANS_DROPPED, spans), count(LOGS_DROPPED, logs)],
        gauges: Vec::new(),
    }
}

fn wall_clock_nanos() -> u64 {
    clock::system_time_to_unix_nanos(SystemTime::now())
}

pub(crate) struct Worker {
    shared: Arc<Shared>,
    transport: Transport,
    endpoints: Endpoints,
    /// Reporter and auth; the metrics are filled in per attempt.
    header: ReportRequest,
    /// Sealed batches, oldest first; a retried batch goes back to the front.
    queue: VecDeque<Batch>,
    /// The batch being sent (the attempt itself is a future owned by `run`).
    in_flight_id: Option<u64>,
    next_id: u64,
    waiters: Vec<Waiter>,
    next_report: Instant,
    last_send: Option<Instant>,
    /// Drop counts that accepted reports have carried to the collector.
    acked: (u64, u64),
    /// Start of the interval the next report's metrics cover.
    interval_start_nanos: u64,
    /// Drops and encoding errors already told to the event handler.
    emitted_drops: [u64; 5],
    closed: bool,
}

enum Step {
    Command(Option<Command>),
    Answer(Batch, usize, Result<Answer, ReportError>),
    Woken,
    Timer,
}

impl Worker {
    pub(crate) fn new(shared: Arc<Shared>, transport: Transport) -> Self {
        let config = &shared.config;
        let now = Instant::now();
        Worker {
            endpoints: Endpoints::new(transport.endpoint_count()),
            header: header(config),
            next_report: after(now, config.reporting_period),
            transport,
            queue: VecDeque::new(),
            in_flight_id: None,
            next_id: 0,
            waiters: Vec::new(),
            last_send: None,
            acked: (0, 0),
            interval_start_nanos: wall_clock_nanos(),
            emitted_drops: [0; 5],
            closed: false,
            shared,
        }
    }

    pub(crate) async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        let shared = Arc::clone(&self.shared);
        let mut in_flight: Option<InFlight> = None;
        loop {
            let now = Instant::now();
            self.expire_waiters(now);
            if in_flight.is_none() {
                in_flight = self.start_next(now);
            }
            // After start_next, which may have found a queued report with nothing left to
            // carry and resolved it.
            self.complete_waiters();
            if self.closed {
                break;
            }
            self.emit_new_drops();
            let wake_at = tokio::time::Instant::from_std(self.next_wake(now, in_flight.is_some()));
            let step = tokio::select! {
                biased;
                command = commands.recv() => Step::Command(command),
                (batch, endpoint, result) = poll(&mut in_flight) => Step::Answer(batch, endpoint, result),
                () = shared.wake.notified() => Step::Woken,
                () = tokio::time::sleep_until(wake_at) => Step::Timer,
            };
            match step {
                Step::Command(Some(command)) => self.on_command(command),
                // Every handle is gone: nobody can flush or read counts any more.
                Step::Command(None) => break,
                Step::Answer(batch, endpoint, result) => {
                    in_flight = None;
                    self.on_answer(batch, endpoint, result);
                }
                Step::Woken => {
                    shared.woken();
                    self.drain();
                    // Lets the runtime run the HTTP connection and poll the sockets: when
                    // spans arrive faster than they are drained, a wake is always pending,
                    // and without this the loop never waits, so the report in flight never
                    // progresses (every span then waits for the final flush, or is dropped).
                    tokio::task::yield_now().await;
                }
                Step::Timer => self.on_timer(Instant::now()),
            }
        }
        drop(in_flight);
        self.shut_down();
    }

    /// Moves finished spans from every thread's ring into the buffer (only the process's
    /// installed tracer owns the rings).
    fn drain(&self) {
        if self.shared.installed.load(Ordering::Acquire) {
            collector::drain();
        }
    }

    fn on_command(&mut self, command: Command) {
        self.drain();
        self.seal(Instant::now(), true);
        self.waiters.push(Waiter {
            upto: self.next_id,
            deadline: command.deadline,
            close: command.close,
            reply: command.reply,
        });
    }

    fn on_timer(&mut self, now: Instant) {
        if now >= self.next_report {
            self.drain();
            self.seal(now, true);
            self.next_report = after(now, self.shared.config.reporting_period);
        }
    }

    /// Spans dropped (or logs dropped) that no accepted report has carried yet.
    fn unreported_drops(&self) -> (u64, u64) {
        let counters = &self.shared.counters;
        (
            counters.dropped_total() - self.acked.0,
            counters.logs_dropped.load(Ordering::Relaxed) - self.acked.1,
        )
    }

    /// Turns the buffer into batches. With `report_drops`, drop counts that no queued batch
    /// will carry get a report without spans (a batch in flight may have left before them).
    fn seal(&mut self, now: Instant, report_drops: bool) {
        let mut chunks = self.shared.buffer().take();
        if report_drops
            && chunks.is_empty()
            && self.queue.is_empty()
            && self.unreported_drops() != (0, 0)
        {
            chunks.push(Chunk::default());
        }
        for chunk in chunks {
            self.queue.push_back(Batch {
                id: self.next_id,
                chunk,
                failed_attempts: 0,
                tried: Vec::new(),
                not_before: now,
                carried: (0, 0),
            });
            self.next_id += 1;
        }
    }

    fn buffer_half_full(&self) -> bool {
        self.shared.buffer().len() >= (self.shared.config.max_buffered_spans / 2).max(1)
    }

    /// The buffer is half full and the last report is at least the min period old.
    fn early_send_due(&self, now: Instant) -> bool {
        self.buffer_half_full()
            && self
                .last_send
                .is_none_or(|t| now >= after(t, self.shared.config.min_reporting_period))
    }

    /// Starts the next attempt, if one is due.
    fn start_next(&mut self, now: Instant) -> Option<InFlight> {
        if self.queue.is_empty() && self.early_send_due(now) {
            self.drain();
            self.seal(now, false);
        }
        let mut batch = loop {
            if self.queue.front()?.not_before > now {
                return None;
            }
            let batch = self.queue.pop_front()?;
            // A report for drop counts that an earlier report has carried meanwhile: done.
            if batch.chunk.spans > 0 || self.unreported_drops() != (0, 0) {
                break batch;
            }
        };
        let endpoint = self.endpoints.pick(now, &batch.tried);
        batch.carried = self.unreported_drops();
        let now_nanos = wall_clock_nanos();
        self.header.internal_metrics = Some(metrics(
            self.interval_start_nanos,
            now_nanos,
            batch.carried.0,
            batch.carried.1,
        ));
        let body = batch.chunk.lend(&self.header);
        self.in_flight_id = Some(batch.id);
        self.last_send = Some(now);
        let send = self
            .transport
            .send(endpoint, body, self.shared.config.report_timeout);
        Some(Box::pin(async move {
            let result = send.await;
            (batch, endpoint, result)
        }))
    }

    fn on_answer(
        &mut self,
        mut batch: Batch,
        endpoint: usize,
        result: Result<Answer, ReportError>,
    ) {
        self.in_flight_id = None;
        let now = Instant::now();
        let config = &self.shared.config;
        let counters = &self.shared.counters;
        let spans = batch.chunk.spans;
        match result {
            Ok(Answer::Accepted) => {
                self.endpoints.succeeded(endpoint);
                counters.reports_sent.fetch_add(1, Ordering::Relaxed);
                counters.sent.fetch_add(spans as u64, Ordering::Relaxed);
                counters.held.fetch_sub(spans as u64, Ordering::Relaxed);
                self.acked.0 += batch.carried.0;
                self.acked.1 += batch.carried.1;
                self.interval_start_nanos = wall_clock_nanos();
                self.shared.events.emit(&Event::ReportSent(StatusReport {
                    endpoint: self.transport.endpoint_name(endpoint),
                    spans_sent: spans,
                    spans_dropped: batch.carried.0,
                    logs_dropped: batch.carried.1,
                }));
                self.shared.buffer().recycle(batch.chunk);
            }
            Ok(Answer::Disable) => {
                self.queue.push_front(batch);
                self.disable(endpoint);
            }
            Err(error) => {
                counters.reports_failed.fetch_add(1, Ordering::Relaxed);
                self.endpoints
                    .failed(endpoint, after(now, config.reporting_period));
                batch.failed_attempts += 1;
                batch.tried.push(endpoint);
                let will_retry =
                    error.is_retryable() && batch.failed_attempts < config.max_report_attempts;
                self.shared.events.emit(&Event::ReportFailed(ReportFailure {
                    endpoint: self.transport.endpoint_name(endpoint),
                    error,
                    spans,
                    attempt: batch.failed_attempts,
                    will_retry,
                }));
                if will_retry {
                    batch.not_before = if self.endpoints.has_fresh(now, &batch.tried) {
                        now
                    } else {
                        after(
                            now,
                            backoff(
                                batch.failed_attempts,
                                config.min_reporting_period,
                                config.reporting_period,
                            ),
                        )
                    };
                    // The attempt is over: the transport has let go of the body.
                    batch.chunk.reclaim();
                    self.queue.push_front(batch);
                } else {
                    counters.held.fetch_sub(spans as u64, Ordering::Relaxed);
                    counters.drop_spans(spans as u64, DropReason::ReportFailed);
                    self.shared.buffer().recycle(batch.chunk);
                }
            }
        }
    }

    /// The collector said stop: stop recording, discard what waits, tell the program.
    fn disable(&mut self, endpoint: usize) {
        self.shared.stopped.store(true, Ordering::Release);
        if self.shared.installed.load(Ordering::Acquire) {
            collector::stop();
        }
        let discarded = self.discard();
        self.shared.events.emit(&Event::TracerDisabled {
            endpoint: self.transport.endpoint_name(endpoint),
            discarded_spans: discarded,
        });
        // The flushes waiting are answered: there is nothing more to wait for.
        for waiter in self.waiters.drain(..) {
            waiter.reply.send(true);
        }
        self.closed = true;
    }

    /// Refuses spans from now on, and drops (and counts) every span held; returns how many.
    fn discard(&mut self) -> u64 {
        self.shared.refusing.store(true, Ordering::Release);
        self.shared.buffer().take();
        self.queue.clear();
        let counters = &self.shared.counters;
        let held = counters.held.swap(0, Ordering::Relaxed);
        counters.drop_spans(held, DropReason::Stopped);
        held
    }

    fn oldest_outstanding(&self) -> Option<u64> {
        self.queue
            .iter()
            .map(|b| b.id)
            .chain(self.in_flight_id)
            .min()
    }

    fn complete_waiters(&mut self) {
        let oldest = self.oldest_outstanding();
        let (done, waiting): (Vec<Waiter>, Vec<Waiter>) = std::mem::take(&mut self.waiters)
            .into_iter()
            .partition(|w| oldest.is_none_or(|o| o >= w.upto));
        self.waiters = waiting;
        for waiter in done {
            self.answer(waiter, true);
        }
    }

    fn expire_waiters(&mut self, now: Instant) {
        let (expired, waiting): (Vec<Waiter>, Vec<Waiter>) = std::mem::take(&mut self.waiters)
            .into_iter()
            .partition(|w| w.deadline <= now);
        self.waiters = waiting;
        for waiter in expired {
            self.answer(waiter, false);
        }
    }

    fn answer(&mut self, waiter: Waiter, completed: bool) {
        if waiter.close {
            // Refuse spans before the closer hears back: what it sends afterwards is counted
            // as dropped at once.
            self.shared.refusing.store(true, Ordering::Release);
            self.closed = true;
        }
        waiter.reply.send(completed);
    }

    /// When the loop must look again even if nothing happens.
    fn next_wake(&self, now: Instant, sending: bool) -> Instant {
        let mut at = self.next_report;
        if !sending {
            if let Some(batch) = self.queue.front() {
                at = at.min(batch.not_before);
            } else if self.buffer_half_full() {
                if let Some(last) = self.last_send {
                    at = at.min(after(last, self.shared.config.min_reporting_period));
                }
            }
        }
        for waiter in &self.waiters {
            at = at.min(waiter.deadline);
        }
        at.max(now)
    }

    /// Tells the event handler about drops since the last call: once per drop.
    fn emit_new_drops(&mut self) {
        for reason in DropReason::ALL {
            let total = self.shared.counters.dropped[reason.index()].load(Ordering::Relaxed);
            let count = total - self.emitted_drops[reason.index()];
            if count == 0 {
                continue;
            }
            self.emitted_drops[reason.index()] = total;
            if reason == DropReason::TooLarge {
                self.shared.events.emit(&Event::EncodingError {
                    message: format!(
                        "{count} spans are larger than a report may be ({} bytes)",
                        self.shared.config.max_report_bytes
                    ),
                });
            }
            self.shared
                .events
                .emit(&Event::SpansDropped { count, reason });
        }
    }

    /// The loop ended (closed, disabled, or every handle dropped): what is left is dropped
    /// and counted, and whoever still waits is answered.
    fn shut_down(&mut self) {
        self.shared.stopped.store(true, Ordering::Release);
        self.discard();
        self.emit_new_drops();
        for waiter in self.waiters.drain(..) {
            waiter.reply.send(false);
        }
    }
}

/// The in-flight attempt's answer, or never when there is none.
async fn poll(in_flight: &mut Option<InFlight>) -> (Batch, usize, Result<Answer, ReportError>) {
    match in_flight {
        Some(attempt) => attempt.await,
        None => std::future::pending().await,
    }
}
