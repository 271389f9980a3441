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
pub enum Measurement {
    /// One thread makes spans as fast as it can for a while; the reporter delivers what it
    /// can and drops (and counts) the rest.
    Saturated,
    /// One thread makes spans at a fixed rate, below what the reporter delivers: nothing
    /// may be dropped.
    Paced,
    /// 100,000 spans are buffered by the reporter (nothing sent), then flushed: bytes per
    /// buffered span, and the time the flush takes.
    FullBuffer,
    /// [`Saturated`](Measurement::Saturated) over OTLP/HTTP.
    SaturatedOtlp,
    /// [`FullBuffer`](Measurement::FullBuffer) over OTLP/HTTP.
    FullBufferOtlp,
    /// The peer, saturated: `tracing` spans through `tracing-opentelemetry`, the SDK's batch
    /// span processor and `opentelemetry-otlp`'s HTTP/protobuf exporter. The SDK drops what
    /// its queue cannot hold without counting it: here dropped is created less delivered.
    SaturatedOtelSdk,
}

/// Every measurement, in the order the report lists them.
pub const ALL: &[Measurement] = &[
    Measurement::Saturated,
    Measurement::SaturatedOtlp,
    Measurement::SaturatedOtelSdk,
    Measurement::Paced,
    Measurement::FullBuffer,
    Measurement::FullBufferOtlp,
];

impl Measurement {
    /// Parses the `Display` form.
    pub fn parse(text: &str) -> Option<Measurement> {
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
            Measurement::FullBufferOtlp => "e2e-full-buffer-otlp",
            Measurement::SaturatedOtelSdk => "e2e-saturated-otel-sdk",
        })
    }
}

/// The reporter's buffer for the throughput runs: with the default (1000 spans, reports at
/// most every 500 ms when half full) a reporter is built to deliver a few thousand spans a
/// second, not millions.
const THROUGHPUT_BUFFER: usize = 200_000;

/// The spans buffered, then flushed, in the full-buffer run.
const FULL_BUFFER: usize = 100_000;

/// The rates of the paced runs, in spans per second: the target, and below it.
pub const PACED_RATES: &[u64] = &[1_000_000, 250_000, 100_000];

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
pub struct Outcome {
    pub created: u64,
    pub sent: u64,
    pub dropped: u64,
    pub seconds: f64,
    pub satellite_spans: u64,
    pub bytes_per_buffered_span: Option<f64>,
    pub flush_seconds: Option<f64>,
    /// CPU time of the process's threads but the satellite's: making, encoding, sending.
    pub cpu_seconds: f64,
    /// Request body bytes the satellite received.
    pub wire_bytes: u64,
}

impl Outcome {
    pub fn to_line(&self) -> String {
        format!(
            "E2E created={} sent={} dropped={} seconds={} satellite={} bytes_per_span={} flush_seconds={} cpu={} wire_bytes={}",
            self.created,
            self.sent,
            self.dropped,
            self.seconds,
            self.satellite_spans,
            self.bytes_per_buffered_span.map_or(-1.0, |b| b),
            self.flush_seconds.map_or(-1.0, |s| s),
            self.cpu_seconds,
            self.wire_bytes,
        )
    }

    pub fn from_line(line: &str) -> Option<Outcome> {
        let words = line.strip_prefix("E2E ")?;
        let mut outcome = Outcome::default();
        for word in words.split(' ') {
            let (key, value) = word.split_once('=')?;
            match key {
                "created" => outcome.created = value.parse().ok()?,
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
                "wire_bytes" => outcome.wire_bytes = value.parse().ok()?,
                _ => return None,
            }
        }
        Some(outcome)
    }

    /// Spans delivered per second.
    pub fn delivered_per_second(&self) -> f64 {
        self.sent as f64 / self.seconds
    }

    /// CPU time per delivered span, in nanoseconds.
    pub fn cpu_nanos_per_span(&self) -> f64 {
        self.cpu_seconds * 1e9 / self.sent.max(1) as f64
    }

    /// Request bytes per delivered span.
    pub fn wire_bytes_per_span(&self) -> f64 {
        self.wire_bytes as f64 / self.sent.max(1) as f64
    }
}

