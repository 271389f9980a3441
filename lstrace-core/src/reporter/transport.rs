//! HTTP to the collector: `POST /api/v2/reports` with a binary `ReportRequest`, and what
//! the answer means.

use super::events::ReportError;
use super::options::{redact, Config, InitError};
use crate::protocol::ReportResponse;
use prost::Message;
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, CONTENT_TYPE};
use reqwest::Url;
use std::error::Error as _;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// The header that carries the access token.
pub const ACCESS_TOKEN_HEADER: &str = "Lightstep-Access-Token";
const OCTET_STREAM: &str = "application/octet-stream";

/// The collector's answer to a report that went through.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Answer {
    Accepted,
    /// The collector says: stop tracing.
    Disable,
}

/// One HTTP client, reused for every report, and the collectors it reports to.
#[derive(Clone)]
pub(crate) struct Transport {
    client: reqwest::Client,
    endpoints: Arc<[Url]>,
    token: Arc<str>,
}

impl Transport {
    pub(crate) fn new(config: &Config) -> Result<Self, InitError> {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(OCTET_STREAM));
        headers.insert(ACCEPT, HeaderValue::from_static(OCTET_STREAM));
        let mut token =
            HeaderValue::from_str(&config.access_token).map_err(|_| InitError::InvalidOption {
                option: "access_token",
                reason: "contains characters an HTTP header cannot carry".into(),
            })?;
        // Keeps it out of the headers' Debug output.
        token.set_sensitive(true);
        headers.insert(ACCESS_TOKEN_HEADER, token);
        let client = reqwest::Client::builder()
            .default_headers(headers)
            .user_agent(concat!("lstrace/", env!("CARGO_PKG_VERSION")))
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

    /// Sends a report body to an endpoint; the answer comes within `timeout`.
    pub(crate) fn send(
        &self,
        endpoint: usize,
        body: bytes::Bytes,
        timeout: Duration,
    ) -> impl Future<Output = Result<Answer, ReportError>> + 'static {
        let request = self
            .client
            .post(self.endpoints[endpoint].clone())
            .timeout(timeout)
            .body(body);
        let token = Arc::clone(&self.token);
        async move {
            let fail = |e: reqwest::Error| {
                if e.is_timeout() {
                    ReportError::Timeout
                } else {
                    ReportError::Connection(redact(&error_chain(&e), &token))
                }
            };
            let response = request.send().await.map_err(fail)?;
            let status = response.status().as_u16();
            let body = response.bytes().await.map_err(fail)?;
            answer(status, &body)
        }
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

/// What an HTTP answer means: 200 with a `ReportResponse` and no errors is success; a
/// `disable` command wins over everything else in the response.
pub(crate) fn answer(status: u16, body: &[u8]) -> Result<Answer, ReportError> {
    match status {
        200 => {}
        401 | 403 => return Err(ReportError::Unauthorized { status }),
        _ => return Err(ReportError::Status { status }),
    }
    let response =
        ReportResponse::decode(body).map_err(|e| ReportError::InvalidResponse(e.to_string()))?;
    if response.commands.iter().any(|c| c.disable) {
        Ok(Answer::Disable)
    } else if response.errors.is_empty() {
        Ok(Answer::Accepted)
    } else {
        Err(ReportError::Rejected {
            errors: response.errors,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Command;

    fn body(response: ReportResponse) -> Vec<u8> {
        response.encode_to_vec()
    }

    #[test]
    fn reads_the_answer() {
        assert_eq!(answer(200, &[]), Ok(Answer::Accepted));
        let rejected = ReportResponse {
            errors: vec!["missing or empty component".into()],
            ..Default::default()
        };
        assert_eq!(
            answer(200, &body(rejected.clone())),
            Err(ReportError::Rejected {
                errors: vec!["missing or empty component".into()]
            })
        );
        let disable = ReportResponse {
            commands: vec![Command {
                disable: true,
                dev_mode: false,
            }],
            ..rejected
        };
        assert_eq!(answer(200, &body(disable)), Ok(Answer::Disable));
        assert_eq!(
            answer(401, &[]),
            Err(ReportError::Unauthorized { status: 401 })
        );
        assert_eq!(
            answer(403, &[]),
            Err(ReportError::Unauthorized { status: 403 })
        );
        assert_eq!(answer(500, &[]), Err(ReportError::Status { status: 500 }));
        assert!(matches!(
            answer(200, b"\xff\xff\xff garbage"),
            Err(ReportError::InvalidResponse(_))
        ));
    }
}
