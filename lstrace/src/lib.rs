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
//!     lstrace::set_tag("cache.hit", true); // tags the current span: this call's
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
//! state, so use [`spawn`], [`spawn_blocking`] or [`FutureExt::in_current_context`], or move
//! [`current()`] to another thread and [`enter`](SpanContext::enter) it there.
//!
//! # Tags and logs
//!
//! Tag and log values keep their type (integers, floats, booleans, strings). A string value
//! may borrow from anything: it is copied into the span, inline when it is short (up to 22
//! bytes, no allocation; see [`SpanStr`]); [`TagValue::from_static`] keeps a long literal
//! borrowed. Keys are names: string literals (borrowed, never copied) or a `String` /
//! `&String` built at run time. A log whose values have different types is written with
//! [`fields!`]:
//!
//! ```
//! # let capture = lstrace::testing::TestRecorder::install().capture();
//! # capture.in_scope(|| {
//! let mut span = lstrace::span("checkout").start();
//! let sku = String::from("A-1234");
//! span.set_tag("sku", sku.as_str()); // or `&sku`
//! lstrace::set_tag("customer", &format!("c-{}", 7));
//! span.log([("event", "added"), ("sku", sku.as_str())]);
//! span.log(lstrace::fields!(event = "priced", sku = &sku, cents = 1250, "tax.included" = true));
//! drop(sku); // the span holds its own copies
//! # });
//! # assert_eq!(
//! #     capture.tree_with(lstrace::testing::tree::TreeStyle::default().with_logs(true).with_durations(false)),
//! #     "checkout [customer=c-7, sku=A-1234]\n  - event=added, sku=A-1234\n  \
//! #      - event=priced, sku=A-1234, cents=1250, tax.included=true\n"
//! # );
//! ```
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
//! - `reporter` (default): [`init`], [`Options`], [`Tracer`] and the rest of the reporter,
//!   with its tokio runtime and HTTP/TLS stack (reqwest, rustls, prost). A library that only
//!   instruments its code depends on `lstrace = { version = "0.1", default-features = false }`:
//!   `#[traced]`, spans, context, propagation and [`testing`] work without them, and the
//!   application's tracer records its spans.
//! - `tokio` (with `reporter`): [`spawn`] and [`spawn_blocking`], tokio's, carrying the
//!   current span into the task.
//! - `reqwest`: client (exit) spans for reqwest 0.13, with the context injected into the request.
//! - `tower`: a `tower::Layer` opening server (entry) spans from incoming headers.
//! - `tracing`: `lstrace::bridge::tracing::layer()`, a `tracing_subscriber::Layer` that records
//!   `tracing` spans as lstrace spans and events as span logs, in the same traces as
//!   `#[traced]` spans (libraries such as hyper, tower-http, sqlx and reqwest-tracing emit them).
//! - `log`: `lstrace::bridge::log::logger()`, a `log::Log` that records `log` records as logs
//!   on the current span.
//! - `satellite`: `lstrace::satellite::LocalSatellite`, a local LightStep satellite that
//!   receives real reports, for tests and development, and can show them in a browser.
#![deny(missing_docs)]
// docs.rs builds with `--cfg docsrs` on nightly: items say which feature they need.
#![cfg_attr(docsrs, feature(doc_cfg))]

// The API by name: an item of lstrace-core is public here only once it is listed.
#[cfg(any(feature = "tracing", feature = "log"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "tracing", feature = "log"))))]
pub use lstrace_core::bridge;
#[cfg(any(feature = "reqwest", feature = "tower"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "reqwest", feature = "tower"))))]
pub use lstrace_core::http;
#[cfg(feature = "satellite")]
#[cfg_attr(docsrs, doc(cfg(feature = "satellite")))]
pub use lstrace_core::satellite;
pub use lstrace_core::{
    baggage_item, current, fields, log, propagation, record_error, recorder, sampling,
    set_baggage_item, set_tag, span, testing, EnteredSpan, FutureExt, InCurrentContext,
    Instrumented, LogRecord, Recorder, Relationship, Span, SpanBuilder, SpanContext, SpanId,
    SpanKind, SpanRecord, SpanStr, Tag, TagList, TagValue, ToTagValue, TraceId,
};
#[cfg(feature = "reporter")]
#[cfg_attr(docsrs, doc(cfg(feature = "reporter")))]
pub use lstrace_core::{
    close, flush, init, protocol, reporter, set_event_handler, tracer, Event, FlushReport,
    InitError, Options, ShutdownGuard, Stats, Tracer,
};
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub use lstrace_core::{spawn, spawn_blocking};

