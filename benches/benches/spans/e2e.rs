//! End to end: spans created, encoded by the reporter and delivered to the local satellite
//! over loopback HTTP, each with three tags and one log, in either protocol; and the peer:
//! `tracing` + `tracing-opentelemetry` + the OpenTelemetry SDK's batch processor with
//! `opentelemetry-otlp`'s HTTP/protobuf exporter, to the same satellite. Each measurement runs
//! in a child process of its own, since tracers install once per process.

use lstrace::reporter::Protocol;
use lstrace::satellite::LocalSatellite;
use lstrace::Options;
use std::fmt;
use std::hint::black_box;
use std::time::{Duration, Instant};

/// The end-to-end measurements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Measurement {
    /// One thread makes spans as fast as it can for a while; the reporter delivers what it
    /// can and drops (and counts) the rest.
    Saturated,
    /// One thread makes spans at a fixed rate, below what the reporter delivers: nothing
    /// may be dropped.
    Paced,
    /// The collector is down while 100,000 spans are made: the reporter holds them all
    /// (bytes of memory per span held); then it comes back, and the time to deliver them
    /// is measured.
    FullBuffer,
    /// [`Saturated`](Measurement::Saturated) over OTLP/HTTP.
    SaturatedOtlp,
    /// [`Paced`](Measurement::Paced) over OTLP/HTTP.
    PacedOtlp,
    /// [`FullBuffer`](Measurement::FullBuffer) over OTLP/HTTP.
    FullBufferOtlp,
    /// The peer, saturated: `tracing` spans through `tracing-opentelemetry`, the SDK's batch
    /// span processor and `opentelemetry-otlp`'s HTTP/protobuf exporter. The SDK drops what
    /// its queue cannot hold without counting it: here dropped is created less delivered.
    SaturatedOtelSdk,
}

/// Every measurement, in the order the report lists them.
pub(crate) const ALL: &[Measurement] = &[
    Measurement::Saturated,
    Measurement::SaturatedOtlp,
    Measurement::SaturatedOtelSdk,
    Measurement::Paced,
    Measurement::PacedOtlp,
    Measurement::FullBuffer,
    Measurement::FullBufferOtlp,
];

impl Measurement {
    /// Whether it runs at a fixed rate (given as `--rate`).
    pub(crate) fn is_paced(self) -> bool {
        matches!(self, Measurement::Paced | Measurement::PacedOtlp)
    }

    /// Parses the `Display` form.
    pub(crate) fn parse(text: &str) -> Option<Measurement> {
        ALL.iter().copied().find(|m| m.to_string() == text)
    }
}

impl fmt::Display for Measurement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Measurement::Saturated => "e2e-saturated",
            Measurement::Paced => "e2e-paced",
            Measurement::FullBuffer => "e2e-full-buffer",
            Measurement::SaturatedOtlp => "e2e-saturated-otlp",
            Measurement::PacedOtlp => "e2e-paced-otlp",
            Measurement::FullBufferOtlp => "e2e-full-buffer-otlp",
            Measurement::SaturatedOtelSdk => "e2e-saturated-otel-sdk",
        })
    }
}

/// The reporter's buffer for the throughput runs: with the default (1000 spans, reports at
/// most every 500 ms when half full) a reporter is built to deliver a few thousand spans a
/// second, not millions.
const THROUGHPUT_BUFFER: usize = 200_000;

/// The spans held while the collector is down, then delivered, in the full-buffer run.
const FULL_BUFFER: usize = 100_000;

/// The reporter's first retry after a failed report, in the full-buffer run, and (as the
/// reporting period) the cap of its backoff: once the collector is back, the reporter tries
/// it again within that.
const FULL_BUFFER_RETRY: (Duration, Duration) =
    (Duration::from_millis(10), Duration::from_millis(100));

/// The rates of the paced runs, in spans per second: the target, and below it.
pub(crate) const PACED_RATES: &[u64] = &[1_000_000, 250_000, 100_000];

