//! A process that ends without closing its tracer: when `main` returns, on
//! `std::process::exit`, and when a panic ends the process, the spans made just before are
//! delivered by the at-exit hook, or counted on stderr when they cannot be. Each case runs
//! this test binary again as a child process (the `child` test, which does nothing unless
//! the parent asks it to).
#![cfg(unix)]

mod support;

use lstrace_core::satellite::fault::{Fault, FaultServer};
use lstrace_core::{init, span, Options};
use std::process::{Command, Output};
use std::time::Duration;
use support::{dead_url, PATIENCE, TOKEN};

const MODE: &str = "LSTRACE_EXIT_TEST_MODE";
const URL: &str = "LSTRACE_EXIT_TEST_URL";
/// `Options::exit_close_timeout`, in milliseconds, when set.
const EXIT_TIMEOUT: &str = "LSTRACE_EXIT_TEST_TIMEOUT_MS";
const SPANS: usize = 5_000;

/// The child's side: what the parent's mode says.
#[test]
fn child() {
    let Ok(mode) = std::env::var(MODE) else {
        return;
    };
    let url = std::env::var(URL).unwrap();
    let mut options = Options::new(TOKEN)
        .component_name("exit-test")
        .collector_url(url);
    if let Ok(ms) = std::env::var(EXIT_TIMEOUT) {
        options = options.exit_close_timeout(Duration::from_millis(ms.parse().unwrap()));
    }
    let tracer = init(options).unwrap();
    let guard = (mode == "guard").then(|| tracer.shutdown_guard(PATIENCE));
    for i in 0..SPANS {
        let _span = span("before exit").with_tag("i", i as i64).start();
    }
    match mode.as_str() {
        "guard" => {
            drop(guard);
            assert!(tracer.is_stopped(), "the guard closed the tracer");
        }
        "exit" => std::process::exit(0),
        "panic" => panic!("the program panics with spans unsent"),
        _ => {}
    }
}

fn run_child(mode: &str, url: &str) -> Output {
    run_child_with(mode, url, None)
}

fn run_child_with(mode: &str, url: &str, exit_timeout: Option<Duration>) -> Output {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args(["child", "--exact", "--nocapture", "--test-threads=1"])
        .env(MODE, mode)
        .env(URL, url);
    if let Some(timeout) = exit_timeout {
        command.env(EXIT_TIMEOUT, timeout.as_millis().to_string());
    }
    command.output().unwrap()
}

#[test]
fn spans_made_just_before_the_process_ends_are_delivered() {
    for mode in ["return", "exit", "panic", "guard"] {
        let satellite = FaultServer::start(Fault::Accept).unwrap();
        let output = run_child(mode, &satellite.url());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.success(), mode != "panic", "{mode}: {stderr}");
        assert!(
            satellite.wait_for_ingested(SPANS, Duration::ZERO),
            "{mode}: {} of {SPANS} delivered; stderr: {stderr}",
            satellite.ingested().len()
        );
        assert!(!stderr.contains("lost"), "{mode}: {stderr}");
    }
}

#[test]
fn spans_that_cannot_be_delivered_at_exit_are_counted_on_stderr() {
    for mode in ["return", "exit", "guard"] {
        let output = run_child(mode, &dead_url());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(&format!("{SPANS} spans could not be delivered")),
            "{mode}: {stderr}"
        );
    }
}

#[test]
fn the_exit_deadline_is_an_option() {
    // Answers 1.5 s after each report: later than the default deadline (1 s).
    let satellite = FaultServer::start(Fault::Slow(Duration::from_millis(1500))).unwrap();
    let output = run_child("return", &satellite.url());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("{SPANS} spans could not be delivered")),
        "default: {stderr}"
    );
    let output = run_child_with("return", &satellite.url(), Some(PATIENCE));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(!stderr.contains("lost"), "{PATIENCE:?}: {stderr}");
    // Zero: nothing more is sent, and the loss is told.
    let answered = satellite.requests().len();
    let output = run_child_with("return", &satellite.url(), Some(Duration::ZERO));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("{SPANS} spans could not be delivered")),
        "zero: {stderr}"
    );
    assert_eq!(satellite.requests().len(), answered, "zero: nothing sent");
}
