//! The LightStep protocol: `POST /api/v2/reports` with a binary `ReportRequest` whose
//! header fields (reporter, auth, internal metrics) follow the spans, and a
//! `ReportResponse` answer.

pub mod messages;

use super::{Answer, AnswerBody, Carried, ReportBody, ReportProtocol};
use crate::clock;
use crate::protocol::lightstep::{
    metrics_sample, Auth, InternalMetrics, MetricsSample, ReportRequest, ReportResponse, Reporter,
    Timestamp,
};
use crate::reporter::buffer::Chunk;
use crate::reporter::config::{Config, InitError};
use crate::reporter::events::ReportError;
use prost::Message;
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, CONTENT_TYPE};
use std::time::SystemTime;

/// The header that carries the access token.
pub const ACCESS_TOKEN_HEADER: &str = "Lightstep-Access-Token";
/// The content type of reports and of their answers.
pub(crate) const OCTET_STREAM: &str = "application/octet-stream";

/// The internal metric of spans dropped since the last accepted report.
pub(crate) const SPANS_DROPPED: &str = "spans.dropped";
/// The internal metric of logs dropped by the per-span limit since the last accepted report.
pub(crate) const LOGS_DROPPED: &str = "logs.dropped";
/// The internal metric of tags dropped by the per-span limit since the last accepted report.
pub(crate) const TAGS_DROPPED: &str = "tags.dropped";
/// The internal metric of baggage items dropped by the per-context limit, likewise.
pub(crate) const BAGGAGE_DROPPED: &str = "baggage.dropped";
/// The internal metric of operation names cut to the length limit, likewise.
pub(crate) const NAMES_TRUNCATED: &str = "operation_names.truncated";
/// The internal metric of fields that injection left out of carriers, likewise.
pub(crate) const FIELDS_LEFT_OUT: &str = "propagation.fields_left_out";

/// LightStep reports for one tracer.
pub(crate) struct LightStep {
    /// Reporter and auth; the metrics are filled in per report.
    header: ReportRequest,
}

impl LightStep {
    pub(crate) fn new(config: &Config) -> Self {
        LightStep {
            header: ReportRequest {
                reporter: Some(Reporter {
                    reporter_id: crate::context::id::SpanId::random().get(),
                    tags: config.reporter_tags.clone(),
                }),
                auth: Some(Auth {
                    access_token: config.access_token.clone(),
                }),
                spans: Vec::new(),
                timestamp_offset_micros: 0,
                internal_metrics: None,
            },
        }
    }
}

impl ReportProtocol for LightStep {
    fn headers(&self) -> Result<HeaderMap, InitError> {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(OCTET_STREAM));
        headers.insert(ACCEPT, HeaderValue::from_static(OCTET_STREAM));
        let token = self
            .header
            .auth
            .as_ref()
            .map_or("", |a| a.access_token.as_str());
        let mut token = HeaderValue::from_str(token).map_err(|_| InitError::InvalidOption {
            option: "access_token",
            reason: "contains characters an HTTP header cannot carry".into(),
        })?;
        // Keeps it out of the headers' Debug output.
        token.set_sensitive(true);
        headers.insert(ACCESS_TOKEN_HEADER, token);
        Ok(headers)
    }

    fn max_envelope_bytes(&self) -> usize {
        // The header with the widest metrics values, and room for protobuf's framing.
        let mut header = self.header.clone();
        header.internal_metrics = Some(metrics(u64::MAX, u64::MAX, Carried::WIDEST));
        header.encoded_len() + 64
    }

    fn body(
        &mut self,
        chunk: &mut Chunk,
        carried: Carried,
        interval_start_nanos: u64,
    ) -> ReportBody {
        let now = clock::system_time_to_unix_nanos(SystemTime::now());
        self.header.internal_metrics = Some(metrics(interval_start_nanos, now, carried));
        ReportBody::whole(chunk.lend(&self.header.encode_to_vec()))
    }

    fn answer(
        &self,
        status: u16,
        _retry_after: Option<std::time::Duration>,
        body: AnswerBody<'_>,
    ) -> Result<Answer, ReportError> {
        answer(status, body)
    }
}

