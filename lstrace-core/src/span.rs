//! The manual span API: build a span, enter it or keep it detached, tag it, log on it.

use crate::clock;
use crate::context::id::{random_u64, SpanId, TraceId};
use crate::context::SpanContext;
use crate::record::Relationship;
use crate::recorder;
use crate::sampling;
use crate::tag::{Str, Tag, TagList, TagValue};
use crate::task::stack::{self, with_local, Ending, Frame, Local, Stamp};
use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::ptr;
use std::time::SystemTime;

/// The role of a span in a request, recorded as the `span.kind` tag.
///
/// `Server` and `Consumer` spans are entry spans (work arriving from another process),
/// `Client` and `Producer` spans are exit spans (work handed to another process).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpanKind {
    /// Handles a request from another process (an entry span).
    Server,
    /// Calls another process and waits for its answer (an exit span).
    Client,
    /// Hands a message to another process without waiting (an exit span).
    Producer,
    /// Handles a message from another process (an entry span).
    Consumer,
}

impl SpanKind {
    /// The tag value: `server`, `client`, `producer` or `consumer`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            SpanKind::Server => "server",
            SpanKind::Client => "client",
            SpanKind::Producer => "producer",
            SpanKind::Consumer => "consumer",
        }
    }
}

#[derive(Clone)]
enum Parent {
    Current,
    Root,
    Explicit(SpanContext),
}

/// Builds a span; see [`span`].
#[must_use = "a span builder does nothing until started"]
#[derive(Clone)]
pub struct SpanBuilder {
    parent: Parent,
    spec: Spec,
}

/// Everything about a new span but its parent.
#[derive(Clone)]
struct Spec {
    name: Str,
    relationship: Relationship,
    tags: TagList,
    start_time: Option<SystemTime>,
    sampled: Option<bool>,
}

/// Starts building a span named `name`. By default its parent is the current span (a root
/// span when there is none); start it with [`SpanBuilder::start`] (entered: it becomes the
/// current span until its guard drops) or [`SpanBuilder::start_detached`].
///
/// A span that starts a new trace is recorded if the [sampling policy](crate::sampling)
/// says so; a span with a parent follows the parent's decision. A span that is not recorded
/// still has a context when it has a parent, which carries the trace id, the decision and
/// the baggage to its children and downstream.
///
/// Without a tracer (no `init`, or after `close`), nothing is recorded, but contexts pass
/// through: a span started as the [child of](SpanBuilder::child_of) a context (one extracted
/// from a request, say) has that very context, so [`current`] returns it inside the span and
/// calls made there carry it on, as OpenTelemetry's API does without an SDK.
///
/// ```
/// let _recorder = lstrace_core::testing::TestRecorder::install();
/// let mut span = lstrace_core::span("load")
///     .with_tag("cache.hit", false)
///     .start();
/// span.log([("event", "miss")]);
/// span.finish();
/// ```
pub fn span(name: impl Into<Cow<'static, str>>) -> SpanBuilder {
    SpanBuilder {
        parent: Parent::Current,
        spec: Spec {
            name: name.into(),
            relationship: Relationship::ChildOf,
            tags: TagList::new(),
            start_time: None,
            sampled: None,
        },
    }
}

impl SpanBuilder {
    /// Sets a tag; a later tag with the same key replaces the value.
    pub fn with_tag(
        mut self,
        key: impl Into<Cow<'static, str>>,
        value: impl Into<TagValue>,
    ) -> Self {
        self.set_tag(key.into(), value.into());
        self
    }

    /// Sets the first tag of a builder that has none, in place (a new list takes it without
    /// looking for its key); within the per-span cap, as [`SpanBuilder::set_tag`].
    #[cfg(feature = "tracing")]
    #[inline]
    pub(crate) fn set_first_tag(&mut self, key: Str, value: TagValue) {
        if self.spec.tags.is_new() && recorder::max_tags_per_span() > 0 {
            self.spec.tags = TagList::one(Tag { key, value });
        } else {
            self.set_tag(key, value);
        }
    }

    /// Sets a tag in place (for builders filled in a loop).
    #[inline]
    pub(crate) fn set_tag(&mut self, key: Str, value: TagValue) {
        self.spec
            .tags
            .set_within(key, value, recorder::max_tags_per_span());
    }

