//! The strings a span record holds, stored without an allocation in the common case.

use std::borrow::{Borrow, Cow};
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;

/// The longest string kept inline: what fits beside the length in the two words a `&str`
/// takes and the word of the enum's tag.
const INLINE: usize = 22;

/// A string held in a span record: an operation name, a tag's key or value, a log field.
///
/// A `'static` string is borrowed, a short one (up to 22 bytes) is copied inline, and only a
/// longer string that is not `'static` goes to the heap. So a span whose strings are literals,
/// or short whatever their lifetime, allocates nothing for them.
///
/// `From<&'static str>` borrows the string; [`SpanStr::new`] copies a string of any lifetime.
/// It derefs to `str`.
///
/// ```
/// use lstrace_core::SpanStr;
///
/// let sku = String::from("A-1234");
/// let copied = SpanStr::new(&sku); // short: inline, no allocation
/// let literal: SpanStr = "checkout".into(); // 'static: borrowed
/// assert_eq!(copied, "A-1234");
/// assert_eq!(literal.len(), 8);
/// ```
#[derive(Clone)]
pub struct SpanStr(Repr);

#[derive(Clone)]
enum Repr {
    Static(&'static str),
    /// The first `len` bytes of `bytes` are a string (copied from one, cut on a character
    /// boundary).
    Inline {
        len: u8,
        bytes: [u8; INLINE],
    },
    Heap(Box<str>),
}

// A span record holds several of these: three words, like the `Cow` it replaces, and a tag
// value holding one is no bigger.
const _: () = assert!(std::mem::size_of::<SpanStr>() == 24);
const _: () = assert!(std::mem::size_of::<Option<SpanStr>>() == 24);

impl SpanStr {
    /// Borrows a `'static` string: no copy, no allocation.
    #[must_use]
    pub const fn from_static(s: &'static str) -> Self {
        SpanStr(Repr::Static(s))
    }

    /// Copies `s`: inline when it is short (up to 22 bytes), else to the heap.
    #[must_use]
    #[inline]
    pub fn new(s: &str) -> Self {
        match inline(s) {
            Some(repr) => SpanStr(repr),
            None => SpanStr(Repr::Heap(s.into())),
        }
    }

    /// The string.
    #[must_use]
    #[inline]
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Static(s) => s,
            Repr::Inline { len, bytes } => {
                // SAFETY: the first `len` bytes were copied from a `str` and end on one of its
                // character boundaries (see `inline` and `truncate`).
                unsafe { std::str::from_utf8_unchecked(&bytes[..usize::from(*len)]) }
            }
            Repr::Heap(s) => s,
        }
    }

    /// True when the string is a borrowed `'static` one.
    #[must_use]
    pub fn is_static(&self) -> bool {
        matches!(self.0, Repr::Static(_))
    }

    /// True when the string is on the heap (neither `'static` nor short).
    #[must_use]
    pub fn is_heap(&self) -> bool {
        matches!(self.0, Repr::Heap(_))
    }

    /// Cuts the string to at most `max` bytes, on a character boundary (a heap string that
    /// becomes short enough moves inline).
    pub(crate) fn truncate(&mut self, max: usize) {
        let end = super::truncate(self, max).len();
        if end == self.len() {
            return;
        }
        match &mut self.0 {
            Repr::Static(s) => *s = &s[..end],
            Repr::Inline { len, .. } => {
                // `end` is below the inline length, so it fits a `u8`.
                *len = end as u8;
            }
            Repr::Heap(s) => *self = SpanStr::new(&s[..end]),
        }
    }
}

/// `s` inline, when it is short enough.
#[inline]
fn inline(s: &str) -> Option<Repr> {
    if s.len() > INLINE {
        return None;
    }
    let mut bytes = [0; INLINE];
    bytes[..s.len()].copy_from_slice(s.as_bytes());
    Some(Repr::Inline {
        len: s.len() as u8,
        bytes,
    })
}

impl Default for SpanStr {
    fn default() -> Self {
        SpanStr::from_static("")
    }
}

impl Deref for SpanStr {
    type Target = str;

    #[inline]
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for SpanStr {
    fn as_ref(&self) -> &str {
        self
    }
}

impl Borrow<str> for SpanStr {
    fn borrow(&self) -> &str {
        self
    }
}

impl From<&'static str> for SpanStr {
    /// Borrows the string (see [`SpanStr::new`] to copy one that is not `'static`).
    #[inline]
    fn from(s: &'static str) -> Self {
        SpanStr::from_static(s)
    }
}