fn metrics(start_nanos: u64, now_nanos: u64, carried: Carried) -> InternalMetrics {
    let count = |name: &str, value: u64| MetricsSample {
        name: name.to_owned(),
        value: Some(metrics_sample::Value::IntValue(
            i64::try_from(value).unwrap_or(i64::MAX),
        )),
    };
    InternalMetrics {
        start_timestamp: Some(Timestamp::from_unix_nanos(start_nanos)),
        duration_micros: now_nanos.saturating_sub(start_nanos) / 1000,
        logs: Vec::new(),
        counts: carried
            .named()
            .iter()
            .map(|&(name, value)| count(name, value))
            .collect(),
        gauges: Vec::new(),
    }
}

/// What an HTTP answer means. A 2xx status means the collector has the report: a body that
/// cannot be read or decoded is a warning, not a failure (sending the report again would
/// duplicate its spans). A `disable` command wins over everything else in the response;
/// errors in it mean the report was rejected. Redirects are not followed: a 3xx is a failure.
pub(crate) fn answer(status: u16, body: AnswerBody<'_>) -> Result<Answer, ReportError> {
    match status {
        200..=299 => {}
        401 | 403 => return Err(ReportError::Unauthorized { status }),
        _ => return Err(ReportError::Status { status }),
    }
    let unreadable = |why: String| {
        Ok(Answer::Accepted {
            warning: Some(format!(
                "HTTP {status}, but the answer could not be read ({why}): the report counts as \
                 accepted and is not sent again"
            )),
        })
    };
    let body = match body {
        Ok(body) => body,
        Err(why) => return unreadable(why),
    };
    let response = match ReportResponse::decode(body) {
        Ok(response) => response,
        Err(e) => return unreadable(format!("not a ReportResponse: {e}")),
    };
    if response.commands.iter().any(|c| c.disable) {
        Ok(Answer::Disable)
    } else if response.errors.is_empty() {
        Ok(Answer::Accepted { warning: None })
    } else {
        Err(ReportError::Rejected {
            errors: response.errors,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::lightstep::Command;

    fn body(response: ReportResponse) -> Vec<u8> {
        response.encode_to_vec()
    }

    const ACCEPTED: Answer = Answer::Accepted { warning: None };

    #[test]
    fn reads_the_answer() {
        assert_eq!(answer(200, Ok(&[])), Ok(ACCEPTED));
        assert_eq!(answer(202, Ok(&[])), Ok(ACCEPTED));
        let rejected = ReportResponse {
            errors: vec!["missing or empty component".into()],
            ..Default::default()
        };
        assert_eq!(
            answer(200, Ok(&body(rejected.clone()))),
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
        assert_eq!(answer(200, Ok(&body(disable))), Ok(Answer::Disable));
        assert_eq!(
            answer(401, Ok(&[])),
            Err(ReportError::Unauthorized { status: 401 })
        );
        assert_eq!(
            answer(403, Ok(&[])),
            Err(ReportError::Unauthorized { status: 403 })
        );
        assert_eq!(
            answer(500, Ok(&[])),
            Err(ReportError::Status { status: 500 })
        );
        assert_eq!(
            answer(307, Ok(&[])),
            Err(ReportError::Status { status: 307 })
        );
    }

    #[test]
    fn a_2xx_answer_that_cannot_be_read_is_accepted_with_a_warning() {
        for read in [
            Ok(&b"\xff\xff\xff garbage"[..]),
            Err("truncated".to_owned()),
        ] {
            match answer(200, read) {
                Ok(Answer::Accepted { warning: Some(w) }) => {
                    assert!(w.contains("not sent again"), "{w}");
                }
                other => panic!("{other:?}"),
            }
        }
    }
}
