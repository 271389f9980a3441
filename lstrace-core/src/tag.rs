//! Typed tag values and the small inline list that holds a span's tags.

use crate::in_place::move_unless_empty;
use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::mem::ManuallyDrop;

mod span_str;
pub use span_str::SpanStr;

/// A tag or log-field value. Values keep their type on the wire.
///
/// A string value of any lifetime converts (`From<&str>`, `From<&String>`): it is copied,
/// inline when short (see [`SpanStr`]); [`TagValue::from_static`] borrows a `'static` one.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum TagValue {
    /// A string.
    Str(SpanStr),
    /// A signed integer (unsigned values above `i64::MAX` are recorded as strings).
    Int(i64),
    /// A floating-point number.
    Float(f64),
    /// A boolean.
    Bool(bool),
}

impl TagValue {
    /// A string value that borrows a `'static` string: no allocation.
    #[must_use]
    pub const fn from_static(s: &'static str) -> Self {
        TagValue::Str(SpanStr::from_static(s))
    }

    /// The value as a string slice, if it is a string.
    #[must_use]
    pub fn as_str(&self) -> Option<&str> {
        match self {
            TagValue::Str(s) => Some(s),
            _ => None,
        }
    }
}

impl fmt::Display for TagValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TagValue::Str(s) => f.write_str(s),
            TagValue::Int(i) => write!(f, "{i}"),
            TagValue::Float(x) => write!(f, "{x}"),
            TagValue::Bool(b) => write!(f, "{b}"),
        }
    }
}

/// Conversion of a borrowed value into a [`TagValue`], keeping its type.
///
/// Implemented for strings, integers, floats, booleans, references to them and `Option`s of
/// them (`None` becomes the string `"None"`). `#[traced]` uses it for `tags(...)`, `args(...)`
/// and `ret`; record any other type with `?value` (Debug) or `%value` (Display).
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be recorded as a typed tag value",
    label = "not an integer, float, bool or string",
    note = "record its Debug text with `?value` or its Display text with `%value` (`ret(?)`, `ret(%)` for a returned value)"
)]
pub trait ToTagValue {
    /// The tag value of `self`.
    fn to_tag_value(&self) -> TagValue;
}

impl ToTagValue for str {
    fn to_tag_value(&self) -> TagValue {
        TagValue::Str(SpanStr::new(self))
    }
}

impl ToTagValue for String {
    fn to_tag_value(&self) -> TagValue {
        TagValue::Str(SpanStr::new(self))
    }
}

impl ToTagValue for Cow<'_, str> {
    fn to_tag_value(&self) -> TagValue {
        TagValue::Str(SpanStr::new(self))
    }
}

impl ToTagValue for SpanStr {
    fn to_tag_value(&self) -> TagValue {
        TagValue::Str(self.clone())
    }
}

impl ToTagValue for bool {
    fn to_tag_value(&self) -> TagValue {
        TagValue::Bool(*self)
    }
}

impl ToTagValue for char {
    fn to_tag_value(&self) -> TagValue {
        let mut utf8 = [0; 4];
        TagValue::Str(SpanStr::new(self.encode_utf8(&mut utf8)))
    }
}

impl ToTagValue for TagValue {
    fn to_tag_value(&self) -> TagValue {
        self.clone()
    }
}

impl<T: ToTagValue + ?Sized> ToTagValue for &T {
    fn to_tag_value(&self) -> TagValue {
        (**self).to_tag_value()
    }
}

impl<T: ToTagValue + ?Sized> ToTagValue for &mut T {
    fn to_tag_value(&self) -> TagValue {
        (**self).to_tag_value()
    }
}

impl<T: ToTagValue + ?Sized> ToTagValue for Box<T> {
    fn to_tag_value(&self) -> TagValue {
        (**self).to_tag_value()
    }
}

impl<T: ToTagValue> ToTagValue for Option<T> {
    fn to_tag_value(&self) -> TagValue {
        match self {
            Some(v) => v.to_tag_value(),
            None => TagValue::from_static("None"),
        }
    }
}

