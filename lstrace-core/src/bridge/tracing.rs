//! `tracing` spans and events as lstrace spans and logs: a [`tracing_subscriber::Layer`].
//!
//! ```
//! use lstrace_core::testing::tree::TreeStyle;
//! use tracing_subscriber::layer::SubscriberExt;
//!
//! let subscriber = tracing_subscriber::registry().with(lstrace_core::bridge::tracing::layer());
//! tracing::subscriber::with_default(subscriber, || {
//!     # let capture = lstrace_core::testing::TestRecorder::install().capture();
//!     # capture.in_scope(|| {
//!     let _request = tracing::info_span!(target: "app", "request", user = 7).entered();
//!     tracing::info!(rows = 3, "loaded");
//!     # });
//!     # assert_eq!(
//!     #     capture.tree_with(TreeStyle::default().with_logs(true)),
//!     #     "request [target=app, user=7]\n  - level=INFO, message=loaded, rows=3\n"
//!     # );
//! });
//! ```
//!
//! # One context for both worlds
//!
//! While a `tracing` span is entered, its lstrace span is the current lstrace span of the
//! thread (or task): `#[traced]` functions called inside it are its children, `lstrace::set_tag`
//! and `lstrace::log` reach it, and propagation injects it. A `tracing` span created without
//! an explicit parent is a child of the innermost span of either kind, so a `tracing` span
//! opened inside a `#[traced]` function (or inside [`FutureExt::in_span`] or
//! [`spawn`](crate::spawn)ed work) is its child, in its trace.
//!
//! `tracing::Instrument::instrument(span)` carries both contexts, since the span it is given
//! was created (and parented) where the future was made. `tracing::Instrument::in_current_span`
//! carries only the current *`tracing`* span: when the innermost span is a `#[traced]` one,
//! use [`FutureExt::in_current_context`] (or [`spawn`](crate::spawn)) instead, which carries
//! the innermost span of either kind and the current `tracing` span.
//!
//! # Mapping
//!
//! | `tracing` | lstrace |
//! |---|---|
//! | span name | operation name (`otel.name` replaces it) |
//! | span target | tag `target` (see [`BridgeLayer::with_target_tag`]) |
//! | `i64`, `u64`, `f64`, `bool`, `str` fields | tags of that type (`u64` past `i64::MAX`: a string) |
//! | other fields (`?debug`, `%display`, errors) | string tags, their text |
//! | `Span::record` | a tag set (or replaced) then |
//! | `otel.kind` / `span.kind` (`server`, `client`, `producer`, `consumer`) | tag `span.kind` |
//! | `error = true` / `otel.status_code = "ERROR"` | tag `error = true` |
//! | `error = <non-bool>` | tags `error = true` and `error.message` = its text |
//! | `follows_from` | a FOLLOWS_FROM reference, for a span that has no parent of its own; else a log `event = follows_from` with the span's ids |
//! | event inside a span | a log on the innermost span: `level`, `message`, then its fields |
//! | event at `ERROR` level | also tags the span `error = true` (see [`BridgeLayer::with_error_events`]) |
//!
//! A span finishes when the `tracing` span closes (its last handle is dropped). Events
//! outside any span are not recorded. Nothing happens while no lstrace tracer records.
//!
//! [`FutureExt::in_span`]: crate::FutureExt::in_span
//! [`FutureExt::in_current_context`]: crate::FutureExt::in_current_context

use crate::clock;
use crate::context::SpanContext;
use crate::record::{LogFields, Relationship};
use crate::recorder;
use crate::span::SpanKind;
use crate::tag::{SpanStr, Tag, TagValue};
use crate::task::stack::{self, with_thread_spans, Ending, SpanFrame, Stamp};
use ::tracing::field::{Field, Visit};
use ::tracing::span::{Attributes, Id, Record};
use ::tracing::{Event, Level, Subscriber};
use std::cell::RefCell;
use std::fmt;
use std::mem::ManuallyDrop;
use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::{LookupSpan, Registry};

