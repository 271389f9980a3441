//! `tracing` spans and events as lstrace spans and logs: a [`tracing_subscriber::Layer`].
//!
//! ```
//! use lstrace_core::tree::TreeStyle;
//! use tracing_subscriber::layer::SubscriberExt;
//!
//! let subscriber = tracing_subscriber::registry().with(lstrace_core::tracing::layer());
//! tracing::subscriber::with_default(subscriber, || {
//!     # let capture = lstrace_core::testing::TestRecorder::install().capture();
//!     # capture.in_scope(|| {
//!     let _request = tracing::info_span!(target: "app", "request", user = 7).entered();
//!     tracing::info!(rows = 3, "loaded");
//!     # });
//!     # assert_eq!(
//!     #     capture.tree_with(TreeStyle { logs: true, ..TreeStyle::default() }),
//!     #     "request [target=app, user=7]\n  - level=INFO, message=loaded, rows=3\n"
//!     # );
//! });
//! ```
//!
//! # One context for both worlds
//!
//! While a `tracing` span is entered, its lstrace span is the current lstrace span of the
//! thread (or task): `#[traced]` functions called inside it are its children, `lstrace::tag`
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
use crate::collector;
use crate::context::SpanContext;
use crate::record::Relationship;
use crate::span::SpanKind;
use crate::tag::{Str, Tag, TagValue};
use crate::task::stack::{self, with_local, Ending, Frame, Stamp};
use ::tracing::field::{Field, Visit};
use ::tracing::span::{Attributes, Id, Record};
use ::tracing::{Event, Level, Subscriber};
use std::fmt;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

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
}