/// One span with three tags (a string, an integer, a boolean) and one log.
#[inline(never)]
fn one_span(i: u64) {
    let _span = lstrace::span("e2e.op")
        .with_tag("component", "bench")
        .with_tag("i", i)
        .with_tag("ok", true)
        .start();
    lstrace::log([("event", "step")]);
    black_box(i);
}

/// What one run found, as `key=value` words for the parent to print.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    pub created: u64,
    /// Spans the reporter took from the rings (sent, held, or dropped by the reporter);
    /// the rest of the dropped ones were dropped by their thread, its ring full.
    pub received: u64,
    pub sent: u64,
    pub dropped: u64,
    pub seconds: f64,
    pub satellite_spans: u64,
    pub bytes_per_buffered_span: Option<f64>,
    pub flush_seconds: Option<f64>,
    /// CPU time of the process's threads but the satellite's: making, encoding, sending.
    pub cpu_seconds: f64,
    /// CPU time of the one thread that drains, encodes and sends: lstrace's reporter, or
    /// the peer's batch span processor.
    pub reporter_cpu_seconds: f64,
    /// Request body bytes the satellite received.
    pub wire_bytes: u64,
}

impl Outcome {
    pub(crate) fn to_line(&self) -> String {
        format!(
            "E2E created={} received={} sent={} dropped={} seconds={} satellite={} bytes_per_span={} flush_seconds={} cpu={} reporter_cpu={} wire_bytes={}",
            self.created,
            self.received,
            self.sent,
            self.dropped,
            self.seconds,
            self.satellite_spans,
            self.bytes_per_buffered_span.map_or(-1.0, |b| b),
            self.flush_seconds.map_or(-1.0, |s| s),
            self.cpu_seconds,
            self.reporter_cpu_seconds,
            self.wire_bytes,
        )
    }

    pub(crate) fn from_line(line: &str) -> Option<Outcome> {
        let words = line.strip_prefix("E2E ")?;
        let mut outcome = Outcome::default();
        for word in words.split(' ') {
            let (key, value) = word.split_once('=')?;
            match key {
                "created" => outcome.created = value.parse().ok()?,
                "received" => outcome.received = value.parse().ok()?,
                "sent" => outcome.sent = value.parse().ok()?,
                "dropped" => outcome.dropped = value.parse().ok()?,
                "seconds" => outcome.seconds = value.parse().ok()?,
                "satellite" => outcome.satellite_spans = value.parse().ok()?,
                "bytes_per_span" => {
                    let b: f64 = value.parse().ok()?;
                    outcome.bytes_per_buffered_span = (b >= 0.0).then_some(b);
                }
                "flush_seconds" => {
                    let s: f64 = value.parse().ok()?;
                    outcome.flush_seconds = (s >= 0.0).then_some(s);
                }
                "cpu" => outcome.cpu_seconds = value.parse().ok()?,
                "reporter_cpu" => outcome.reporter_cpu_seconds = value.parse().ok()?,
                "wire_bytes" => outcome.wire_bytes = value.parse().ok()?,
                _ => return None,
            }
        }
        Some(outcome)
    }

    /// Spans delivered per second.
    pub(crate) fn delivered_per_second(&self) -> f64 {
        self.sent as f64 / self.seconds
    }

    /// CPU time per delivered span, in nanoseconds.
    pub(crate) fn cpu_nanos_per_span(&self) -> f64 {
        self.cpu_seconds * 1e9 / self.sent.max(1) as f64
    }

    /// Spans delivered per second of the reporter thread's CPU time: what one reporter
    /// thread can deliver when it has a core to itself.
    pub(crate) fn delivered_per_reporter_cpu_second(&self) -> f64 {
        self.sent as f64 / self.reporter_cpu_seconds
    }

    /// Request bytes per delivered span.
    pub(crate) fn wire_bytes_per_span(&self) -> f64 {
        self.wire_bytes as f64 / self.sent.max(1) as f64
    }
}