/// What most code that traces needs, to glob-import: `use lstrace::prelude::*;`.
///
/// The traits come in unnamed (`as _`): their methods are in scope without their names, so
/// that a glob import of another prelude (`futures`' `FutureExt`, say) cannot clash, and
/// their method names differ from `tracing::Instrument`'s (`instrument`, `in_current_span`),
/// so both can be used in one module.
///
/// ```
/// use lstrace::prelude::*;
///
/// #[traced(kind = server)]
/// async fn handle() -> u32 {
///     let child = span("load").kind(SpanKind::Client).start_detached();
///     async { 7 }.in_span(child).await
/// }
///
/// let capture = lstrace::testing::TestRecorder::install().capture();
/// let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// assert_eq!(runtime.block_on(capture.scope(handle())), 7);
/// assert_eq!(capture.tree(), "handle [span.kind=server]\n  load [span.kind=client]\n");
/// ```
pub mod prelude {
    pub use crate::traced;
    pub use lstrace_core::FutureExt as _;
    pub use lstrace_core::{
        current, record_error, set_tag, span, EnteredSpan, Span, SpanContext, SpanKind, TagValue,
    };
}
/// Traces a function: each call is a span, a child of the span that is current when it
/// starts, which is the current span for the code inside.
///
/// ```
/// use lstrace::traced;
///
/// #[traced]
/// fn load(id: u32) -> u32 {
///     id * 2
/// }
///
/// #[traced(name = "GET /users", kind = server, tags(user = id, cache = "warm"))]
/// fn handle(id: u32) -> u32 {
///     load(id) + 1
/// }
///
/// let capture = lstrace::testing::TestRecorder::install().capture();
/// assert_eq!(capture.in_scope(|| handle(3)), 7);
/// assert_eq!(
///     capture.tree(),
///     "GET /users [cache=warm, span.kind=server, user=3]\n  load\n"
/// );
/// ```
///
/// # Arguments
///
/// All are optional, in any order, each at most once.
///
/// | argument | records |
/// |---|---|
/// | `name = "op"` | the operation name; default: the function's name |
/// | `tags(key = value, ...)` | tags, evaluated when the span starts |
/// | `args(a, ?b, %c)` | the named parameters, as tags under their own names |
/// | `err`, `err(?)` | on `Err(e)`: `error = true` and a log `event = error`, `message = e` |
/// | `ret`, `ret(?)`, `ret(%)` | the returned value, as the tag `return` |
/// | `kind = server` | the `span.kind` tag: `server`, `client`, `producer` or `consumer` |
/// | `follows_from` | references the current span with FOLLOWS_FROM instead of CHILD_OF |
/// | `root` | starts a new trace, whatever the current span is |
/// | `crate = path` | where the generated code finds lstrace: `crate = my_facade::lstrace` |
///
/// **`name`**: a string literal. The default is the function's name as written: for a method
/// it is the method's name alone (`fetch`, not `Client::fetch`), since the attribute sees the
/// function and not the `impl` around it; write `name = "Client::fetch"` to say more.
///
/// **`tags(key = value, ...)`**: the key is an identifier (`user`) or a string literal
/// (`"http.method"`). The value is any expression and may use the function's parameters: it
/// is evaluated by reference when the span starts (it never moves a parameter), and only
/// when a tracer is recording. Values keep their type: integers, floats, booleans and strings
/// (and references and `Option`s of them) become typed tags through `lstrace::ToTagValue`; write
/// `key = ?value` to record a value's `Debug` text and `key = %value` for its `Display`
/// text. A string, integer, float or boolean literal is recorded as it is, without any
/// conversion or allocation.
///
/// **`args(a, b)`**: records the named parameters as tags named after them, typed as above
/// (`?a` for `Debug`, `%a` for `Display`). Nothing is recorded unless named.
///
/// **`err`**: for a function returning a `Result`: on `Err(e)` the span gets `error = true`
/// and a log with `event = "error"` and `message` = the error's `Display` text (`err(?)`:
/// its `Debug` text).
///
/// **`ret`**: records the returned value as the tag `return`: typed (`ret`), `Debug`
/// (`ret(?)`) or `Display` (`ret(%)`). With `err` too, only an `Ok` value is recorded;
/// without it, the whole value (so for a `Result`, write `ret(?)`).
///
/// **`kind`**, **`follows_from`**, **`root`**: as `SpanBuilder::kind`,
/// `SpanBuilder::follows_from_current` and `SpanBuilder::root`. `root` and
/// `follows_from` cannot be used together.
///
/// ```
/// use lstrace::{traced, TagValue};
///
/// #[derive(Debug)]
/// struct Order {
///     id: u64,
/// }
///
/// #[traced(args(?order, quantity), tags("order.id" = order.id, total = f64::from(quantity) * 2.5), err, ret)]
/// fn price(order: &Order, quantity: u32) -> Result<f64, String> {
///     if quantity == 0 {
///         return Err(format!("order {} is empty", order.id));
///     }
///     Ok(f64::from(quantity) * 2.5)
/// }
///
/// let capture = lstrace::testing::TestRecorder::install().capture();
/// capture.in_scope(|| {
///     assert_eq!(price(&Order { id: 7 }, 2), Ok(5.0));
///     assert!(price(&Order { id: 8 }, 0).is_err());
/// });
/// let spans = capture.spans();
/// assert_eq!(spans[0].tag("return"), Some(&TagValue::Float(5.0)));
/// assert_eq!(spans[0].tag("quantity"), Some(&TagValue::Int(2)));
/// assert_eq!(spans[0].tag("order"), Some(&TagValue::from("Order { id: 7 }".to_owned())));
/// assert_eq!(spans[1].tag("error"), Some(&TagValue::Bool(true)));
/// assert_eq!(
///     spans[1].logs()[0].field("message"),
///     Some(&TagValue::from("order 8 is empty".to_owned()))
/// );
/// ```
///
/// **`crate = path`**: for a crate that re-exports lstrace to its users (a facade), whose
/// users need not depend on lstrace themselves. Every path the attribute generates starts
/// with `path` instead of `::lstrace`:
///
/// ```
/// mod my_facade {
///     pub mod lstrace {
///         pub use ::lstrace::*;
///     }
/// }
///
/// #[lstrace::traced(crate = my_facade::lstrace)]
/// fn load() {}
/// # load();
/// ```
///
/// # Functions it traces
///
/// - **Synchronous functions**, methods (`self`, `&self`, `&mut self`), generic functions,
///   `unsafe fn`, functions with `impl Trait` parameters or return types, with `mut`, `_` or
///   destructured parameters. The span is entered for the whole body, however the function
///   returns (`return`, `?`, or a panic, which marks the span `error = true` and goes on).
/// - **`async fn`**, also in traits: the span starts when the future is first polled, is the
///   current span whenever the body runs (across `.await`s, on whatever thread polls it), and
///   finishes when the body completes. A future dropped before completing finishes its span
///   tagged `cancelled = true`.
/// - **Functions returning a boxed future** (`Pin<Box<dyn Future<Output = T> + ...>>`,
///   `BoxFuture`, `LocalBoxFuture`), such as the methods `#[async_trait]` generates: put
///   `#[traced]` under `#[async_trait]`, on the method. The span covers the future's
///   execution. A body ending in `Box::pin(async move { .. })` (as `#[async_trait]` writes
///   it) has that async block instrumented, and its span starts when the future is first
///   polled, as for an `async fn`. Any other body runs inside the span, which then starts
///   when the function is called, and the future it returns is wrapped.
///
/// ```
/// use lstrace::traced;
///
/// #[traced]
/// async fn fetch(key: &str) -> usize {
///     key.len()
/// }
///
/// #[traced(ret)]
/// async fn total(keys: &[&str]) -> usize {
///     let mut sum = 0;
///     for key in keys {
///         sum += fetch(key).await;
///     }
///     sum
/// }
///
/// let capture = lstrace::testing::TestRecorder::install().capture();
/// let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// assert_eq!(runtime.block_on(capture.scope(total(&["a", "bc"]))), 3);
/// assert_eq!(capture.tree(), "total [return=3]\n  fetch\n  fetch\n");
/// ```
///
/// # Cost
///
/// With no tracer installed (or after it stopped), a traced call costs one load and one
/// branch: no name or tag is evaluated. When recording, a span with a literal name and
/// literal tags (up to three) allocates nothing to start.
///
/// # Errors
///
/// Misuse is a compile error at the offending tokens: an unknown or repeated argument, an
/// `args` entry that names no parameter, a malformed tag, `err` on a function that returns an
/// `Option`, a `const fn`, or an item that is not a function.
pub use lstrace_macros::traced;