macro_rules! int_tag_values {
    ($($t:ty),*) => {$(
        impl ToTagValue for $t {
            fn to_tag_value(&self) -> TagValue {
                TagValue::Int(i64::from(*self))
            }
        }
        impl From<$t> for TagValue {
            fn from(v: $t) -> Self {
                TagValue::Int(i64::from(v))
            }
        }
    )*};
}
int_tag_values!(i8, i16, i32, i64, u8, u16, u32);

macro_rules! wide_int_tag_values {
    ($($t:ty),*) => {$(
        impl ToTagValue for $t {
            fn to_tag_value(&self) -> TagValue {
                TagValue::from(*self)
            }
        }
        impl From<$t> for TagValue {
            // Values that do not fit an i64 keep their digits as a string rather than wrap.
            fn from(v: $t) -> Self {
                i64::try_from(v).map_or_else(|_| TagValue::Str(v.to_string().into()), TagValue::Int)
            }
        }
    )*};
}
wide_int_tag_values!(u64, usize, isize, i128, u128);

impl ToTagValue for f32 {
    fn to_tag_value(&self) -> TagValue {
        TagValue::Float(f64::from(*self))
    }
}

impl ToTagValue for f64 {
    fn to_tag_value(&self) -> TagValue {
        TagValue::Float(*self)
    }
}

impl From<f32> for TagValue {
    fn from(v: f32) -> Self {
        TagValue::Float(f64::from(v))
    }
}

impl From<f64> for TagValue {
    fn from(v: f64) -> Self {
        TagValue::Float(v)
    }
}

impl From<bool> for TagValue {
    fn from(v: bool) -> Self {
        TagValue::Bool(v)
    }
}

impl From<&str> for TagValue {
    /// Copies the string, inline when short (see [`TagValue::from_static`] to borrow a
    /// `'static` one).
    #[inline]
    fn from(v: &str) -> Self {
        TagValue::Str(SpanStr::new(v))
    }
}

impl From<&String> for TagValue {
    /// Copies the string, inline when short.
    #[inline]
    fn from(v: &String) -> Self {
        TagValue::Str(SpanStr::new(v))
    }
}

impl From<String> for TagValue {
    #[inline]
    fn from(v: String) -> Self {
        TagValue::Str(v.into())
    }
}

impl From<Cow<'static, str>> for TagValue {
    /// Borrows a borrowed string, takes an owned one.
    fn from(v: Cow<'static, str>) -> Self {
        TagValue::Str(v.into())
    }
}

impl From<SpanStr> for TagValue {
    #[inline]
    fn from(v: SpanStr) -> Self {
        TagValue::Str(v)
    }
}

/// The fields of a log whose values have different types, for [`log`](crate::log()) and the
/// spans' `log` methods: `fields!(key = value, "dotted.key" = value, ...)`.
///
/// Keys are identifiers or string literals (borrowed, never copied); each value becomes a
/// [`TagValue`] through `From`, so strings of any lifetime (copied, inline when short),
/// integers, floats and booleans mix freely.
///
/// ```
/// # let capture = lstrace_core::testing::TestRecorder::install().capture();
/// # capture.in_scope(|| {
/// let _span = lstrace_core::span("checkout").start();
/// let sku = String::from("A-1234");
/// lstrace_core::log(lstrace_core::fields!(event = "added", sku = sku.as_str(), "cart.items" = 3));
/// drop(sku); // the log holds its own copy
/// # });
/// # let span = capture.span("checkout").unwrap();
/// # let log = &span.logs()[0];
/// # assert_eq!(log.field("sku"), Some(&lstrace_core::TagValue::from("A-1234")));
/// # assert_eq!(log.field("cart.items"), Some(&lstrace_core::TagValue::Int(3)));
/// ```
#[macro_export]
macro_rules! fields {
    ($($key:tt = $value:expr),* $(,)?) => {
        [$(($crate::fields!(@key $key), $crate::TagValue::from($value))),*]
    };
    (@key $key:ident) => {
        $crate::SpanStr::from_static(::core::stringify!($key))
    };
    (@key $key:literal) => {
        $crate::SpanStr::from_static($key)
    };
}