/// Runs one measurement in this process (`rate`: spans per second of a paced run). `quick`
/// makes it tiny (the smoke run).
pub(crate) fn run(measurement: Measurement, rate: u64, quick: bool) -> Result<Outcome, String> {
    let protocol = match measurement {
        Measurement::SaturatedOtlp | Measurement::PacedOtlp | Measurement::FullBufferOtlp => {
            Protocol::Otlp
        }
        _ => Protocol::LightStep,
    };
    if matches!(
        measurement,
        Measurement::FullBuffer | Measurement::FullBufferOtlp
    ) {
        return full_buffer(protocol, quick);
    }
    let satellite = start_satellite(std::net::SocketAddr::from((
        std::net::Ipv4Addr::LOCALHOST,
        0,
    )))?;
    let seconds = if quick { 0.02 } else { 2.0 };
    if measurement == Measurement::SaturatedOtelSdk {
        return crate::with_otlp_exporter::run(&satellite, seconds);
    }
    let tracer = lstrace::init(
        options(protocol, &satellite.url())
            .max_buffered_spans(THROUGHPUT_BUFFER)
            .reporting_period(Duration::from_millis(100))
            .min_reporting_period(Duration::from_millis(5)),
    )
    .map_err(|e| format!("init: {e}"))?;
    let mut outcome = Outcome::default();
    let start = Instant::now();
    if measurement.is_paced() {
        // Batches of 1000, each started on schedule.
        let batch = 1000;
        let every = Duration::from_secs_f64(batch as f64 / rate.max(1) as f64);
        let mut next = start;
        while start.elapsed().as_secs_f64() < seconds {
            for _ in 0..batch {
                one_span(outcome.created);
                outcome.created += 1;
            }
            next += every;
            if let Some(wait) = next.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
    } else {
        while start.elapsed().as_secs_f64() < seconds {
            for _ in 0..1000 {
                one_span(outcome.created);
                outcome.created += 1;
            }
        }
    }
    finish(&tracer, &satellite, outcome, start)
}

/// The full-buffer measurement: the collector is down (nothing listens on its port) while
/// the spans are made, so the reporter holds every one of them, retrying; then a satellite
/// starts on that port and the time until every span is delivered is measured.
fn full_buffer(protocol: Protocol, quick: bool) -> Result<Outcome, String> {
    let down = std::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map_err(|e| format!("no free port: {e}"))?;
    let spans = if quick { 1000 } else { FULL_BUFFER as u64 };
    let (first_retry, longest_retry) = FULL_BUFFER_RETRY;
    let tracer = lstrace::init(
        options(protocol, &format!("http://{down}"))
            // Twice what is made: the bound is not what is measured.
            .max_buffered_spans(2 * spans as usize)
            .min_reporting_period(first_retry)
            .reporting_period(longest_retry)
            .max_report_attempts(u32::MAX)
            // The failed reports are the point: not printed.
            .event_handler(|_| {}),
    )
    .map_err(|e| format!("init: {e}"))?;
    let mut outcome = Outcome::default();
    let start = Instant::now();
    let rss_before = resident_bytes();
    // In steps no faster than the reporter drains the rings, so that no ring overflows.
    for _ in 0..spans / 1000 {
        for _ in 0..1000 {
            one_span(outcome.created);
            outcome.created += 1;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    // Every span reaches the reporter, which holds it (or drops and counts it, if a ring
    // was full): with the collector down, none can be sent.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let stats = tracer.stats();
        if stats.spans_sent > 0 {
            return Err(format!(
                "{} spans were sent with the collector down",
                stats.spans_sent
            ));
        }
        if stats.spans_buffered + stats.spans_dropped >= outcome.created {
            break;
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "after 10 s the reporter holds {} of {} spans ({} dropped)",
                stats.spans_buffered, outcome.created, stats.spans_dropped
            ));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let held = tracer.stats().spans_buffered;
    if let (Some(before), Some(after)) = (rss_before, resident_bytes()) {
        if held > 0 {
            outcome.bytes_per_buffered_span =
                Some(after.saturating_sub(before) as f64 / held as f64);
        }
    }
    // The collector comes back.
    let satellite = start_satellite(down)?;
    let back = Instant::now();
    let flush = lstrace::flush(Duration::from_secs(60));
    outcome.flush_seconds = Some(back.elapsed().as_secs_f64());
    if flush.timed_out {
        return Err("the delivery of the held spans timed out".into());
    }
    finish(&tracer, &satellite, outcome, start)
}

/// A local satellite on `addr` that keeps every report, so that its count of spans
/// received is whole.
fn start_satellite(addr: std::net::SocketAddr) -> Result<LocalSatellite, String> {
    let mut limits = lstrace::satellite::Limits::default();
    limits.max_kept_report_bytes = usize::MAX;
    LocalSatellite::start_with_limits(addr, limits).map_err(|e| format!("satellite: {e}"))
}

/// The options every run shares.
fn options(protocol: Protocol, collector_url: &str) -> Options {
    Options::new("lstrace-benches-token")
        .protocol(protocol)
        .component_name("lstrace-benches")
        .collector_url(collector_url)
}

/// Flushes what is left, and completes `outcome` with the reporter's counts, the CPU time
/// spent and what the satellite received.
fn finish(
    tracer: &lstrace::Tracer,
    satellite: &LocalSatellite,
    mut outcome: Outcome,
    start: Instant,
) -> Result<Outcome, String> {
    let flush = lstrace::flush(Duration::from_secs(60));
    outcome.seconds = start.elapsed().as_secs_f64();
    outcome.cpu_seconds = thread_cpu_seconds(|name| !name.starts_with(SATELLITE_THREAD));
    outcome.reporter_cpu_seconds = thread_cpu_seconds(|name| name == REPORTER_THREAD);
    if flush.timed_out {
        return Err("the final flush timed out".into());
    }
    let stats = tracer.stats();
    outcome.sent = stats.spans_sent;
    outcome.received = stats.spans_received;
    outcome.dropped = stats.spans_dropped;
    delivered(satellite, &mut outcome);
    Ok(outcome)
}

/// What the satellite received, of either protocol: spans and request bytes.
pub(crate) fn delivered(satellite: &LocalSatellite, outcome: &mut Outcome) {
    let lightstep = satellite.reports();
    let otlp = satellite.otlp_requests();
    outcome.satellite_spans =
        (satellite.lightstep_spans().len() + satellite.otlp_spans().len()) as u64;
    outcome.wire_bytes = lightstep.iter().map(|r| r.body_len as u64).sum::<u64>()
        + otlp.iter().map(|r| r.body_len as u64).sum::<u64>();
}

/// The local satellite's thread, as /proc names it (names are cut to 15 bytes:
/// "lstrace-satellite-PORT" shows as this).
pub(crate) const SATELLITE_THREAD: &str = "lstrace-satell";

/// The reporter thread, as /proc names it.
const REPORTER_THREAD: &str = "lstrace-reporte";

/// CPU time (user and system) of this process's threads whose name `counted` accepts,
/// from /proc (Linux only; 0 elsewhere): nanoseconds from `schedstat`, else clock ticks
/// from `stat`. Threads that already ended are not counted: the measured ones (the span
/// maker, the reporter or exporter) run to the end.
pub(crate) fn thread_cpu_seconds(counted: impl Fn(&str) -> bool) -> f64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0.0;
    };
    let mut seconds = 0.0;
    for task in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        if !counted(&stat[open + 1..close]) {
            continue;
        }
        let schedstat = std::fs::read_to_string(task.path().join("schedstat")).ok();
        let nanos = schedstat.as_deref().and_then(|s| {
            s.split_whitespace()
                .next()
                .and_then(|n| n.parse::<u64>().ok())
        });
        if let Some(nanos) = nanos {
            seconds += nanos as f64 / 1e9;
            continue;
        }
        // After the name: state (field 3), ..., utime (14), stime (15).
        let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        let field = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<u64>().ok())
                .unwrap_or(0)
        };
        // The kernel's USER_HZ is 100 on every Linux this runs on.
        seconds += (field(11) + field(12)) as f64 / 100.0;
    }
    seconds
}

/// This process's resident memory, from /proc (Linux only).
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}
