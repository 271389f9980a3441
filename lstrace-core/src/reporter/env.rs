//! The OpenTelemetry environment variables `Options::from_env` honours (see there). Values
//! that cannot be used are left out and become warnings; header values never show in them.
//! An endpoint is the exception: it is checked by `init` with the collector URLs set in
//! code, as leaving it out would send spans to the default collector instead.

use super::identity::{COMPONENT_NAME, GUID};
use super::options::TRACES_PATH;
use super::options::{Compression, Options, Protocol};
use super::protocol::otlp::SERVICE_NAME;
use reqwest::header::{HeaderName, HeaderValue};
use std::time::Duration;

/// Applies the `OTEL_*` variables to options read from the `LS_*` ones.
pub(crate) fn read_otel(mut options: Options, var: impl Fn(&str) -> Option<String>) -> Options {
    // Set but empty counts as unset, as the OpenTelemetry SDKs read them.
    let var = |name: &str| var(name).filter(|v| !v.trim().is_empty());
    let mut warnings = Vec::new();
    // The signal's endpoint is a full URL, used as it is (a bare host posts to `/`); the
    // base endpoint gets the signal's path.
    let endpoint = match var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
        Some(full) => Some((full.trim().to_owned(), true)),
        None => var("OTEL_EXPORTER_OTLP_ENDPOINT").map(|base| {
            let base = base.trim().trim_end_matches('/').to_owned();
            (format!("{base}{TRACES_PATH}"), false)
        }),
    };
    if let Some((endpoint, as_is)) = endpoint {
        options = options.protocol(Protocol::Otlp).collector_url(endpoint);
        options.collector_urls_as_is = as_is;
        // The value and the name of the variable it came from, for warnings.
        let signal_or_all = |name: &str| {
            let signal = format!("OTEL_EXPORTER_OTLP_TRACES_{name}");
            let all = format!("OTEL_EXPORTER_OTLP_{name}");
            var(&signal)
                .map(|value| (value, signal))
                .or_else(|| var(&all).map(|value| (value, all)))
        };
        if let Some((headers, variable)) = signal_or_all("HEADERS") {
            for (name, value) in key_values(&headers, &variable, &mut warnings) {
                // Checked here, not by `init`: a header set in code that a request cannot
                // carry is an error, one from the environment is left out.
                if HeaderName::from_bytes(name.as_bytes()).is_err() {
                    warnings.push(format!(
                        "{variable}: {name:?} is not a valid header name: left out"
                    ));
                } else if HeaderValue::from_str(value.trim()).is_err() {
                    warnings.push(format!(
                        "{variable}: the value of {name:?} holds characters a header cannot \
                         carry (control characters): left out"
                    ));
                } else {
                    options = options.header(name, value);
                }
            }
        }
        if let Some((timeout, _)) = signal_or_all("TIMEOUT") {
            match timeout.trim().parse::<u64>() {
                Ok(ms) if ms > 0 => options = options.report_timeout(Duration::from_millis(ms)),
                _ => warnings.push(format!(
                    "OTEL_EXPORTER_OTLP_TIMEOUT={timeout:?} is not a number of milliseconds \
                     above zero: the report timeout stays {:?}",
                    options.report_timeout
                )),
            }
        }
        if let Some((compression, _)) = signal_or_all("COMPRESSION") {
            match compression.trim().to_ascii_lowercase().as_str() {
                "gzip" => options = options.compression(Compression::Gzip),
                "none" => options = options.compression(Compression::None),
                _ => warnings.push(format!(
                    "OTEL_EXPORTER_OTLP_COMPRESSION={compression:?} is neither gzip nor none: \
                     reports are not compressed"
                )),
            }
        }
    }
    let mut service_name = None;
    if let Some(attributes) = var("OTEL_RESOURCE_ATTRIBUTES") {
        let variable = "OTEL_RESOURCE_ATTRIBUTES";
        for (key, value) in key_values(&attributes, variable, &mut warnings) {
            // What `init` refuses in a reporter tag set in code is left out here.
            if key == GUID {
                warnings.push(format!(
                    "{variable}: {key:?} is reserved for the tracer: left out"
                ));
            } else if (key == SERVICE_NAME || key == COMPONENT_NAME) && value.trim().is_empty() {
                warnings.push(format!(
                    "{variable}: {key:?} is empty, and a service needs a name: left out"
                ));
            } else if key == SERVICE_NAME {
                service_name = Some(value);
            } else {
                options = options.reporter_tag(key, value);
            }
        }
    }
    if options.component_name.is_none() {
        options.component_name = service_name;
    }
    if let Some(name) = var("OTEL_SERVICE_NAME") {
        options = options.component_name(name.trim());
    }
    if let Some(disabled) = var("OTEL_SDK_DISABLED") {
        match disabled.trim().to_ascii_lowercase().as_str() {
            "true" => options = options.disabled(true),
            "false" => {}
            _ => warnings.push(format!(
                "OTEL_SDK_DISABLED={disabled:?} is neither true nor false: tracing stays on"
            )),
        }
    }
    options.env_warnings.extend(warnings);
    options
}