/// The layer that turns `tracing` spans into lstrace spans and events into span logs; see
/// the [module](self) for the mapping.
///
/// Use it with `tracing_subscriber::registry()`, next to `fmt` and any filter: a per-layer
/// filter (`layer().with_filter(..)`) limits which spans and events it sees, and spans it
/// does not see leave no hole: their children join the nearest span it does see.
#[derive(Clone, Debug)]
pub struct BridgeLayer {
    error_events: bool,
    target_tag: bool,
    /// Whether span ids come from `tracing-subscriber`'s registry, which never gives a live
    /// span's id to another, nor (for a while) a closed span's id to a span made on the same
    /// thread without this layer seeing it: the thread's [`Recent`] spans are then known by
    /// their id alone.
    registry_ids: bool,
}

/// The bridge layer with its defaults: ERROR events mark their span failed, and spans carry
/// their target as the tag `target`.
#[must_use]
pub fn layer() -> BridgeLayer {
    BridgeLayer {
        error_events: true,
        target_tag: true,
        registry_ids: false,
    }
}

impl Default for BridgeLayer {
    fn default() -> Self {
        layer()
    }
}

impl BridgeLayer {
    /// Whether an event at `ERROR` level tags its span `error = true` (default: yes).
    #[must_use]
    pub fn with_error_events(mut self, mark: bool) -> Self {
        self.error_events = mark;
        self
    }

    /// Whether spans carry their `tracing` target (`hyper::proto::h1`, ...) as the tag
    /// `target` (default: yes).
    #[must_use]
    pub fn with_target_tag(mut self, tag: bool) -> Self {
        self.target_tag = tag;
        self
    }
}

/// What the bridge keeps in a `tracing` span's extensions.
///
/// The span's frame stays here from its start to its finish: a thread that enters the span
/// pushes a stand-in for it (its context, and whatever is set on it while it is current),
/// which the frame absorbs when the thread leaves the span, if anything was set on it.
struct Bridged {
    /// The span's frame (context-only when it does not record); `None` once finished.
    frame: Option<SpanFrame>,
    /// Whether a thread has entered the span after looking it up in the registry (from then
    /// on, its trace does not change); a thread that entered it as one of its [`Recent`]
    /// spans knows it there.
    entered: AtomicBool,
}

impl Bridged {
    fn context(&self) -> Option<&SpanContext> {
        self.frame.as_ref().map(SpanFrame::context)
    }

    /// Applies a change to the span's record.
    fn apply(&mut self, change: Change) {
        if let Some(frame) = &mut self.frame {
            change.apply(frame);
        }
    }
}

impl Drop for Bridged {
    fn drop(&mut self) {
        stack::finish_detached(&mut self.frame, Ending::Normal);
    }
}

/// How many of the spans it made lately a thread remembers.
const RECENT: usize = 4;

/// The spans a thread made lately, with what entering one takes (its context, whether it
/// records), so that entering a span just made (the first poll of an instrumented future,
/// `span.enter()` after `span!`) does not look it up in the registry.
struct Recent {
    spans: [Option<RecentSpan>; RECENT],
    /// Where the next span goes (the oldest is replaced).
    next: usize,
}

struct RecentSpan {
    id: u64,
    context: SpanContext,
    records: bool,
    /// Whether this thread entered it.
    entered: bool,
}

impl Recent {
    fn insert(&mut self, id: u64, frame: &SpanFrame) {
        self.spans[self.next] = Some(RecentSpan {
            id,
            context: frame.context().clone(),
            records: frame.is_recording(),
            entered: false,
        });
        self.next = (self.next + 1) % RECENT;
    }

    /// The context of the span `id` to enter, and whether it records; `None` if this thread
    /// did not make it lately.
    #[inline]
    fn enter(&mut self, id: u64) -> Option<(SpanContext, bool)> {
        let span = self.spans.iter_mut().flatten().find(|s| s.id == id)?;
        span.entered = true;
        Some((span.context.clone(), span.records))
    }