/// The longest prefix of `s` that fits in `max` bytes and ends on a character boundary.
pub(crate) fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// A key and its value: a span tag or a log field.
///
/// Exhaustive on purpose: a pair never gains a field, and its public fields let a tag be
/// built and taken apart (`let Tag { key, value } = tag;`).
#[derive(Clone, Debug, PartialEq)]
pub struct Tag {
    /// The key.
    pub key: SpanStr,
    /// The value.
    pub value: TagValue,
}

impl Tag {
    /// A tag. The key is borrowed when `'static`, or taken as a `String`; the value may
    /// borrow a string of any lifetime (it is copied).
    pub fn new(key: impl Into<SpanStr>, value: impl Into<TagValue>) -> Self {
        Tag {
            key: key.into(),
            value: value.into(),
        }
    }
}

const INLINE_TAGS: usize = 3;

/// From this many tags on, a spilled list keeps an index of its keys: below it, a scan of
/// the keys costs less than hashing one.
const INDEX_FROM: usize = 16;

/// A span's tags: up to three are held inline (no allocation), more spill to the heap.
/// Setting a key that is already present replaces its value, as OpenTracing's `SetTag` does.
/// Each set costs amortised O(1): a list with many tags keeps an index of its keys.
#[derive(Clone, PartialEq)]
pub struct TagList(ManuallyDrop<Repr>);

// The inline list is part of every span record: it must not grow it.
const _: () = assert!(std::mem::size_of::<TagList>() <= 160);

#[derive(Clone, PartialEq)]
enum Repr {
    Inline([Option<Tag>; INLINE_TAGS]),
    Heap(Spilled),
}

/// The tags of a list that outgrew its inline slots, or that dropped a tag at its cap.
#[derive(Clone, Default)]
struct Spilled {
    tags: Vec<Tag>,
    /// Where each key is in `tags`: empty until the list has [`INDEX_FROM`] tags.
    index: HashMap<SpanStr, usize>,
    /// New keys refused because the list was at its cap.
    dropped: u32,
}

impl PartialEq for Spilled {
    /// The index follows from the tags.
    fn eq(&self, other: &Self) -> bool {
        self.tags == other.tags && self.dropped == other.dropped
    }
}

impl Spilled {
    fn position(&self, key: &str) -> Option<usize> {
        if self.index.is_empty() {
            count_key_comparisons(self.tags.len());
            self.tags.iter().position(|t| t.key == key)
        } else {
            count_key_comparisons(1);
            self.index.get(key).copied()
        }
    }

    fn push(&mut self, tag: Tag) {
        if !self.index.is_empty() {
            self.index.insert(tag.key.clone(), self.tags.len());
        } else if self.tags.len() + 1 >= INDEX_FROM {
            self.index = self
                .tags
                .iter()
                .enumerate()
                .map(|(i, t)| (t.key.clone(), i))
                .collect();
            self.index.insert(tag.key.clone(), self.tags.len());
        }
        self.tags.push(tag);
    }
}

