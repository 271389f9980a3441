//! Starting a span: deciding its context and pushing its frame, with the builder's name and
//! tags moved straight into the frame.

use super::builder::{NewSpan, Parent, SpanBuilder};
use super::EnteredSpan;
use crate::clock;
use crate::context::id::{SpanId, TraceId};
use crate::context::SpanContext;
use crate::in_place::owns_nothing;
use crate::record::Relationship;
use crate::sampling;
use crate::tag::{SpanStr, TagList};
use crate::task::stack::{with_thread_spans, SpanFrame, Stamp, ThreadSpans};
use std::mem::ManuallyDrop;
use std::ptr;

/// Starts the span that `builder` describes without entering it, consuming the builder in
/// place (see [`start_entered`]): its frame (context-only when the span is not recorded), or
/// `None` when the thread is shutting down and the span has no explicit parent.
///
/// Inlined, so that the frame is written where the caller wants it.
///
/// # Safety
/// The caller gives `builder` up: it must not be used or dropped after this call.
#[inline(always)]
pub(crate) unsafe fn start_frame(builder: &mut ManuallyDrop<SpanBuilder>) -> Option<SpanFrame> {
    let b: &mut SpanBuilder = builder;
    let started = match &b.parent {
        Parent::Current => {
            with_thread_spans(|local| b.span.under_current(local.top().map(SpanFrame::context)))
        }
        Parent::Root => Some(b.span.under_current(None)),
        Parent::Explicit(ctx) => Some(b.span.under_explicit(ctx)),
    };
    let frame = match started {
        Some((context, parent)) if context.is_sampled() => {
            let start = b.span.start();
            // SAFETY: the name and tags move into the frame, read once, and the rest of the
            // builder is dropped without them; the caller gave the builder up.
            unsafe {
                let frame = SpanFrame::recording(
                    context,
                    parent,
                    ptr::read(&b.span.name),
                    TagList::read_moved(&b.span.tags),
                    start,
                );
                b.drop_started();
                return Some(frame);
            }
        }
        Some((context, _)) => Some(SpanFrame::context_only(context.span_id().get(), context)),
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
pub(super) unsafe fn start_entered(builder: &mut ManuallyDrop<SpanBuilder>) -> EnteredSpan {
    let b: &mut SpanBuilder = builder;
    let key = with_thread_spans(|local| {
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
    // SAFETY: drops what is left of the builder, once (the caller gave it up): a started
    // span's name and tags were moved out by `push_started`.
    unsafe {
        match key {
            Some(_) => b.drop_started(),
            None => b.drop_unstarted(),
        }
    }
    key.map_or_else(EnteredSpan::noop, EnteredSpan::entered)
}

/// Pushes the frame of the span that `b` describes (its parent is not an unsampled current
/// span): a recording frame, or a context-only one for a span the sampling policy leaves
/// out. Returns its key.
///
/// # Safety
/// The caller gives up the name and tags of `b` (they move into the frame, or are dropped
/// here): after this it may drop only `b.parent`, and must not use the rest of `b`.
#[inline(never)]
unsafe fn push_started(local: &mut ThreadSpans, b: &mut SpanBuilder) -> u64 {
    let parent = match &b.parent {
        Parent::Current => local.top().map(SpanFrame::context),
        Parent::Root => None,
        // SAFETY: passed on from the caller.
        Parent::Explicit(_) => return unsafe { push_decided(local, b) },
    };
    match parent {
        // A child of the current span: the caller checked that its parent records. Its own
        // path, so that the context goes straight from here into the frame.
        Some(p) => {
            let context = p.child(SpanId::random());
            let parent = Some((b.span.relationship, p.span_id().get()));
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
unsafe fn push_decided(local: &mut ThreadSpans, b: &mut SpanBuilder) -> u64 {
    let (context, parent) = match &b.parent {
        Parent::Explicit(ctx) => b.span.under_explicit(ctx),
        Parent::Current | Parent::Root => b.span.under_current(None),
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
    local: &mut ThreadSpans,
    b: &mut SpanBuilder,
    context: SpanContext,
    parent: Option<(Relationship, u64)>,
) -> u64 {
    let start = b.span.start();
    // SAFETY: the name and tags move into the frame.
    unsafe {
        local.push_recording(
            context,
            parent,
            ptr::read(&b.span.name),
            &b.span.tags,
            start,
        )
    }
}

/// Pushes a context-only frame for a span that is not recorded: its children need to know.
/// Its name and tags are dropped here. Returns its key.
///
/// # Safety
/// Drops the name and tags of `b`: the caller must not use or drop them after this.
#[inline(never)]
unsafe fn push_unrecorded(
    local: &mut ThreadSpans,
    b: &mut SpanBuilder,
    context: SpanContext,
) -> u64 {
    let key = context.span_id().get();
    local.push_context_only(key, context);
    let (_, name, tags) = b.owning_fields();
    // SAFETY: dropped once; the caller does not drop them again.
    unsafe {
        ptr::drop_in_place(name);
        if !tags.is_new() {
            ptr::drop_in_place(tags);
        }
    }
    key
}

/// The context a span started without a tracer has: its explicit parent's, passed through
/// (`None` for the others, which have none).
#[cold]
#[inline(never)]
pub(super) fn pass_through(builder: SpanBuilder) -> Option<SpanContext> {
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
        let (parent, name, tags) = self.owning_fields();
        // SAFETY: each field that owns something is dropped once, as the caller gave the
        // builder up; a new tag list owns nothing.
        unsafe {
            ptr::drop_in_place(parent);
            ptr::drop_in_place(name);
            if !tags.is_new() {
                ptr::drop_in_place(tags);
            }
        }
    }

    /// Drops what is left of a builder whose name and tags have moved into its started span:
    /// its parent.
    ///
    /// # Safety
    /// The name and tags have been moved out; the builder must not be used or dropped after
    /// this.
    #[inline(always)]
    unsafe fn drop_started(&mut self) {
        let (parent, _moved_name, _moved_tags) = self.owning_fields();
        // SAFETY: dropped once, as the caller gave the builder up.
        unsafe { ptr::drop_in_place(parent) }
    }

    /// The fields that own something, for the builder to be moved out or dropped field by
    /// field: the other fields are checked to own nothing, and naming every field makes one
    /// added to the builder a compile error here until it is sorted in.
    #[inline(always)]
    fn owning_fields(&mut self) -> (&mut Parent, &mut SpanStr, &mut TagList) {
        let SpanBuilder {
            parent,
            span:
                NewSpan {
                    name,
                    relationship,
                    tags,
                    start_time,
                    sampled,
                },
        } = self;
        owns_nothing(relationship);
        owns_nothing(start_time);
        owns_nothing(sampled);
        (parent, name, tags)
    }
}

impl NewSpan {
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
