//! What `init` takes: the access token and every reporter setting, with the Go tracer's
//! defaults. [`config`](super::config) checks them into the reporter's configuration.

use super::config::redact;
use super::events::{Event, EventHandler};
use crate::propagation::PropagatorStack;
use crate::recorder;
use crate::sampling::{Sampling, SamplingError};
use crate::tag::{SpanStr, Tag, TagValue};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// Where reports go unless told otherwise.
pub const DEFAULT_COLLECTOR_URL: &str = "https://collector.lightstep.com:443";

/// The path of the HTTP report endpoint on a collector or satellite.
pub const REPORT_PATH: &str = "/api/v2/reports";

/// The path OTLP/HTTP trace exports are posted to.
pub const TRACES_PATH: &str = "/v1/traces";

/// The largest report body, in bytes. The LightStep protocol asks for serialized reports
/// under 4 MB (4,000,000 bytes, which is also under 4 MiB): the reporter splits its reports
/// (and OTLP exports) to stay within it, and the local satellite answers 413 to a bigger
/// LightStep report (OTLP allows bigger exports: see `satellite::MAX_DECOMPRESSED_BYTES`).
pub const MAX_REPORT_BYTES: usize = 4_000_000;

/// The default of [`Options::max_buffered_spans`].
pub const DEFAULT_MAX_BUFFERED_SPANS: usize = 100_000;

/// The default of [`Options::max_buffered_bytes`].
pub const DEFAULT_MAX_BUFFERED_BYTES: u64 = 64 * 1024 * 1024;

/// The default of [`Options::report_timeout`].
pub const DEFAULT_REPORT_TIMEOUT: Duration = Duration::from_secs(5);

/// The default of [`Options::exit_close_timeout`].
pub const DEFAULT_EXIT_CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// Where OTLP reports go unless told otherwise: an OpenTelemetry Collector on this host, at
/// the OTLP/HTTP port ([`TRACES_PATH`] is appended).
pub const DEFAULT_OTLP_URL: &str = "http://localhost:4318";

/// The wire protocol reports are sent in (and, in the local satellite, the one a span came in).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Protocol {
    /// LightStep's `POST /api/v2/reports` (a binary `ReportRequest`): satellites and the
    /// LightStep collector.
    #[default]
    LightStep,
    /// OTLP/HTTP with protobuf bodies (`POST /v1/traces`): the OpenTelemetry Collector,
    /// ServiceNow Cloud Observability, Jaeger, Grafana Tempo and every other OTLP backend.
    Otlp,
}

/// How OTLP report bodies are compressed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Compression {
    /// Sent as they are.
    #[default]
    None,
    /// `Content-Encoding: gzip` (every OTLP server accepts it).
    Gzip,
}

/// Tracer settings. Start from [`Options::new`] (or [`Options::from_env`]) and change what
/// you need; most settings default like the LightStep Go tracer's, the buffer and the report
/// timeout are sized for production loads (see [`Options::new`]).
///
/// ```
/// use std::time::Duration;
/// let options = lstrace_core::Options::new("my-access-token")
///     .component_name("checkout")
///     .collector_url("http://localhost:8360")
///     .reporter_tag("deployment", "canary")
///     .reporting_period(Duration::from_secs(1));
/// // The token never shows in Debug output.
/// assert!(!format!("{options:?}").contains("my-access-token"));
/// ```
#[derive(Clone)]
pub struct Options {
    pub(crate) access_token: String,
    pub(crate) component_name: Option<String>,
    pub(crate) collector_urls: Vec<String>,
    /// The collector URLs are full URLs, used as they are: no default path for an empty
    /// one (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`).
    pub(crate) collector_urls_as_is: bool,
    pub(crate) tags: Vec<Tag>,
    pub(crate) max_buffered_spans: usize,
    pub(crate) max_buffered_bytes: u64,
    pub(crate) reporting_period: Duration,
    pub(crate) min_reporting_period: Duration,
    pub(crate) report_timeout: Duration,
    pub(crate) max_report_attempts: u32,
    pub(crate) exit_close_timeout: Duration,
    pub(crate) max_log_key_len: usize,
    pub(crate) max_log_value_len: usize,
    pub(crate) max_logs_per_span: usize,
    pub(crate) span_caps: SpanCaps,
    pub(crate) drop_span_logs: bool,
    pub(crate) event_handler: Option<EventHandler>,
    pub(crate) propagators: Option<PropagatorStack>,
    pub(crate) sampling: Option<Sampling>,
    /// A sampling setting given in code that cannot be used: `init` refuses it.
    pub(crate) sampling_error: Option<SamplingError>,
    /// A sampling setting from the environment that cannot be used: `init` warns and keeps
    /// the default policy.
    pub(crate) sampling_env_error: Option<SamplingError>,
    pub(crate) protocol: Protocol,
    /// Extra request headers; their values are secrets, like the token.
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) compression: Compression,
    pub(crate) disabled: bool,
    /// What `from_env` could not use, told as warnings at `init`.
    pub(crate) env_warnings: Vec<String>,
    /// Not a public setting: lets unit tests split reports without megabytes of spans.
    pub(crate) max_report_bytes: usize,
}

