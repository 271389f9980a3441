//! Futures that carry their span: the current span belongs to the task, not to the thread.
//!
//! Between polls, an [`Instrumented`] future owns its task's frames: its span's frame, then
//! any frame the task left entered above it (such as an `EnteredSpan` held across an `.await`). Each
//! poll moves them onto the polling thread's stack and, when the poll returns `Pending`, back
//! into the future. Tasks interleaved on one thread therefore never see each other's spans,
//! and a task that migrates to another worker thread takes its spans with it.
//!
//! The frames live out of line, in a list the future takes when it first suspends (from the
//! thread's spare lists, or allocated), so that the future stays small: the compiler moves
//! futures around before polling them. A traced `async fn` enters its span on the thread's
//! stack as a synchronous function does, so one that completes in its first poll (most short
//! ones) never copies its frame.

use crate::span::{self, EnteredSpan, Span};
use crate::task::stack::{self, with_thread_spans, Ending, SpanFrame, ThreadSpans};
use crate::SpanContext;
use std::fmt;
use std::future::Future;
use std::mem::ManuallyDrop;
use std::pin::Pin;
use std::task::{Context, Poll};

/// A future with its span; see [`FutureExt`].
#[must_use = "futures do nothing unless polled"]
pub struct Instrumented<F> {
    inner: F,
    /// Dropped by hand (see `Drop`): most futures never allocate, and then skip all of it.
    frames: ManuallyDrop<TaskFrames>,
}

/// Where a task's frames are while it is not being polled.
enum TaskFrames {
    /// Its span was entered on this thread's stack by the code that made the future, which
    /// polls it next: the first poll finds the frame there by its key.
    Entered(u64),
    /// The task's frames, its own first (none: polls run in whatever span is current).
    Suspended(Vec<SpanFrame>),
}

// What a traced `async fn`'s future carries besides its body: three words.
const _: () = assert!(std::mem::size_of::<TaskFrames>() == 3 * std::mem::size_of::<usize>());

impl<F> Instrumented<F> {
    /// Runs `inner` inside `span`: the span is current whenever `inner` is polled, and
    /// finishes when `inner` completes (or is dropped: then it is tagged `cancelled = true`).
    #[inline]
    pub fn new(mut span: Span, inner: F) -> Self {
        Self::owning(span.frame.take(), inner)
    }

    /// What `#[traced]` makes of an `async fn`'s body: `entered` was just entered (started at
    /// the body's first poll, like a synchronous function's span), and the future is awaited
    /// at once, so that its first poll finds the span on top of this thread's stack and
    /// takes it from there, with no copy when it completes in that poll.
    ///
    /// Not for other uses: a future made this way and first polled on another thread, or
    /// after other spans were entered, would leave the span on this thread's stack.
    #[doc(hidden)]
    #[inline]
    pub fn __traced(entered: EnteredSpan, inner: F) -> Self {
        let frames = match entered.into_key() {
            Some(key) => TaskFrames::Entered(key),
            None => TaskFrames::Suspended(Vec::new()),
        };
        Instrumented {
            inner,
            frames: ManuallyDrop::new(frames),
        }
    }

    fn with_scope(context: Option<SpanContext>, inner: F) -> Self {
        Self::owning(context.map(|c| c.scope_frame()), inner)
    }

    fn owning(frame: Option<SpanFrame>, inner: F) -> Self {
        Instrumented {
            inner,
            frames: ManuallyDrop::new(TaskFrames::Suspended(frame.into_iter().collect())),
        }
    }

    /// Drops the frames: the spans of a future dropped before it completed finish as
    /// cancelled, and the list is freed.
    #[cold]
    fn release(&mut self) {
        match &mut *self.frames {
            TaskFrames::Entered(key) => {
                let key = *key;
                let ending = if std::thread::panicking() {
                    Ending::Panicked
                } else {
                    Ending::Cancelled
                };
                let end = crate::clock::now();
                with_thread_spans(|local| local.finish_entered(key, end, ending));
                *self.frames = TaskFrames::Suspended(Vec::new());
            }
            TaskFrames::Suspended(frames) => {
                for frame in frames.drain(..).rev() {
                    stack::finish_detached(&mut Some(frame), Ending::Cancelled);
                }
            }
        }
        // SAFETY: dropped once, here (only `Drop` calls this); not used after.
        unsafe { ManuallyDrop::drop(&mut self.frames) };
    }
}

