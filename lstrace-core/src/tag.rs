//! Typed tag values and the small inline list that holds a span's tags.

use std::borrow::Cow;
use std::fmt;
use std::mem::ManuallyDrop;

/// A string that is either `'static` (free to copy) or owned.
pub type Str = Cow<'static, str>;

/// A tag or log-field value. Values keep their type on the wire.
#[derive(Clone, Debug, PartialEq)]
pub enum TagValue {
    /// A string.
    Str(Str),
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
        TagValue::Str(Cow::Borrowed(s))
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
        TagValue::Str(Cow::Owned(self.to_owned()))
    }
}

impl ToTagValue for String {
    fn to_tag_value(&self) -> TagValue {
        TagValue::Str(Cow::Owned(self.clone()))
    }
}

impl ToTagValue for Cow<'static, str> {
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
        TagValue::Str(Cow::Owned(self.to_string()))
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
                i64::try_from(v).map_or_else(|_| TagValue::Str(Cow::Owned(v.to_string())), TagValue::Int)
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

impl From<&'static str> for TagValue {
    fn from(v: &'static str) -> Self {
        TagValue::Str(Cow::Borrowed(v))
    }
}

impl From<String> for TagValue {
    fn from(v: String) -> Self {
        TagValue::Str(Cow::Owned(v))
    }
}

impl From<Cow<'static, str>> for TagValue {
    fn from(v: Cow<'static, str>) -> Self {
        TagValue::Str(v)
    }
}

/// A key and its value: a span tag or a log field.
#[derive(Clone, Debug, PartialEq)]
pub struct Tag {
    /// The key.
    pub key: Str,
    /// The value.
    pub value: TagValue,
}

impl Tag {
    /// A tag.
    pub fn new(key: impl Into<Str>, value: impl Into<TagValue>) -> Self {
        Tag {
            key: key.into(),
            value: value.into(),
        }
    }
}

const INLINE_TAGS: usize = 3;

/// A span's tags: up to three are held inline (no allocation), more spill to the heap.
/// Setting a key that is already present replaces its value, as OpenTracing's `SetTag` does.
#[derive(Clone, PartialEq)]
pub struct TagList(ManuallyDrop<Repr>);

#[derive(Clone, PartialEq)]
enum Repr {
    Inline([Option<Tag>; INLINE_TAGS]),
    Heap(Vec<Tag>),
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

    /// Sets `key` to `value`, replacing an earlier value of the same key.
    pub fn set(&mut self, key: Str, value: TagValue) {
        if let Some(existing) = self.iter_mut().find(|t| t.key == key) {
            existing.value = value;
            return;
        }
        match &mut *self.0 {
            Repr::Inline(slots) => {
                if let Some(free) = slots.iter_mut().find(|s| s.is_none()) {
                    *free = Some(Tag { key, value });
                } else {
                    let mut spilled: Vec<Tag> = slots.iter_mut().filter_map(Option::take).collect();
                    spilled.push(Tag { key, value });
                    *self.0 = Repr::Heap(spilled);
                }
            }
            Repr::Heap(tags) => tags.push(Tag { key, value }),
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

    /// Moves a list from `src` to `dst`: a new (empty) list is written anew (three words)
    /// rather than copied (144 bytes). (Returning the list, as `read_moved` does, lets the
    /// compiler merge the two cases into a full copy.)
    ///
    /// # Safety
    /// `src` points to a valid list that the caller gives up; `dst` to memory for a list,
    /// which is overwritten without being dropped.
    #[inline]
    pub(crate) unsafe fn move_to(src: *const TagList, dst: *mut TagList) {
        // SAFETY: as the caller promises; a new list owns nothing, so not reading it is fine.
        unsafe {
            if (*src).is_new() {
                dst.write(TagList::new());
            } else {
                std::ptr::copy_nonoverlapping(src, dst, 1);
            }
        }
    }

    /// The value of `key`, if set.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&TagValue> {
        self.iter().find(|t| t.key == key).map(|t| &t.value)
    }

    /// The number of tags.
    #[must_use]
    pub fn len(&self) -> usize {
        self.iter().count()
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
            Repr::Heap(tags) => (&[], tags),
        };
        inline.iter().filter_map(Option::as_ref).chain(heap.iter())
    }

    fn iter_mut(&mut self) -> impl Iterator<Item = &mut Tag> {
        let (inline, heap): (&mut [Option<Tag>], &mut [Tag]) = match &mut *self.0 {
            Repr::Inline(slots) => (slots, &mut []),
            Repr::Heap(tags) => (&mut [], tags),
        };
        inline
            .iter_mut()
            .filter_map(Option::as_mut)
            .chain(heap.iter_mut())
    }
}

impl fmt::Debug for TagList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.iter().map(|t| (&t.key, &t.value)))
            .finish()
    }
}

impl<K: Into<Str>, V: Into<TagValue>> FromIterator<(K, V)> for TagList {
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

    #[test]
    fn inline_list_does_not_grow_the_span() {
        assert!(
            std::mem::size_of::<TagList>() <= 160,
            "{}",
            std::mem::size_of::<TagList>()
        );
    }
}
