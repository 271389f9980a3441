//! The manual span API: build a span, enter it or keep it detached, tag it, log on it.

mod builder;
mod current;
mod detached;
mod entered;
mod kind;
mod scope;
mod start;

use crate::record::LogFields;
use crate::tag::{SpanStr, Tag, TagValue};

pub use builder::{span, SpanBuilder};
pub use current::{baggage_item, current, log, record_error, set_baggage_item, set_tag};
pub use detached::Span;
pub use entered::EnteredSpan;
pub use kind::SpanKind;
#[cfg(feature = "tracing")]
pub(crate) use start::start_frame;

#[inline]
fn collect_fields<K: Into<SpanStr>, V: Into<TagValue>>(
    fields: impl IntoIterator<Item = (K, V)>,
) -> LogFields {
    LogFields::collect(fields.into_iter().map(|(k, v)| Tag {
        key: k.into(),
        value: v.into(),
    }))
}