#[cfg(test)]
thread_local! {
    /// Keys compared (or hashed) by lookups on this thread: how the tests see that a set
    /// costs O(1) without timing it.
    pub(crate) static KEY_COMPARISONS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

#[inline(always)]
fn count_key_comparisons(_n: usize) {
    #[cfg(test)]
    KEY_COMPARISONS.with(|c| c.set(c.get() + _n as u64));
}

impl Drop for TagList {
    /// Most spans have no tags: their list is dropped with one check, where the compiler's
    /// drop would look at every slot.
    #[inline]
    fn drop(&mut self) {
        if !self.is_new() {
            // SAFETY: dropped once, here; the list is not used after.
            unsafe { ManuallyDrop::drop(&mut self.0) }
        }
    }
}

impl Default for TagList {
    fn default() -> Self {
        TagList::new()
    }
}

impl TagList {
    /// An empty list.
    #[must_use]
    pub const fn new() -> Self {
        TagList(ManuallyDrop::new(Repr::Inline([None, None, None])))
    }

    /// A list of one tag.
    #[cfg(feature = "tracing")]
    pub(crate) fn one(tag: Tag) -> Self {
        TagList(ManuallyDrop::new(Repr::Inline([Some(tag), None, None])))
    }

    /// Sets `key` to `value`, replacing an earlier value of the same key.
    pub fn set(&mut self, key: SpanStr, value: TagValue) {
        self.set_within(key, value, usize::MAX);
    }

    /// Sets `key` to `value`, replacing an earlier value of the same key; a new key is
    /// dropped and counted ([`TagList::dropped`]) when the list already holds `max` tags.
    #[inline]
    pub(crate) fn set_within(&mut self, key: SpanStr, value: TagValue, max: usize) {
        match &mut *self.0 {
            Repr::Inline(slots) => {
                count_key_comparisons(INLINE_TAGS);
                let mut free = None;
                for (i, slot) in slots.iter_mut().enumerate() {
                    match slot {
                        Some(tag) if tag.key == key => {
                            tag.value = value;
                            return;
                        }
                        Some(_) => {}
                        None => {
                            free.get_or_insert(i);
                        }
                    }
                }
                match free {
                    Some(i) if i < max => slots[i] = Some(Tag { key, value }),
                    _ => self.spill(Tag { key, value }, max),
                }
            }
            Repr::Heap(spilled) => match spilled.position(&key) {
                Some(i) => spilled.tags[i].value = value,
                None if spilled.tags.len() < max => spilled.push(Tag { key, value }),
                None => spilled.dropped = spilled.dropped.saturating_add(1),
            },
        }
    }

    /// Moves the inline tags to the heap, with `tag` after them (or counted as dropped when
    /// the list holds `max` tags).
    #[cold]
    fn spill(&mut self, tag: Tag, max: usize) {
        let Repr::Inline(slots) = &mut *self.0 else {
            return;
        };
        let mut spilled = Spilled {
            tags: Vec::with_capacity(INLINE_TAGS * 2),
            ..Spilled::default()
        };
        for t in slots.iter_mut().filter_map(Option::take) {
            spilled.push(t);
        }
        if spilled.tags.len() < max {
            spilled.push(tag);
        } else {
            spilled.dropped = 1;
        }
        *self.0 = Repr::Heap(spilled);
    }

    /// How many new keys were dropped because the list was at the per-span cap.
    #[must_use]
    pub fn dropped(&self) -> u32 {
        match &*self.0 {
            Repr::Inline(_) => 0,
            Repr::Heap(spilled) => spilled.dropped,
        }
    }

    /// True for the list [`TagList::new`] makes (no tags, nothing on the heap): moving it is
    /// writing a new one, and forgetting it leaks nothing.
    #[inline]
    pub(crate) fn is_new(&self) -> bool {
        matches!(&*self.0, Repr::Inline([None, None, None]))
    }

    /// Moves a list out of `src`: a new (empty) list is written anew rather than copied.
    ///
    /// # Safety
    /// `src` points to a valid list that the caller gives up: it must not be used or dropped
    /// after this.
    #[inline]
    pub(crate) unsafe fn read_moved(src: *const TagList) -> TagList {
        // SAFETY: as the caller promises; a new list owns nothing, so not reading it is fine.
        unsafe {
            if (*src).is_new() {
                TagList::new()
            } else {
                std::ptr::read(src)
            }
        }
    }

    /// Moves a list from `src` to `dst`: a new (empty) list is written anew, which is
    /// cheaper than copying it whole.
    ///
    /// # Safety
    /// As [`move_unless_empty`]'s: `src` points to a valid list that the caller gives up;
    /// `dst` to memory for a list, apart from `src`, which is overwritten without being
    /// dropped.
    #[inline]
    pub(crate) unsafe fn move_to(src: *const TagList, dst: *mut TagList) {
        // SAFETY: as the caller promises; a new list owns nothing.
        unsafe { move_unless_empty(src, dst, TagList::is_new, TagList::new) }
    }

    /// The value of `key`, if set.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&TagValue> {
        match &*self.0 {
            Repr::Inline(_) => self.iter().find(|t| t.key == key).map(|t| &t.value),
            Repr::Heap(spilled) => spilled.position(key).map(|i| &spilled.tags[i].value),
        }
    }

    /// The number of tags.
    #[must_use]
    pub fn len(&self) -> usize {
        match &*self.0 {
            Repr::Inline(slots) => slots.iter().flatten().count(),
            Repr::Heap(spilled) => spilled.tags.len(),
        }
    }

    /// True when there are no tags.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }

    /// The tags, in the order they were first set.
    pub fn iter(&self) -> impl Iterator<Item = &Tag> {
        let (inline, heap): (&[Option<Tag>], &[Tag]) = match &*self.0 {
            Repr::Inline(slots) => (slots, &[]),
            Repr::Heap(spilled) => (&[], &spilled.tags),
        };
        inline.iter().filter_map(Option::as_ref).chain(heap.iter())
    }
}

