//! The reporter thread: drains the rings, cuts reports, sends several at a time, retries
//! elsewhere, answers flushes and closes, and tells the event handler what happened.
//!
//! Every span the reporter holds is in exactly one place: the buffer, a queued batch, or a
//! batch in flight; the counts ([`Tally`](super::Tally)) move it to sent or dropped when
//! it leaves. A report is sealed every reporting period, on a flush, and as soon as the
//! buffer holds an eighth of its bound (or a full report): bursts leave at once instead of
//! waiting for the clock. Up to [`MAX_IN_FLIGHT`] reports are sent at once, each to the
//! healthy collector with the fewest in flight (see the `retry` module).
//!
//! A report that has had no answer for a fifth of the report timeout, or for half the time
//! a flush waiting for it was given, is hedged: the same body is sent to another collector
//! that may take it, so a hung collector holds back no report for long, and `flush(t)`
//! delivers through a healthy collector within `t`. The first acceptance counts and the
//! other attempt is cancelled, its answer never heard, so the counts never double; a
//! collector overtaken that way backs off like one that failed. The collector may still
//! have ingested the report it never answered: then its spans (and the drop counts it
//! carried) arrive twice. Only hedged reports can arrive twice.

use super::buffer::{Chunk, SpanBuffer};
use super::config::{Config, InitError};
use super::events::{DropReason, Event, ReportError, ReportFailure, StatusReport};
use super::protocol::{Answer, Carried, ReportBody, ReportProtocol};
use super::retry::{after, Endpoints};
use super::transport::{RawAnswer, Transport};
use super::TracerState;
use crate::clock;
use crate::recorder;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Instant, SystemTime};
use tokio::sync::{mpsc, oneshot};
use tokio::task::{self, JoinError, JoinSet};

/// The most reports in flight at once: enough to keep delivering at 50,000 spans a second
/// while a satellite takes tens of milliseconds to answer or one satellite hangs, few
/// enough that a broken network does not hold many reports' memory. Each may have a hedge
/// besides (the same body, shared): at most twice as many HTTP requests.
pub(crate) const MAX_IN_FLIGHT: usize = 4;

/// A report leaves early once the buffer holds this fraction of `max_buffered_spans`.
const FILL_FRACTION: usize = 8;

/// A report unanswered for this fraction of the report timeout is hedged: a satellite
/// answers within milliseconds, and a fifth of the timeout (1 s by default) without an
/// answer means it is hung or overloaded.
const HEDGE_FRACTION: u32 = 5;

/// Whether the buffer holds enough for a report to leave before its period.
pub(crate) fn report_due(buffer: &SpanBuffer, config: &Config) -> bool {
    buffer.has_full_chunk() || buffer.len() >= (config.max_buffered_spans / FILL_FRACTION).max(1)
}

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
    /// Halfway to the deadline: the reports it waits for are hedged from then on.
    hedge_at: Instant,
    close: bool,
    reply: Reply,
}

/// One report's spans, as they go through attempts.
struct Batch {
    id: u64,
    chunk: Chunk,
    /// The encoded size of its spans.
    bytes: u64,
    failed_attempts: u32,
    tried: Vec<usize>,
    /// The drop counts the current attempt carries.
    carried: Carried,
}

/// A batch whose report is in flight.
struct Flight {
    batch: Batch,
    /// The report's body, shared with its attempts, for a hedge to send again.
    body: ReportBody,
    /// One attempt, or two once hedged, oldest first.
    attempts: Vec<Attempt>,
}

/// One HTTP exchange carrying a report.
struct Attempt {
    task: task::AbortHandle,
    endpoint: usize,
    started: Instant,
}

/// The most bytes of spans one report may carry, besides its envelope.
pub(crate) fn max_chunk_bytes(
    config: &Config,
    protocol: &dyn ReportProtocol,
) -> Result<usize, InitError> {
    match config
        .max_report_bytes
        .checked_sub(protocol.max_envelope_bytes())
    {
        Some(budget) if budget >= 1024 => Ok(budget),
        _ => Err(InitError::InvalidOption {
            option: "tag",
            reason: "the reporter tags leave no room for spans in a report".into(),
        }),
    }
}

