//! lstrace against fastrace and tracing (registry only, and with OpenTelemetry), side by side.
//!
//! `cargo bench -p lstrace-benches` measures every case and prints Markdown tables of
//! nanoseconds per span. Each library runs each case in a fresh child process of this
//! binary, since every library's pipeline is process-global and installs once; one process
//! per case also keeps one case's leftovers (threads, queues, heap) out of the next.
//!
//! Options (after `--`): `--quick` runs each case once (a smoke test: checks that every span
//! reached its sink, measures nothing); `--samples N`, `--sample-ms N`, `--warmup-ms N`;
//! `--rounds N` runs everything N times, interleaved, and keeps each lowest median;
//! `--libs a,b` (ids: lstrace, lstrace-inline, fastrace, tracing, tracing-otel, tracing-bridge,
//! tracing-bridge-inline, tracing-bridge-idle, fastrace-tracing, baseline); any other
//! word selects the cases whose name contains it (`wide`, `async/100`, ...).
//! `--child LIB CASE --profile N` runs N iterations of one case untimed, for a profiler
//! (`valgrind --tool=callgrind`).
//! `--drift SECONDS` measures how far span times drift from the wall clock over a run of that
//! length; `--per-span` what many tags, baggage items and logs on one span cost.
//! `cargo test` runs this binary without `--bench`: that is the smoke run.

mod baseline;
mod cases;
mod e2e;
mod harness;
mod span_data;
mod with_fastrace;
mod with_lstrace;
mod with_otlp_exporter;
mod with_tracing;

use cases::{Case, Library};
use harness::{median, Plan};
use std::fmt::Write as _;
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;
use with_lstrace::{Drain, Lstrace};
use with_tracing::{Pipeline, Tracing};

/// A library as the report names it.
struct Entry {
    /// Its id on the command line.
    id: &'static str,
    /// Its column title.
    title: &'static str,
    library: &'static dyn Library,
}

/// lstrace first: the ratios are to it.
const LIBRARIES: &[Entry] = &[
    Entry {
        id: "lstrace",
        title: "lstrace",
        library: &Lstrace(Drain::Background),
    },
    Entry {
        id: "lstrace-inline",
        title: "lstrace, drain inline",
        library: &Lstrace(Drain::Inline),
    },
    Entry {
        id: "fastrace",
        title: "fastrace",
        library: &with_fastrace::Fastrace,
    },
    Entry {
        id: "tracing",
        title: "tracing (registry)",
        library: &Tracing(Pipeline::Registry),
    },
    Entry {
        id: "tracing-otel",
        title: "tracing + OpenTelemetry",
        library: &Tracing(Pipeline::OpenTelemetry),
    },
    Entry {
        id: "tracing-bridge",
        title: "tracing + lstrace bridge",
        library: &Tracing(Pipeline::Bridge),
    },
    Entry {
        id: "tracing-bridge-inline",
        title: "tracing + lstrace bridge, drain inline",
        library: &Tracing(Pipeline::BridgeInline),
    },
    Entry {
        id: "tracing-bridge-idle",
        title: "tracing + bridge, no lstrace tracer",
        library: &Tracing(Pipeline::BridgeIdle),
    },
    Entry {
        id: "fastrace-tracing",
        title: "tracing + fastrace-tracing",
        library: &Tracing(Pipeline::FastraceBridge),
    },
    Entry {
        id: "baseline",
        title: "no tracing (baseline)",
        library: &baseline::Baseline,
    },
];

/// The peers whose ratio to lstrace the report gives.
const PEERS: &[&str] = &["fastrace", "tracing", "tracing-otel"];

