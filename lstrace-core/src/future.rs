//! Futures that carry their span: the current span belongs to the task, not to the thread.
//!
//! An [`Instrumented`] future owns its span's frame. Each poll moves the frame onto the
//! polling thread's stack, and moves it (with any frame the task left entered, such as a
//! guard held across an `.await`) back into the future when the poll returns. Tasks
//! interleaved on one thread therefore never see each other's spans, and a task that
//! migrates to another worker thread takes its spans with it.

use crate::local::{self, with_local, Ending, Frame};
use crate::span::{self, Span};
use crate::SpanContext;
use std::fmt;
use std::future::Future;
use std::mem::ManuallyDrop;
use std::pin::Pin;
use std::ptr;
use std::task::{Context, Poll};

/// A future with its span; see [`FutureExt`].
#[must_use = "futures do nothing unless polled"]
pub struct Instrumented<F> {
    inner: F,
    /// This future's own frame, while it is not being polled.
    own: Option<Frame>,
    /// Frames the task left entered above its own when it last returned `Pending`.
    above: Vec<Frame>,
}

impl<F> Instrumented<F> {
    /// Runs `inner` inside `span`: the span is current whenever `inner` is polled, and
    /// finishes when `inner` completes (or is dropped: then it is tagged `cancelled = true`).
    #[inline]
    pub fn new(span: Span, inner: F) -> Self {
        let span = ManuallyDrop::new(span);
        Instrumented {
            inner,
            // SAFETY: the frame moves out of the span, which is not dropped (ManuallyDrop).
            own: unsafe { ptr::read(&span.frame) },
            above: Vec::new(),
        }
    }

    fn with_scope(context: Option<SpanContext>, inner: F) -> Self {
        Instrumented {
            inner,
            own: context.map(|c| c.scope_frame()),
            above: Vec::new(),
        }
    }

    /// Finishes the spans of a future dropped before it completed.
    #[cold]
    fn cancel(&mut self) {
        for frame in self.above.drain(..).rev() {
            local::finish_detached(frame, Ending::Cancelled);
        }
        if let Some(frame) = self.own.take() {
            local::finish_detached(frame, Ending::Cancelled);
        }
    }
}

/// Takes the frames back out of the stack when a poll ends, even by a panic.
struct PollExit<'a> {
    own: &'a mut Option<Frame>,
    above: &'a mut Vec<Frame>,
    depth: usize,
    ready: bool,
}

impl Drop for PollExit<'_> {
    #[inline]
    fn drop(&mut self) {
        let panicking = std::thread::panicking();
        let depth = self.depth;
        let (own, above) = (&mut *self.own, &mut *self.above);
        if panicking || self.ready {
            let end = crate::clock::now();
            let ending = if panicking {
                Ending::Panicked
            } else {
                Ending::Normal
            };
            with_local(|local| {
                while local.stack.len() > depth {
                    local.finish_top(end, ending);
                }
            });
        } else {
            with_local(|local| {
                if local.stack.len() > depth + 1 {
                    *above = local.stack.split_off(depth + 1);
                }
                if local.stack.len() > depth {
                    local.pop_into(own);
                }
            });
        }
    }
}

impl<F: Future> Future for Instrumented<F> {
    type Output = F::Output;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // SAFETY: `inner` is never moved out of the pinned `Instrumented` (not here, not in
        // Drop); the frame fields are not structurally pinned.
        let this = unsafe { self.get_unchecked_mut() };
        let inner = unsafe { Pin::new_unchecked(&mut this.inner) };
        if this.own.is_none() {
            return inner.poll(cx);
        }
        let (own, above) = (&mut this.own, &mut this.above);
        let depth = with_local(|local| {
            let depth = local.stack.len();
            local.push_taken(own);
            if !above.is_empty() {
                local.stack.append(above);
            }
            depth
        });
        let Some(depth) = depth else {
            // The thread is shutting down: poll without the span.
            return inner.poll(cx);
        };
        let mut exit = PollExit {
            own,
            above,
            depth,
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
        if self.own.is_some() || !self.above.is_empty() {
            self.cancel();
        }
    }
}

impl<F> fmt::Debug for Instrumented<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Instrumented")
            .field("context", &self.own.as_ref().map(Frame::context))
            .finish_non_exhaustive()
    }
}

/// Carries spans across `.await`s and into other tasks.
pub trait FutureExt: Future + Sized {
    /// Runs this future inside `span`, which finishes when the future completes.
    fn instrument(self, span: Span) -> Instrumented<Self> {
        Instrumented::new(span, self)
    }

    /// Runs this future inside the span that is current now. Use it for work handed to
    /// another task: `tokio::spawn` does not carry task-local state (or see [`spawn`]).
    ///
    /// [`spawn`]: crate::spawn
    fn in_current_span(self) -> Instrumented<Self> {
        Instrumented::with_scope(span::current(), self)
    }

    /// Runs this future inside `context` (a context received from elsewhere).
    fn with_context(self, context: &SpanContext) -> Instrumented<Self> {
        Instrumented::with_scope(Some(context.clone()), self)
    }
}

impl<F: Future> FutureExt for F {}

/// Spawns a task on the current Tokio runtime that keeps the current span as its parent.
///
/// # Panics
/// Like `tokio::spawn`, when called outside a Tokio runtime.
pub fn spawn<F>(future: F) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    tokio::spawn(future.in_current_span())
}

/// Runs blocking work on Tokio's blocking pool with the current span as its parent.
///
/// # Panics
/// Like `tokio::task::spawn_blocking`, when called outside a Tokio runtime.
pub fn spawn_blocking<F, R>(f: F) -> tokio::task::JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let context = span::current();
    tokio::task::spawn_blocking(move || match context {
        Some(context) => context.in_scope(f),
        None => f(),
    })
}