fn wall_clock_nanos() -> u64 {
    clock::system_time_to_unix_nanos(SystemTime::now())
}

pub(crate) struct Worker {
    shared: Arc<TracerState>,
    transport: Transport,
    protocol: Box<dyn ReportProtocol>,
    endpoints: Endpoints,
    /// Sealed batches waiting for a collector, oldest (and retried) first.
    queue: VecDeque<Batch>,
    /// Batches in flight, by id.
    flights: HashMap<u64, Flight>,
    /// The batch each attempt in flight carries.
    attempt_batches: HashMap<task::Id, u64>,
    attempts: JoinSet<Result<RawAnswer, ReportError>>,
    /// How long an attempt may go unanswered before its report is hedged.
    hedge_delay: std::time::Duration,
    next_id: u64,
    waiters: Vec<Waiter>,
    next_report: Instant,
    /// Drop counts that accepted reports have carried to the collector.
    acked: Carried,
    /// Drop counts that reports in flight carry.
    reserved: Carried,
    /// Start of the interval the next report's metrics cover.
    interval_start_nanos: u64,
    closed: bool,
}

enum Step {
    Command(Option<Command>),
    Answer(Result<(task::Id, Result<RawAnswer, ReportError>), JoinError>),
    Woken,
    Timer,
}

impl Worker {
    pub(crate) fn new(
        shared: Arc<TracerState>,
        transport: Transport,
        protocol: Box<dyn ReportProtocol>,
    ) -> Self {
        let config = &shared.config;
        Worker {
            endpoints: Endpoints::new(
                transport.endpoint_count(),
                config.min_reporting_period,
                config.reporting_period,
            ),
            next_report: after(Instant::now(), config.reporting_period),
            transport,
            protocol,
            queue: VecDeque::new(),
            flights: HashMap::new(),
            attempt_batches: HashMap::new(),
            attempts: JoinSet::new(),
            hedge_delay: config.report_timeout / HEDGE_FRACTION,
            next_id: 0,
            waiters: Vec::new(),
            acked: Carried::default(),
            reserved: Carried::default(),
            interval_start_nanos: wall_clock_nanos(),
            closed: false,
            shared,
        }
    }

