//! lstrace: distributed tracing for LightStep-compatible backends.
//!
//! Annotate functions with [`#[traced]`](traced), initialise the tracer once with an access
//! token, and every call becomes a span: a child of the span that is current in its task,
//! reported in the background as protobuf over HTTP to a LightStep collector or satellite.
//!
//! # Tracing functions
//!
//! ```
//! use lstrace::traced;
//!
//! #[traced(kind = server, tags("http.method" = "GET"), args(user))]
//! fn handle(user: u32) -> String {
//!     format!("hello {}", lookup(user).unwrap_or("stranger"))
//! }
//!
//! #[traced(err)]
//! fn lookup(user: u32) -> Result<&'static str, String> {
//!     lstrace::tag("cache.hit", true); // tags the current span: this call's
//!     if user == 7 { Ok("ann") } else { Err(format!("no user {user}")) }
//! }
//!
//! # let capture = lstrace::testing::TestRecorder::install().capture();
//! # capture.in_scope(|| {
//! handle(7);
//! # });
//! # assert_eq!(
//! #     capture.tree(),
//! #     "handle [http.method=GET, span.kind=server, user=7]\n  lookup [cache.hit=true]\n"
//! # );
//! ```
//!
//! Async functions work the same way. The current span belongs to the task: inside a traced
//! `async fn`, spans nest under it across every `.await`, whichever thread polls it, and tasks
//! sharing a thread never see each other's spans. `tokio::spawn` does not carry task-local
//! state, so use [`spawn`], [`spawn_blocking`] or [`FutureExt::in_current_span`], or move
//! [`current()`] to another thread and [`enter`](SpanContext::enter) it there.
//!
//! # Reporting
//!
//! ```no_run
//! use std::time::Duration;
//!
//! # fn main() -> Result<(), lstrace::InitError> {
//! // LS_ACCESS_TOKEN, LS_SERVICE_NAME and LS_COLLECTOR_URL, or the builder methods.
//! let tracer = lstrace::init(lstrace::Options::from_env().component_name("checkout"))?;
//! // ... traced work ...
//! let report = tracer.close(Duration::from_secs(5)); // flush, then stop; never longer than 5 s
//! println!("{} spans sent, {} dropped", report.spans_sent, report.spans_dropped);
//! # Ok(())
//! # }
//! ```
//!
//! The tracer never blocks the traced code: spans wait in bounded per-thread rings and a
//! bounded reporter buffer; when either is full the newest span is dropped, counted, reported
//! to the collector (`spans.dropped`) and to the event handler ([`set_event_handler`]).
//!
//! # Testing your instrumentation
//!
//! [`testing::TestRecorder`] keeps spans in memory, and a [`testing::Capture`] keeps one
//! test's spans apart from others running in parallel, as readable trees:
//!
//! ```
//! let capture = lstrace::testing::TestRecorder::install().capture();
//! capture.in_scope(|| {
//!     let _request = lstrace::span("request").kind(lstrace::SpanKind::Server).start();
//!     lstrace::span("query").with_tag("rows", 3).start().finish();
//! });
//! assert_eq!(capture.tree(), "request [span.kind=server]\n  query [rows=3]\n");
//! ```
//!
//! # Features
//!
//! - `reqwest`: client (exit) spans for reqwest, with the context injected into the request.
//! - `tower`: a `tower::Layer` opening server (entry) spans from incoming headers.
//! - `tracing`: `lstrace::tracing::layer()`, a `tracing_subscriber::Layer` that records
//!   `tracing` spans as lstrace spans and events as span logs, in the same traces as
//!   `#[traced]` spans (libraries such as hyper, tower-http, sqlx and reqwest-tracing emit them).
//! - `satellite`: `lstrace::satellite::LocalSatellite`, a local LightStep satellite that
//!   receives real reports, for tests and development, and can show them in a browser.
#![deny(missing_docs)]

pub use lstrace_core::*;
pub use lstrace_macros::traced;

/// What `#[traced]` expands to. Not a public API: it may change in any release.
#[doc(hidden)]
pub mod __private {
    use lstrace_core::TagValue;
    use std::fmt::{Debug, Display};

    /// The `Debug` text of a value, for `?value`.
    #[must_use]
    pub fn debug<T: Debug + ?Sized>(value: &T) -> TagValue {
        TagValue::from(format!("{value:?}"))
    }

    /// The two sides of a function's `Result`, for `err`.
    #[diagnostic::on_unimplemented(
        message = "`#[traced(err)]` needs a function that returns a `Result`, not `{Self}`",
        label = "the function's value is not a `Result`"
    )]
    pub trait TracedResult {
        /// The `Ok` type.
        type Value;
        /// The `Err` type.
        type Error;
        /// The value or the error, by reference.
        ///
        /// # Errors
        /// The function's error.
        fn as_result(&self) -> Result<&Self::Value, &Self::Error>;
    }

    impl<T, E> TracedResult for Result<T, E> {
        type Value = T;
        type Error = E;
        fn as_result(&self) -> Result<&T, &E> {
            self.as_ref()
        }
    }

    /// The `Display` text of a value, for `%value`.
    #[must_use]
    pub fn display<T: Display + ?Sized>(value: &T) -> TagValue {
        TagValue::from(value.to_string())
    }
}
