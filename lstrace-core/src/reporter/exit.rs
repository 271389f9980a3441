//! What happens to spans when the process ends without closing the tracer.
//!
//! On Unix, `init` registers a C `atexit` hook: when `main` returns, `std::process::exit` is
//! called, or a panic ends `main` (the runtime then exits with status 101), the hook closes
//! the process's tracer if it is still running, within its
//! [`Options::exit_close_timeout`](super::Options::exit_close_timeout) (by default
//! [`DEFAULT_EXIT_CLOSE_TIMEOUT`](super::DEFAULT_EXIT_CLOSE_TIMEOUT): short, as the process
//! is ending, and enough for a healthy satellite, which answers within milliseconds, and one
//! retry), and says on stderr how many spans could not be delivered. Other platforms get no
//! hook: Windows ends every other thread, the reporter's too, before exit hooks run. A
//! process killed by a signal or aborted runs no hook: use a
//! [`ShutdownGuard`](super::ShutdownGuard) or `close` where it matters.

use super::FlushReport;
#[cfg(unix)]
use super::GLOBAL;

/// Registers the hook, once per process.
pub(super) fn install_hook() {
    #[cfg(unix)]
    {
        static REGISTERED: std::sync::Once = std::sync::Once::new();
        REGISTERED.call_once(|| {
            // SAFETY: `atexit` only keeps the pointer; `at_exit` is an `extern "C" fn()`, as it
            // expects, that lives as long as the program and lets no panic unwind into C.
            unsafe {
                libc::atexit(at_exit);
            }
        });
    }
}

#[cfg(unix)]
extern "C" fn at_exit() {
    // Nothing may unwind into the C runtime.
    let _ = std::panic::catch_unwind(|| {
        let Some(tracer) = GLOBAL.get() else {
            return;
        };
        if tracer.is_stopped() {
            return;
        }
        let report = tracer.close(tracer.shared().config.exit_close_timeout);
        tell_loss(&report, "the process exited without closing the tracer");
    });
}

/// Says on stderr how many spans a final close could not deliver, if any.
pub(super) fn tell_loss(report: &FlushReport, when: &str) {
    let lost = report.spans_dropped + report.stats.spans_buffered;
    if lost > 0 {
        eprintln!(
            "lstrace: {when}: {lost} spans could not be delivered and are lost \
             ({} delivered while closing)",
            report.spans_sent
        );
    }
}