/// What `#[traced]` expands to. Not a public API: it may change in any release.
#[doc(hidden)]
pub mod __private {
    pub use lstrace_core::__private::*;
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
        label = "`{Self}` is not a `Result`",
        note = "`err` records the `Err` of a `Result`: to record another value, write `ret`; \
                to mark the span as failed, call `lstrace::record_error` where the function fails"
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

    // Not recommended: the error says what `err` needs instead of pointing at this impl.
    #[diagnostic::do_not_recommend]
    impl<T, E> TracedResult for Result<T, E> {
        type Value = T;
        type Error = E;
        fn as_result(&self) -> Result<&T, &E> {
            self.as_ref()
        }
    }

    /// An error as `err` records it: its `Display` text.
    #[diagnostic::on_unimplemented(
        message = "`#[traced(err)]` records the error's `Display` text, and `{Self}` does not \
                   implement `Display`",
        label = "`{Self}` is not `Display`: write `err(?)` to record its `Debug` text"
    )]
    pub trait ErrorText {
        /// The error, to format.
        fn text(&self) -> &dyn Display;
    }

    #[diagnostic::do_not_recommend]
    impl<E: Display> ErrorText for E {
        fn text(&self) -> &dyn Display {
            self
        }
    }

    /// The `Display` text of a value, for `%value`.
    #[must_use]
    pub fn display<T: Display + ?Sized>(value: &T) -> TagValue {
        TagValue::from(value.to_string())
    }
}