    /// Forgets the span `id` (whose context changes); returns whether this thread entered it.
    fn forget(&mut self, id: u64) -> bool {
        for slot in &mut self.spans {
            if slot.as_ref().is_some_and(|s| s.id == id) {
                return slot.take().is_some_and(|s| s.entered);
            }
        }
        false
    }
}

thread_local! {
    static RECENT_SPANS: RefCell<Recent> = const {
        RefCell::new(Recent {
            spans: [None, None, None, None],
            next: 0,
        })
    };
}

/// Runs `f` on this thread's [`Recent`] spans; `None` (and `f` is not run) when the thread is
/// shutting down.
fn with_recent<R>(f: impl FnOnce(&mut Recent) -> R) -> Option<R> {
    RECENT_SPANS
        .try_with(|recent| recent.try_borrow_mut().ok().map(|mut r| f(&mut r)))
        .ok()
        .flatten()
}

/// A change to a span's record.
enum Change {
    Tag(SpanStr, TagValue),
    Name(SpanStr),
    Log(Stamp, Vec<Tag>),
}

impl Change {
    fn apply(self, frame: &mut SpanFrame) {
        match self {
            Change::Tag(key, value) => frame.set_tag(key, value),
            Change::Name(name) => {
                if let Some(record) = frame.record_mut() {
                    record.name = name;
                }
            }
            Change::Log(at, fields) => frame.log(at, LogFields::Heap(fields)),
        }
    }
}

/// The lstrace context of the span `id`, or of its nearest ancestor that the bridge knows.
fn bridged_context<S>(ctx: &Context<'_, S>, id: &Id) -> Option<SpanContext>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let span = ctx.span(id)?;
    span.scope().find_map(|s| {
        s.extensions()
            .get::<Bridged>()
            .and_then(|b| b.context().cloned())
    })
}

impl<S> tracing_subscriber::Layer<S> for BridgeLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_layer(&mut self, subscriber: &mut S) {
        self.registry_ids = (subscriber as &dyn Subscriber).is::<Registry>();
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if !recorder::is_enabled() {
            return;
        }
        let Some(span) = ctx.span(id) else {
            return;
        };
        let metadata = attrs.metadata();
        // `None`: the parent is the innermost span of either kind (an entered `tracing` span is
        // on lstrace's stack too), which is the builder's default.
        let explicit_parent = if attrs.is_root() {
            Some(None)
        } else {
            attrs.parent().map(|parent| bridged_context(&ctx, parent))
        };
        // Given up to `start_frame` below; leaked, not dropped, if a field's `Debug` panics.
        let mut builder = ManuallyDrop::new(crate::span(metadata.name()));
        if let Some(parent) = &explicit_parent {
            builder.set_parent(parent.as_ref());
        }
        if self.target_tag {
            builder.set_first_tag("target".into(), TagValue::from_static(metadata.target()));
        }
        let mut name = None;
        if !metadata.fields().is_empty() {
            attrs.record(&mut FieldValues(|field: &Field, value| {
                span_field(field, value, &mut |change| match change {
                    Change::Tag(key, value) => builder.set_tag(key, value),
                    Change::Name(n) => name = Some(n),
                    Change::Log(..) => {}
                });
            }));
        }
        let mut extensions = span.extensions_mut();
        // Inserted empty, then the frame is written in place: it is not copied into the
        // registry's box.
        extensions.insert(Bridged {
            frame: None,
            entered: AtomicBool::new(false),
        });
        let Some(bridged) = extensions.get_mut::<Bridged>() else {
            return;
        };
        // SAFETY: the builder is given up, and its frame written over an empty slot (which
        // needs no drop).
        unsafe { ptr::write(&mut bridged.frame, crate::span::start_frame(&mut builder)) };
        match &mut bridged.frame {
            Some(frame) => {
                if let Some(name) = name {
                    Change::Name(name).apply(frame);
                }
            }
            // The thread is shutting down: the span passes its explicit parent on.
            None => {
                if let Some(parent) = explicit_parent.flatten() {
                    bridged.frame = Some(SpanFrame::context_only(parent.span_id().get(), parent));
                }
            }
        }
        if self.registry_ids {
            if let Some(frame) = &bridged.frame {
                with_recent(|recent| recent.insert(id.into_u64(), frame));
            }
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if !recorder::is_enabled() {
            return;
        }
        let Some(span) = ctx.span(id) else {
            return;
        };
        let mut extensions = span.extensions_mut();
        if let Some(bridged) = extensions.get_mut::<Bridged>() {
            values.record(&mut FieldValues(|field: &Field, value| {
                span_field(field, value, &mut |change| bridged.apply(change));
            }));
        }
    }