/// Where the task's frames start on the thread's stack during a poll.
#[derive(Clone, Copy)]
enum Base {
    /// At this depth: they were pushed there when the poll began.
    Depth(usize),
    /// At the frame with this key (the first poll of [`TaskFrames::Entered`]).
    Key(u64),
}

/// Takes the frames back out of the stack when a poll ends, even by a panic; finishes them
/// when the poll completed the future (or panicked).
struct PollExit<'a> {
    frames: &'a mut TaskFrames,
    base: Base,
    ready: bool,
}

impl Drop for PollExit<'_> {
    #[inline]
    fn drop(&mut self) {
        let panicking = std::thread::panicking();
        let finish = panicking || self.ready;
        let end = if finish {
            Some(crate::clock::now())
        } else {
            None
        };
        let (frames, base) = (&mut *self.frames, self.base);
        with_thread_spans(|local| {
            let depth = match base {
                Base::Depth(depth) => depth,
                Base::Key(key) => match local.position(key) {
                    Some(depth) => depth,
                    None => return,
                },
            };
            if let Some(end) = end {
                let ending = if panicking {
                    Ending::Panicked
                } else {
                    Ending::Normal
                };
                while local.stack.len() > depth {
                    local.finish_top(end, ending);
                }
                if let TaskFrames::Entered(_) = frames {
                    *frames = TaskFrames::Suspended(Vec::new());
                }
            } else {
                suspend(frames, local, depth);
            }
        });
    }
}

/// Moves the task's frames (from `depth` up) off the stack into the future, as a poll
/// returns `Pending`. Out of line: the common end of a poll is completing.
#[inline(never)]
fn suspend(frames: &mut TaskFrames, local: &mut ThreadSpans, depth: usize) {
    if let TaskFrames::Entered(_) = frames {
        *frames = TaskFrames::Suspended(Vec::new());
    }
    if let TaskFrames::Suspended(list) = frames {
        local.suspend_into(depth, list);
    }
}

impl<F: Future> Future for Instrumented<F> {
    type Output = F::Output;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // SAFETY: `this` only reaches the fields: `inner` is never moved out of the pinned
        // `Instrumented` (not here, not in `Drop`), and the frames are not structurally pinned.
        let this = unsafe { self.get_unchecked_mut() };
        // SAFETY: `inner` is pinned with the `Instrumented` that holds it (see above).
        let inner = unsafe { Pin::new_unchecked(&mut this.inner) };
        let base = match &mut *this.frames {
            TaskFrames::Entered(key) => Base::Key(*key),
            TaskFrames::Suspended(frames) if frames.is_empty() => return inner.poll(cx),
            TaskFrames::Suspended(frames) => {
                let depth = with_thread_spans(|local| {
                    let depth = local.stack.len();
                    local.resume_from(frames);
                    depth
                });
                let Some(depth) = depth else {
                    // The thread is shutting down: poll without the spans.
                    return inner.poll(cx);
                };
                Base::Depth(depth)
            }
        };
        let mut exit = PollExit {
            frames: &mut this.frames,
            base,
            ready: false,
        };
        let result = inner.poll(cx);
        exit.ready = result.is_ready();
        result
    }
}

impl<F> Drop for Instrumented<F> {
    #[inline]
    fn drop(&mut self) {
        // A future that completed without suspending holds an empty list that owns nothing.
        if matches!(&*self.frames, TaskFrames::Suspended(frames) if frames.capacity() == 0) {
            return;
        }
        self.release();
    }
}

impl<F> fmt::Debug for Instrumented<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let context = match &*self.frames {
            TaskFrames::Suspended(frames) => frames.first().map(SpanFrame::context),
            TaskFrames::Entered(_) => None,
        };
        f.debug_struct("Instrumented")
            .field("context", &context)
            .finish_non_exhaustive()
    }
}