impl Options {
    /// Options with the given access token and every other setting at its default:
    ///
    /// | setting | default |
    /// |---|---|
    /// | component name | the executable's file name, with an [`Event::Warning`] (printed to stderr when no event handler is set) |
    /// | collector | [`DEFAULT_COLLECTOR_URL`] |
    /// | max buffered spans | 100,000 |
    /// | max buffered bytes | 64 MiB |
    /// | reporting period | 2.5 s |
    /// | min reporting period (first backoff) | 100 ms |
    /// | report timeout | 5 s |
    /// | report attempts | 5 |
    /// | exit close timeout | 1 s |
    /// | max log key / value length | 256 / 1024 bytes |
    /// | max logs per span | 500 |
    /// | max tags per span | 1024 |
    /// | max baggage items | 180 |
    /// | max operation name length | 1024 bytes |
    /// | drop span logs | false |
    /// | sampling | parent-based, every new trace recorded |
    ///
    /// The Go tracer holds 1000 spans, waits 30 s for an answer and 500 ms before a report
    /// after a failure: a service making a few thousand spans a second then drops most of
    /// them, and a hung satellite holds a report for half a minute. Here a report leaves as
    /// soon as an eighth of the buffer is full (several may be in flight), the buffer
    /// absorbs two seconds of 50,000 spans a second, a satellite that has not answered
    /// within 5 s (it normally answers within milliseconds) is taken out of rotation while
    /// the report goes elsewhere, and a failed report is retried after 100, 200, 400 and
    /// 800 ms: at 50,000 spans a second, with one satellite, an outage of about 1.5 s or
    /// answers that take a second lose nothing.
    ///
    /// Memory, by default: spans held by the reporter are bounded by 100,000 spans and by
    /// 64 MiB of encoded spans, whichever comes first (a typical span encodes to about
    /// 120 bytes: 100,000 of them hold about 13 MB; spans of 670 bytes or more reach the
    /// 64 MiB bound first). The buffers' growth slack can at worst double that, and up to
    /// four spare report buffers of at most 8 MB each are kept while spans arrive fast: at
    /// worst about 160 MB. Each thread's ring of finished spans adds at most 2 MiB.
    #[must_use]
    pub fn new(access_token: impl Into<String>) -> Self {
        Options {
            access_token: access_token.into(),
            component_name: None,
            collector_urls: Vec::new(),
            collector_urls_as_is: false,
            tags: Vec::new(),
            max_buffered_spans: DEFAULT_MAX_BUFFERED_SPANS,
            max_buffered_bytes: DEFAULT_MAX_BUFFERED_BYTES,
            reporting_period: Duration::from_millis(2500),
            min_reporting_period: Duration::from_millis(100),
            report_timeout: DEFAULT_REPORT_TIMEOUT,
            max_report_attempts: 5,
            exit_close_timeout: DEFAULT_EXIT_CLOSE_TIMEOUT,
            max_log_key_len: 256,
            max_log_value_len: 1024,
            max_logs_per_span: recorder::DEFAULT_MAX_LOGS_PER_SPAN,
            span_caps: SpanCaps::DEFAULT,
            drop_span_logs: false,
            event_handler: None,
            propagators: None,
            sampling: None,
            sampling_error: None,
            sampling_env_error: None,
            protocol: Protocol::LightStep,
            headers: Vec::new(),
            compression: Compression::None,
            disabled: false,
            env_warnings: Vec::new(),
            max_report_bytes: MAX_REPORT_BYTES,
        }
    }