    /// Sets the `span.kind` tag.
    pub fn kind(self, kind: SpanKind) -> Self {
        self.with_tag("span.kind", TagValue::from_static(kind.as_str()))
    }

    /// Makes this span a child of `parent` (for example a context extracted from headers)
    /// instead of the current span.
    pub fn child_of(mut self, parent: &SpanContext) -> Self {
        self.set_parent(Some(parent));
        self
    }

    /// Makes this span a child of `parent`, or a root when `None` ([`SpanBuilder::child_of`],
    /// [`SpanBuilder::root`]), in place.
    #[inline]
    pub(crate) fn set_parent(&mut self, parent: Option<&SpanContext>) {
        match parent {
            Some(parent) => {
                self.parent = Parent::Explicit(parent.clone());
                self.spec.relationship = Relationship::ChildOf;
            }
            None => self.parent = Parent::Root,
        }
    }

    /// References `parent` with FOLLOWS_FROM: `parent` does not wait for this span.
    pub fn follows_from(mut self, parent: &SpanContext) -> Self {
        self.parent = Parent::Explicit(parent.clone());
        self.spec.relationship = Relationship::FollowsFrom;
        self
    }

    /// References the current span with FOLLOWS_FROM instead of CHILD_OF.
    pub fn follows_from_current(mut self) -> Self {
        self.spec.relationship = Relationship::FollowsFrom;
        self
    }

    /// Starts a new trace, whatever the current span is.
    pub fn root(mut self) -> Self {
        self.set_parent(None);
        self
    }

    /// Whether a new trace is recorded, overriding the [sampling policy](crate::sampling).
    /// Ignored for a span that has a parent: it inherits the parent's decision.
    pub fn sampled(mut self, sampled: bool) -> Self {
        self.spec.sampled = Some(sampled);
        self
    }

    /// Sets the start time (wall clock), for work that began before the span was created.
    /// The duration is measured from this instant.
    pub fn start_time(mut self, time: SystemTime) -> Self {
        self.spec.start_time = Some(time);
        self
    }

    /// Starts the span and enters it: it is the current span of this thread (or of the task,
    /// inside a traced future) until the guard finishes it.
    #[inline(always)]
    pub fn start(self) -> SpanGuard {
        // Taken before the check: the compiler then keeps the builder where the caller made
        // it (an atomic load in between keeps it from merging the two).
        let mut builder = ManuallyDrop::new(self);
        if !recorder::is_enabled() {
            if let Parent::Explicit(_) = builder.parent {
                // SAFETY: taken once, not used after.
                let context = pass_through(unsafe { ManuallyDrop::take(&mut builder) });
                return context.map_or_else(SpanGuard::noop, |c| c.enter());
            }
            // SAFETY: dropped once, not used after.
            unsafe { ManuallyDrop::drop(&mut builder) };
            return SpanGuard::noop();
        }
        // SAFETY: `builder` is given up: not used or dropped after this.
        unsafe { start_entered(&mut builder) }
    }

    /// Starts the span without entering it. The [`Span`] can move to other threads, be the
    /// parent of other spans, run code inside it ([`Span::in_scope`]) or instrument a future.
    #[inline]
    pub fn start_detached(self) -> Span {
        // As in `start`: taken before the check, so that it stays where the caller made it.
        let mut builder = ManuallyDrop::new(self);
        if !recorder::is_enabled() {
            if let Parent::Explicit(_) = builder.parent {
                // SAFETY: taken once, not used after.
                let context = pass_through(unsafe { ManuallyDrop::take(&mut builder) });
                return Span {
                    frame: context.map(|c| c.scope_frame()),
                };
            }
            // SAFETY: dropped once, not used after.
            unsafe { ManuallyDrop::drop(&mut builder) };
            return Span::noop();
        }
        Span {
            // SAFETY: `builder` is given up: not used or dropped after this.
            frame: unsafe { start_frame(&mut builder) },
        }
    }
}