/// The pairs of a `key=value,...` list, values URL-decoded. Entries that are not pairs are
/// left out with a warning that names the variable and the entry's key, never a value.
fn key_values(list: &str, variable: &str, warnings: &mut Vec<String>) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    for (index, entry) in list.split(',').enumerate() {
        if entry.trim().is_empty() {
            continue;
        }
        let Some((key, value)) = entry.split_once('=') else {
            warnings.push(format!(
                "{variable}: entry {} is not key=value: left out",
                index + 1
            ));
            continue;
        };
        let key = key.trim();
        match (key.is_empty(), percent_decode(value.trim())) {
            (false, Some(value)) => pairs.push((key.to_owned(), value)),
            (true, _) => warnings.push(format!(
                "{variable}: entry {} has an empty key: left out",
                index + 1
            )),
            (false, None) => warnings.push(format!(
                "{variable}: the value of {key:?} is not valid URL-encoded UTF-8: left out"
            )),
        }
    }
    pairs
}

/// `%XX` escapes decoded; `None` for a broken escape or bytes that are not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let digit = |at: usize| char::from(*bytes.get(at)?).to_digit(16);
            // Two hex digits, as a byte: `from_str_radix` would also take a sign (`%+f`).
            let byte = digit(i + 1)? * 16 + digit(i + 2)?;
            out.push(u8::try_from(byte).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reporter::config::InitError;
    use crate::reporter::events::Event;
    use std::collections::HashMap;

    fn options(vars: &[(&str, &str)]) -> Options {
        let vars: HashMap<&str, &str> = vars.iter().copied().collect();
        Options::from_vars(|k| vars.get(k).map(|v| (*v).to_owned()))
    }

    fn warnings(events: &[Event]) -> Vec<&str> {
        events
            .iter()
            .map(|e| match e {
                Event::Warning { message } => message.as_str(),
                other => panic!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn an_otlp_endpoint_switches_to_otlp() {
        let (config, _) = options(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/")])
            .component_name("svc")
            .validate()
            .unwrap();
        assert_eq!(config.protocol, Protocol::Otlp);
        assert_eq!(
            config.endpoints[0].as_str(),
            "http://collector:4318/v1/traces"
        );
        // A base with a path keeps it.
        let (config, _) = options(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "https://in.example/otlp")])
            .validate()
            .unwrap();
        assert_eq!(
            config.endpoints[0].as_str(),
            "https://in.example/otlp/v1/traces"
        );
        // The traces endpoint is a full URL, and wins.
        let (config, _) = options(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:4318"),
            (
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "https://ingest.lightstep.com:443/traces/otlp/v0.9",
            ),
            ("LS_ACCESS_TOKEN", "tok"),
        ])
        .validate()
        .unwrap();
        assert_eq!(
            config.endpoints[0].as_str(),
            "https://ingest.lightstep.com/traces/otlp/v0.9"
        );
        assert_eq!(config.access_token, "tok");
        // Used as it is: no `/v1/traces` for a URL without a path.
        for (full, used) in [
            ("http://collector:4318", "http://collector:4318/"),
            ("http://collector:4318/", "http://collector:4318/"),
            (
                "http://collector:4318/custom",
                "http://collector:4318/custom",
            ),
        ] {
            let (config, _) = options(&[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", full)])
                .validate()
                .unwrap();
            assert_eq!(config.endpoints[0].as_str(), used, "{full}");
        }
        // A URL set in code afterwards is a collector URL again.
        let (config, _) = options(&[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://a:4318")])
            .collector_url("http://b:4318")
            .validate()
            .unwrap();
        assert_eq!(config.endpoints[0].as_str(), "http://b:4318/v1/traces");
        // Without either, LightStep stays the default, and needs its token.
        assert_eq!(
            options(&[("OTEL_EXPORTER_OTLP_HEADERS", "a=b")])
                .validate()
                .err(),
            Some(InitError::MissingAccessToken)
        );
        let (config, _) = options(&[("LS_ACCESS_TOKEN", "t")]).validate().unwrap();
        assert_eq!(config.protocol, Protocol::LightStep);
        assert!(config.headers.is_empty());
    }

    #[test]
    fn headers_timeout_and_compression() {
        let (config, warnings) = options(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            (
                "OTEL_EXPORTER_OTLP_HEADERS",
                "authorization=Bearer%20s3cr3t, x-api-key = k%3D1 ,,",
            ),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "2500"),
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"),
            ("OTEL_SERVICE_NAME", "svc"),
        ])
        .validate()
        .unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(config.headers["authorization"], "Bearer s3cr3t");
        assert!(config.headers["authorization"].is_sensitive());
        assert_eq!(config.headers["x-api-key"], "k=1");
        assert_eq!(config.report_timeout, Duration::from_millis(2500));
        assert_eq!(config.compression, Compression::Gzip);
        assert_eq!(config.component_name, "svc");
        // The traces-specific variables win.
        let (config, _) = options(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"),
            ("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "none"),
            ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "10"),
            ("OTEL_SERVICE_NAME", "svc"),
        ])
        .validate()
        .unwrap();
        assert_eq!(config.compression, Compression::None);
        assert_eq!(config.report_timeout, Duration::from_millis(10));
    }

    #[test]
    fn service_name_resource_attributes_and_disabled() {
        let (config, _) = options(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            (
                "OTEL_RESOURCE_ATTRIBUTES",
                "service.name=from-attributes,deployment.environment=prod,team=a%2Cb",
            ),
        ])
        .validate()
        .unwrap();
        assert_eq!(config.component_name, "from-attributes");
        let attribute = |key: &str| {
            config
                .resource
                .attributes
                .iter()
                .find(|kv| kv.key == key)
                .and_then(|kv| kv.value.clone())
        };
        let string = |s: &str| {
            Some(crate::protocol::otlp::AnyValue {
                value: Some(crate::protocol::otlp::any_value::Value::StringValue(
                    s.into(),
                )),
            })
        };
        assert_eq!(attribute("deployment.environment"), string("prod"));
        assert_eq!(attribute("team"), string("a,b"));
        assert_eq!(attribute("service.name"), string("from-attributes"));
        // LS_SERVICE_NAME wins over the attribute, OTEL_SERVICE_NAME over both.
        let named = |vars: &[(&str, &str)]| {
            let mut all = vec![("LS_ACCESS_TOKEN", "t")];
            all.extend_from_slice(vars);
            options(&all).validate().unwrap().0.component_name
        };
        let attributes = ("OTEL_RESOURCE_ATTRIBUTES", "service.name=a");
        assert_eq!(named(&[attributes, ("LS_SERVICE_NAME", "b")]), "b");
        assert_eq!(
            named(&[
                attributes,
                ("LS_SERVICE_NAME", "b"),
                ("OTEL_SERVICE_NAME", "c")
            ]),
            "c"
        );
        assert!(options(&[("OTEL_SDK_DISABLED", "TRUE")]).disabled);
        assert!(!options(&[("OTEL_SDK_DISABLED", "false")]).disabled);
        // Disabled needs no token.
        assert!(options(&[("OTEL_SDK_DISABLED", "true")]).validate().is_ok());
    }

    #[test]
    fn bad_values_are_warnings_that_hide_header_values() {
        let (config, events) = options(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            (
                "OTEL_EXPORTER_OTLP_HEADERS",
                "novalue-s3cr3t,=s3cr3t,bad=%zz-s3cr3t,bad2=%ff,ok=1",
            ),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "soon"),
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "zstd"),
            ("OTEL_SDK_DISABLED", "maybe"),
            ("OTEL_RESOURCE_ATTRIBUTES", "k"),
            ("OTEL_SERVICE_NAME", "svc"),
        ])
        .validate()
        .unwrap();
        let warnings = warnings(&events);
        assert_eq!(warnings.len(), 8, "{warnings:#?}");
        for warning in &warnings {
            assert!(!warning.contains("s3cr3t"), "{warning}");
        }
        assert!(warnings
            .iter()
            .any(|w| w.contains("OTEL_EXPORTER_OTLP_TIMEOUT")));
        assert!(warnings.iter().any(|w| w.contains("zstd")));
        assert!(warnings.iter().any(|w| w.contains("OTEL_SDK_DISABLED")));
        assert!(warnings
            .iter()
            .any(|w| w.contains("OTEL_RESOURCE_ATTRIBUTES")));
        assert_eq!(config.headers.len(), 1);
        assert_eq!(config.compression, Compression::None);
        assert_eq!(
            config.report_timeout,
            crate::reporter::options::DEFAULT_REPORT_TIMEOUT
        );
        assert!(!config.disabled);
        // An unusable endpoint is an error from init, as any collector URL.
        let err = options(&[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "collector:4318")])
            .validate()
            .err();
        assert!(
            matches!(err, Some(InitError::InvalidCollectorUrl { .. })),
            "{err:?}"
        );
        // A header value a request cannot carry: an error that names the header only.
        let err = Options::new("")
            .protocol(Protocol::Otlp)
            .header("x-key", "s3cr3t\nx")
            .validate()
            .err()
            .unwrap();
        assert!(err.to_string().contains("x-key"), "{err}");
        assert!(!format!("{err} {err:?}").contains("s3cr3t"));
    }

    /// What `init` refuses when set in code, from the environment: left out, with a warning
    /// that names the variable and the key, never the value; the rest is kept.
    #[test]
    fn unusable_headers_and_resource_keys_are_left_out_with_a_warning() {
        let (config, events) = options(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            (
                "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
                "x y=s3cr3t-1,k=s3cr3t%0A-2,café=1,v=%7Fs3cr3t-3,ok=1",
            ),
            (
                "OTEL_RESOURCE_ATTRIBUTES",
                "lightstep.guid=7,lightstep.component_name=,service.name= ,team=a",
            ),
            ("OTEL_SERVICE_NAME", "svc"),
        ])
        .validate()
        .unwrap();
        let warnings = warnings(&events);
        assert_eq!(warnings.len(), 7, "{warnings:#?}");
        for warning in &warnings {
            assert!(!warning.contains("s3cr3t"), "{warning}");
        }
        for (variable, key) in [
            ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "\"x y\""),
            ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "\"k\""),
            ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "\"café\""),
            ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "\"v\""),
            ("OTEL_RESOURCE_ATTRIBUTES", "\"lightstep.guid\""),
            ("OTEL_RESOURCE_ATTRIBUTES", "\"lightstep.component_name\""),
            ("OTEL_RESOURCE_ATTRIBUTES", "\"service.name\""),
        ] {
            assert!(
                warnings
                    .iter()
                    .any(|w| w.starts_with(variable) && w.contains(key)),
                "{variable} {key}: {warnings:#?}"
            );
        }
        let headers: Vec<&str> = config.headers.keys().map(|name| name.as_str()).collect();
        assert_eq!(headers, ["ok"]);
        let tag = |key: &str| config.reporter_tags.iter().find(|t| t.key == key).cloned();
        assert!(tag("team").is_some());
        assert!(tag("lightstep.guid").is_none());
        assert_eq!(config.component_name, "svc");
        assert!(config
            .resource
            .attributes
            .iter()
            .all(|kv| kv.key != "lightstep.guid"));

        // The same headers set in code are still errors.
        for (name, value) in [("x y", "1"), ("k", "s3cr3t\n-2")] {
            let err = Options::new("")
                .protocol(Protocol::Otlp)
                .header(name, value)
                .validate()
                .err();
            assert!(
                matches!(
                    err,
                    Some(InitError::InvalidOption {
                        option: "header",
                        ..
                    })
                ),
                "{err:?}"
            );
        }
    }

    /// `OTEL_SDK_DISABLED=true` is a no-op SDK: what would stop `init` otherwise does not.
    #[test]
    fn disabled_checks_nothing_else() {
        let (config, events) = options(&[
            ("OTEL_SDK_DISABLED", "true"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "collector:4318"),
            ("LS_COLLECTOR_URL", "ftp://x"),
            ("LS_ACCESS_TOKEN", "tok\n"),
            ("LS_SERVICE_NAME", " "),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "soon"),
        ])
        .validate()
        .unwrap();
        assert!(config.disabled);
        // The environment's warnings are still told.
        let warnings = warnings(&events);
        assert!(
            matches!(&warnings[..], [w] if w.contains("OTEL_EXPORTER_OTLP_TIMEOUT")),
            "{warnings:#?}"
        );
        // Without it, the endpoint is an error.
        let err = options(&[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "collector:4318")])
            .validate()
            .err();
        assert!(
            matches!(err, Some(InitError::InvalidCollectorUrl { .. })),
            "{err:?}"
        );
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b%2C%3d"), Some("a b,=".into()));
        assert_eq!(percent_decode("%C3%A9"), Some("é".into()));
        assert_eq!(percent_decode("%"), None);
        assert_eq!(percent_decode("%4"), None);
        assert_eq!(percent_decode("%ff"), None);
        assert_eq!(percent_decode("%+f"), None);
        assert_eq!(percent_decode("%-1"), None);
        assert_eq!(percent_decode("%4g"), None);
        assert_eq!(percent_decode("plain"), Some("plain".into()));
    }
}