impl fmt::Debug for TagList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.iter().map(|t| (&t.key, &t.value)))
            .finish()
    }
}

impl<K: Into<SpanStr>, V: Into<TagValue>> FromIterator<(K, V)> for TagList {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut list = TagList::new();
        for (k, v) in iter {
            list.set(k.into(), v.into());
        }
        list
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_keep_their_types() {
        assert_eq!(5u8.to_tag_value(), TagValue::Int(5));
        assert_eq!((-5i64).to_tag_value(), TagValue::Int(-5));
        assert_eq!(
            u64::MAX.to_tag_value(),
            TagValue::Str(u64::MAX.to_string().into())
        );
        assert_eq!(1.5f32.to_tag_value(), TagValue::Float(1.5));
        assert_eq!(true.to_tag_value(), TagValue::Bool(true));
        assert_eq!("x".to_tag_value(), TagValue::from_static("x"));
        assert_eq!(
            (&&String::from("y")).to_tag_value(),
            TagValue::from_static("y")
        );
        assert_eq!(None::<i32>.to_tag_value(), TagValue::from_static("None"));
    }

    #[test]
    fn tag_list_spills_and_replaces() {
        let mut list = TagList::new();
        for i in 0..5i64 {
            list.set(format!("k{i}").into(), TagValue::Int(i));
        }
        list.set("k1".into(), TagValue::Bool(true));
        assert_eq!(list.len(), 5);
        assert_eq!(list.get("k1"), Some(&TagValue::Bool(true)));
        let keys: Vec<&str> = list.iter().map(|t| &*t.key).collect();
        assert_eq!(keys, ["k0", "k1", "k2", "k3", "k4"]);
    }

    /// Keys compared while `f` runs on this thread.
    fn key_comparisons(f: impl FnOnce()) -> u64 {
        let before = KEY_COMPARISONS.with(std::cell::Cell::get);
        f();
        KEY_COMPARISONS.with(std::cell::Cell::get) - before
    }

    #[test]
    fn setting_many_tags_compares_a_bounded_number_of_keys_per_set() {
        // The issue measured 40 k tags on one span taking 3.3 s: each set scanned every key.
        const TAGS: usize = 40_000;
        let mut list = TagList::new();
        let compared = key_comparisons(|| {
            for i in 0..TAGS {
                list.set(format!("key.{i}").into(), TagValue::Int(i as i64));
            }
            // Replacing and reading are O(1) too.
            for i in (0..TAGS).step_by(7) {
                list.set(format!("key.{i}").into(), TagValue::Bool(true));
                assert_eq!(list.get(&format!("key.{i}")), Some(&TagValue::Bool(true)));
            }
        });
        assert_eq!(list.len(), TAGS);
        let sets = (TAGS + TAGS.div_ceil(7) * 2) as u64;
        assert!(
            compared <= sets * INDEX_FROM as u64,
            "{compared} key comparisons for {sets} sets and gets"
        );
        let keys: Vec<&str> = list.iter().take(3).map(|t| &*t.key).collect();
        assert_eq!(keys, ["key.0", "key.1", "key.2"]);
    }

    #[test]
    fn a_capped_list_counts_the_keys_it_drops_and_still_replaces() {
        for max in [0, 1, 3, 4, 20] {
            let mut list = TagList::new();
            for i in 0..30i64 {
                list.set_within(format!("k{i}").into(), TagValue::Int(i), max);
            }
            assert_eq!(list.len(), max, "max {max}");
            assert_eq!(list.dropped() as usize, 30 - max, "max {max}");
            if max > 0 {
                list.set_within("k0".into(), TagValue::Bool(true), max);
                assert_eq!(list.get("k0"), Some(&TagValue::Bool(true)));
                assert_eq!(list.dropped() as usize, 30 - max);
            }
        }
    }
}