    fn on_follows_from(&self, id: &Id, follows: &Id, ctx: Context<'_, S>) {
        if !recorder::is_enabled() {
            return;
        }
        let (Some(span), Some(cause)) = (ctx.span(id), bridged_context(&ctx, follows)) else {
            return;
        };
        let mut extensions = span.extensions_mut();
        let Some(bridged) = extensions.get_mut::<Bridged>() else {
            return;
        };
        // A span with no parent joins the trace it follows from, if it has not been entered
        // yet (so nothing started under it carries its own trace id).
        let key = id.into_u64();
        let entered = bridged.entered.load(Ordering::Relaxed)
            || with_recent(|recent| recent.forget(key)).unwrap_or(true);
        if let Some(record) = bridged.frame.as_mut().and_then(SpanFrame::record_mut) {
            if !entered && record.parent.is_none() && cause.is_sampled() {
                record.context = cause.child(record.context.span_id());
                record.parent = Some((Relationship::FollowsFrom, cause.span_id().get()));
                return;
            }
        }
        bridged.apply(Change::Log(
            Stamp::At(clock::now()),
            vec![
                Tag::new("event", "follows_from"),
                Tag::new("trace_id", cause.trace_id().to_string()),
                Tag::new("span_id", cause.span_id().to_string()),
            ],
        ));
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        if !recorder::is_enabled() {
            return;
        }
        let explicit = if event.is_contextual() {
            None
        } else {
            match event.parent() {
                Some(parent) => Some(parent.clone()),
                // An explicit root event belongs to no span.
                None => return,
            }
        };
        let level = *event.metadata().level();
        let mut fields = Vec::with_capacity(event.metadata().fields().len() + 1);
        fields.push(Tag::new("level", TagValue::from_static(level.as_str())));
        event.record(&mut FieldValues(|field: &Field, value| {
            let tag = Tag {
                key: SpanStr::from_static(field.name()),
                value,
            };
            if field.name() == "message" {
                // After `level`, before the other fields.
                fields.insert(1, tag);
            } else {
                fields.push(tag);
            }
        }));
        let mut changes = Vec::with_capacity(2);
        if level == Level::ERROR && self.error_events {
            changes.push(Change::Tag("error".into(), TagValue::Bool(true)));
        }
        changes.push(Change::Log(Stamp::At(clock::now()), fields));
        if explicit.is_none() {
            // The innermost span of either kind, when it records (or stands in for a `tracing`
            // span that does) on this thread's stack.
            let mut left = Some(changes);
            with_thread_spans(|local| {
                if let Some(frame) = local.top_mut().filter(|f| f.takes_changes()) {
                    for change in left.take().into_iter().flatten() {
                        change.apply(frame);
                    }
                }
            });
            let Some(left) = left else {
                return;
            };
            changes = left;
        }
        // The event's `tracing` span, when it is not the innermost span (or is named as the
        // explicit parent).
        let span = match &explicit {
            Some(parent) => ctx.span(parent),
            None => ctx.event_span(event),
        };
        if let Some(span) = span {
            let mut extensions = span.extensions_mut();
            if let Some(bridged) = extensions.get_mut::<Bridged>() {
                for change in changes {
                    bridged.apply(change);
                }
            }
        }
    }

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        if !recorder::is_enabled() {
            return;
        }
        let key = id.into_u64();
        if self.registry_ids {
            let hit = with_recent(|recent| recent.enter(key)).flatten();
            if let Some((context, records)) = hit {
                with_thread_spans(|local| local.push_stand_in(key, context, records));
                return;
            }
        }
        let Some(span) = ctx.span(id) else {
            return;
        };
        let extensions = span.extensions();
        let Some(bridged) = extensions.get::<Bridged>() else {
            return;
        };
        bridged.entered.store(true, Ordering::Relaxed);
        let Some(frame) = &bridged.frame else {
            return;
        };
        let (context, records) = (frame.context().clone(), frame.is_recording());
        with_thread_spans(|local| local.push_stand_in(key, context, records));
    }

    fn on_exit(&self, id: &Id, ctx: Context<'_, S>) {
        if !recorder::is_enabled() {
            return;
        }
        let key = id.into_u64();
        if with_thread_spans(|local| local.leave_stand_in(key)) != Some(false) {
            return;
        }
        // Something was set while the span was current: its frame takes it in.
        let Some(stand_in) = with_thread_spans(|local| local.take(key)).flatten() else {
            return;
        };
        let Some(span) = ctx.span(id) else {
            return;
        };
        let mut extensions = span.extensions_mut();
        if let Some(frame) = extensions
            .get_mut::<Bridged>()
            .and_then(|b| b.frame.as_mut())
        {
            frame.absorb(stand_in);
            // Baggage set in the span changes its context.
            with_recent(|recent| recent.forget(key));
        }
    }

    // No `on_close`: the registry drops a closed span's extensions, and dropping `Bridged`
    // finishes the span, with or without a tracer.
}

