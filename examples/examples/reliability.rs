//! The fault table of RELIABILITY.md: the reporter, with default options, against every
//! kind of broken satellite (`lstrace::satellite::fault`), each scenario in a child process
//! of its own (one tracer per process, and its own peak memory).
//!
//! ```sh
//! cargo run --release -p lstrace-examples --example reliability
//! ```
//!
//! Each child traces a steady workload (4 threads, 50,000 spans a second in all, for 2 s),
//! timing the traced calls in groups of 100, then closes with a 2 s deadline (or, in the
//! exit scenario, returns from `main` without closing). The parent prints one Markdown row
//! per scenario.
//!
//! After each group, the same thread times an untraced control of about the same length
//! (arithmetic only): when its p99 rises with the traced calls' p99, the time went to the
//! machine (other processes, the fault server streaming an answer), not to the tracer.
//! The healthy scenario runs first and last, which shows how far the same run varies. Each
//! scenario runs three times, in turn (so that a burst of load elsewhere on the machine hits
//! one round, not every round of one scenario); the table shows the medians of the timings
//! and the counts of the round that lost the most.

use lstrace::satellite::fault::{Fault, FaultServer};
use lstrace::traced;
use std::process::Command;
use std::time::{Duration, Instant};

const CHILD: &str = "LSTRACE_RELIABILITY_CHILD";
const URLS: &str = "LSTRACE_RELIABILITY_URLS";
const THREADS: usize = 4;
const SPANS_PER_SECOND: u64 = 50_000;
const RUN: Duration = Duration::from_secs(2);
const CLOSE_DEADLINE: Duration = Duration::from_secs(2);
/// Each scenario runs this many times, in turn; the table shows the median timings and the
/// counts of the round that lost the most.
const ROUNDS: usize = 3;
/// Calls timed together: one call is too short for the clock.
const GROUP: u64 = 100;

#[traced]
fn traced_call(i: u64) -> u64 {
    std::hint::black_box(i.wrapping_mul(31))
}

/// Steps of the untraced control: about as long as a group of traced calls on the 2-core VM
/// of RELIABILITY.md (its p50 is printed next to the traced one).
const CONTROL_STEPS: u64 = 8_000;

/// Arithmetic that no tracer touches, timed like a group of traced calls.
fn control(seed: u64) -> u64 {
    let mut x = seed;
    for i in 0..CONTROL_STEPS {
        x = std::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(i));
    }
    x
}

/// The `q` quantile of sorted group times, per call of a group of `GROUP`.
fn quantile(sorted: &[u64], q: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * q) as usize] as f64 / GROUP as f64
}

fn main() {
    match std::env::var(CHILD) {
        Ok(mode) => child(&mode),
        Err(_) => parent(),
    }
}

/// One scenario's process: trace, time, close (or not), print the counts.
fn child(mode: &str) {
    let urls = std::env::var(URLS).unwrap_or_default();
    let tracer = lstrace::init(
        lstrace::Options::new("reliability-token")
            .component_name("reliability")
            .collector_urls(urls.split(',').map(str::to_owned))
            // Events are counted in the table, not printed.
            .event_handler(|_| {}),
    )
    .expect("init");
    let started = Instant::now();
    let per_thread = SPANS_PER_SECOND / THREADS as u64;
    let (mut group_nanos, mut control_nanos): (Vec<u64>, Vec<u64>) = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..THREADS)
            .map(|_| {
                scope.spawn(move || {
                    let mut groups = Vec::new();
                    let mut controls = Vec::new();
                    let mut made = 0u64;
                    while started.elapsed() < RUN {
                        // Paced: catch up to where this thread should be, a group at a time.
                        let due = (started.elapsed().as_secs_f64() * per_thread as f64) as u64;
                        if made >= due {
                            std::thread::sleep(Duration::from_micros(500));
                            continue;
                        }
                        let t = Instant::now();
                        for i in 0..GROUP {
                            traced_call(i);
                        }
                        groups.push(t.elapsed().as_nanos() as u64);
                        made += GROUP;
                        let t = Instant::now();
                        control(made);
                        controls.push(t.elapsed().as_nanos() as u64);
                    }
                    (groups, controls)
                })
            })
            .collect();
        let mut all = (Vec::new(), Vec::new());
        for worker in workers {
            let (groups, controls) = worker.join().expect("worker");
            all.0.extend(groups);
            all.1.extend(controls);
        }
        all
    });
    group_nanos.sort_unstable();
    control_nanos.sort_unstable();
    let (p50, p99) = (quantile(&group_nanos, 0.5), quantile(&group_nanos, 0.99));
    let (control_p50, control_p99) = (
        quantile(&control_nanos, 0.5),
        quantile(&control_nanos, 0.99),
    );
    let made = group_nanos.len() as u64 * GROUP;
    let timing = format!(
        "p50={p50:.1} p99={p99:.1} control_p50={control_p50:.1} control_p99={control_p99:.1}"
    );
    if mode == "exit" {
        println!("RESULT made={made} {timing} rss_kb={}", peak_rss_kb());
        // No close: the at-exit hook delivers what it can.
        return;
    }
    let t = Instant::now();
    let closed = tracer.close(CLOSE_DEADLINE);
    let close_ms = t.elapsed().as_millis();
    let stats = closed.stats;
    println!(
        "RESULT made={made} tracer_made={} sent={} dropped={} buffered={} {timing} rss_kb={} \
         close_ms={close_ms}",
        stats.spans_made,
        stats.spans_sent,
        stats.spans_dropped,
        stats.spans_buffered,
        peak_rss_kb()
    );
}