/// Carries spans across `.await`s and into other tasks.
///
/// Its method names differ from `tracing::Instrument`'s (`instrument`, `in_current_span`),
/// so both traits can be in scope at once.
pub trait FutureExt: Future + Sized {
    /// Runs this future inside `span`, which finishes when the future completes.
    fn in_span(self, span: Span) -> Instrumented<Self> {
        Instrumented::new(span, self)
    }

    /// Runs this future inside the context that is current now: the innermost span (a
    /// `#[traced]` one or, with the `tracing` bridge, a `tracing` one) and, with the feature
    /// `tracing`, the current `tracing` span too. Use it for work handed to another task:
    /// `tokio::spawn` does not carry task-local state (or see [`spawn`]).
    ///
    /// [`spawn`]: crate::spawn
    fn in_current_context(self) -> InCurrentContext<Self> {
        InCurrentContext {
            inner: Instrumented::with_scope(span::current(), self),
            #[cfg(feature = "tracing")]
            tracing: ::tracing::Span::current(),
        }
    }

    /// Runs this future inside `context` (a context received from elsewhere).
    fn in_context(self, context: &SpanContext) -> Instrumented<Self> {
        Instrumented::with_scope(Some(context.clone()), self)
    }
}

/// A future that runs in the context current where it was made; see
/// [`FutureExt::in_current_context`].
#[must_use = "futures do nothing unless polled"]
pub struct InCurrentContext<F> {
    inner: Instrumented<F>,
    /// Entered around each poll, under the lstrace context: `tracing`'s own view (its
    /// current span, what `fmt` prints) travels with the task too.
    #[cfg(feature = "tracing")]
    tracing: ::tracing::Span,
}

impl<F: Future> Future for InCurrentContext<F> {
    type Output = F::Output;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // SAFETY: `inner` is never moved out of the pinned future (it has no `Drop` impl and
        // no manual `Unpin` impl); the `tracing` span is not structurally pinned.
        let this = unsafe { self.get_unchecked_mut() };
        #[cfg(feature = "tracing")]
        let _entered = this.tracing.enter();
        // SAFETY: `inner` is pinned with the future that holds it (see above).
        unsafe { Pin::new_unchecked(&mut this.inner) }.poll(cx)
    }
}

impl<F> fmt::Debug for InCurrentContext<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InCurrentContext")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<F: Future> FutureExt for F {}

#[cfg(feature = "tokio")]
/// Spawns a task on the current Tokio runtime that keeps the current context (see
/// [`FutureExt::in_current_context`]): spans in the task are children of the current span.
///
/// # Panics
/// Like `tokio::spawn`, when called outside a Tokio runtime.
pub fn spawn<F>(future: F) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    tokio::spawn(future.in_current_context())
}

#[cfg(feature = "tokio")]
/// Runs blocking work on Tokio's blocking pool in the current context (see
/// [`FutureExt::in_current_context`]).
///
/// # Panics
/// Like `tokio::task::spawn_blocking`, when called outside a Tokio runtime.
pub fn spawn_blocking<F, R>(f: F) -> tokio::task::JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let context = span::current();
    #[cfg(feature = "tracing")]
    let tracing_span = ::tracing::Span::current();
    tokio::task::spawn_blocking(move || {
        #[cfg(feature = "tracing")]
        let _entered = tracing_span.enter();
        match context {
            Some(context) => context.in_scope(f),
            None => f(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TestRecorder;

    #[test]
    fn a_traced_future_dropped_before_its_first_poll_finishes_its_span_as_cancelled() {
        let capture = TestRecorder::install().capture();
        capture.in_scope(|| {
            let future = Instrumented::__traced(span::span("entered").start(), async {});
            drop(future);
            // The span left the stack: the next one is not its child.
            let _after = span::span("after").start();
        });
        assert_eq!(capture.tree(), "entered [cancelled=true]\nafter\n");
    }
}