    /// Options from the environment: `LS_ACCESS_TOKEN` (the token), `LS_SERVICE_NAME` (the
    /// component name) and `LS_COLLECTOR_URL` (one URL, or several separated by commas).
    /// Unset variables leave the defaults; a missing token is reported by `init`. Without a
    /// component name (from here or [`Options::component_name`]), the executable's name is
    /// reported, and `init` says so in an [`Event::Warning`].
    ///
    /// Sampling: `LS_SAMPLING_RATIO` (a parent-based [ratio](crate::sampling::TraceIdRatio)
    /// between 0 and 1), `LS_SAMPLING_MAX_TRACES_PER_SECOND` (a
    /// [rate limit](crate::sampling::RateLimited) on top), or OpenTelemetry's
    /// `OTEL_TRACES_SAMPLER` (`always_on`, `always_off`, `traceidratio`,
    /// `parentbased_always_on`, `parentbased_always_off`, `parentbased_traceidratio`) with
    /// `OTEL_TRACES_SAMPLER_ARG` (the ratio). The `LS_` variables win. A value that cannot be
    /// used is reported by `init` as a warning event, and the default policy is kept.
    ///
    /// With `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (a full URL, used as it is) or
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` (a base URL, to which `/v1/traces` is appended) set,
    /// reports go over OTLP to that endpoint (the token, if any, in the
    /// `lightstep-access-token` header), and the OpenTelemetry variables count:
    ///
    /// | variable | effect |
    /// |---|---|
    /// | `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_EXPORTER_OTLP_TRACES_HEADERS` | `key=value,...` (values URL-encoded): [`Options::header`] |
    /// | `OTEL_EXPORTER_OTLP_TIMEOUT`, `OTEL_EXPORTER_OTLP_TRACES_TIMEOUT` | milliseconds: [`Options::report_timeout`] |
    /// | `OTEL_EXPORTER_OTLP_COMPRESSION`, `OTEL_EXPORTER_OTLP_TRACES_COMPRESSION` | `gzip` or `none`: [`Options::compression`] |
    ///
    /// Whatever the protocol, `OTEL_SERVICE_NAME` names the service (before `LS_SERVICE_NAME`
    /// and a `service.name` in `OTEL_RESOURCE_ATTRIBUTES`), `OTEL_RESOURCE_ATTRIBUTES`
    /// (`key=value,...`) adds reporter tags (resource attributes), and `OTEL_SDK_DISABLED=true`
    /// makes `init` start a tracer that records and sends nothing ([`Options::disabled`]).
    ///
    /// A value that cannot be used is left out, and `init` tells it in an [`Event::Warning`]
    /// that names the variable and the key (header values, secrets, never show): an entry
    /// of a `key=value` list that is not one, or whose value is not URL-encoded UTF-8; a
    /// header name that is not a valid HTTP header name, or a header value (decoded) that a
    /// header cannot carry (control characters); a resource attribute `lightstep.guid`
    /// (reserved) or an empty `service.name` or `lightstep.component_name`; a timeout,
    /// compression or `OTEL_SDK_DISABLED` value that is not one of those listed; a sampling
    /// setting (the default policy is kept).
    ///
    /// What cannot be left out without sending spans elsewhere is an error from `init`
    /// (unless `OTEL_SDK_DISABLED=true`): an endpoint (`LS_COLLECTOR_URL`,
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) that is not an
    /// `http` or `https` URL with a host and no credentials
    /// ([`InitError::InvalidCollectorUrl`](super::InitError::InvalidCollectorUrl)), an access
    /// token a header cannot carry, and a `LS_SERVICE_NAME` that is set but blank. Settings
    /// made in code are checked by `init` as always: [`Options::header`] with a bad name or
    /// value is an error.
    #[must_use]
    pub fn from_env() -> Self {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// [`Options::from_env`] with the variables looked up by `var`.
    pub(crate) fn from_vars(var: impl Fn(&str) -> Option<String>) -> Self {
        let mut options = Options::new(var("LS_ACCESS_TOKEN").unwrap_or_default());
        if let Some(name) = var("LS_SERVICE_NAME") {
            options = options.component_name(name);
        }
        if let Some(urls) = var("LS_COLLECTOR_URL") {
            options = options.collector_urls(
                urls.split(',')
                    .map(str::trim)
                    .filter(|u| !u.is_empty())
                    .map(str::to_owned),
            );
        }
        match Sampling::from_vars(&var) {
            Ok(sampling) => options.sampling = sampling,
            Err(error) => options.sampling_env_error = Some(error),
        }
        super::env::read_otel(options, var)
    }

    /// The access token, replacing the one given to [`Options::new`] or read from
    /// `LS_ACCESS_TOKEN` by [`Options::from_env`]: `Options::from_env().access_token(token)`
    /// keeps every other setting from the environment.
    ///
    /// ```
    /// let options = lstrace_core::Options::from_env().access_token("test-token");
    /// // Like every way in, it never shows in Debug output.
    /// assert!(!format!("{options:?}").contains("test-token"));
    /// ```
    #[must_use]
    pub fn access_token(mut self, token: impl Into<String>) -> Self {
        self.access_token = token.into();
        self
    }

