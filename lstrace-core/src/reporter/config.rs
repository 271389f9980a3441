//! Options checked into the reporter's [`Config`], and why `init` refuses them
//! ([`InitError`]).

use super::events::{Event, EventHandler};
use super::identity;
use super::options::{
    Compression, Options, Protocol, SpanCaps, DEFAULT_COLLECTOR_URL, DEFAULT_OTLP_URL, REPORT_PATH,
    TRACES_PATH,
};
use super::wire::Limits;
use crate::propagation::PropagatorStack;
use crate::protocol::lightstep::KeyValue;
use crate::protocol::otlp;
use crate::sampling::Sampling;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::Url;
use std::fmt;
use std::time::Duration;

impl Options {
    /// Checks the options and resolves the defaults. Returns the configuration and the
    /// warnings to emit once the tracer runs.
    pub(crate) fn validate(mut self) -> Result<(Config, Vec<Event>), InitError> {
        if self.disabled {
            // A disabled SDK is a no-op (OpenTelemetry's `OTEL_SDK_DISABLED`): nothing is
            // sent or applied, so nothing is checked, and a bad value elsewhere in the
            // environment (an endpoint that is not a URL, say) does not stop the program.
            // Only the event handler, for the environment's warnings, is kept (not the
            // sampling one: nothing is sampled).
            let component_name = self
                .component_name
                .filter(|name| !name.trim().is_empty())
                .or_else(identity::executable_name)
                .unwrap_or_else(|| "lstrace".to_owned());
            self = Options {
                component_name: Some(component_name),
                event_handler: self.event_handler,
                env_warnings: self.env_warnings,
                disabled: true,
                ..Options::new("")
            };
        }
        let token = self.access_token.trim().to_owned();
        // OTLP backends may authenticate otherwise (headers), or not at all.
        if token.is_empty() && self.protocol == Protocol::LightStep && !self.disabled {
            return Err(InitError::MissingAccessToken);
        }
        if HeaderValue::from_str(&token).is_err() {
            return Err(InitError::InvalidOption {
                option: "access_token",
                reason: "contains characters an HTTP header cannot carry".into(),
            });
        }
        if let Some(error) = self.sampling_error {
            return Err(InitError::InvalidOption {
                option: "sampling_ratio",
                reason: error.to_string(),
            });
        }
        let headers = header_map(&self.headers)?;
        let mut warnings: Vec<Event> = self
            .env_warnings
            .iter()
            .map(|message| Event::Warning {
                message: message.clone(),
            })
            .collect();
        if self.compression != Compression::None && self.protocol == Protocol::LightStep {
            warnings.push(Event::Warning {
                message: "compression applies to OTLP reports only: LightStep reports are \
                          sent uncompressed"
                    .into(),
            });
        }
        if let Some(error) = self.sampling_env_error {
            warnings.push(Event::Warning {
                message: format!(
                    "sampling from the environment ignored, every new trace is recorded: {error}"
                ),
            });
        }
        let component_name = match self.component_name {
            Some(name) => name,
            None => {
                let name = identity::executable_name().unwrap_or_default();
                warnings.push(Event::Warning {
                    message: format!(
                        "no component name set (Options::component_name or LS_SERVICE_NAME): \
                         reporting as {name:?}, the executable's name"
                    ),
                });
                name
            }
        };
        let (default_url, mut default_path) = match self.protocol {
            Protocol::LightStep => (DEFAULT_COLLECTOR_URL, Some(REPORT_PATH)),
            Protocol::Otlp => (DEFAULT_OTLP_URL, Some(TRACES_PATH)),
        };
        let urls = if self.collector_urls.is_empty() {
            vec![default_url.to_owned()]
        } else {
            if self.collector_urls_as_is {
                default_path = None;
            }
            self.collector_urls
        };
        let endpoints = urls
            .iter()
            .map(|u| parse_collector_url(u, &token, default_path))
            .collect::<Result<Vec<_>, _>>()?;
        let reporter_tags = identity::reporter_tags(&component_name, &self.tags, &token)?;
        let resource = identity::otlp_resource(&component_name, &self.tags, &token);
        let checks: [(&'static str, bool, &str); 6] = [
            (
                "max_buffered_spans",
                self.max_buffered_spans == 0,
                "must be at least 1",
            ),
            (
                "max_buffered_bytes",
                self.max_buffered_bytes == 0,
                "must be at least 1",
            ),
            (
                "reporting_period",
                self.reporting_period.is_zero(),
                "must be longer than zero",
            ),
            (
                "min_reporting_period",
                self.min_reporting_period > self.reporting_period,
                "must not be longer than the reporting period",
            ),
            (
                "report_timeout",
                self.report_timeout.is_zero(),
                "must be longer than zero",
            ),
            (
                "max_report_attempts",
                self.max_report_attempts == 0,
                "must be at least 1",
            ),
        ];
        if let Some((option, _, reason)) = checks.into_iter().find(|(_, bad, _)| *bad) {
            return Err(InitError::InvalidOption {
                option,
                reason: reason.into(),
            });
        }
        Ok((
            Config {
                access_token: token,
                component_name,
                // A disabled tracer reports nowhere, as its Debug output then says.
                endpoints: if self.disabled { Vec::new() } else { endpoints },
                reporter_tags,
                max_buffered_spans: self.max_buffered_spans,
                max_buffered_bytes: self.max_buffered_bytes,
                reporting_period: self.reporting_period,
                min_reporting_period: self.min_reporting_period,
                report_timeout: self.report_timeout,
                max_report_attempts: self.max_report_attempts,
                exit_close_timeout: self.exit_close_timeout,
                limits: Limits {
                    max_key_len: self.max_log_key_len,
                    max_value_len: self.max_log_value_len,
                    max_logs_per_span: self.max_logs_per_span,
                    drop_logs: self.drop_span_logs,
                },
                span_caps: self.span_caps,
                event_handler: self.event_handler,
                propagators: self.propagators,
                sampling: self.sampling,
                protocol: self.protocol,
                headers,
                compression: self.compression,
                resource,
                disabled: self.disabled,
                max_report_bytes: self.max_report_bytes,
            },
            warnings,
        ))
    }
}

/// Checked options, as the reporter uses them.
pub(crate) struct Config {
    pub(crate) access_token: String,
    pub(crate) component_name: String,
    pub(crate) endpoints: Vec<Url>,
    pub(crate) reporter_tags: Vec<KeyValue>,
    pub(crate) max_buffered_spans: usize,
    pub(crate) max_buffered_bytes: u64,
    pub(crate) reporting_period: Duration,
    pub(crate) min_reporting_period: Duration,
    pub(crate) report_timeout: Duration,
    pub(crate) max_report_attempts: u32,
    pub(crate) exit_close_timeout: Duration,
    pub(crate) limits: Limits,
    pub(crate) span_caps: SpanCaps,
    pub(crate) event_handler: Option<EventHandler>,
    pub(crate) propagators: Option<PropagatorStack>,
    pub(crate) sampling: Option<Sampling>,
    pub(crate) protocol: Protocol,
    /// Extra headers, their values marked sensitive (hidden from `Debug`).
    pub(crate) headers: HeaderMap,
    pub(crate) compression: Compression,
    /// The OTLP resource: the service and the reporter tags.
    pub(crate) resource: otlp::Resource,
    pub(crate) disabled: bool,
    pub(crate) max_report_bytes: usize,
}

/// The configured headers, checked; values are marked sensitive. Errors name the header,
/// never its value.
fn header_map(headers: &[(String, String)]) -> Result<HeaderMap, InitError> {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        let invalid = |reason: &str| InitError::InvalidOption {
            option: "header",
            reason: format!("{:?}: {reason}", name.trim()),
        };
        let name = HeaderName::from_bytes(name.trim().as_bytes())
            .map_err(|_| invalid("not a valid header name"))?;
        let mut value = HeaderValue::from_str(value.trim())
            .map_err(|_| invalid("its value contains characters a header cannot carry"))?;
        value.set_sensitive(true);
        map.insert(name, value);
    }
    Ok(map)
}

