//! Carriers: where propagation formats write and read their fields.

use http::header::{HeaderMap, HeaderName, HeaderValue};
use std::collections::HashMap;

/// A carrier that a context can be written into (outgoing request headers, a message's
/// metadata). Implemented for [`http::HeaderMap`] and `HashMap<String, String>`.
pub trait Injector {
    /// Sets `key` (lower-case) to `value`, replacing an earlier value. A carrier that cannot
    /// hold the pair (an HTTP header map and a value with control characters, or a header map
    /// that is full) skips it, and counts it in
    /// [`fields_left_out`](super::fields_left_out). Must not panic.
    fn set(&mut self, key: &str, value: String);
}

/// A carrier that a context can be read from (incoming request headers, a message's
/// metadata). Implemented for [`http::HeaderMap`] and `HashMap<String, String>`.
pub trait Extractor {
    /// The value of `key` (given in lower case), whatever the case of the carrier's key.
    fn get(&self, key: &str) -> Option<&str>;

    /// Calls `f` with every key and value, for formats that look for a key prefix or read
    /// every occurrence of a header.
    fn for_each<'a>(&'a self, f: &mut dyn FnMut(&'a str, &'a str));
}

impl<I: Injector + ?Sized> Injector for &mut I {
    fn set(&mut self, key: &str, value: String) {
        (**self).set(key, value);
    }
}

impl<E: Extractor + ?Sized> Extractor for &E {
    fn get(&self, key: &str) -> Option<&str> {
        (**self).get(key)
    }

    fn for_each<'a>(&'a self, f: &mut dyn FnMut(&'a str, &'a str)) {
        (**self).for_each(f);
    }
}

/// Values are written only if they are visible ASCII (and spaces or tabs), the text that
/// header values can portably hold and that [`HeaderValue::to_str`] reads back; others
/// (control characters, non-ASCII text), names that are not header names, and new names once
/// the map holds as many as it can (32,768) are skipped and counted.
impl Injector for HeaderMap {
    fn set(&mut self, key: &str, value: String) {
        let visible = value
            .bytes()
            .all(|b| b == b'\t' || (b' '..=b'~').contains(&b));
        let inserted = visible
            && match (
                HeaderName::from_bytes(key.as_bytes()),
                HeaderValue::try_from(value),
            ) {
                (Ok(name), Ok(value)) => self.try_insert(name, value).is_ok(),
                _ => false,
            };
        if !inserted {
            super::leave_out(1);
        }
    }
}

/// Header values that are not visible ASCII are skipped: no format writes any.
impl Extractor for HeaderMap {
    fn get(&self, key: &str) -> Option<&str> {
        HeaderMap::get(self, key).and_then(|v| v.to_str().ok())
    }

    fn for_each<'a>(&'a self, f: &mut dyn FnMut(&'a str, &'a str)) {
        for (name, value) in self {
            if let Ok(value) = value.to_str() {
                f(name.as_str(), value);
            }
        }
    }
}

impl<S: std::hash::BuildHasher> Injector for HashMap<String, String, S> {
    fn set(&mut self, key: &str, value: String) {
        self.insert(key.to_owned(), value);
    }
}

/// Keys match without case, as HTTP header names do; an exact match is found first.
impl<S: std::hash::BuildHasher> Extractor for HashMap<String, String, S> {
    fn get(&self, key: &str) -> Option<&str> {
        HashMap::get(self, key)
            .or_else(|| {
                self.iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(key))
                    .map(|(_, v)| v)
            })
            .map(String::as_str)
    }

    fn for_each<'a>(&'a self, f: &mut dyn FnMut(&'a str, &'a str)) {
        for (key, value) in self {
            f(key, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_maps_skip_what_they_cannot_hold() {
        let mut headers = HeaderMap::new();
        headers.set("ot-baggage-ok", "fine".into());
        headers.set("ot-baggage-bad key", "v".into());
        headers.set("ot-baggage-nl", "a\nb".into());
        headers.set("ot-baggage-city", "Zürich".into());
        assert_eq!(headers.len(), 1);
        assert_eq!(Extractor::get(&headers, "ot-baggage-ok"), Some("fine"));
    }

    #[test]
    fn text_maps_match_keys_without_case() {
        let mut map = HashMap::new();
        map.insert("OT-Tracer-TraceId".to_owned(), "a".to_owned());
        assert_eq!(Extractor::get(&map, "ot-tracer-traceid"), Some("a"));
        assert_eq!(Extractor::get(&map, "ot-tracer-spanid"), None);
        let mut seen = Vec::new();
        map.for_each(&mut |k, v| seen.push((k.to_owned(), v.to_owned())));
        assert_eq!(seen, [("OT-Tracer-TraceId".to_owned(), "a".to_owned())]);
    }

    #[test]
    fn header_maps_skip_non_ascii_values_on_read() {
        let mut headers = HeaderMap::new();
        headers.insert("x-b3-traceid", HeaderValue::from_bytes(b"\xff").unwrap());
        assert_eq!(Extractor::get(&headers, "x-b3-traceid"), None);
        let mut count = 0;
        headers.for_each(&mut |_, _| count += 1);
        assert_eq!(count, 0);
    }
}