    /// The service name, reported as `lightstep.component_name`. Unset (and without
    /// `LS_SERVICE_NAME` or `OTEL_SERVICE_NAME`), the executable's name is reported, and `init`
    /// says so in an [`Event::Warning`].
    #[must_use]
    pub fn component_name(mut self, name: impl Into<String>) -> Self {
        self.component_name = Some(name.into());
        self
    }

    /// The collector or satellite to report to, such as `https://collector.lightstep.com:443`
    /// or `http://localhost:8360` (`http://` is plaintext). A URL without a path reports to
    /// [`REPORT_PATH`]. Replaces earlier URLs.
    #[must_use]
    pub fn collector_url(self, url: impl Into<String>) -> Self {
        self.collector_urls([url.into()])
    }

    /// Several satellites: reports are spread over them in turn, and a report that fails on
    /// one is retried on another. Replaces earlier URLs.
    #[must_use]
    pub fn collector_urls(mut self, urls: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.collector_urls = urls.into_iter().map(Into::into).collect();
        self.collector_urls_as_is = false;
        self
    }

    /// A tag of the reporter, not of any span: every report carries it (an OTLP export as a
    /// resource attribute), such as a deployment or a version. The `lightstep.` prefix is the
    /// tracer's: `lightstep.guid` is refused, other `lightstep.` tags replace the tracer's own
    /// value (as in the Go tracer).
    #[must_use]
    pub fn reporter_tag(mut self, key: impl Into<SpanStr>, value: impl Into<TagValue>) -> Self {
        let tag = Tag::new(key, value);
        self.tags.retain(|t| t.key != tag.key);
        self.tags.push(tag);
        self
    }

    /// The most finished spans the reporter holds (buffered, in a report being sent, or
    /// waiting to be retried). Beyond it the newest span is dropped and counted.
    #[must_use]
    pub fn max_buffered_spans(mut self, max: usize) -> Self {
        self.max_buffered_spans = max;
        self
    }

    /// The most bytes of encoded spans the reporter holds, as [`Options::max_buffered_spans`]
    /// counts spans: whichever bound is reached first drops the newest span.
    #[must_use]
    pub fn max_buffered_bytes(mut self, max: u64) -> Self {
        self.max_buffered_bytes = max;
        self
    }

    /// How often buffered spans are reported when they do not fill an eighth of the
    /// buffer sooner.
    #[must_use]
    pub fn reporting_period(mut self, period: Duration) -> Self {
        self.reporting_period = period;
        self
    }

    /// The first wait before a collector that failed is tried again; the wait doubles with
    /// each failure, up to the reporting period.
    #[must_use]
    pub fn min_reporting_period(mut self, period: Duration) -> Self {
        self.min_reporting_period = period;
        self
    }

    /// How long one report may take (connecting, sending, reading the answer). A report that
    /// times out is tried again (elsewhere, when there are several collectors) and its
    /// collector is left alone for a while. With several collectors, a report unanswered
    /// for a fifth of this (or for half the time a waiting flush was given) is also sent to
    /// another one: the first to accept it counts, and the slow one is left alone for a
    /// while. If the slow one ingested it anyway, its spans arrive twice.
    #[must_use]
    pub fn report_timeout(mut self, timeout: Duration) -> Self {
        self.report_timeout = timeout;
        self
    }

    /// How many times a report is tried before its spans are dropped and counted (at least
    /// 1). A failed report moves on to another satellite when there are several; a
    /// satellite that failed is tried again after a backoff from the min reporting period,
    /// doubling up to the reporting period.
    #[must_use]
    pub fn max_report_attempts(mut self, attempts: u32) -> Self {
        self.max_report_attempts = attempts;
        self
    }

    /// How long the process's tracer may take to deliver its last spans when the process
    /// ends without closing it (`main` returns, `std::process::exit`, a panic in `main`):
    /// what is still unsent then is counted on stderr. Zero sends nothing more and only
    /// counts. The process waits up to this long as it exits, so keep it short.
    ///
    /// Platforms: on Unix the tracer closes from a C `atexit` hook, which runs while the
    /// reporter thread is still alive. Elsewhere (Windows ends every other thread before
    /// its exit hooks run) nothing is flushed at exit and nothing is said: keep a
    /// [`ShutdownGuard`](super::ShutdownGuard), which works on every platform, or call
    /// `close`. A process killed by a signal or aborted runs no hook anywhere.
    #[must_use]
    pub fn exit_close_timeout(mut self, timeout: Duration) -> Self {
        self.exit_close_timeout = timeout;
        self
    }

