//! A drain in progress never holds up the instrumented threads. The recorder is global, so
//! this binary holds one test.

use lstrace_core::recorder::Spans;
use lstrace_core::{recorder, span, Recorder};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// A recorder whose `record` holds the drain until the test opens the gate.
struct Gated {
    /// (a drain is inside `record`, the gate is open)
    state: Mutex<(bool, bool)>,
    changed: Condvar,
    recorded: AtomicUsize,
}

static GATED: Gated = Gated {
    state: Mutex::new((false, false)),
    changed: Condvar::new(),
    recorded: AtomicUsize::new(0),
};

/// How long `record` waits for the gate at most, so that a failing test still ends.
const HOLD: Duration = Duration::from_secs(30);

impl Recorder for &'static Gated {
    fn record(&self, spans: &mut Spans<'_>) {
        self.recorded.fetch_add(spans.discard(), Ordering::SeqCst);
        let mut state = self.state.lock().unwrap();
        state.0 = true;
        self.changed.notify_all();
        let _ = self
            .changed
            .wait_timeout_while(state, HOLD, |s| !s.1)
            .unwrap();
    }

    fn dropped(&self, _count: u64) {}

    fn wake(&self) {}
}

#[test]
fn a_thread_starts_its_first_span_while_a_drain_is_in_the_recorder() {
    recorder::install(Box::new(&GATED)).unwrap();
    std::thread::spawn(|| drop(span("before the drain").start()))
        .join()
        .unwrap();
    let drain = std::thread::spawn(recorder::drain);
    drop(
        GATED
            .changed
            .wait_while(GATED.state.lock().unwrap(), |s| !s.0)
            .unwrap(),
    );

    // A new thread's first span registers the thread's ring: it must not wait for the drain.
    let (done, finished) = mpsc::channel();
    let newcomer = std::thread::spawn(move || {
        drop(span("first span of a new thread").start());
        done.send(()).unwrap();
    });
    let registered_during_the_drain = finished.recv_timeout(Duration::from_secs(10)).is_ok();

    GATED.state.lock().unwrap().1 = true;
    GATED.changed.notify_all();
    assert_eq!(drain.join().unwrap(), 1);
    newcomer.join().unwrap();
    assert!(
        registered_during_the_drain,
        "the new thread waited for the drain"
    );
    assert_eq!(recorder::drain(), 1);
    assert_eq!(GATED.recorded.load(Ordering::SeqCst), 2);
}