/// Starts the span that `builder` describes without entering it, consuming the builder in
/// place (see [`start_entered`]): its frame (context-only when the span is not recorded), or
/// `None` when the thread is shutting down and the span has no explicit parent.
///
/// Inlined, so that the frame is written where the caller wants it.
///
/// # Safety
/// The caller gives `builder` up: it must not be used or dropped after this call.
#[inline(always)]
pub(crate) unsafe fn start_frame(builder: &mut ManuallyDrop<SpanBuilder>) -> Option<Frame> {
    let b: &mut SpanBuilder = builder;
    let started = match &b.parent {
        Parent::Current => {
            with_local(|local| b.spec.under_current(local.top().map(Frame::context)))
        }
        Parent::Root => Some(b.spec.under_current(None)),
        Parent::Explicit(ctx) => Some(b.spec.under_explicit(ctx)),
    };
    let frame = match started {
        Some((context, parent)) if context.is_sampled() => {
            let start = b.spec.start();
            // SAFETY: the name and tags move into the frame, and the rest of the builder is
            // dropped without them.
            unsafe {
                let frame = Frame::recording(
                    context,
                    parent,
                    ptr::read(&b.spec.name),
                    TagList::read_moved(&b.spec.tags),
                    start,
                );
                ptr::drop_in_place(&mut b.parent);
                return Some(frame);
            }
        }
        Some((context, _)) => Some(Frame::context_only(context.span_id().get(), context)),
        None => None,
    };
    // SAFETY: the builder is dropped once, whole.
    unsafe { b.drop_unstarted() };
    frame
}

/// Starts and enters the span that `builder` describes.
///
/// The builder is consumed in place, so that its name and tags go straight from the caller's
/// builder into the new frame on the thread's stack, copied once.
///
/// Inlined into the caller (with [`SpanBuilder::start`]), where the builder's fields are
/// mostly constants: the unsampled check and dropping what is left of the builder then cost
/// a few instructions (the rest of the start stays out of line in `push_started`).
///
/// # Safety
/// The caller gives `builder` up: it must not be used or dropped after this call.
#[inline(always)]
unsafe fn start_entered(builder: &mut ManuallyDrop<SpanBuilder>) -> SpanGuard {
    let b: &mut SpanBuilder = builder;
    let key = with_local(|local| {
        // Children of an unsampled span cost nothing: the parent's frame already tells every
        // descendant that the trace is not recorded. Checked here, before the rest of the
        // work (and its register saves), which is in `push_started`.
        let unsampled = match &b.parent {
            Parent::Current => local.top().is_some_and(|f| !f.context().is_sampled()),
            // Decided in `push_started`: the span gets a context even when it is not
            // recorded, and the policy may record it anyway.
            Parent::Root | Parent::Explicit(_) => false,
        };
        // SAFETY: passed on from the caller.
        (!unsampled).then(|| unsafe { push_started(local, b) })
    })
    .flatten();
    // SAFETY: drops what is left of the builder, once: `push_started` moved its name and tags
    // out, and the spec's other fields need no drop.
    unsafe {
        match key {
            Some(_) => ptr::drop_in_place(&mut b.parent),
            None => b.drop_unstarted(),
        }
    }
    key.map_or_else(SpanGuard::noop, SpanGuard::entered)
}

/// Pushes the frame of the span that `b` describes (its parent is not an unsampled current
/// span): a recording frame, or a context-only one for a span the sampling policy leaves
/// out. Returns its key.
///
/// # Safety
/// Moves the name and tags out of `b`: the caller must not drop them again.
#[inline(never)]
unsafe fn push_started(local: &mut Local, b: &mut SpanBuilder) -> u64 {
    let parent = match &b.parent {
        Parent::Current => local.top().map(Frame::context),
        Parent::Root => None,
        // SAFETY: passed on from the caller.
        Parent::Explicit(_) => return unsafe { push_decided(local, b) },
    };
    match parent {
        // A child of the current span: the caller checked that its parent records. Its own
        // path, so that the context goes straight from here into the frame.
        Some(p) => {
            let context = p.child(SpanId::random());
            let parent = Some((b.spec.relationship, p.span_id().get()));
            // SAFETY: passed on from the caller.
            unsafe { push_recording(local, b, context, parent) }
        }
        // SAFETY: passed on from the caller.
        None => unsafe { push_decided(local, b) },
    }
}