struct Options {
    quick: bool,
    plan: Plan,
    libraries: Vec<&'static Entry>,
    filters: Vec<String>,
    child: Option<(&'static Entry, Case)>,
    /// An end-to-end measurement to run in this process.
    e2e_child: Option<e2e::Measurement>,
    /// The rate of a paced end-to-end run, in spans per second.
    rate: u64,
    /// How many times every case of every library runs (interleaved); the lowest median of
    /// each stands, against load from other processes on a shared machine.
    rounds: usize,
    /// Iterations to run untimed, for a profiler, instead of measuring.
    profile: Option<u64>,
    /// Measure the drift of span times from the wall clock over this many seconds.
    drift: Option<u64>,
    /// Measure the cost of many tags, baggage items and logs on one span.
    per_span: bool,
}

fn parse_options() -> Result<Options, String> {
    let mut args = std::env::args().skip(1);
    let mut bench = false;
    let mut quick = false;
    let mut plan = Plan {
        warmup: Duration::from_millis(300),
        samples: 25,
        sample_time: Duration::from_millis(20),
    };
    let mut libraries: Vec<&'static Entry> = LIBRARIES.iter().collect();
    let mut filters = Vec::new();
    let mut child = None;
    let mut e2e_child = None;
    let mut rate = e2e::PACED_RATES[0];
    let mut profile = None;
    let mut drift = None;
    let mut per_span = false;
    let mut rounds = 1;
    let library = |id: &str| {
        LIBRARIES
            .iter()
            .find(|e| e.id == id)
            .ok_or_else(|| format!("unknown library {id:?}"))
    };
    let number = |args: &mut dyn Iterator<Item = String>, flag: &str| {
        args.next()
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or_else(|| format!("{flag} needs a number"))
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--bench" => bench = true,
            "--quick" => quick = true,
            "--samples" => plan.samples = number(&mut args, "--samples")?.max(1) as usize,
            "--sample-ms" => {
                plan.sample_time = Duration::from_millis(number(&mut args, "--sample-ms")?);
            }
            "--warmup-ms" => plan.warmup = Duration::from_millis(number(&mut args, "--warmup-ms")?),
            "--e2e" => {
                let name = args.next().ok_or("--e2e needs a measurement")?;
                e2e_child = Some(
                    e2e::Measurement::parse(&name)
                        .ok_or_else(|| format!("unknown measurement {name:?}"))?,
                );
            }
            "--rounds" => rounds = number(&mut args, "--rounds")?.max(1) as usize,
            "--rate" => rate = number(&mut args, "--rate")?,
            "--profile" => profile = Some(number(&mut args, "--profile")?),
            "--drift" => drift = Some(number(&mut args, "--drift")?),
            "--per-span" => per_span = true,
            "--libs" => {
                let ids = args.next().ok_or("--libs needs a list")?;
                libraries = ids.split(',').map(library).collect::<Result<_, _>>()?;
            }
            "--child" => {
                let (id, case) = (args.next(), args.next());
                let (Some(id), Some(case)) = (id, case) else {
                    return Err("--child needs a library and a case".into());
                };
                let case = Case::parse(&case).ok_or_else(|| format!("unknown case {case:?}"))?;
                child = Some((library(&id)?, case));
            }
            // Flags meant for a test harness (`cargo test -- --nocapture`) mean nothing here.
            flag if flag.starts_with("--") => {}
            filter => filters.push(filter.to_owned()),
        }
    }
    // Without `--bench` this is `cargo test` running the target: a smoke run.
    let quick = quick || !bench;
    if quick {
        plan = Plan::QUICK;
    }
    Ok(Options {
        quick,
        plan,
        libraries,
        filters,
        child,
        e2e_child,
        rate,
        rounds,
        profile,
        drift,
        per_span,
    })
}