    /// The longest tag or log key, in bytes; longer keys are truncated (on a character
    /// boundary).
    #[must_use]
    pub fn max_log_key_len(mut self, max: usize) -> Self {
        self.max_log_key_len = max;
        self
    }

    /// The longest string tag or log value, in bytes; longer values are truncated (on a
    /// character boundary).
    #[must_use]
    pub fn max_log_value_len(mut self, max: usize) -> Self {
        self.max_log_value_len = max;
        self
    }

    /// The most logs a span keeps; later ones are dropped and counted (`logs.dropped`).
    #[must_use]
    pub fn max_logs_per_span(mut self, max: usize) -> Self {
        self.max_logs_per_span = max;
        self
    }

    /// The most tags a span keeps; tags with new keys after that are dropped and counted
    /// (`tags.dropped`, and [`SpanRecord::dropped_tags`](crate::SpanRecord::dropped_tags)).
    /// A tag whose key the span has replaces its value.
    #[must_use]
    pub fn max_tags_per_span(mut self, max: usize) -> Self {
        self.span_caps.max_tags = max;
        self
    }

    /// The most baggage items a span context carries; items with new keys after that are
    /// dropped and counted on the context
    /// ([`SpanContext::dropped_baggage_items`](crate::SpanContext::dropped_baggage_items))
    /// and by the tracer (`baggage.dropped`, [`Stats::baggage_items_dropped`](super::Stats)).
    #[must_use]
    pub fn max_baggage_items(mut self, max: usize) -> Self {
        self.span_caps.max_baggage_items = max;
        self
    }

    /// The longest operation name, in bytes; longer names are cut on a character boundary
    /// and counted (`operation_names.truncated`,
    /// [`Stats::operation_names_truncated`](super::Stats)).
    #[must_use]
    pub fn max_operation_name_len(mut self, max: usize) -> Self {
        self.span_caps.max_name_len = max;
        self
    }

    /// Reports spans without their logs.
    #[must_use]
    pub fn drop_span_logs(mut self, drop: bool) -> Self {
        self.drop_span_logs = drop;
        self
    }

    /// Sends this tracer's events to `handler` instead of the process-wide handler set with
    /// [`set_event_handler`](super::set_event_handler).
    #[must_use]
    pub fn event_handler(mut self, handler: impl Fn(&Event) + Send + Sync + 'static) -> Self {
        self.event_handler = Some(Arc::new(handler));
        self
    }

    /// The propagation formats `init` makes the process's default (see
    /// [`propagation::set_global_stack`](crate::propagation::set_global_stack)). Unset, the
    /// default stays: LightStep, W3C trace context, B3 multi-header.
    #[must_use]
    pub fn propagators(mut self, stack: PropagatorStack) -> Self {
        self.propagators = Some(stack);
        self
    }

    /// The sampling policy (default: parent-based, every new trace recorded); see
    /// [`sampling`](crate::sampling).
    #[must_use]
    pub fn sampling(mut self, policy: Sampling) -> Self {
        self.sampling = Some(policy);
        self.sampling_error = None;
        self
    }

    /// Records the fraction `ratio` (0 to 1) of new traces, parent-based:
    /// [`Sampling::ratio`]. `init` refuses a ratio out of range.
    #[must_use]
    pub fn sampling_ratio(mut self, ratio: f64) -> Self {
        match Sampling::ratio(ratio) {
            Ok(policy) => return self.sampling(policy),
            Err(error) => self.sampling_error = Some(error),
        }
        self
    }

    /// The wire protocol: LightStep's (the default) or OTLP/HTTP. With OTLP, the access
    /// token is optional (sent, when there is one, in the `lightstep-access-token` header),
    /// collector URLs without a path report to `/v1/traces`, and the default collector is
    /// [`DEFAULT_OTLP_URL`].
    ///
    /// ```
    /// use lstrace_core::reporter::Protocol;
    /// let options = lstrace_core::Options::new("")
    ///     .protocol(Protocol::Otlp)
    ///     .collector_url("http://otel-collector:4318")
    ///     .header("authorization", "Bearer s3cr3t");
    /// assert!(!format!("{options:?}").contains("s3cr3t"));
    /// ```
    #[must_use]
    pub fn protocol(mut self, protocol: Protocol) -> Self {
        self.protocol = protocol;
        self
    }

