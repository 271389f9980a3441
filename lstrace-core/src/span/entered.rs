//! [`EnteredSpan`], a span entered on this thread: the current span until it finishes or
//! drops.

use super::{collect_fields, current};
use crate::clock;
use crate::context::SpanContext;
use crate::tag::{SpanStr, TagValue};
use crate::task::stack::{with_thread_spans, SpanFrame, Stamp};
use std::fmt;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;

/// A span entered on this thread, from [`SpanBuilder::start`](super::SpanBuilder::start): the current span of this
/// thread (or task) until it finishes, on [`EnteredSpan::finish`] or on drop. If the code
/// inside panics, the span is marked `error = true` as the panic goes by.
///
/// It stays on the thread that entered it (it is not `Send`), so a future that holds one
/// across an `.await` is not `Send` either: axum rejects such a handler and `tokio::spawn` such
/// a task, and the compiler says the future "is not `Send`" because of an `EnteredSpan` (axum
/// says only that `Handler<_, _>` is not implemented: `#[axum::debug_handler]` on the handler
/// shows the cause).
/// Around async work, start a [`Span`](crate::Span) with [`SpanBuilder::start_detached`]
/// instead and run the work inside it with [`FutureExt::in_span`](crate::FutureExt::in_span):
/// the span is current whenever the work runs, on any thread, and finishes when it completes.
///
/// ```
/// use lstrace_core::FutureExt as _;
///
/// async fn handler(sku: String) -> usize {
///     let span = lstrace_core::span("handle").with_tag("width", 640).start_detached();
///     async move {
///         lstrace_core::set_tag("sku", sku.clone()); // tags `handle`, the current span here
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
///
/// [`SpanBuilder::start_detached`]: crate::SpanBuilder::start_detached
#[must_use = "the span finishes when the `EnteredSpan` is dropped"]
pub struct EnteredSpan {
    key: Option<u64>,
    _not_send: PhantomData<*const ()>,
}

impl EnteredSpan {
    /// An entered span that records nothing: what `#[traced]` holds when no tracer is
    /// recording.
    pub fn noop() -> Self {
        EnteredSpan {
            key: None,
            _not_send: PhantomData,
        }
    }

    pub(super) fn entered(key: u64) -> Self {
        EnteredSpan {
            key: Some(key),
            _not_send: PhantomData,
        }
    }

    /// The key of the entered frame, given up: the caller finishes the span.
    pub(crate) fn into_key(self) -> Option<u64> {
        ManuallyDrop::new(self).key
    }

    fn with_frame<R>(&self, f: impl FnOnce(&mut SpanFrame) -> R) -> Option<R> {
        let key = self.key?;
        with_thread_spans(|local| local.find_mut(key).map(f)).flatten()
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
    pub fn set_tag(&mut self, key: impl Into<SpanStr>, value: impl Into<TagValue>) {
        let (key, value) = (key.into(), value.into());
        self.with_frame(|f| f.set_tag(key, value));
    }

    /// Adds a log with the given fields, timestamped now.
    pub fn log<K: Into<SpanStr>, V: Into<TagValue>>(
        &mut self,
        fields: impl IntoIterator<Item = (K, V)>,
    ) {
        let fields = collect_fields(fields);
        let now = Stamp::At(clock::now());
        self.with_frame(|f| f.log(now, fields));
    }

    /// Sets a baggage item: this span's children (and the processes it calls) carry it.
    ///
    /// A span without a frame of its own (see [`EnteredSpan::context`]) gets one here, a
    /// context-only frame over the context it runs under, so that the item is not lost and
    /// does not reach the span's parent.
    pub fn set_baggage_item(&mut self, key: impl Into<String>, value: impl Into<String>) {
        let (key, value) = (key.into(), value.into());
        if self.key.is_some() {
            self.with_frame(|f| f.context_mut().set_baggage_item(key, value));
            return;
        }
        self.key = with_thread_spans(|local| {
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

impl Drop for EnteredSpan {
    #[inline]
    fn drop(&mut self) {
        if let Some(key) = self.key {
            finish_entered(key);
        }
    }
}

fn finish_entered(key: u64) {
    with_thread_spans(|local| local.finish_entered_now(key));
}

impl fmt::Debug for EnteredSpan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnteredSpan")
            .field("context", &self.context())
            .finish()
    }
}