/// The bridge layer with its defaults: ERROR events mark their span failed, and spans carry
/// their target as the tag `target`.
#[must_use]
pub fn layer() -> BridgeLayer {
    BridgeLayer {
        error_events: true,
        target_tag: true,
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
struct Bridged {
    /// The span's lstrace frame while it is not entered (or entered on another thread, which
    /// then holds it); `None` while on a stack.
    frame: Option<Frame>,
    /// The span's context: what the threads that enter it while its frame is elsewhere make
    /// current, and what spans with it as explicit parent descend from.
    context: SpanContext,
    /// Whether the span records (false inside an unsampled trace).
    recording: bool,
    /// Changes made while the frame was on another thread's stack, applied when it returns.
    pending: Vec<Change>,
}

impl Bridged {
    fn key(&self) -> u64 {
        self.context.span_id().get()
    }

    /// Applies a change to the span's record, wherever its frame is: here, on this thread's
    /// stack, or on another thread's (then later).
    fn apply(&mut self, change: Change) {
        if !self.recording {
            return;
        }
        if let Some(frame) = &mut self.frame {
            change.apply(frame);
            return;
        }
        let key = self.key();
        let mut change = Some(change);
        with_local(|local| {
            let on_this_thread = local
                .stack
                .iter_mut()
                .rev()
                .find(|f| f.key == key && f.is_recording());
            if let Some(frame) = on_this_thread {
                change.take().into_iter().for_each(|c| c.apply(frame));
            }
        });
        self.pending.extend(change);
    }

    /// Applies the changes made while the frame was on another thread's stack, once it is
    /// back.
    fn apply_pending(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        if let Some(frame) = &mut self.frame {
            for change in self.pending.drain(..) {
                change.apply(frame);
            }
        }
    }
}

impl Drop for Bridged {
    fn drop(&mut self) {
        self.apply_pending();
        stack::finish_detached(&mut self.frame, Ending::Normal);
    }
}

/// A change to a span's record.
enum Change {
    Tag(Str, TagValue),
    Name(Str),
    Log(Stamp, Vec<Tag>),
}

impl Change {
    fn apply(self, frame: &mut Frame) {
        match self {
            Change::Tag(key, value) => frame.set_tag(key, value),
            Change::Name(name) => {
                if let Some(record) = frame.record_mut() {
                    record.name = name;
                }
            }
            Change::Log(at, fields) => frame.log(at, fields),
        }
    }
}

/// The lstrace context of the span `id`, or of its nearest ancestor that the bridge knows.
fn bridged_context<S>(ctx: &Context<'_, S>, id: &Id) -> Option<SpanContext>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let span = ctx.span(id)?;
    span.scope()
        .find_map(|s| s.extensions().get::<Bridged>().map(|b| b.context.clone()))
}

impl<S> tracing_subscriber::Layer<S> for BridgeLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if !collector::is_enabled() {
            return;
        }
        let Some(span) = ctx.span(id) else {
            return;
        };
        let metadata = attrs.metadata();
        let mut builder = crate::span(metadata.name());
        if self.target_tag {
            builder.set_tag("target".into(), TagValue::from_static(metadata.target()));
        }
        let mut name = None;
        attrs.record(&mut FieldValues(|field: &Field, value| {
            span_field(field, value, &mut |change| match change {
                Change::Tag(key, value) => builder.set_tag(key, value),
                Change::Name(n) => name = Some(n),
                Change::Log(..) => {}
            });
        }));
        // `None`: the parent is the innermost span of either kind (an entered `tracing` span is
        // on lstrace's stack too), which is the builder's default.
        let explicit_parent = if attrs.is_root() {
            Some(None)
        } else {
            attrs.parent().map(|parent| bridged_context(&ctx, parent))
        };
        let builder = match &explicit_parent {
            None => builder,
            Some(None) => builder.root(),
            Some(Some(parent)) => builder.child_of(parent),
        };
        let mut frame = builder.start_detached().frame.take();
        if let (Some(frame), Some(name)) = (&mut frame, name) {
            Change::Name(name).apply(frame);
        }
        let context = match &frame {
            Some(frame) => Some(frame.context().clone()),
            None => explicit_parent.unwrap_or_else(crate::current),
        };
        let Some(context) = context else {
            return;
        };
        let recording = frame.as_ref().is_some_and(Frame::is_recording);
        span.extensions_mut().insert(Bridged {
            frame,
            context,
            recording,
            pending: Vec::new(),
        });
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if !collector::is_enabled() {
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
        if !collector::is_enabled() {
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
        if let Some(record) = bridged.frame.as_mut().and_then(Frame::record_mut) {
            if record.parent.is_none() && cause.is_sampled() {
                record.context = cause.child(record.context.span_id());
                record.parent = Some((Relationship::FollowsFrom, cause.span_id().get()));
                bridged.context = record.context.clone();
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
        if !collector::is_enabled() {
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
                key: Str::Borrowed(field.name()),
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
            // The innermost span of either kind, when it records on this thread's stack.
            let mut left = Some(changes);
            with_local(|local| {
                if let Some(frame) = local.top_mut().filter(|f| f.is_recording()) {
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
        // The event's `tracing` span, whose frame is elsewhere (entered again on this thread
        // while another thread holds it, or named as the explicit parent).
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
        if !collector::is_enabled() {
            return;
        }
        let Some(span) = ctx.span(id) else {
            return;
        };
        let mut extensions = span.extensions_mut();
        let Some(bridged) = extensions.get_mut::<Bridged>() else {
            return;
        };
        // The first thread to enter the span holds its frame; others make its context current.
        with_local(|local| {
            if local.push_from(&mut bridged.frame).is_none() {
                local.push(Frame::context_only(bridged.key(), bridged.context.clone()));
            }
        });
    }

    fn on_exit(&self, id: &Id, ctx: Context<'_, S>) {
        if !collector::is_enabled() {
            return;
        }
        let Some(span) = ctx.span(id) else {
            return;
        };
        let mut extensions = span.extensions_mut();
        let Some(bridged) = extensions.get_mut::<Bridged>() else {
            return;
        };
        // This thread's frame of the span goes back to the span: the span's own frame, or a
        // context-only one (dropped).
        with_local(|local| local.pop_into(bridged.key(), &mut bridged.frame));
        if bridged.frame.as_ref().is_some_and(|f| !f.is_recording()) {
            bridged.frame = None;
        }
        bridged.apply_pending();
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
        name => change(Change::Tag(Str::Borrowed(name), value)),
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