/// The process's peak resident memory (Linux), in KiB.
fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// A scenario: the satellites (started fresh), and what happens to them during the run.
struct Scenario {
    name: &'static str,
    faults: Vec<Fault>,
    /// Extra URLs (dead, unresolvable).
    urls: Vec<String>,
    kill_and_restart: bool,
    exit_without_close: bool,
}

fn scenario(name: &'static str, faults: Vec<Fault>) -> Scenario {
    Scenario {
        name,
        faults,
        urls: Vec::new(),
        kill_and_restart: false,
        exit_without_close: false,
    }
}

fn dead_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    format!("http://{}", listener.local_addr().expect("addr"))
}

fn field(line: &str, name: &str) -> Option<f64> {
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
        .and_then(|v| v.parse().ok())
}

fn parent() {
    let elsewhere = FaultServer::start(Fault::Accept).expect("server");
    let redirect_to = format!("{}/api/v2/reports", elsewhere.url());
    let scenarios = vec![
        scenario("healthy", vec![Fault::Accept]),
        Scenario {
            urls: vec![dead_url()],
            ..scenario("dead (connection refused)", vec![])
        },
        scenario("black hole (never answers)", vec![Fault::BlackHole]),
        scenario(
            "slow (1 s answers)",
            vec![Fault::Slow(Duration::from_secs(1))],
        ),
        scenario("401", vec![Fault::Status(401)]),
        scenario("500", vec![Fault::Status(500)]),
        scenario(
            "503 x3, then recovery",
            vec![Fault::StatusThenAccept {
                status: 503,
                count: 3,
            }],
        ),
        scenario("connection reset", vec![Fault::Reset]),
        scenario("garbage 200", vec![Fault::Garbage]),
        scenario("truncated 200", vec![Fault::Truncated]),
        scenario("huge answer (1 GiB)", vec![Fault::Huge(1 << 30)]),
        scenario(
            "redirect 307 to another port",
            vec![Fault::Redirect(307, redirect_to)],
        ),
        Scenario {
            kill_and_restart: true,
            ..scenario("killed and restarted", vec![Fault::Accept])
        },
        scenario(
            "two satellites, one hung",
            vec![Fault::BlackHole, Fault::Accept],
        ),
        Scenario {
            urls: vec!["http://lstrace-unresolvable.invalid:8360".into()],
            ..scenario("unresolvable host", vec![])
        },
        Scenario {
            exit_without_close: true,
            ..scenario("exit without close", vec![Fault::Accept])
        },
        scenario("healthy, again", vec![Fault::Accept]),
    ];
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "{THREADS} threads, {SPANS_PER_SECOND} spans/s for {RUN:?}, close deadline \
         {CLOSE_DEADLINE:?}; load average at start: {}",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!();
    let mut runs: Vec<Vec<Run>> = scenarios.iter().map(|_| Vec::new()).collect();
    for _ in 0..ROUNDS {
        for (s, runs) in scenarios.iter().zip(&mut runs) {
            runs.push(run(s));
        }
    }
    println!(
        "| scenario | made | sent | dropped | unaccounted | satellite ingested | traced call p50 / p99 (ns) | p99 vs healthy | control p99 vs healthy | peak RSS | close / deadline |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let median = |runs: &[Run], f: fn(&Run) -> f64| {
        let mut v: Vec<f64> = runs.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let healthy_p99 = median(&runs[0], |r| r.p99);
    let healthy_control_p99 = median(&runs[0], |r| r.control_p99);
    for (s, runs) in scenarios.iter().zip(&runs) {
        // The counts of the round that lost the most, the medians of the timings.
        let worst = runs
            .iter()
            .max_by(|a, b| a.dropped.total_cmp(&b.dropped))
            .expect("a round");
        let (p50, p99) = (median(runs, |r| r.p50), median(runs, |r| r.p99));
        let control_p99 = median(runs, |r| r.control_p99);
        let rss = runs.iter().map(|r| r.rss_kb).fold(0.0, f64::max);
        let mut name = s.name.to_owned();
        if name.starts_with("redirect") {
            name.push_str(&format!(
                " (requests that reached the other port: {})",
                elsewhere.requests().len()
            ));
        }
        println!(
            "| {name} | {} | {} | {} | {} | {} | {p50:.1} / {p99:.1} | {:.2}x | {:.2}x | {:.0} MB | {} |",
            worst.made,
            worst.sent,
            worst.dropped,
            worst.unaccounted,
            worst.ingested,
            p99 / healthy_p99,
            control_p99 / healthy_control_p99,
            rss / 1024.0,
            worst.close,
        );
    }
    println!();
    println!(
        "Control group p50 in the healthy row: {:.1} ns per call-equivalent ({CONTROL_STEPS} \
         arithmetic steps per group of {GROUP}).",
        median(&runs[0], |r| r.control_p50)
    );
}

/// What one run of a scenario measured.
struct Run {
    made: f64,
    sent: f64,
    dropped: f64,
    unaccounted: f64,
    ingested: String,
    p50: f64,
    p99: f64,
    control_p50: f64,
    control_p99: f64,
    rss_kb: f64,
    close: String,
}

/// Runs a scenario's child process against fresh satellites.
fn run(s: &Scenario) -> Run {
    let mut servers: Vec<FaultServer> = s
        .faults
        .iter()
        .map(|f| FaultServer::start(f.clone()).expect("server"))
        .collect();
    let urls: Vec<String> = servers
        .iter()
        .map(FaultServer::url)
        .chain(s.urls.iter().cloned())
        .collect();
    let mode = if s.exit_without_close {
        "exit"
    } else {
        "close"
    };
    let child = Command::new(std::env::current_exe().expect("exe"))
        .env(CHILD, mode)
        .env(URLS, urls.join(","))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("child");
    if s.kill_and_restart {
        std::thread::sleep(RUN / 4);
        servers[0].kill();
        std::thread::sleep(RUN / 4);
        servers[0].restart().expect("restart");
    }
    let output = child.wait_with_output().expect("child output");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        eprintln!("{}: child failed: {}\n{stderr}", s.name, output.status);
    }
    let line = stdout
        .lines()
        .find(|l| l.starts_with("RESULT"))
        .unwrap_or("");
    let get = |name| field(line, name).unwrap_or(f64::NAN);
    let ingested: Vec<_> = servers.iter().flat_map(FaultServer::ingested).collect();
    let unique: std::collections::HashSet<u64> = ingested
        .iter()
        .filter_map(|s| s.span_context.as_ref().map(|c| c.span_id))
        .collect();
    let ingested_text = if unique.len() == ingested.len() {
        format!("{}", ingested.len())
    } else {
        format!("{} ({} unique)", ingested.len(), unique.len())
    };
    let made = get("made");
    let (sent, dropped, unaccounted, close) = if s.exit_without_close {
        // The at-exit hook's close: what the satellite got, and what stderr says.
        let lost = stderr
            .lines()
            .find(|l| l.contains("could not be delivered"))
            .and_then(|l| l.split(": ").nth(2))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|n| n.parse::<f64>().ok())
            .unwrap_or(0.0);
        let sent = unique.len() as f64;
        (sent, lost, made - sent - lost, "at exit".to_owned())
    } else {
        let (sent, dropped, buffered) = (get("sent"), get("dropped"), get("buffered"));
        (
            sent,
            dropped,
            get("tracer_made") - sent - dropped - buffered,
            format!("{} ms / {} ms", get("close_ms"), CLOSE_DEADLINE.as_millis()),
        )
    };
    Run {
        made,
        sent,
        dropped,
        unaccounted,
        ingested: ingested_text,
        p50: get("p50"),
        p99: get("p99"),
        control_p50: get("control_p50"),
        control_p99: get("control_p99"),
        rss_kb: get("rss_kb"),
        close,
    }
}