/// Pushes the frame of a new trace's root or of an explicit parent's child, recording as the
/// sampling policy decides. Returns its key.
///
/// # Safety
/// As [`push_started`].
#[inline(never)]
unsafe fn push_decided(local: &mut Local, b: &mut SpanBuilder) -> u64 {
    let (context, parent) = match &b.parent {
        Parent::Explicit(ctx) => b.spec.under_explicit(ctx),
        Parent::Current | Parent::Root => b.spec.under_current(None),
    };
    // SAFETY: passed on from the caller.
    unsafe {
        if context.is_sampled() {
            push_recording(local, b, context, parent)
        } else {
            push_unrecorded(local, b, context)
        }
    }
}

/// Pushes the frame of a span that records, moving the name and tags of `b` into it.
///
/// # Safety
/// As [`push_started`].
#[inline(always)]
unsafe fn push_recording(
    local: &mut Local,
    b: &mut SpanBuilder,
    context: SpanContext,
    parent: Option<(Relationship, u64)>,
) -> u64 {
    let start = b.spec.start();
    // SAFETY: the name and tags move into the frame.
    unsafe {
        local.push_recording(
            context,
            parent,
            ptr::read(&b.spec.name),
            &b.spec.tags,
            start,
        )
    }
}

/// Pushes a context-only frame for a span that is not recorded: its children need to know.
/// Its name and tags are dropped here. Returns its key.
///
/// # Safety
/// Drops the name and tags of `b`: the caller must not drop them again.
#[inline(never)]
unsafe fn push_unrecorded(local: &mut Local, b: &mut SpanBuilder, context: SpanContext) -> u64 {
    let key = context.span_id().get();
    local.push_context_only(key, context);
    // SAFETY: dropped once; the caller does not drop them again.
    unsafe {
        ptr::drop_in_place(&mut b.spec.name);
        if !b.spec.tags.is_new() {
            ptr::drop_in_place(&mut b.spec.tags);
        }
    }
    key
}

/// The context a span started without a tracer has: its explicit parent's, passed through
/// (`None` for the others, which have none).
#[cold]
#[inline(never)]
fn pass_through(builder: SpanBuilder) -> Option<SpanContext> {
    match builder.parent {
        Parent::Explicit(context) => Some(context),
        Parent::Current | Parent::Root => None,
    }
}

impl SpanBuilder {
    /// Drops a builder in place whose span did not start (an unsampled trace's children end
    /// here, so this skips the work of dropping an empty tag list).
    ///
    /// # Safety
    /// The builder must not be used or dropped after this.
    #[inline]
    unsafe fn drop_unstarted(&mut self) {
        // SAFETY: each field is dropped once; a new tag list owns nothing.
        unsafe {
            ptr::drop_in_place(&mut self.parent);
            ptr::drop_in_place(&mut self.spec.name);
            if !self.spec.tags.is_new() {
                ptr::drop_in_place(&mut self.spec.tags);
            }
        }
    }
}

// `start_entered` drops a builder whose name and tags have moved out by dropping its parent.
const _: () = assert!(
    !std::mem::needs_drop::<Relationship>()
        && !std::mem::needs_drop::<Option<SystemTime>>()
        && !std::mem::needs_drop::<Option<bool>>()
);

impl Spec {
    /// When a span that starts now starts: now, or at its explicit start time.
    #[inline]
    fn start(&self) -> Stamp {
        match self.start_time {
            None => Stamp::At(clock::now()),
            Some(t) => Stamp::UnixNanos(clock::system_time_to_unix_nanos(t)),
        }
    }

    /// The context of a new trace's root span, sampled as the policy (or `sampled`) says.
    /// Out of line: children, the common case, do not carry its code.
    #[inline(never)]
    fn root_context(&self) -> SpanContext {
        let trace_id = TraceId::random();
        let sampled = self
            .sampled
            .unwrap_or_else(|| sampling::sample_new_trace(trace_id, &self.name, &self.tags));
        SpanContext::new(trace_id, SpanId::random(), sampled)
    }

    /// The new span's context and parent reference under the current span `parent` (none: a
    /// new trace). A child follows its parent's decision; the span records when its context
    /// is sampled. Always inlined: for a child, the decision costs nothing more than the
    /// parent's flag, and the context is made where the frame wants it.
    #[inline(always)]
    fn under_current(
        &self,
        parent: Option<&SpanContext>,
    ) -> (SpanContext, Option<(Relationship, u64)>) {
        match parent {
            Some(p) => (
                p.child(SpanId::random()),
                Some((self.relationship, p.span_id().get())),
            ),
            None => (self.root_context(), None),
        }
    }