    pub(crate) async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        let shared = Arc::clone(&self.shared);
        loop {
            let now = Instant::now();
            self.expire_waiters(now);
            if !self.closed {
                self.start_attempts(now);
                // After start_attempts, which may have found a batch with nothing left to
                // carry and let it go.
                self.complete_waiters();
            }
            if self.closed {
                break;
            }
            shared.tell_new_drops();
            let wake_at = tokio::time::Instant::from_std(self.next_wake(now));
            let attempts = &mut self.attempts;
            let step = tokio::select! {
                biased;
                command = commands.recv() => Step::Command(command),
                Some(joined) = attempts.join_next_with_id(), if !attempts.is_empty() => {
                    Step::Answer(joined)
                }
                () = shared.wake.notified() => Step::Woken,
                () = tokio::time::sleep_until(wake_at) => Step::Timer,
            };
            match step {
                Step::Command(Some(command)) => self.on_command(command),
                // Every handle is gone: nobody can flush or read counts any more.
                Step::Command(None) => break,
                Step::Answer(joined) => self.on_answer(joined),
                Step::Woken => {
                    shared.woken();
                    self.drain();
                    // Lets the runtime run the HTTP connections and poll the sockets: when
                    // spans arrive faster than they are drained, a wake is always pending and
                    // the loop never waits, so reports in flight would progress only when
                    // the task's cooperative budget runs out.
                    tokio::task::yield_now().await;
                }
                Step::Timer => self.on_timer(Instant::now()),
            }
        }
        self.shut_down();
    }

    /// Moves finished spans from every thread's ring into the buffer (only the process's
    /// installed tracer owns the rings).
    fn drain(&self) {
        if self.shared.installed.load(Ordering::Acquire) {
            recorder::drain();
            self.shared.take_in_process_drops();
        }
    }

    fn on_command(&mut self, command: Command) {
        self.drain();
        self.seal(true);
        let now = Instant::now();
        self.waiters.push(Waiter {
            upto: self.next_id,
            deadline: command.deadline,
            hedge_at: after(now, command.deadline.saturating_duration_since(now) / 2),
            close: command.close,
            reply: command.reply,
        });
    }

    fn on_timer(&mut self, now: Instant) {
        if now >= self.next_report {
            self.drain();
            self.seal(true);
            self.next_report = after(now, self.shared.config.reporting_period);
        }
    }

    /// Drop counts that no accepted report has carried and no report in flight carries.
    fn unreported_drops(&self) -> Carried {
        let carried = self.acked.plus(self.reserved);
        Carried {
            spans_dropped: self.shared.counters.tally().dropped_total() - carried.spans_dropped,
            logs_dropped: self.shared.counters.logs_dropped.load(Ordering::Relaxed)
                - carried.logs_dropped,
            tags_dropped: self.shared.counters.tags_dropped.load(Ordering::Relaxed)
                - carried.tags_dropped,
            baggage_dropped: self.shared.counters.baggage_dropped.load(Ordering::Relaxed)
                - carried.baggage_dropped,
            names_truncated: self.shared.counters.names_truncated.load(Ordering::Relaxed)
                - carried.names_truncated,
            fields_left_out: self.shared.counters.fields_left_out.load(Ordering::Relaxed)
                - carried.fields_left_out,
        }
    }

    /// Turns the buffer into batches. With `report_drops`, drop counts that no queued batch
    /// will carry get a report without spans.
    fn seal(&mut self, report_drops: bool) {
        let mut chunks = self.shared.buffer().take();
        if report_drops
            && chunks.is_empty()
            && self.queue.is_empty()
            && self.unreported_drops() != Carried::default()
        {
            chunks.push(Chunk::default());
        }
        for chunk in chunks {
            self.queue.push_back(Batch {
                id: self.next_id,
                bytes: chunk.bytes.len() as u64,
                chunk,
                failed_attempts: 0,
                tried: Vec::new(),
                carried: Carried::default(),
            });
            self.next_id += 1;
        }
    }

    /// Hedges the reports due for it, then starts reports while fewer than
    /// [`MAX_IN_FLIGHT`] are out and a collector may take one; seals the buffer early when
    /// it holds enough.
    fn start_attempts(&mut self, now: Instant) {
        self.start_hedges(now);
        while self.flights.len() < MAX_IN_FLIGHT {
            if self.queue.is_empty() {
                if !report_due(&self.shared.buffer(), &self.shared.config) {
                    return;
                }
                self.drain();
                self.seal(false);
            }
            let Some(mut batch) = self.queue.pop_front() else {
                return;
            };
            // A report for drop counts that another report has carried meanwhile: done.
            if batch.chunk.spans == 0 && self.unreported_drops() == Carried::default() {
                continue;
            }
            let Some(endpoint) = self.endpoints.pick(now, &batch.tried, &[]) else {
                self.queue.push_front(batch);
                return;
            };
            batch.carried = self.unreported_drops();
            self.reserved = self.reserved.plus(batch.carried);
            let body =
                self.protocol
                    .body(&mut batch.chunk, batch.carried, self.interval_start_nanos);
            let attempt = self.spawn_attempt(batch.id, body.clone(), endpoint, now);
            self.flights.insert(
                batch.id,
                Flight {
                    batch,
                    body,
                    attempts: vec![attempt],
                },
            );
        }
    }

    /// Sends a report body to a collector, as an attempt of batch `batch_id`.
    fn spawn_attempt(
        &mut self,
        batch_id: u64,
        body: ReportBody,
        endpoint: usize,
        now: Instant,
    ) -> Attempt {
        let send = self
            .transport
            .send(endpoint, body, self.shared.config.report_timeout);
        let task = self.attempts.spawn(send);
        self.attempt_batches.insert(task.id(), batch_id);
        Attempt {
            task,
            endpoint,
            started: now,
        }
    }

    /// When a report with one attempt in flight is hedged: after the hedge delay, or from
    /// halfway to the deadline of a flush that waits for it, whichever comes first.
    fn hedge_at(&self, flight: &Flight) -> Instant {
        let started = flight
            .attempts
            .first()
            .map_or_else(Instant::now, |a| a.started);
        self.waiters
            .iter()
            .filter(|w| w.upto > flight.batch.id)
            .map(|w| w.hedge_at.max(started))
            .fold(after(started, self.hedge_delay), Instant::min)
    }

    /// Sends the reports that are due for a hedge to another collector, when one may take
    /// them (see the module's documentation).
    fn start_hedges(&mut self, now: Instant) {
        let due: Vec<u64> = self
            .flights
            .values()
            .filter(|f| f.attempts.len() == 1 && self.hedge_at(f) <= now)
            .map(|f| f.batch.id)
            .collect();
        for id in due {
            let Some(flight) = self.flights.get(&id) else {
                continue;
            };
            let busy: Vec<usize> = flight.attempts.iter().map(|a| a.endpoint).collect();
            let Some(endpoint) = self.endpoints.pick(now, &flight.batch.tried, &busy) else {
                continue;
            };
            let body = flight.body.clone();
            let attempt = self.spawn_attempt(id, body, endpoint, now);
            if let Some(flight) = self.flights.get_mut(&id) {
                flight.attempts.push(attempt);
            }
        }
    }

    fn on_answer(&mut self, joined: Result<(task::Id, Result<RawAnswer, ReportError>), JoinError>) {
        let (id, result) = match joined {
            Ok((id, result)) => (id, result),
            Err(e) => (
                e.id(),
                Err(ReportError::Connection(format!(
                    "the report's task failed: {e}"
                ))),
            ),
        };
        // A cancelled attempt (its report was accepted elsewhere, or abandoned) is not heard.
        let Some(batch_id) = self.attempt_batches.remove(&id) else {
            return;
        };
        let Some(mut flight) = self.flights.remove(&batch_id) else {
            return;
        };
        let Some(at) = flight.attempts.iter().position(|a| a.task.id() == id) else {
            return;
        };
        let attempt = flight.attempts.remove(at);
        let endpoint = attempt.endpoint;
        match result.and_then(|raw| raw.read(&*self.protocol)) {
            Ok(answer) => {
                for other in std::mem::take(&mut flight.attempts) {
                    self.cancel(other, &attempt);
                }
                let Flight { batch, body, .. } = flight;
                // The chunk's memory is reused once no body holds it.
                drop(body);
                self.reserved = self.reserved.minus(batch.carried);
                match answer {
                    Answer::Accepted { warning } => self.delivered(batch, endpoint, warning, 0),
                    Answer::Partial { rejected, message } => {
                        let rejected = rejected.min(batch.chunk.spans as u64);
                        self.shared.events.emit(&Event::SpansRejected {
                            endpoint: self.transport.endpoint_name(endpoint),
                            count: rejected,
                            message,
                        });
                        self.delivered(batch, endpoint, None, rejected);
                    }
                    Answer::Disable => {
                        // The report that carried the command was received.
                        self.delivered(batch, endpoint, None, 0);
                        self.disable(endpoint);
                    }
                }
            }
            Err(error) if !flight.attempts.is_empty() => {
                // Its hedge (or the attempt it hedges) may still deliver it.
                self.attempt_failed(&mut flight.batch, endpoint, error, true);
                self.flights.insert(batch_id, flight);
            }
            Err(error) => {
                let Flight { batch, body, .. } = flight;
                drop(body);
                self.reserved = self.reserved.minus(batch.carried);
                self.failed(batch, endpoint, error);
            }
        }
    }

    /// Cancels an attempt whose report `winner` delivered. An attempt that started earlier
    /// was overtaken by its hedge: its collector is slow or hung, and backs off.
    fn cancel(&mut self, attempt: Attempt, winner: &Attempt) {
        attempt.task.abort();
        self.attempt_batches.remove(&attempt.task.id());
        if attempt.started < winner.started {
            let now = Instant::now();
            self.endpoints.failed(attempt.endpoint, now);
            self.shared.events.emit(&Event::Warning {
                message: format!(
                    "no answer from {} after {} ms: the report was delivered through {}, and \
                     {} is left out of the rotation for a while",
                    self.transport.endpoint_name(attempt.endpoint),
                    now.saturating_duration_since(attempt.started).as_millis(),
                    self.transport.endpoint_name(winner.endpoint),
                    self.transport.endpoint_name(attempt.endpoint),
                ),
            });
        } else {
            self.endpoints.abandoned(attempt.endpoint);
        }
    }

    /// A report was accepted, less `rejected` of its spans that the collector refused for
    /// good (counted as dropped, never retried).
    fn delivered(&mut self, batch: Batch, endpoint: usize, warning: Option<String>, rejected: u64) {
        self.endpoints.succeeded(endpoint);
        let counters = &self.shared.counters;
        let spans = batch.chunk.spans - rejected as usize;
        {
            let mut tally = counters.tally();
            let rejected_bytes = batch.bytes * rejected / (batch.chunk.spans as u64).max(1);
            tally.drop_held(rejected, rejected_bytes, DropReason::Rejected);
            tally.deliver(spans as u64, batch.bytes - rejected_bytes);
        }
        counters.reports_sent.fetch_add(1, Ordering::Relaxed);
        self.acked = self.acked.plus(batch.carried);
        self.interval_start_nanos = wall_clock_nanos();
        let events = &self.shared.events;
        let name = self.transport.endpoint_name(endpoint);
        if let Some(warning) = warning {
            events.emit(&Event::Warning {
                message: format!("report of {spans} spans to {name}: {warning}"),
            });
        }
        events.emit(&Event::ReportSent(StatusReport {
            endpoint: name,
            spans_sent: spans,
            spans_dropped: batch.carried.spans_dropped,
            logs_dropped: batch.carried.logs_dropped,
            tags_dropped: batch.carried.tags_dropped,
            baggage_items_dropped: batch.carried.baggage_dropped,
            operation_names_truncated: batch.carried.names_truncated,
            propagation_fields_left_out: batch.carried.fields_left_out,
        }));
        self.shared.buffer().recycle(batch.chunk);
    }

    /// An attempt of `batch` failed: its collector backs off, and the event handler hears
    /// of it. `will_retry` when the batch goes on (retried, or still in flight elsewhere).
    fn attempt_failed(
        &mut self,
        batch: &mut Batch,
        endpoint: usize,
        error: ReportError,
        will_retry: bool,
    ) {
        self.shared
            .counters
            .reports_failed
            .fetch_add(1, Ordering::Relaxed);
        self.endpoints.failed(endpoint, Instant::now());
        if let ReportError::Throttled {
            retry_after: Some(wait),
            ..
        } = error
        {
            // The server said when: no sooner.
            self.endpoints.wait(endpoint, after(Instant::now(), wait));
        }
        batch.failed_attempts += 1;
        batch.tried.push(endpoint);
        self.shared.events.emit(&Event::ReportFailed(ReportFailure {
            endpoint: self.transport.endpoint_name(endpoint),
            error,
            spans: batch.chunk.spans,
            attempt: batch.failed_attempts,
            will_retry,
        }));
    }

    /// The last attempt in flight of `batch` failed: retried, or its spans are dropped.
    fn failed(&mut self, mut batch: Batch, endpoint: usize, error: ReportError) {
        let will_retry = error.is_retryable()
            && batch.failed_attempts + 1 < self.shared.config.max_report_attempts;
        self.attempt_failed(&mut batch, endpoint, error, will_retry);
        if will_retry {
            self.queue.push_front(batch);
        } else {
            let spans = batch.chunk.spans;
            self.shared.counters.tally().drop_held(
                spans as u64,
                batch.bytes,
                DropReason::ReportFailed,
            );
            self.shared.buffer().recycle(batch.chunk);
        }
    }

    /// The collector said stop: stop recording, discard what waits, tell the program.
    fn disable(&mut self, endpoint: usize) {
        self.shared.stopped.store(true, Ordering::Release);
        if self.shared.installed.load(Ordering::Acquire) {
            recorder::stop();
        }
        let discarded = self.abandon();
        self.shared.tell_new_drops();
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

    /// Refuses spans from now on, cancels the reports in flight (a collector's answer after
    /// this is not heard: the spans count as dropped, never as both), and drops and counts
    /// every span held; returns how many.
    fn abandon(&mut self) -> u64 {
        // Dropping the tasks' set aborts them; their bodies go with them.
        drop(std::mem::take(&mut self.attempts));
        self.attempt_batches.clear();
        for (_, flight) in self.flights.drain() {
            for attempt in flight.attempts {
                self.endpoints.abandoned(attempt.endpoint);
            }
        }
        self.queue.clear();
        self.reserved = Carried::default();
        // Under the buffer's lock, which `record` checks `refusing` under: nothing is added
        // after this.
        let mut buffer = self.shared.buffer();
        self.shared.refusing.store(true, Ordering::Release);
        buffer.take();
        let mut tally = self.shared.counters.tally();
        let (held, held_bytes) = (tally.held, tally.held_bytes);
        tally.drop_held(held, held_bytes, DropReason::Stopped);
        held
    }

    fn oldest_outstanding(&self) -> Option<u64> {
        self.queue
            .iter()
            .map(|b| b.id)
            .chain(self.flights.keys().copied())
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
        if waiter.close && !self.closed {
            // Everything still held is dropped and counted before the closer hears back,
            // and what arrives afterwards is counted as dropped at once.
            self.abandon();
            self.shared.tell_new_drops();
            self.closed = true;
        }
        waiter.reply.send(completed);
    }

    /// When the loop must look again even if nothing happens.
    fn next_wake(&self, now: Instant) -> Instant {
        let mut at = self.next_report;
        let mut hedge_waits_for_probe = false;
        for flight in self.flights.values().filter(|f| f.attempts.len() == 1) {
            let hedge_at = self.hedge_at(flight);
            if hedge_at > now {
                at = at.min(hedge_at);
            } else {
                // Due, but no other collector could take it: wait for one.
                hedge_waits_for_probe = true;
            }
        }
        if hedge_waits_for_probe || (!self.queue.is_empty() && self.flights.len() < MAX_IN_FLIGHT) {
            if let Some(probe) = self.endpoints.next_probe() {
                at = at.min(probe);
            }
        }
        for waiter in &self.waiters {
            at = at.min(waiter.deadline);
        }
        at.max(now)
    }

    /// The loop ended (closed, disabled, or every handle dropped): what is left is dropped
    /// and counted, and whoever still waits is answered.
    fn shut_down(&mut self) {
        self.shared.stopped.store(true, Ordering::Release);
        self.abandon();
        self.shared.tell_new_drops();
        for waiter in self.waiters.drain(..) {
            waiter.reply.send(false);
        }
    }
}