/// Replaces every occurrence of the token in text about to be shown.
pub(crate) fn redact(text: &str, token: &str) -> String {
    if token.is_empty() {
        text.to_owned()
    } else {
        text.replace(token, "<redacted>")
    }
}

/// Parses a collector URL: `http` or `https`, a host, no credentials; an empty path becomes
/// the protocol's `default_path`, when there is one.
fn parse_collector_url(
    raw: &str,
    token: &str,
    default_path: Option<&str>,
) -> Result<Url, InitError> {
    let invalid = |reason: &str| InitError::InvalidCollectorUrl {
        url: redact(raw, token),
        reason: reason.to_owned(),
    };
    let mut url = Url::parse(raw.trim()).map_err(|e| invalid(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid("the scheme must be http or https"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(
            "credentials do not belong in the URL: the access token is sent in a header",
        ));
    }
    match default_path {
        Some(path) if url.path().is_empty() || url.path() == "/" => url.set_path(path),
        _ => {}
    }
    Ok(url)
}

/// Why `init` refused to start a tracer. Never shows the access token.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum InitError {
    /// No access token was given (`Options::new("")`, or `LS_ACCESS_TOKEN` unset).
    MissingAccessToken,
    /// The component name is empty.
    EmptyComponentName,
    /// A collector URL cannot be used.
    InvalidCollectorUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A reporter tag uses a key that the tracer reserves.
    ReservedTag {
        /// The key.
        key: String,
    },
    /// A setting is out of range.
    InvalidOption {
        /// The setting's name (the `Options` method).
        option: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A tracer (or another recorder) is already installed in this process; it keeps working.
    AlreadyInitialized,
    /// The reporter could not start (its thread, runtime or HTTP client).
    Start(String),
}

impl fmt::Display for InitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InitError::MissingAccessToken => {
                f.write_str("no access token: pass one to Options::new or set LS_ACCESS_TOKEN")
            }
            InitError::EmptyComponentName => f.write_str(
                "the component name is empty: set Options::component_name or LS_SERVICE_NAME",
            ),
            InitError::InvalidCollectorUrl { url, reason } => {
                write!(f, "invalid collector URL {url:?}: {reason}")
            }
            InitError::ReservedTag { key } => {
                write!(f, "the reporter tag {key:?} is reserved for the tracer")
            }
            InitError::InvalidOption { option, reason } => {
                write!(f, "invalid option {option}: {reason}")
            }
            InitError::AlreadyInitialized => f.write_str(
                "lstrace is already initialised in this process (the first tracer keeps running)",
            ),
            InitError::Start(reason) => write!(f, "the lstrace reporter could not start: {reason}"),
        }
    }
}

impl std::error::Error for InitError {}