    /// The new span's context and parent reference as the child of the explicit parent
    /// `parent`, sampled as the policy says (by default, as the parent decided).
    #[inline(never)]
    fn under_explicit(&self, parent: &SpanContext) -> (SpanContext, Option<(Relationship, u64)>) {
        let sampled = sampling::sample_child(parent, &self.name, &self.tags);
        (
            parent.child(SpanId::random()).with_sampled(sampled),
            Some((self.relationship, parent.span_id().get())),
        )
    }
}

impl fmt::Debug for SpanBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpanBuilder")
            .field("name", &self.spec.name)
            .field("relationship", &self.spec.relationship)
            .field("tags", &self.spec.tags)
            .finish_non_exhaustive()
    }
}

/// An entered span: the current span of this thread (or task) until it finishes, on
/// [`SpanGuard::finish`] or on drop. If the code inside panics, the span is marked
/// `error = true` as the panic goes by.
///
/// A guard stays on the thread that entered it (it is not `Send`), so a future that holds one
/// across an `.await` is not `Send` either: axum rejects such a handler and `tokio::spawn` such
/// a task. Around async work, start the span with [`SpanBuilder::start_detached`] and run the
/// work inside it with [`FutureExt::in_span`](crate::FutureExt::in_span): the span is
/// current whenever the work runs, on any thread, and finishes when it completes.
///
/// ```
/// use lstrace_core::FutureExt as _;
///
/// async fn handler(sku: String) -> usize {
///     let span = lstrace_core::span("handle").with_tag("width", 640).start_detached();
///     async move {
///         lstrace_core::tag("sku", sku.clone()); // tags `handle`, the current span here
///         sku.len()
///     }
///     .in_span(span)
///     .await
/// }
/// # fn require_send<F: std::future::Future + Send>(future: F) -> F { future }
/// # let capture = lstrace_core::testing::TestRecorder::install().capture();
/// # let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// # assert_eq!(runtime.block_on(capture.scope(require_send(handler("tea".into())))), 3);
/// # assert_eq!(capture.tree(), "handle [sku=tea, width=640]\n");
/// ```
#[must_use = "a span finishes when its guard is dropped"]
pub struct SpanGuard {
    key: Option<u64>,
    _not_send: PhantomData<*const ()>,
}

impl SpanGuard {
    /// A guard that records nothing: what `#[traced]` holds when no tracer is recording.
    pub fn noop() -> Self {
        SpanGuard {
            key: None,
            _not_send: PhantomData,
        }
    }

    fn entered(key: u64) -> Self {
        SpanGuard {
            key: Some(key),
            _not_send: PhantomData,
        }
    }

    /// The key of the entered frame, given up by the guard: the caller finishes the span.
    pub(crate) fn into_key(self) -> Option<u64> {
        ManuallyDrop::new(self).key
    }

    fn with_frame<R>(&self, f: impl FnOnce(&mut Frame) -> R) -> Option<R> {
        let key = self.key?;
        with_local(|local| local.find_mut(key).map(f)).flatten()
    }

    /// The span's context. A child of the current span in an unsampled trace (or a span
    /// started without a tracer) has no frame of its own, to cost nothing: its context is
    /// the one it runs under, [`current`] (`None` outside any context).
    #[must_use]
    pub fn context(&self) -> Option<SpanContext> {
        match self.key {
            Some(_) => self.with_frame(|f| f.context().clone()),
            None => current(),
        }
    }

    /// Sets a tag.
    pub fn set_tag(&mut self, key: impl Into<Cow<'static, str>>, value: impl Into<TagValue>) {
        let (key, value) = (key.into(), value.into());
        self.with_frame(|f| f.set_tag(key, value));
    }