/// Runs one measurement in this process (`rate`: spans per second of a paced run). `quick`
/// makes it tiny (the smoke run).
pub fn run(measurement: Measurement, rate: u64, quick: bool) -> Result<Outcome, String> {
    // Every report kept, so that the satellite's count of spans received is whole.
    let mut limits = lstrace::satellite::Limits::default();
    limits.max_kept_report_bytes = usize::MAX;
    let satellite = LocalSatellite::start_with_limits(
        std::net::SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, 0)),
        limits,
    )
    .map_err(|e| format!("satellite: {e}"))?;
    let seconds = if quick { 0.02 } else { 2.0 };
    if measurement == Measurement::SaturatedOtelSdk {
        return crate::with_otlp_exporter::run(&satellite, seconds);
    }
    let (buffer, period) = match measurement {
        Measurement::Saturated | Measurement::Paced | Measurement::SaturatedOtlp => {
            (THROUGHPUT_BUFFER, Duration::from_millis(100))
        }
        // Nothing is sent until the flush: the buffer never gets half full (which would send
        // a report early) and the period is an hour.
        _ => (2 * FULL_BUFFER + 2, Duration::from_secs(3600)),
    };
    let min_period = match measurement {
        Measurement::FullBuffer | Measurement::FullBufferOtlp => period,
        _ => Duration::from_millis(5),
    };
    let protocol = match measurement {
        Measurement::SaturatedOtlp | Measurement::FullBufferOtlp => Protocol::Otlp,
        _ => Protocol::LightStep,
    };
    let tracer = lstrace::init(
        Options::new("lstrace-benches-token")
            .protocol(protocol)
            .component_name("lstrace-benches")
            .collector_url(satellite.url())
            .max_buffered_spans(buffer)
            .reporting_period(period)
            .min_reporting_period(min_period),
    )
    .map_err(|e| format!("init: {e}"))?;
    let mut outcome = Outcome::default();
    let start = Instant::now();
    match measurement {
        Measurement::Saturated | Measurement::SaturatedOtlp | Measurement::SaturatedOtelSdk => {
            while start.elapsed().as_secs_f64() < seconds {
                for _ in 0..1000 {
                    one_span(outcome.created);
                    outcome.created += 1;
                }
            }
        }
        Measurement::Paced => {
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
        }
        Measurement::FullBuffer | Measurement::FullBufferOtlp => {
            let rss_before = resident_bytes();
            let spans = if quick { 1000 } else { FULL_BUFFER as u64 };
            // In steps no faster than the reporter encodes (100k spans a second), so that
            // the whole buffer fills and no ring overflows.
            for _ in 0..spans / 1000 {
                for _ in 0..1000 {
                    one_span(outcome.created);
                    outcome.created += 1;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let deadline = Instant::now() + Duration::from_secs(10);
            while tracer.stats().spans_buffered < outcome.created && Instant::now() < deadline {
                lstrace::collector::drain();
                std::thread::sleep(Duration::from_millis(1));
            }
            let buffered = tracer.stats().spans_buffered;
            if let (Some(before), Some(after)) = (rss_before, resident_bytes()) {
                if buffered > 0 {
                    outcome.bytes_per_buffered_span =
                        Some(after.saturating_sub(before) as f64 / buffered as f64);
                }
            }
            let flush_start = Instant::now();
            let flush = lstrace::flush(Duration::from_secs(60));
            outcome.flush_seconds = Some(flush_start.elapsed().as_secs_f64());
            if flush.timed_out {
                return Err("the flush of a full buffer timed out".into());
            }
        }
    }
    let flush = lstrace::flush(Duration::from_secs(60));
    outcome.seconds = start.elapsed().as_secs_f64();
    outcome.cpu_seconds = cpu_seconds_but_the_satellite();
    if flush.timed_out {
        return Err("the final flush timed out".into());
    }
    let stats = tracer.stats();
    outcome.sent = stats.spans_sent;
    outcome.dropped = stats.spans_dropped;
    delivered(&satellite, &mut outcome);
    Ok(outcome)
}

/// What the satellite received, of either protocol: spans and request bytes.
pub fn delivered(satellite: &LocalSatellite, outcome: &mut Outcome) {
    let lightstep = satellite.reports();
    let otlp = satellite.otlp_requests();
    outcome.satellite_spans = (satellite.spans().len() + satellite.otlp_spans().len()) as u64;
    outcome.wire_bytes = lightstep.iter().map(|r| r.body_len as u64).sum::<u64>()
        + otlp.iter().map(|r| r.body_len as u64).sum::<u64>();
}

/// CPU time (user and system) of this process's threads, less the local satellite's, from
/// /proc (Linux only; 0 elsewhere). Threads that already ended are not counted: the
/// measured ones (the span maker, the reporter or exporter) run to the end.
pub fn cpu_seconds_but_the_satellite() -> f64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0.0;
    };
    let mut ticks = 0u64;
    for task in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        // Thread names are cut to 15 bytes: "lstrace-satellite-PORT" shows as this.
        if stat[open + 1..close].starts_with("lstrace-satell") {
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
        ticks += field(11) + field(12);
    }
    // The kernel's USER_HZ is 100 on every Linux this runs on.
    ticks as f64 / 100.0
}

/// This process's resident memory, from /proc (Linux only).
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}
