//! A local LightStep satellite to run by hand: point a tracer at it and watch the traces
//! arrive as trees.
//!
//! ```text
//! cargo run -p lstrace-examples --example satellite -- [--port N] [--seconds N]
//! ```
//!
//! Listens on 127.0.0.1:8360 (where tracers look for a developer satellite) unless `--port`
//! says otherwise (`--port 0` picks a free port), prints the trees of the reports received
//! every second, and runs until Ctrl-C or for `--seconds`.

use lstrace::satellite::{self, LocalSatellite};
use lstrace::tree::TreeStyle;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::time::{Duration, Instant};

const USAGE: &str = "usage: satellite [--port N] [--seconds N]";

/// How often new reports are printed.
const PRINT_PERIOD: Duration = Duration::from_secs(1);

#[derive(Debug, PartialEq)]
struct Options {
    port: u16,
    seconds: Option<u64>,
}

impl Options {
    fn parse(args: impl IntoIterator<Item = String>) -> Result<Options, String> {
        let mut options = Options {
            port: 8360,
            seconds: None,
        };
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
                other => return Err(format!("unknown argument {other:?}")),
            }
        }
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
    let satellite =
        match LocalSatellite::start_on(SocketAddr::from((Ipv4Addr::LOCALHOST, options.port))) {
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
        satellite::REPORTS_PATH
    );
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

/// Prints the reports after the first `printed`; returns how many are printed now.
fn print_new_reports(satellite: &LocalSatellite, printed: usize) -> usize {
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
            spans.extend(report.request.spans.iter().cloned());
        }
    }
    let style = TreeStyle {
        durations: true,
        logs: true,
    };
    print!("{}", satellite::render(&spans, style));
    reports.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Options, String> {
        Options::parse(args.iter().map(|a| (*a).to_owned()))
    }

    #[test]
    fn parses_port_and_seconds() {
        assert_eq!(
            parse(&[]),
            Ok(Options {
                port: 8360,
                seconds: None
            })
        );
        assert_eq!(
            parse(&["--seconds", "3", "--port", "0"]),
            Ok(Options {
                port: 0,
                seconds: Some(3)
            })
        );
        assert!(parse(&["--port"]).unwrap_err().contains("needs a value"));
        assert!(parse(&["--port", "70000"])
            .unwrap_err()
            .contains("not a port"));
        assert!(parse(&["--seconds", "-1"]).is_err());
        assert!(parse(&["--verbose"]).unwrap_err().contains("unknown"));
    }
}
