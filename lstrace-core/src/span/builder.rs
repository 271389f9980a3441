//! Describing a span before it starts: name, parent, tags, start time, sampling.

use super::start::{pass_through, start_entered, start_frame};
use super::{EnteredSpan, Span, SpanKind};
use crate::context::SpanContext;
use crate::record::Relationship;
use crate::recorder;
#[cfg(feature = "tracing")]
use crate::tag::Tag;
use crate::tag::{SpanStr, TagList, TagValue};
use std::fmt;
use std::mem::ManuallyDrop;
use std::time::SystemTime;

#[derive(Clone)]
pub(super) enum Parent {
    Current,
    Root,
    Explicit(SpanContext),
}

/// Builds a span; see [`span`].
#[must_use = "a span builder does nothing until started"]
#[derive(Clone)]
pub struct SpanBuilder {
    pub(super) parent: Parent,
    pub(super) span: NewSpan,
}

/// Everything about a new span but its parent.
#[derive(Clone)]
pub(super) struct NewSpan {
    pub(super) name: SpanStr,
    pub(super) relationship: Relationship,
    pub(super) tags: TagList,
    pub(super) start_time: Option<SystemTime>,
    pub(super) sampled: Option<bool>,
}

/// Starts building a span named `name`. By default its parent is the current span (a root
/// span when there is none); start it with [`SpanBuilder::start`] (an [`EnteredSpan`]: the
/// current span of this thread until it drops) or, around async work or to move it to
/// another thread, [`SpanBuilder::start_detached`] (a [`Span`]).
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
///
/// [`current`]: crate::current
pub fn span(name: impl Into<SpanStr>) -> SpanBuilder {
    SpanBuilder {
        parent: Parent::Current,
        span: NewSpan {
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
    pub fn with_tag(mut self, key: impl Into<SpanStr>, value: impl Into<TagValue>) -> Self {
        self.set_tag(key.into(), value.into());
        self
    }

    /// Sets the first tag of a builder that has none, in place (a new list takes it without
    /// looking for its key); within the per-span cap, as [`SpanBuilder::set_tag`].
    #[cfg(feature = "tracing")]
    #[inline]
    pub(crate) fn set_first_tag(&mut self, key: SpanStr, value: TagValue) {
        if self.span.tags.is_new() && recorder::max_tags_per_span() > 0 {
            self.span.tags = TagList::one(Tag { key, value });
        } else {
            self.set_tag(key, value);
        }
    }

    /// Sets a tag in place (for builders filled in a loop).
    #[inline]
    pub(crate) fn set_tag(&mut self, key: SpanStr, value: TagValue) {
        self.span
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
                self.span.relationship = Relationship::ChildOf;
            }
            None => self.parent = Parent::Root,
        }
    }

    /// References `parent` with FOLLOWS_FROM: `parent` does not wait for this span.
    pub fn follows_from(mut self, parent: &SpanContext) -> Self {
        self.parent = Parent::Explicit(parent.clone());
        self.span.relationship = Relationship::FollowsFrom;
        self
    }

    /// References the current span with FOLLOWS_FROM instead of CHILD_OF.
    pub fn follows_from_current(mut self) -> Self {
        self.span.relationship = Relationship::FollowsFrom;
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
        self.span.sampled = Some(sampled);
        self
    }

    /// Sets the start time (wall clock), for work that began before the span was created.
    /// The duration is measured from this instant.
    pub fn start_time(mut self, time: SystemTime) -> Self {
        self.span.start_time = Some(time);
        self
    }

    /// Starts the span and enters it: it is the current span of this thread (or of the task,
    /// inside a traced future) until the [`EnteredSpan`] finishes or drops. It is not `Send`:
    /// around an `.await`, use [`start_detached`](SpanBuilder::start_detached).
    #[inline(always)]
    pub fn start(self) -> EnteredSpan {
        // Taken before the check: the compiler then keeps the builder where the caller made
        // it (an atomic load in between keeps it from merging the two).
        let mut builder = ManuallyDrop::new(self);
        if !recorder::is_enabled() {
            if let Parent::Explicit(_) = builder.parent {
                // SAFETY: taken once, not used after.
                let context = pass_through(unsafe { ManuallyDrop::take(&mut builder) });
                return context.map_or_else(EnteredSpan::noop, |c| c.enter());
            }
            // SAFETY: dropped once, not used after.
            unsafe { ManuallyDrop::drop(&mut builder) };
            return EnteredSpan::noop();
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

impl fmt::Debug for SpanBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpanBuilder")
            .field("name", &self.span.name)
            .field("relationship", &self.span.relationship)
            .field("tags", &self.span.tags)
            .finish_non_exhaustive()
    }
}