    /// A header sent with every report (replacing an earlier value of the same name), for
    /// backends that want `authorization: Bearer ...` or an API key header. Its value is a
    /// secret like the token: never shown.
    #[must_use]
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        let name = name.into();
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(&name));
        self.headers.push((name, value.into()));
        self
    }

    /// How OTLP report bodies are compressed (LightStep reports are not).
    #[must_use]
    pub fn compression(mut self, compression: Compression) -> Self {
        self.compression = compression;
        self
    }

    /// With `true`, `init` starts a tracer that records and sends nothing: every span is a
    /// no-op, as without a tracer, and [`Stats`](super::Stats) stay zero. As OpenTelemetry's
    /// disabled SDK, it is a no-op whatever the other settings say: `init` checks none of
    /// them (no token needed, and an unusable collector URL is no error), and tells only the
    /// warnings about the environment. `OTEL_SDK_DISABLED=true` sets it.
    #[must_use]
    pub fn disabled(mut self, disabled: bool) -> Self {
        self.disabled = disabled;
        self
    }
}

impl fmt::Debug for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Rendered whole, then redacted: a token pasted into a URL or a tag does not show either.
        let text = if f.alternate() {
            format!("{:#?}", ShowOptions(self))
        } else {
            format!("{:?}", ShowOptions(self))
        };
        f.write_str(&redact(&text, self.access_token.trim()))
    }
}

struct ShowOptions<'a>(&'a Options);

impl fmt::Debug for ShowOptions<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = self.0;
        f.debug_struct("Options")
            .field("access_token", &"<redacted>")
            .field("component_name", &o.component_name)
            .field("collector_urls", &o.collector_urls)
            .field("tags", &o.tags)
            .field("max_buffered_spans", &o.max_buffered_spans)
            .field("max_buffered_bytes", &o.max_buffered_bytes)
            .field("reporting_period", &o.reporting_period)
            .field("min_reporting_period", &o.min_reporting_period)
            .field("report_timeout", &o.report_timeout)
            .field("max_report_attempts", &o.max_report_attempts)
            .field("exit_close_timeout", &o.exit_close_timeout)
            .field("max_log_key_len", &o.max_log_key_len)
            .field("max_log_value_len", &o.max_log_value_len)
            .field("max_logs_per_span", &o.max_logs_per_span)
            .field("span_caps", &o.span_caps)
            .field("drop_span_logs", &o.drop_span_logs)
            .field("event_handler", &o.event_handler.is_some())
            .field("propagators", &o.propagators)
            .field("sampling", &o.sampling)
            .field("protocol", &o.protocol)
            .field(
                "headers",
                &o.headers
                    .iter()
                    .map(|(name, _)| (name.as_str(), "<redacted>"))
                    .collect::<Vec<_>>(),
            )
            .field("compression", &o.compression)
            .field("disabled", &o.disabled)
            .finish_non_exhaustive()
    }
}

/// The per-span caps that apply as spans are made (the recorder's, set by `init`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SpanCaps {
    pub(crate) max_tags: usize,
    pub(crate) max_baggage_items: usize,
    pub(crate) max_name_len: usize,
}

impl SpanCaps {
    const DEFAULT: SpanCaps = SpanCaps {
        max_tags: recorder::DEFAULT_MAX_TAGS_PER_SPAN,
        max_baggage_items: recorder::DEFAULT_MAX_BAGGAGE_ITEMS,
        max_name_len: recorder::DEFAULT_MAX_OPERATION_NAME_LEN,
    };

    /// Makes these the caps of every span from now on.
    pub(crate) fn apply(&self) {
        recorder::set_max_tags_per_span(self.max_tags);
        recorder::set_max_baggage_items(self.max_baggage_items);
        recorder::set_max_operation_name_len(self.max_name_len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::lightstep::key_value::Value;
    use crate::protocol::lightstep::KeyValue;
    use crate::reporter::config::InitError;
    use crate::reporter::identity;
    use reqwest::Url;
    use std::collections::HashMap;

    fn tag<'a>(tags: &'a [KeyValue], key: &str) -> Option<&'a Value> {
        tags.iter()
            .find(|t| t.key == key)
            .and_then(|t| t.value.as_ref())
    }

    #[test]
    fn defaults_follow_the_go_tracer_but_for_the_buffer_and_timeout() {
        let (config, warnings) = Options::new("t").validate().unwrap();
        assert_eq!(
            config.endpoints[0].as_str(),
            "https://collector.lightstep.com/api/v2/reports"
        );
        assert_eq!(config.endpoints[0].port_or_known_default(), Some(443));
        assert_eq!(config.max_buffered_spans, 100_000);
        assert_eq!(config.max_buffered_bytes, 64 << 20);
        assert_eq!(config.reporting_period, Duration::from_millis(2500));
        assert_eq!(config.min_reporting_period, Duration::from_millis(100));
        assert_eq!(config.max_report_attempts, 5);
        assert_eq!(config.report_timeout, Duration::from_secs(5));
        assert_eq!(config.exit_close_timeout, Duration::from_secs(1));
        assert_eq!(config.limits.max_key_len, 256);
        assert_eq!(config.limits.max_value_len, 1024);
        assert_eq!(config.limits.max_logs_per_span, 500);
        assert!(!config.limits.drop_logs);
        assert_eq!(
            config.span_caps,
            SpanCaps {
                max_tags: 1024,
                max_baggage_items: 180,
                max_name_len: 1024
            }
        );
        // The component name defaults to the executable's name, with a warning.
        let exe = identity::executable_name().unwrap();
        assert_eq!(config.component_name, exe);
        assert!(matches!(&warnings[..], [Event::Warning { message }] if message.contains(&exe)));
    }