    /// Adds a log with the given fields, timestamped now.
    pub fn log<K: Into<Cow<'static, str>>, V: Into<TagValue>>(
        &mut self,
        fields: impl IntoIterator<Item = (K, V)>,
    ) {
        let fields = collect_fields(fields);
        let now = Stamp::At(clock::now());
        self.with_frame(|f| f.log(now, fields));
    }

    /// Sets a baggage item: this span's children (and the processes it calls) carry it.
    ///
    /// A span without a frame of its own (see [`SpanGuard::context`]) gets one here, a
    /// context-only frame over the context it runs under, so that the item is not lost and
    /// does not reach the span's parent.
    pub fn set_baggage_item(&mut self, key: impl Into<String>, value: impl Into<String>) {
        let (key, value) = (key.into(), value.into());
        if self.key.is_some() {
            self.with_frame(|f| f.context_mut().set_baggage_item(key, value));
            return;
        }
        self.key = with_local(|local| {
            let context = local.top()?.context().clone();
            let frame = context.with_baggage_item(key, value).scope_frame();
            let key = frame.key;
            local.push(frame);
            Some(key)
        })
        .flatten();
    }

    /// Finishes the span now.
    pub fn finish(self) {
        drop(self);
    }
}

impl Drop for SpanGuard {
    #[inline]
    fn drop(&mut self) {
        if let Some(key) = self.key {
            finish_entered(key);
        }
    }
}

fn finish_entered(key: u64) {
    with_local(|local| local.finish_entered_now(key));
}

impl fmt::Debug for SpanGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpanGuard")
            .field("context", &self.context())
            .finish()
    }
}

/// A started span that is not entered: it can be sent to another thread, enter a scope
/// there, or instrument a future. It finishes on [`Span::finish`] or on drop.
#[must_use = "a span finishes when it is dropped"]
pub struct Span {
    pub(crate) frame: Option<Frame>,
}

impl Span {
    /// A span that records nothing.
    pub fn noop() -> Self {
        Span { frame: None }
    }

    /// True when this span records nothing.
    #[must_use]
    pub fn is_noop(&self) -> bool {
        !self.frame.as_ref().is_some_and(Frame::is_recording)
    }

    /// The span's context (`None` for a no-op span).
    #[must_use]
    pub fn context(&self) -> Option<SpanContext> {
        self.frame.as_ref().map(|f| f.context().clone())
    }

    /// Sets a tag.
    pub fn set_tag(&mut self, key: impl Into<Cow<'static, str>>, value: impl Into<TagValue>) {
        if let Some(f) = &mut self.frame {
            f.set_tag(key.into(), value.into());
        }
    }

    /// Adds a log with the given fields, timestamped now.
    pub fn log<K: Into<Cow<'static, str>>, V: Into<TagValue>>(
        &mut self,
        fields: impl IntoIterator<Item = (K, V)>,
    ) {
        if let Some(f) = &mut self.frame {
            f.log(Stamp::At(clock::now()), collect_fields(fields));
        }
    }

    /// Adds a log with the given fields and time.
    pub fn log_at<K: Into<Cow<'static, str>>, V: Into<TagValue>>(
        &mut self,
        time: SystemTime,
        fields: impl IntoIterator<Item = (K, V)>,
    ) {
        if let Some(f) = &mut self.frame {
            f.log(
                Stamp::UnixNanos(clock::system_time_to_unix_nanos(time)),
                collect_fields(fields),
            );
        }
    }

    /// Sets a baggage item.
    pub fn set_baggage_item(&mut self, key: impl Into<String>, value: impl Into<String>) {
        if let Some(f) = &mut self.frame {
            f.context_mut().set_baggage_item(key, value);
        }
    }

    /// Runs `f` with this span entered (current), then takes it back out, unfinished.
    pub fn in_scope<R>(&mut self, f: impl FnOnce() -> R) -> R {
        let Some(key) = with_local(|local| local.push_from(&mut self.frame)).flatten() else {
            return f();
        };
        // Takes the frame back even if `f` panics, so the span is not lost or left current.
        struct Exit<'a> {
            span: &'a mut Span,
            key: u64,
        }
        impl Drop for Exit<'_> {
            fn drop(&mut self) {
                with_local(|local| local.pop_into(self.key, &mut self.span.frame));
                if std::thread::panicking() {
                    if let Some(f) = &mut self.span.frame {
                        f.set_tag("error".into(), TagValue::Bool(true));
                    }
                }
            }
        }
        let _exit = Exit { span: self, key };
        f()
    }

    /// Finishes the span now.
    pub fn finish(mut self) {
        stack::finish_detached(&mut self.frame, Ending::Normal);
    }
}

impl Drop for Span {
    fn drop(&mut self) {
        stack::finish_detached(&mut self.frame, Ending::Normal);
    }
}

impl fmt::Debug for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Span")
            .field("context", &self.context())
            .finish()
    }
}