/// A field's value as a tag value: typed where lstrace has the type, else its text.
struct FieldValues<F>(F);

impl<F: FnMut(&Field, TagValue)> Visit for FieldValues<F> {
    fn record_i64(&mut self, field: &Field, value: i64) {
        (self.0)(field, TagValue::Int(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        (self.0)(field, TagValue::from(value));
    }
    fn record_i128(&mut self, field: &Field, value: i128) {
        (self.0)(field, TagValue::from(value));
    }
    fn record_u128(&mut self, field: &Field, value: u128) {
        (self.0)(field, TagValue::from(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        (self.0)(field, TagValue::Float(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        (self.0)(field, TagValue::Bool(value));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        (self.0)(field, TagValue::from(value.to_owned()));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        (self.0)(field, TagValue::from(value.to_string()));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        (self.0)(field, TagValue::from(format!("{value:?}")));
    }
}

/// The change a span field makes: a tag, or what its OpenTelemetry name means.
fn span_field(field: &Field, value: TagValue, change: &mut impl FnMut(Change)) {
    match field.name() {
        "otel.name" => change(Change::Name(match value {
            TagValue::Str(name) => name,
            other => other.to_string().into(),
        })),
        "otel.kind" | "span.kind" => {
            if let Some(kind) = span_kind(&value.to_string()) {
                change(Change::Tag(
                    "span.kind".into(),
                    TagValue::from_static(kind.as_str()),
                ));
            }
        }
        "otel.status_code" => {
            if value.to_string().eq_ignore_ascii_case("error") {
                change(Change::Tag("error".into(), TagValue::Bool(true)));
            }
        }
        "error" => match value {
            TagValue::Bool(failed) => change(Change::Tag("error".into(), TagValue::Bool(failed))),
            other => {
                change(Change::Tag("error".into(), TagValue::Bool(true)));
                change(Change::Tag("error.message".into(), other));
            }
        },
        name => change(Change::Tag(SpanStr::from_static(name), value)),
    }
}

/// The kind a span's `otel.kind` names, in any case (`Server`, the `Debug` text of
/// OpenTelemetry's `SpanKind::Server`, as well as `server`); `internal` and unknown kinds
/// name none.
fn span_kind(text: &str) -> Option<SpanKind> {
    [
        SpanKind::Server,
        SpanKind::Client,
        SpanKind::Producer,
        SpanKind::Consumer,
    ]
    .into_iter()
    .find(|kind| kind.as_str().eq_ignore_ascii_case(text))
}