    /// What `from_env`'s docs promise when `LS_SERVICE_NAME` is unset: the executable's name,
    /// and a warning event that says how to set one.
    #[test]
    fn from_env_without_a_service_name_warns_and_uses_the_executable_name() {
        let options = Options::from_vars(|name| (name == "LS_ACCESS_TOKEN").then(|| "t".into()));
        let (config, warnings) = options.validate().unwrap();
        let exe = identity::executable_name().unwrap();
        assert_eq!(config.component_name, exe);
        assert!(
            matches!(&warnings[..], [Event::Warning { message }]
                if message.contains(&exe) && message.contains("LS_SERVICE_NAME")),
            "{warnings:?}"
        );
        let named = Options::from_vars(|name| match name {
            "LS_ACCESS_TOKEN" => Some("t".into()),
            "LS_SERVICE_NAME" => Some("svc".into()),
            _ => None,
        });
        let (config, warnings) = named.validate().unwrap();
        assert_eq!(config.component_name, "svc");
        assert!(warnings.is_empty(), "{warnings:?}");
    }

    #[test]
    fn builder_sets_every_option() {
        let (config, warnings) = Options::new("t")
            .component_name("svc")
            .collector_urls(["http://127.0.0.1:8360", "https://b.example:9000/custom"])
            .reporter_tag("deployment", "canary")
            .max_buffered_spans(7)
            .max_buffered_bytes(1000)
            .reporting_period(Duration::from_secs(5))
            .min_reporting_period(Duration::from_secs(1))
            .report_timeout(Duration::from_secs(2))
            .max_report_attempts(5)
            .exit_close_timeout(Duration::from_secs(3))
            .max_log_key_len(10)
            .max_log_value_len(20)
            .max_logs_per_span(3)
            .max_tags_per_span(4)
            .max_baggage_items(5)
            .max_operation_name_len(6)
            .drop_span_logs(true)
            .validate()
            .unwrap();
        assert!(warnings.is_empty());
        assert_eq!(config.component_name, "svc");
        let urls: Vec<&str> = config.endpoints.iter().map(Url::as_str).collect();
        assert_eq!(
            urls,
            [
                "http://127.0.0.1:8360/api/v2/reports",
                "https://b.example:9000/custom"
            ]
        );
        assert_eq!(
            tag(&config.reporter_tags, "deployment"),
            Some(&Value::StringValue("canary".into()))
        );
        assert_eq!(config.max_buffered_spans, 7);
        assert_eq!(config.max_buffered_bytes, 1000);
        assert_eq!(config.reporting_period, Duration::from_secs(5));
        assert_eq!(config.min_reporting_period, Duration::from_secs(1));
        assert_eq!(config.report_timeout, Duration::from_secs(2));
        assert_eq!(config.max_report_attempts, 5);
        assert_eq!(config.exit_close_timeout, Duration::from_secs(3));
        assert_eq!(
            (
                config.limits.max_key_len,
                config.limits.max_value_len,
                config.limits.max_logs_per_span,
                config.limits.drop_logs
            ),
            (10, 20, 3, true)
        );
        assert_eq!(
            config.span_caps,
            SpanCaps {
                max_tags: 4,
                max_baggage_items: 5,
                max_name_len: 6
            }
        );
    }