impl From<String> for SpanStr {
    /// Takes the string; a short one is copied inline and its allocation freed here, so that
    /// the span does not carry it.
    #[inline]
    fn from(s: String) -> Self {
        match inline(&s) {
            Some(repr) => SpanStr(repr),
            None => SpanStr(Repr::Heap(s.into_boxed_str())),
        }
    }
}

impl From<&String> for SpanStr {
    /// Copies the string.
    #[inline]
    fn from(s: &String) -> Self {
        SpanStr::new(s)
    }
}

impl From<Box<str>> for SpanStr {
    fn from(s: Box<str>) -> Self {
        match inline(&s) {
            Some(repr) => SpanStr(repr),
            None => SpanStr(Repr::Heap(s)),
        }
    }
}

impl From<Cow<'static, str>> for SpanStr {
    /// Borrows a borrowed string, takes an owned one.
    #[inline]
    fn from(s: Cow<'static, str>) -> Self {
        match s {
            Cow::Borrowed(s) => SpanStr::from_static(s),
            Cow::Owned(s) => SpanStr::from(s),
        }
    }
}

impl From<SpanStr> for String {
    fn from(s: SpanStr) -> Self {
        match s.0 {
            Repr::Heap(s) => s.into_string(),
            _ => s.as_str().to_owned(),
        }
    }
}

impl fmt::Debug for SpanStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for SpanStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self)
    }
}

impl PartialEq for SpanStr {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for SpanStr {}

impl PartialOrd for SpanStr {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for SpanStr {
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl Hash for SpanStr {
    /// As the `str` hashes, which `Borrow<str>` requires.
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl PartialEq<str> for SpanStr {
    #[inline]
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for SpanStr {
    #[inline]
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for SpanStr {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<SpanStr> for str {
    fn eq(&self, other: &SpanStr) -> bool {
        self == other.as_str()
    }
}

impl PartialEq<SpanStr> for &str {
    fn eq(&self, other: &SpanStr) -> bool {
        *self == other.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_strings_are_borrowed_short_ones_inline_long_ones_on_the_heap() {
        let long = "a string that is longer than the inline room";
        assert!(SpanStr::from(long).is_static());
        assert!(std::ptr::eq(SpanStr::from(long).as_ptr(), long.as_ptr()));
        let owned = String::from("é-short");
        let copied = SpanStr::new(&owned);
        assert!(!copied.is_heap() && !copied.is_static());
        assert_eq!(copied, "é-short");
        drop(owned);
        assert_eq!(copied.as_str(), "é-short");
        let exactly = "x".repeat(INLINE);
        assert!(!SpanStr::new(&exactly).is_heap());
        assert!(SpanStr::new(&format!("{exactly}y")).is_heap());
        assert_eq!(SpanStr::from(long.to_owned()), long);
        assert!(SpanStr::from(long.to_owned()).is_heap());
        assert!(!SpanStr::from("short".to_owned()).is_heap());
        assert_eq!(String::from(SpanStr::from(long.to_owned())), long);
    }

    #[test]
    fn truncation_keeps_whole_characters_in_every_form() {
        let text = "ééééééééééééééééééééé"; // 42 bytes
        for s in [
            SpanStr::from_static(text),
            SpanStr::new(&text[..20]),
            SpanStr::new(text),
        ] {
            let mut cut = s.clone();
            cut.truncate(5);
            assert_eq!(cut, "éé");
            let mut kept = s.clone();
            kept.truncate(100);
            assert_eq!(kept, s);
        }
        let mut heap = SpanStr::new(text);
        heap.truncate(21);
        assert!(!heap.is_heap());
        assert_eq!(heap, &text[..20]);
    }

    #[test]
    fn equal_strings_are_equal_and_hash_alike_whatever_their_storage() {
        use std::collections::hash_map::DefaultHasher;
        let hash = |s: &SpanStr| {
            let mut h = DefaultHasher::new();
            s.hash(&mut h);
            h.finish()
        };
        let a = SpanStr::from_static("key");
        let b = SpanStr::new(&String::from("key"));
        assert_eq!(a, b);
        assert_eq!(hash(&a), hash(&b));
        let mut h = DefaultHasher::new();
        "key".hash(&mut h);
        assert_eq!(hash(&a), h.finish());
        assert_eq!(format!("{a:?}"), "\"key\"");
    }
}
