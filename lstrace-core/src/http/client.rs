//! Client (exit) spans for reqwest.

use super::{method_tag, operation_name, record_status};
use crate::{propagation, FutureExt, SpanKind};
use reqwest::{Client, Request, RequestBuilder, Response, Url};
use std::future::Future;

/// Sends a reqwest request inside a client span that the server can continue.
///
/// The span (`HTTP {method}`, `span.kind = client`, `http.method`, `http.url` without any
/// user name or password) is a child of the current span. Its context goes out in the
/// request's headers in every format of the
/// [`global_stack`](crate::propagation::global_stack). It finishes when the response's
/// headers arrive (tagged `http.status_code`; a 5xx sets `error = true`) or the request fails
/// (`error = true` and an error log). Dropping the future before then finishes it with
/// `cancelled = true`.
///
/// Inside an unsampled trace nothing is recorded, but the headers still go out, so the
/// server keeps the decision.
///
/// ```no_run
/// use lstrace_core::http::TracedRequestBuilder;
///
/// # async fn call() -> reqwest::Result<()> {
/// let client = reqwest::Client::new();
/// let response = client.get("http://127.0.0.1:8080/users/7").send_traced().await?;
/// # Ok(()) }
/// ```
pub trait TracedRequestBuilder {
    /// Sends the request like [`RequestBuilder::send`], inside a client span. A request that
    /// cannot be built fails as `send` would, without a span: nothing was sent.
    fn send_traced(self) -> impl Future<Output = reqwest::Result<Response>> + Send + 'static;
}

impl TracedRequestBuilder for RequestBuilder {
    fn send_traced(self) -> impl Future<Output = reqwest::Result<Response>> + Send + 'static {
        let (client, request) = self.build_split();
        let traced = request.map(|request| execute_traced(&client, request));
        async move { traced?.await }
    }
}

/// Executes a built request like [`Client::execute`], inside a client span: see
/// [`TracedRequestBuilder`].
pub fn execute_traced(
    client: &Client,
    mut request: Request,
) -> impl Future<Output = reqwest::Result<Response>> + Send + 'static {
    let span = crate::span(operation_name(request.method()))
        .kind(SpanKind::Client)
        .with_tag("http.method", method_tag(request.method()))
        .with_tag("http.url", url_without_credentials(request.url()))
        .start_detached();
    let recording = !span.is_noop();
    // A span that records nothing (an unsampled trace) still passes the decision on.
    if let Some(context) = span.context().or_else(crate::current) {
        propagation::inject(&context, request.headers_mut());
    }
    let response = client.execute(request);
    async move {
        let result = response.await;
        if recording {
            match &result {
                Ok(response) => record_status(response.status()),
                Err(error) => crate::record_error(error),
            }
        }
        result
    }
    .in_span(span)
}

/// The URL as a tag: credentials in it are secrets, and spans are not the place for them.
fn url_without_credentials(url: &Url) -> String {
    if url.username().is_empty() && url.password().is_none() {
        return url.to_string();
    }
    let mut url = url.clone();
    // Only URLs that cannot have credentials refuse these, and they have none to remove.
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_stay_out_of_the_url_tag() {
        let url = Url::parse("http://ann:s3cr3t@example.invalid:81/a?b=c").unwrap();
        assert_eq!(
            url_without_credentials(&url),
            "http://example.invalid:81/a?b=c"
        );
        let url = Url::parse("http://example.invalid/").unwrap();
        assert_eq!(url_without_credentials(&url), "http://example.invalid/");
    }
}