    #[test]
    fn reads_the_environment() {
        let vars: HashMap<&str, &str> = [
            ("LS_ACCESS_TOKEN", "env-token"),
            ("LS_SERVICE_NAME", "env-svc"),
            (
                "LS_COLLECTOR_URL",
                "http://127.0.0.1:1, http://127.0.0.1:2,",
            ),
        ]
        .into();
        let options = Options::from_vars(|k| vars.get(k).map(|v| (*v).to_owned()));
        let (config, _) = options.validate().unwrap();
        assert_eq!(config.access_token, "env-token");
        assert_eq!(config.component_name, "env-svc");
        assert_eq!(config.endpoints.len(), 2);
        assert_eq!(config.endpoints[1].port(), Some(2));

        let empty = Options::from_vars(|_| None);
        assert_eq!(empty.validate().err(), Some(InitError::MissingAccessToken));

        // A token set after reading the environment replaces the environment's, and keeps
        // the rest of it; with LS_ACCESS_TOKEN unset, it is the only token.
        let options = Options::from_vars(|k| vars.get(k).map(|v| (*v).to_owned()));
        let (config, _) = options.access_token("set-token").validate().unwrap();
        assert_eq!(config.access_token, "set-token");
        assert_eq!(config.component_name, "env-svc");
        assert_eq!(config.endpoints.len(), 2);
        let without_token = Options::from_vars(|k| {
            (k != "LS_ACCESS_TOKEN")
                .then(|| vars.get(k).map(|v| (*v).to_owned()))
                .flatten()
        });
        let (config, _) = without_token.access_token("set-token").validate().unwrap();
        assert_eq!(config.access_token, "set-token");
    }

    #[test]
    fn sampling_settings_are_checked() {
        let base = || Options::new("secret-token").component_name("svc");
        let (config, warnings) = base().sampling_ratio(0.25).validate().unwrap();
        assert!(config.sampling.is_some() && warnings.is_empty());
        match base().sampling_ratio(1.5).validate().err() {
            Some(InitError::InvalidOption { option, reason }) => {
                assert_eq!(option, "sampling_ratio");
                assert!(reason.contains("between 0 and 1"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        // A later valid policy replaces a bad ratio.
        assert!(base()
            .sampling_ratio(-1.0)
            .sampling(Sampling::default())
            .validate()
            .is_ok());
        // A bad value in the environment: a warning, and the default policy.
        let vars: HashMap<&str, &str> = [
            ("LS_ACCESS_TOKEN", "env-token"),
            ("LS_SERVICE_NAME", "env-svc"),
            ("OTEL_TRACES_SAMPLER", "xray"),
        ]
        .into();
        let options = Options::from_vars(|k| vars.get(k).map(|v| (*v).to_owned()));
        let (config, warnings) = options.validate().unwrap();
        assert!(config.sampling.is_none());
        let [Event::Warning { message }] = warnings.as_slice() else {
            panic!("{warnings:?}");
        };
        assert!(
            message.contains("OTEL_TRACES_SAMPLER=\"xray\""),
            "{message}"
        );
    }

    #[test]
    fn bad_input_is_a_clear_error() {
        let base = || Options::new("secret-token").component_name("svc");
        assert_eq!(
            Options::new("  ").validate().err(),
            Some(InitError::MissingAccessToken)
        );
        assert_eq!(
            base().component_name("").validate().err(),
            Some(InitError::EmptyComponentName)
        );
        for url in [
            "not a url",
            "ftp://host",
            "localhost:8360",
            "http://user:pw@host",
        ] {
            let err = base().collector_url(url).validate().err().unwrap();
            assert!(
                matches!(&err, InitError::InvalidCollectorUrl { .. }),
                "{url}: {err}"
            );
        }
        assert_eq!(
            base().reporter_tag("lightstep.guid", "1").validate().err(),
            Some(InitError::ReservedTag {
                key: "lightstep.guid".into()
            })
        );
        for (options, name) in [
            (base().max_buffered_spans(0), "max_buffered_spans"),
            (base().max_buffered_bytes(0), "max_buffered_bytes"),
            (base().reporting_period(Duration::ZERO), "reporting_period"),
            (
                base().min_reporting_period(Duration::from_secs(10)),
                "min_reporting_period",
            ),
            (base().report_timeout(Duration::ZERO), "report_timeout"),
            (base().max_report_attempts(0), "max_report_attempts"),
        ] {
            match options.validate().err() {
                Some(InitError::InvalidOption { option, .. }) => assert_eq!(option, name),
                other => panic!("{name}: {other:?}"),
            }
        }
        let err = Options::new("bad\ntoken").validate().err().unwrap();
        assert!(!err.to_string().contains("bad\ntoken"));
    }

    #[test]
    fn the_token_never_shows() {
        let token = "tok-3f9a1c";
        let options = Options::new(token).collector_url(format!("http://{token}.invalid:1"));
        assert!(!format!("{options:?}").contains(token));
        // Even a URL that (wrongly) contains the token is redacted in the error.
        let err = Options::new(token)
            .collector_url(format!("nonsense {token}"))
            .validate()
            .err()
            .unwrap();
        assert!(!err.to_string().contains(token), "{err}");
        assert!(!format!("{err:?}").contains(token), "{err:?}");
    }
}
