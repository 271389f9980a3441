//! HTTP to the collectors: one client, no redirects, a timeout per report, answers read up
//! to a small cap. What the bytes mean is the protocol's (see the `protocol` module).

use super::events::ReportError;
use super::options::{redact, Config, InitError};
use super::protocol::{Answer, ReportProtocol, MAX_ANSWER_BYTES};
use reqwest::Url;
use std::error::Error as _;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// One HTTP client, reused for every report, and the collectors it reports to.
#[derive(Clone)]
pub(crate) struct Transport {
    client: reqwest::Client,
    endpoints: Arc<[Url]>,
    token: Arc<str>,
}

/// The raw answer to a report: its status, its `Retry-After` and, for a 2xx, its body up to
/// the cap.
pub(crate) struct RawAnswer {
    pub(crate) status: u16,
    pub(crate) retry_after: Option<Duration>,
    pub(crate) body: Result<Vec<u8>, String>,
}

/// The longest `Retry-After` honoured: a server asking for more gets its report retried
/// after this (or dropped by the flush deadline or the attempt limit).
pub(crate) const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// A `Retry-After` in seconds (the form OTLP servers send), capped at [`MAX_RETRY_AFTER`].
/// An HTTP date is not read: the usual backoff applies.
pub(crate) fn retry_after(value: &str) -> Option<Duration> {
    let seconds: u64 = value.trim().parse().ok()?;
    Some(Duration::from_secs(seconds).min(MAX_RETRY_AFTER))
}

impl Transport {
    pub(crate) fn new(config: &Config, protocol: &dyn ReportProtocol) -> Result<Self, InitError> {
        // The configured headers, then the protocol's (content type, token), which win.
        let mut headers = config.headers.clone();
        headers.extend(protocol.headers()?);
        let client = reqwest::Client::builder()
            .default_headers(headers)
            .user_agent(concat!("lstrace/", env!("CARGO_PKG_VERSION")))
            // A redirect would take the access token (in a header and in the body) to
            // another origin: a collector that redirects is misconfigured, and its report
            // fails.
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(config.report_timeout)
            .build()
            .map_err(|e| InitError::Start(format!("HTTP client: {e}")))?;
        Ok(Transport {
            client,
            endpoints: config.endpoints.clone().into(),
            token: config.access_token.as_str().into(),
        })
    }

    pub(crate) fn endpoint_count(&self) -> usize {
        self.endpoints.len()
    }

    /// The URL of an endpoint, as events show it.
    pub(crate) fn endpoint_name(&self, endpoint: usize) -> String {
        self.endpoints[endpoint].to_string()
    }

    /// Sends a report body to an endpoint; the whole exchange (connecting, sending, reading
    /// the answer) takes at most `timeout`.
    pub(crate) fn send(
        &self,
        endpoint: usize,
        body: bytes::Bytes,
        timeout: Duration,
    ) -> impl Future<Output = Result<RawAnswer, ReportError>> + Send + 'static {
        let request = self
            .client
            .post(self.endpoints[endpoint].clone())
            .body(body);
        let token = Arc::clone(&self.token);
        async move {
            let deadline = tokio::time::Instant::now() + timeout;
            let fail = |e: reqwest::Error| {
                if e.is_timeout() {
                    ReportError::Timeout
                } else {
                    ReportError::Connection(redact(&error_chain(&e), &token))
                }
            };
            let mut response = tokio::time::timeout_at(deadline, request.send())
                .await
                .map_err(|_| ReportError::Timeout)?
                .map_err(fail)?;
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(retry_after);
            if !response.status().is_success() {
                // Its body means nothing to the reporter: not read.
                return Ok(RawAnswer {
                    status,
                    retry_after,
                    body: Ok(Vec::new()),
                });
            }
            // The status says the report arrived: from here on, a failure to read the body
            // is the answer's problem, not the report's.
            let read_body = async {
                let mut body = Vec::new();
                loop {
                    match response.chunk().await {
                        Ok(Some(chunk)) if body.len() + chunk.len() > MAX_ANSWER_BYTES => {
                            return Err(format!("longer than {MAX_ANSWER_BYTES} bytes"));
                        }
                        Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                        Ok(None) => return Ok(body),
                        Err(e) => return Err(redact(&error_chain(&e), &token)),
                    }
                }
            };
            let body = tokio::time::timeout_at(deadline, read_body)
                .await
                .unwrap_or_else(|_| Err("not read within the report timeout".to_owned()));
            Ok(RawAnswer {
                status,
                retry_after,
                body,
            })
        }
    }
}

impl RawAnswer {
    /// What the answer means to `protocol`.
    pub(crate) fn read(&self, protocol: &dyn ReportProtocol) -> Result<Answer, ReportError> {
        protocol.answer(
            self.status,
            self.retry_after,
            self.body.as_deref().map_err(Clone::clone),
        )
    }
}

/// An error and its causes, on one line ("error sending request: ...: connection refused").
fn error_chain(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
