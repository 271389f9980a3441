//! HTTP integrations: client (exit) spans for reqwest (feature `reqwest`) and server (entry)
//! spans for tower services such as axum, tonic and hyper (feature `tower`).
//!
//! The reqwest integration is for reqwest **0.13** (what `cargo add reqwest` gives): its
//! traits are implemented for 0.13's `RequestBuilder` and `Client`, so a client of another
//! major has no `send_traced` method.
//!
//! Both follow the OpenTracing conventions: `span.kind` (`client` / `server`),
//! `http.method`, `http.url`, `http.status_code`, and `error = true` when the request failed
//! or the response is a 5xx. Both use the [`global_stack`](crate::propagation::global_stack)
//! of propagation formats unless told otherwise.

#[cfg(feature = "reqwest")]
mod client;
#[cfg(feature = "tower")]
mod server;

#[cfg(feature = "reqwest")]
#[cfg_attr(docsrs, doc(cfg(feature = "reqwest")))]
pub use client::{execute_traced, TracedRequestBuilder};
#[cfg(feature = "tower")]
#[cfg_attr(docsrs, doc(cfg(feature = "tower")))]
pub use server::{ResponseFuture, TraceLayer, TraceService};

use crate::TagValue;

/// The default operation name of an HTTP span: `HTTP GET`, `HTTP POST`, ... (few distinct
/// names, unlike paths, which often hold ids).
fn operation_name(method: &::http::Method) -> String {
    format!("HTTP {method}")
}

/// The `http.method` tag's value: no allocation for the standard methods.
fn method_tag(method: &::http::Method) -> TagValue {
    use ::http::Method;
    let standard = [
        (Method::GET, "GET"),
        (Method::POST, "POST"),
        (Method::PUT, "PUT"),
        (Method::DELETE, "DELETE"),
        (Method::HEAD, "HEAD"),
        (Method::OPTIONS, "OPTIONS"),
        (Method::PATCH, "PATCH"),
        (Method::CONNECT, "CONNECT"),
        (Method::TRACE, "TRACE"),
    ];
    match standard.into_iter().find(|(m, _)| m == method) {
        Some((_, name)) => TagValue::from_static(name),
        None => TagValue::from(method.as_str().to_owned()),
    }
}

/// Tags the current span with a response's status; a 5xx marks it failed.
fn record_status(status: ::http::StatusCode) {
    crate::set_tag("http.status_code", i64::from(status.as_u16()));
    if status.is_server_error() {
        crate::set_tag("error", true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_tags() {
        assert_eq!(method_tag(&::http::Method::PATCH).as_str(), Some("PATCH"));
        let custom = ::http::Method::from_bytes(b"PURGE").unwrap();
        assert_eq!(method_tag(&custom).as_str(), Some("PURGE"));
        assert_eq!(operation_name(&custom), "HTTP PURGE");
    }
}
