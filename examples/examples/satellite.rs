//! A local LightStep satellite to run by hand: point a tracer at it and look at the traces
//! in a browser, as a list and as waterfalls.
//!
//! ```text
//! cargo run -p lstrace-examples --example satellite -- [--port N] [--seconds N]
//!     [--max-traces N] [--max-spans N] [--trees]
//! ```
//!
//! Listens on 127.0.0.1:8360 (where tracers look for a developer satellite) unless `--port`
//! says otherwise (`--port 0` picks a free port), prints the address of its web view, and
//! runs until Ctrl-C or for `--seconds`. It keeps the most recent traces, at most
//! `--max-traces` traces and `--max-spans` spans (the oldest are evicted, and counted on the
//! page). With `--trees`, it serves no page but prints the trees of the reports it receives
//! every second, keeping every report.
//!
//! An example rather than an installed binary: it runs from a checkout with one command next
//! to the quickstart, and the `lstrace` crate stays a library.

use lstrace::satellite::{self, LocalSatellite, ViewLimits};
use lstrace::testing::tree::TreeStyle;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::time::{Duration, Instant};

const USAGE: &str =
    "usage: satellite [--port N] [--seconds N] [--max-traces N] [--max-spans N] [--trees]";

/// How often new reports are printed.
const PRINT_PERIOD: Duration = Duration::from_secs(1);

#[derive(Debug, PartialEq)]
struct Options {
    port: u16,
    seconds: Option<u64>,
    /// `None` with `--trees`.
    view: Option<ViewLimits>,
}

impl Options {
    fn parse(args: impl IntoIterator<Item = String>) -> Result<Options, String> {
        let mut options = Options {
            port: 8360,
            seconds: None,
            view: Some(ViewLimits::default()),
        };
        let mut limits = ViewLimits::default();
        let mut trees = false;
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
            match arg.as_str() {
                "--port" => {
                    let port = value("--port")?;
                    options.port = port
                        .parse()
                        .map_err(|_| format!("--port: {port:?} is not a port number"))?;
                }
                "--seconds" => {
                    let seconds = value("--seconds")?;
                    options.seconds = Some(seconds.parse().map_err(|_| {
                        format!("--seconds: {seconds:?} is not a whole number of seconds")
                    })?);
                }
                "--max-traces" | "--max-spans" => {
                    let text = value(&arg)?;
                    let max =
                        text.parse().ok().filter(|max| *max > 0).ok_or_else(|| {
                            format!("{arg}: {text:?} is not a positive whole number")
                        })?;
                    if arg == "--max-traces" {
                        limits.max_traces = max;
                    } else {
                        limits.max_spans = max;
                    }
                }
                "--trees" => trees = true,
                other => return Err(format!("unknown argument {other:?}")),
            }
        }
        options.view = (!trees).then_some(limits);
        Ok(options)
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let options = match Options::parse(args) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, options.port));
    let started = match options.view {
        Some(limits) => LocalSatellite::start_with_view(addr, limits),
        None => LocalSatellite::start_on(addr),
    };
    let satellite = match started {
        Ok(satellite) => satellite,
        Err(e) => {
            eprintln!("cannot listen on 127.0.0.1:{}: {e}", options.port);
            return ExitCode::FAILURE;
        }
    };
    println!(
        "local satellite on {}: POST reports to {}{}  (Ctrl-C to stop)",
        satellite.addr(),
        satellite.url(),
        satellite::REPORT_PATH
    );
    if let Some(url) = satellite.view_url() {
        println!("traces: open {url} in a browser");
        println!(
            "report to it: LS_COLLECTOR_URL={} cargo run -p lstrace-examples --example quickstart",
            satellite.url()
        );
    }
    let deadline = options
        .seconds
        .map(|s| Instant::now() + Duration::from_secs(s));
    let mut printed = 0;
    loop {
        let wait = match deadline {
            Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => left.min(PRINT_PERIOD),
                _ => break,
            },
            None => PRINT_PERIOD,
        };
        if satellite.wait_for_reports(printed + 1, wait) {
            // Let the rest of a burst arrive, so that its traces print whole.
            std::thread::sleep(Duration::from_millis(100));
            printed = print_new_reports(&satellite, printed);
        }
    }
    print_new_reports(&satellite, printed);
    println!("{} requests received", satellite.requests_seen());
    ExitCode::SUCCESS
}

/// Prints the reports after the first `printed` (with a view, what the view holds); returns
/// how many are printed now.
fn print_new_reports(satellite: &LocalSatellite, printed: usize) -> usize {
    if let Some(stats) = satellite.view_stats() {
        let received = satellite.reports_received();
        if received > printed {
            println!(
                "{received} reports received; the view holds {} traces, {} spans \
                 (evicted: {} traces, {} spans)",
                stats.traces, stats.spans, stats.evicted_traces, stats.evicted_spans
            );
        }
        return received;
    }
    let reports = satellite.reports();
    let Some(new) = reports.get(printed..).filter(|new| !new.is_empty()) else {
        return reports.len();
    };
    let mut spans = Vec::new();
    for report in new {
        println!(
            "report from {}: {} spans, {}",
            report.component_name().unwrap_or("(no component name)"),
            report.request.spans.len(),
            if report.accepted {
                "accepted"
            } else {
                "refused"
            }
        );
        if report.accepted {
            spans.extend(report.spans());
        }
    }
    let style = TreeStyle::default().with_durations(true).with_logs(true);
    print!("{}", lstrace::testing::tree::render(&spans, style));
    reports.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Options, String> {
        Options::parse(args.iter().map(|a| (*a).to_owned()))
    }

    fn limits(max_traces: usize, max_spans: usize) -> ViewLimits {
        let mut limits = ViewLimits::default();
        limits.max_traces = max_traces;
        limits.max_spans = max_spans;
        limits
    }

    #[test]
    fn parses_port_and_seconds() {
        assert_eq!(
            parse(&[]),
            Ok(Options {
                port: 8360,
                seconds: None,
                view: Some(ViewLimits::default()),
            })
        );
        assert_eq!(
            parse(&[
                "--seconds",
                "3",
                "--port",
                "0",
                "--max-traces",
                "5",
                "--max-spans",
                "50"
            ]),
            Ok(Options {
                port: 0,
                seconds: Some(3),
                view: Some(limits(5, 50)),
            })
        );
        assert_eq!(parse(&["--trees"]).unwrap().view, None);
        assert!(parse(&["--max-spans", "0"])
            .unwrap_err()
            .contains("positive"));
        assert!(parse(&["--max-traces", "x"])
            .unwrap_err()
            .contains("--max-traces"));
        assert!(parse(&["--port"]).unwrap_err().contains("needs a value"));
        assert!(parse(&["--port", "70000"])
            .unwrap_err()
            .contains("not a port"));
        assert!(parse(&["--seconds", "-1"]).is_err());
        assert!(parse(&["--verbose"]).unwrap_err().contains("unknown"));
    }
}
