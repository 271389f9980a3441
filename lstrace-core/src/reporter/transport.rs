//! HTTP to the collectors: one client, no redirects, a timeout per report, answers read up
//! to a small cap. What the bytes mean is the protocol's (see the `protocol` module).

use super::config::{redact, Config, InitError};
use super::events::ReportError;
use super::protocol::{Answer, ReportBody, ReportProtocol, MAX_ANSWER_BYTES};
use reqwest::Url;
use std::error::Error as _;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

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

/// A `Retry-After` (seconds, or an HTTP date: the wait until then, none once it is past),
/// capped at [`MAX_RETRY_AFTER`]; `now` is the wall-clock time a date is counted from.
/// `None` for a value that is neither: the usual backoff applies.
pub(crate) fn retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    let wait = match value.parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) => {
            let date = httpdate::parse_http_date(value).ok()?;
            date.duration_since(now).unwrap_or(Duration::ZERO)
        }
    };
    Some(wait.min(MAX_RETRY_AFTER))
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
        body: ReportBody,
        timeout: Duration,
    ) -> impl Future<Output = Result<RawAnswer, ReportError>> + Send + 'static {
        let request = self
            .client
            .post(self.endpoints[endpoint].clone())
            .body(body.into_http());
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
                .and_then(|v| retry_after(v, SystemTime::now()));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_takes_seconds_or_a_date_and_is_bounded() {
        let now = httpdate::parse_http_date("Wed, 21 Oct 2026 07:28:00 GMT").unwrap();
        let secs = Duration::from_secs;
        assert_eq!(retry_after("3", now), Some(secs(3)));
        assert_eq!(retry_after(" 0 ", now), Some(secs(0)));
        assert_eq!(retry_after("86400", now), Some(MAX_RETRY_AFTER));
        // The three HTTP-date forms (RFC 9110): IMF-fixdate, RFC 850, asctime.
        for date in [
            "Wed, 21 Oct 2026 07:28:05 GMT",
            "Wednesday, 21-Oct-26 07:28:05 GMT",
            "Wed Oct 21 07:28:05 2026",
        ] {
            assert_eq!(retry_after(date, now), Some(secs(5)), "{date}");
        }
        assert_eq!(
            retry_after("Wed, 21 Oct 2026 09:00:00 GMT", now),
            Some(MAX_RETRY_AFTER)
        );
        // A date already past: retry now.
        assert_eq!(
            retry_after("Wed, 21 Oct 2026 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        for bad in ["", "-1", "soon", "1.5", "Wed, 32 Oct 2026 07:28:00 GMT"] {
            assert_eq!(retry_after(bad, now), None, "{bad:?}");
        }
    }
}
