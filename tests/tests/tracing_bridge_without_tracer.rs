//! The `tracing` bridge installed in a process that never initialises an lstrace tracer (this
//! test binary installs none): `tracing` works as without it, and nothing is recorded.
#![deny(warnings, clippy::all, clippy::pedantic)]

use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};
use tracing::field::Empty;
use tracing::Instrument as _;
use tracing_subscriber::layer::SubscriberExt;

#[derive(Clone, Default)]
struct Output(Arc<Mutex<Vec<u8>>>);

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[lstrace::traced]
fn traced_inside() -> u32 {
    assert!(lstrace::current().is_none());
    tracing::info!(inside = true, "traced");
    7
}

#[test]
fn tracing_works_as_without_the_bridge() {
    let output = Output::default();
    let writer = output.clone();
    let subscriber = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .without_time()
                .with_writer(move || writer.clone()),
        )
        .with(lstrace::bridge::tracing::layer());
    tracing::subscriber::with_default(subscriber, || {
        let cause = tracing::info_span!("cause");
        let span = tracing::info_span!(target: "app", "request", id = 7, late = Empty);
        span.follows_from(&cause);
        span.record("late", "set");
        let value = span.in_scope(|| {
            assert!(lstrace::current().is_none());
            traced_inside()
        });
        assert_eq!(value, 7);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        runtime.block_on(
            async {
                tracing::warn!("in a future");
            }
            .instrument(tracing::info_span!(target: "app", "task")),
        );
    });
    let text = String::from_utf8_lossy(&output.0.lock().unwrap_or_else(PoisonError::into_inner))
        .into_owned();
    assert!(text.contains("request{id=7 late=\"set\"}: "), "{text}");
    assert!(text.contains("inside=true"), "{text}");
    assert!(
        text.contains("task: tracing_bridge_without_tracer: in a future"),
        "{text}"
    );
    assert_eq!(lstrace::__private::pending_spans(), 0);
}