/// What a user must not reach, as doc tests that must fail to compile with the error given:
/// the recorder's side of the tracer (`dropped` would inflate its drop counts), the test
/// feeder, and the alias of lstrace's own string type.
///
/// ```compile_fail,E0599
/// let tracer = lstrace::init(lstrace::Options::new("token")).unwrap();
/// tracer.dropped(4);
/// ```
///
/// ```compile_fail,E0599
/// let _ = lstrace::Tracer::start(lstrace::Options::new("token"));
/// ```
///
/// ```compile_fail,E0412
/// let _: lstrace::Str = "key".into();
/// ```
///
/// And what they would be if they were reachable, so that each case above fails for the
/// reason it names, not for a mistake of its own:
///
/// ```
/// let tracer = lstrace::init(lstrace::Options::new("token")).unwrap();
/// let _ = tracer.stats();
/// let _: lstrace::SpanStr = "key".into();
/// # tracer.close(std::time::Duration::from_secs(1));
/// ```
#[cfg(all(doctest, feature = "reporter"))]
struct PrivateItems;

/// Types that may grow, as doc tests that must fail to compile with the error given: a
/// `match` on `Relationship` without a `_` arm, and a `TreeSpan` written as a struct literal.
///
/// ```compile_fail,E0004
/// fn name(relationship: lstrace::Relationship) -> &'static str {
///     match relationship {
///         lstrace::Relationship::ChildOf => "child_of",
///         lstrace::Relationship::FollowsFrom => "follows_from",
///     }
/// }
/// ```
///
/// ```compile_fail,E0639
/// let _ = lstrace::testing::tree::TreeSpan {
///     trace_id: 1,
///     span_id: 1,
///     parent_id: None,
///     name: "load".to_owned(),
///     start_unix_nanos: 0,
///     duration: std::time::Duration::ZERO,
///     tags: Vec::new(),
///     logs: Vec::new(),
/// };
/// ```
///
/// And what they need instead, which compiles:
///
/// ```
/// fn name(relationship: lstrace::Relationship) -> &'static str {
///     match relationship {
///         lstrace::Relationship::ChildOf => "child_of",
///         lstrace::Relationship::FollowsFrom => "follows_from",
///         _ => "other",
///     }
/// }
/// let mut span = lstrace::testing::tree::TreeSpan::new(1, 1, "load");
/// span.start_unix_nanos = 5;
/// assert_eq!(name(lstrace::Relationship::ChildOf), "child_of");
/// ```
#[cfg(doctest)]
struct GrowingTypes;