#[cfg(all(test, feature = "satellite"))]
mod tests {
    use crate::reporter::events::DropReason;
    use crate::reporter::{Options, Tracer};
    use crate::satellite::LocalSatellite;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    /// A wake always pending (spans arriving faster than they are drained) must not keep the
    /// reporter's loop from letting its reports progress. Waking by hand makes the storm
    /// independent of how fast spans are made and drained, so that it shows in any build.
    #[test]
    fn a_report_leaves_while_a_wake_is_always_pending() {
        let satellite = LocalSatellite::start().unwrap();
        let (tracer, _warnings) = Tracer::launch(
            Options::new("token")
                .component_name("wake-storm")
                .collector_url(satellite.url())
                .reporting_period(Duration::from_secs(3600)),
        )
        .unwrap();
        let stop = AtomicBool::new(false);
        let report = std::thread::scope(|scope| {
            scope.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    tracer.shared().wake();
                    std::hint::spin_loop();
                }
            });
            // Drops unknown to the collector make a report of their own.
            tracer
                .shared()
                .counters
                .tally()
                .drop_new(3, DropReason::RingFull);
            let report = tracer.flush(Duration::from_secs(20));
            stop.store(true, Ordering::Relaxed);
            report
        });
        assert!(!report.timed_out, "{report:?}");
        assert!(satellite.reports_received() >= 1);
        tracer.close(Duration::from_secs(5));
    }
}