fn main() -> ExitCode {
    let options = match parse_options() {
        Ok(options) => options,
        Err(e) => {
            eprintln!("lstrace-benches: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(measurement) = options.e2e_child {
        return run_e2e_child(measurement, options.rate, options.quick);
    }
    let span_data = match (options.drift, options.per_span) {
        (Some(seconds), _) => Some(span_data::drift(seconds)),
        (None, true) => Some(span_data::per_span(options.quick)),
        (None, false) => None,
    };
    if let Some(result) = span_data {
        return match result {
            Ok(report) => {
                print!("{report}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("lstrace-benches: {e}");
                ExitCode::FAILURE
            }
        };
    }
    match options.child {
        Some((entry, case)) => run_child(entry, case, &options),
        None => run_all(&options),
    }
}

/// What one child process measured.
#[derive(Clone, Debug)]
struct Measured {
    wall_ns: f64,
    wall_min_ns: f64,
    cpu_ns: f64,
    delivered: Option<u64>,
    expected: u64,
    dropped: u64,
}

impl Measured {
    fn to_line(&self) -> String {
        let delivered = self.delivered.map_or("-".to_owned(), |d| d.to_string());
        format!(
            "RESULT {} {} {} {} {} {}",
            self.wall_ns, self.wall_min_ns, self.cpu_ns, delivered, self.expected, self.dropped
        )
    }

    fn from_line(line: &str) -> Option<Measured> {
        let mut words = line.strip_prefix("RESULT ")?.split(' ');
        let mut next = || words.next();
        Some(Measured {
            wall_ns: next()?.parse().ok()?,
            wall_min_ns: next()?.parse().ok()?,
            cpu_ns: next()?.parse().ok()?,
            delivered: next()?.parse().ok(),
            expected: next()?.parse().ok()?,
            dropped: next()?.parse().ok()?,
        })
    }

    /// Spans that never reached the sink, counted or not.
    fn lost(&self) -> Option<u64> {
        self.delivered.map(|d| self.expected.saturating_sub(d))
    }
}

/// Runs one case of one library in this process and prints the `RESULT` line.
fn run_child(entry: &Entry, case: Case, options: &Options) -> ExitCode {
    let library = entry.library;
    library.init(case, options.quick);
    if let Some(iterations) = options.profile {
        for _ in 0..iterations {
            library.iteration(case);
        }
        library.settle();
        return ExitCode::SUCCESS;
    }
    let outcome = harness::measure(
        options.plan,
        case.threads(),
        case.spans_per_iteration(),
        &|| library.iteration(case),
        &|| library.settle(),
    );
    library.settle();
    let wall_min_ns = outcome.wall_ns.iter().copied().fold(f64::NAN, f64::min);
    let measured = Measured {
        wall_ns: median(&outcome.wall_ns),
        wall_min_ns,
        cpu_ns: median(&outcome.cpu_ns),
        delivered: library.delivered(),
        expected: outcome.iterations * case.recorded_per_iteration(),
        dropped: library.dropped(),
    };
    println!("{}", measured.to_line());
    // The smoke run's check: every span the case made reached the sink or was counted as
    // dropped (a ring can fill while the background drain waits for a core), and no other
    // span reached the sink.
    if options.quick {
        if let Some(delivered) = measured.delivered {
            if delivered + measured.dropped != measured.expected {
                eprintln!(
                    "{} {case}: the sink got {delivered} spans ({} dropped), expected {}",
                    entry.id, measured.dropped, measured.expected
                );
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}

/// Runs one end-to-end measurement in this process and prints its `E2E` line, after
/// checking that every span is accounted for: delivered to the satellite, or dropped and
/// counted. (Whether any are dropped depends on the machine: a debug build's reporter is
/// slow.)
fn run_e2e_child(measurement: e2e::Measurement, rate: u64, quick: bool) -> ExitCode {
    match e2e::run(measurement, rate, quick) {
        Ok(outcome) => {
            println!("{}", outcome.to_line());
            let accounted = outcome.sent + outcome.dropped == outcome.created
                && outcome.satellite_spans == outcome.sent;
            if !accounted {
                eprintln!("{measurement}: spans unaccounted for: {outcome:?}");
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{measurement}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs every selected case of every selected library, each in a child process, and prints
/// the tables.
fn run_all(options: &Options) -> ExitCode {
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => {
            eprintln!("lstrace-benches: cannot find this executable: {e}");
            return ExitCode::FAILURE;
        }
    };
    let cases: Vec<Case> = cases::ALL
        .iter()
        .copied()
        .filter(|case| {
            let name = case.to_string();
            options.filters.is_empty() || options.filters.iter().any(|f| name.contains(f))
        })
        .collect();
    eprintln!("load average before: {}", load_average());
    let mut results: Vec<(Case, &'static str, Measured)> = Vec::new();
    let mut failures = 0;
    let rounds = if options.quick { 1 } else { options.rounds };
    let runs = (0..rounds).flat_map(|_| cases.iter().copied());
    for case in runs {
        for entry in options
            .libraries
            .iter()
            .filter(|e| e.library.supports(case))
        {
            let mut command = Command::new(&exe);
            command
                .args(["--child", entry.id, &case.to_string()])
                .args(["--samples", &options.plan.samples.to_string()])
                .args([
                    "--sample-ms",
                    &options.plan.sample_time.as_millis().to_string(),
                ])
                .args(["--warmup-ms", &options.plan.warmup.as_millis().to_string()])
                .stderr(Stdio::inherit());
            if options.quick {
                command.arg("--quick");
            } else {
                command.arg("--bench");
            }
            let output = command.output();
            let measured = output.as_ref().ok().and_then(|out| {
                let stdout = String::from_utf8_lossy(&out.stdout);
                out.status
                    .success()
                    .then(|| stdout.lines().find_map(Measured::from_line))
                    .flatten()
            });
            match measured {
                Some(measured) => {
                    if !options.quick {
                        eprintln!(
                            "{case:<20} {:<16} {:>9.1} ns/span (fastest sample {:.1}, CPU {:.1})",
                            entry.id, measured.wall_ns, measured.wall_min_ns, measured.cpu_ns
                        );
                    }
                    // Over rounds, the least disturbed run (lowest median) stands.
                    match results
                        .iter_mut()
                        .find(|(c, i, _)| *c == case && *i == entry.id)
                    {
                        Some((_, _, kept)) if kept.wall_ns <= measured.wall_ns => {}
                        Some((_, _, kept)) => *kept = measured,
                        None => results.push((case, entry.id, measured)),
                    }
                }
                None => {
                    eprintln!("{case:<20} {:<16} FAILED ({output:?})", entry.id);
                    failures += 1;
                }
            }
        }
    }
    let mut e2e_results = Vec::new();
    let runs = e2e::ALL.iter().flat_map(|&m| {
        let rates: &[u64] = if m.is_paced() { e2e::PACED_RATES } else { &[0] };
        rates.iter().map(move |&rate| (m, rate))
    });
    for (measurement, rate) in runs {
        let name = measurement.to_string();
        if !(options.filters.is_empty() || options.filters.iter().any(|f| name.contains(f))) {
            continue;
        }
        let mut command = Command::new(&exe);
        command
            .args(["--e2e", &name, "--rate", &rate.to_string()])
            .arg(if options.quick { "--quick" } else { "--bench" })
            .stderr(Stdio::inherit());
        let output = command.output();
        let outcome = output.as_ref().ok().and_then(|out| {
            let stdout = String::from_utf8_lossy(&out.stdout);
            out.status
                .success()
                .then(|| stdout.lines().find_map(e2e::Outcome::from_line))
                .flatten()
        });
        match outcome {
            Some(outcome) => {
                if !options.quick {
                    eprintln!(
                        "{name:<20} {:.0} spans/s delivered, {:.0} per second of reporter CPU",
                        outcome.delivered_per_second(),
                        outcome.delivered_per_reporter_cpu_second()
                    );
                }
                e2e_results.push((measurement, rate, outcome));
            }
            None => {
                eprintln!("{name:<20} FAILED ({output:?})");
                failures += 1;
            }
        }
    }
    if options.quick {
        // The span-data measurements, once each, in processes of their own.
        for args in [&["--drift", "0"][..], &["--per-span"][..]] {
            let status = Command::new(&exe)
                .args(args)
                .arg("--quick")
                .stdout(Stdio::null())
                .status();
            if !status.as_ref().is_ok_and(|s| s.success()) {
                eprintln!("{args:?} FAILED ({status:?})");
                failures += 1;
            }
        }
    }
    eprintln!("load average after: {}", load_average());
    if options.quick {
        println!(
            "lstrace-benches smoke run: {} runs passed, {failures} failed \
             (each case once per library; the numbers of a smoke run mean nothing)",
            results.len() + e2e_results.len()
        );
    } else {
        if !results.is_empty() {
            print!("{}", report(options, &cases, &results));
        }
        print!("{}", e2e_report(&e2e_results));
    }
    if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Which figure of a measurement a table shows.
type Column = fn(&Measured) -> f64;

/// The Markdown tables: wall time per span on the instrumented thread, then process CPU time
/// per span, then any spans that did not reach a sink.
fn report(options: &Options, cases: &[Case], results: &[(Case, &str, Measured)]) -> String {
    let find = |case: Case, id: &str| {
        results
            .iter()
            .find(|(c, i, _)| *c == case && *i == id)
            .map(|(_, _, m)| m)
    };
    let columns: Vec<&Entry> = options.libraries.clone();
    let peers: Vec<&&Entry> = columns.iter().filter(|e| PEERS.contains(&e.id)).collect();
    let mut out = String::new();
    let tables: [(&str, Column); 3] = [
        (
            "Wall-clock ns per span on the instrumented thread (median of samples)",
            |m| m.wall_ns,
        ),
        (
            "Wall-clock ns per span on the instrumented thread (fastest sample)",
            |m| m.wall_min_ns,
        ),
        (
            "Process CPU ns per span, all threads (background collectors included)",
            |m| m.cpu_ns,
        ),
    ];
    for (title, value) in tables {
        let _ = writeln!(out, "\n### {title}\n");
        let mut header = String::from("| case |");
        let mut rule = String::from("|---|");
        for entry in &columns {
            let _ = write!(header, " {} |", entry.title);
            rule.push_str("---:|");
        }
        for peer in &peers {
            let _ = write!(header, " {} ÷ lstrace |", peer.title);
            rule.push_str("---:|");
        }
        let _ = writeln!(out, "{header}\n{rule}");
        for &case in cases {
            let mut row = format!("| {case} |");
            for entry in &columns {
                match find(case, entry.id) {
                    Some(m) => {
                        let _ = write!(row, " {:.1} |", value(m));
                    }
                    None => row.push_str(" n/a |"),
                }
            }
            let base = find(case, "lstrace").map(value);
            for peer in &peers {
                match (base, find(case, peer.id).map(value)) {
                    (Some(base), Some(peer)) if base > 0.0 => {
                        let _ = write!(row, " {:.1}× |", peer / base);
                    }
                    _ => row.push_str(" n/a |"),
                }
            }
            let _ = writeln!(out, "{row}");
        }
    }
    let lost: Vec<String> = results
        .iter()
        .filter_map(|(case, id, m)| {
            let lost = m.lost().filter(|&l| l > 0)?;
            Some(format!(
                "- {id} {case}: {lost} of {} spans did not reach the sink ({} counted as dropped)",
                m.expected, m.dropped
            ))
        })
        .collect();
    let _ = writeln!(out, "\n### Spans that did not reach the sink\n");
    if lost.is_empty() {
        let _ = writeln!(out, "None: every sink got every span.");
    } else {
        let _ = writeln!(out, "{}", lost.join("\n"));
    }
    out
}

/// The end-to-end table.
fn e2e_report(results: &[(e2e::Measurement, u64, e2e::Outcome)]) -> String {
    if results.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "\n### End to end: reporter to the local satellite over loopback HTTP \
         (3 tags and 1 log per span)\n\n\
         | run | spans created | delivered | dropped | seconds | delivered per second | \
         CPU per delivered span | reporter thread CPU per delivered span | \
         delivered per second of reporter CPU | request bytes per span | \
         bytes per buffered span | delivery of the held spans |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for (measurement, rate, o) in results {
        let run = if measurement.is_paced() {
            format!("{measurement} at {rate} spans/s")
        } else {
            measurement.to_string()
        };
        let bytes = o
            .bytes_per_buffered_span
            .map_or("n/a".to_owned(), |b| format!("{b:.0}"));
        let flush = o
            .flush_seconds
            .map_or("n/a".to_owned(), |s| format!("{:.1} ms", s * 1000.0));
        let _ = writeln!(
            out,
            "| {run} | {} | {} | {} | {:.2} | {:.0} | {:.0} ns | {:.0} ns | {:.0} | {:.0} | {bytes} | {flush} |",
            o.created,
            o.sent,
            o.dropped,
            o.seconds,
            o.delivered_per_second(),
            o.cpu_nanos_per_span(),
            o.reporter_cpu_seconds * 1e9 / o.sent.max(1) as f64,
            o.delivered_per_reporter_cpu_second(),
            o.wire_bytes_per_span()
        );
    }
    let _ = writeln!(
        out,
        "\nA finished span waits in its thread's ring as a `SpanRecord` of {} bytes (plus the \
         heap of its logs and owned strings) until the reporter encodes it.",
        std::mem::size_of::<lstrace::SpanRecord>()
    );
    out
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "unknown".into())
}