fn collect_fields<K: Into<Str>, V: Into<TagValue>>(
    fields: impl IntoIterator<Item = (K, V)>,
) -> Vec<Tag> {
    fields
        .into_iter()
        .map(|(k, v)| Tag {
            key: k.into(),
            value: v.into(),
        })
        .collect()
}

impl SpanContext {
    /// Enters this context on the current thread: spans started until the guard drops are
    /// its children. This is how a context moved to another thread is used there.
    ///
    /// ```
    /// let _recorder = lstrace_core::testing::TestRecorder::install();
    /// let parent = lstrace_core::span("parent").start();
    /// let context = parent.context().expect("recording");
    /// std::thread::spawn(move || {
    ///     let _entered = context.enter();
    ///     let _child = lstrace_core::span("on another thread").start();
    /// })
    /// .join()
    /// .unwrap();
    /// ```
    pub fn enter(&self) -> SpanGuard {
        let frame = self.scope_frame();
        let key = frame.key;
        with_local(|local| {
            local.stack.push(frame);
            SpanGuard::entered(key)
        })
        .unwrap_or_else(SpanGuard::noop)
    }

    /// Runs `f` with this context entered.
    pub fn in_scope<R>(&self, f: impl FnOnce() -> R) -> R {
        let _entered = self.enter();
        f()
    }

    /// A frame that makes this context current without recording anything.
    pub(crate) fn scope_frame(&self) -> Frame {
        Frame::context_only(random_u64(), self.clone())
    }
}

/// The current span's context: of this task inside a traced future, else of this thread.
///
/// Move it to another thread or task and [`enter`](SpanContext::enter) it there, inject it
/// into outgoing headers, or make it the parent of a span with [`SpanBuilder::child_of`].
///
/// Without a tracer, this is the context entered last (by [`SpanContext::enter`], or a span
/// started as the child of an extracted context): contexts pass through a process that
/// records nothing.
#[must_use]
pub fn current() -> Option<SpanContext> {
    with_local(|local| local.top().map(|f| f.context().clone())).flatten()
}

/// Sets a tag on the current span (no-op outside any span).
pub fn tag(key: impl Into<Cow<'static, str>>, value: impl Into<TagValue>) {
    if !recorder::is_enabled() {
        return;
    }
    let (key, value) = (key.into(), value.into());
    with_local(|local| {
        if let Some(f) = local.top_mut() {
            f.set_tag(key, value);
        }
    });
}

/// Adds a log with the given fields to the current span, timestamped now.
///
/// ```
/// # let _recorder = lstrace_core::testing::TestRecorder::install();
/// # let _span = lstrace_core::span("op").start();
/// lstrace_core::log([("event", "cache_miss"), ("key", "user:7")]);
/// ```
pub fn log<K: Into<Cow<'static, str>>, V: Into<TagValue>>(
    fields: impl IntoIterator<Item = (K, V)>,
) {
    if !recorder::is_enabled() {
        return;
    }
    let fields = collect_fields(fields);
    let now = Stamp::At(clock::now());
    with_local(|local| {
        if let Some(f) = local.top_mut() {
            f.log(now, fields);
        }
    });
}

/// Marks the current span as failed: tag `error = true` and a log with `event = "error"`
/// and `message` = the error's text.
pub fn record_error(error: &(dyn fmt::Display + '_)) {
    if !recorder::is_enabled() {
        return;
    }
    let message = error.to_string();
    let now = Stamp::At(clock::now());
    with_local(|local| {
        if let Some(f) = local.top_mut() {
            f.set_tag("error".into(), TagValue::Bool(true));
            f.log(
                now,
                vec![Tag::new("event", "error"), Tag::new("message", message)],
            );
        }
    });
}

/// Sets a baggage item on the current span: its later children and the processes it calls
/// carry it. Works without a tracer too, on the context entered last.
pub fn set_baggage_item(key: impl Into<String>, value: impl Into<String>) {
    let (key, value) = (key.into(), value.into());
    with_local(|local| {
        if let Some(f) = local.top_mut() {
            f.context_mut().set_baggage_item(key, value);
        }
    });
}

/// A baggage item of the current span.
#[must_use]
pub fn baggage_item(key: &str) -> Option<String> {
    current().and_then(|c| c.baggage_item(key).map(str::to_owned))
}
