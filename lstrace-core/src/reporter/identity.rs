//! Who is reporting: the reporter tags every report carries.

use super::config::{redact, InitError};
use super::protocol::otlp::SERVICE_NAME;
use super::wire::{key_value, Limits};
use crate::protocol::lightstep::{key_value::Value, KeyValue};
use crate::protocol::otlp;
use crate::tag::{Tag, TagValue};

/// The service name.
pub const COMPONENT_NAME: &str = "lightstep.component_name";
/// The host the process runs on.
pub const HOSTNAME: &str = "lightstep.hostname";
/// The process's command line.
pub const COMMAND_LINE: &str = "lightstep.command_line";
/// `rust`.
pub const TRACER_PLATFORM: &str = "lightstep.tracer_platform";
/// The rustc version lstrace was built with.
pub const TRACER_PLATFORM_VERSION: &str = "lightstep.tracer_platform_version";
/// lstrace's version.
pub const TRACER_VERSION: &str = "lightstep.tracer_version";
/// Refused in user tags, as the Go tracer does: the collector derives it.
pub(crate) const GUID: &str = "lightstep.guid";

/// The rustc that built this crate (set by build.rs).
const RUSTC_VERSION: &str = env!("LSTRACE_RUSTC_VERSION");

/// The executable's file name: the default component name.
pub(crate) fn executable_name() -> Option<String> {
    let from_args = std::env::args_os().next().map(std::path::PathBuf::from);
    let path = from_args.or_else(|| std::env::current_exe().ok())?;
    let name = path.file_name()?.to_string_lossy().into_owned();
    (!name.is_empty()).then_some(name)
}

/// The host name, without a C library call: the kernel's on Linux, else the usual variables.
/// Set the `lightstep.hostname` tag where neither is right.
fn hostname() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|path| std::fs::read_to_string(path).ok())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

fn command_line() -> String {
    std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The reporter tags: the tracer's own, then the user's (which may replace them, except
/// `lightstep.guid`, which is refused). The component name must end up a non-empty string.
/// A token passed on the command line is not repeated in `lightstep.command_line`.
pub(crate) fn reporter_tags(
    component_name: &str,
    user: &[Tag],
    token: &str,
) -> Result<Vec<KeyValue>, InitError> {
    let builtin = [
        (COMPONENT_NAME, component_name.to_owned()),
        (HOSTNAME, hostname()),
        (COMMAND_LINE, redact(&command_line(), token)),
        (TRACER_PLATFORM, "rust".to_owned()),
        (TRACER_PLATFORM_VERSION, RUSTC_VERSION.to_owned()),
        (TRACER_VERSION, env!("CARGO_PKG_VERSION").to_owned()),
    ];
    let mut tags: Vec<KeyValue> = builtin
        .into_iter()
        .map(|(key, value)| KeyValue {
            key: key.to_owned(),
            value: Some(Value::StringValue(value)),
        })
        .collect();
    for tag in user {
        if tag.key == GUID {
            return Err(InitError::ReservedTag {
                key: tag.key.to_string(),
            });
        }
        let kv = key_value(&tag.key, &tag.value, &Limits::UNLIMITED);
        match tags.iter_mut().find(|t| t.key == kv.key) {
            Some(existing) => *existing = kv,
            None => tags.push(kv),
        }
    }
    let component = tags
        .iter()
        .find(|t| t.key == COMPONENT_NAME)
        .and_then(|t| t.value.as_ref());
    match component {
        Some(Value::StringValue(name)) if !name.trim().is_empty() => Ok(tags),
        _ => Err(InitError::EmptyComponentName),
    }
}

/// The OTLP resource: the service, the host and the SDK (semantic conventions' names),
/// then the user's reporter tags, typed, which may replace them.
pub(crate) fn otlp_resource(component_name: &str, user: &[Tag], token: &str) -> otlp::Resource {
    let string = |s: String| otlp::any_value::Value::StringValue(s);
    let mut attributes: Vec<otlp::KeyValue> = [
        (SERVICE_NAME, component_name.to_owned()),
        ("host.name", hostname()),
        ("process.command_line", redact(&command_line(), token)),
        ("process.runtime.name", "rustc".to_owned()),
        ("process.runtime.version", RUSTC_VERSION.to_owned()),
        ("telemetry.sdk.name", "lstrace".to_owned()),
        ("telemetry.sdk.language", "rust".to_owned()),
        (
            "telemetry.sdk.version",
            env!("CARGO_PKG_VERSION").to_owned(),
        ),
    ]
    .into_iter()
    .map(|(key, value)| otlp::KeyValue::new(key, string(value)))
    .collect();
    for tag in user {
        let value = match &tag.value {
            TagValue::Str(s) => string(s.to_string()),
            TagValue::Int(i) => otlp::any_value::Value::IntValue(*i),
            TagValue::Float(x) => otlp::any_value::Value::DoubleValue(*x),
            TagValue::Bool(b) => otlp::any_value::Value::BoolValue(*b),
        };
        let kv = otlp::KeyValue::new(tag.key.to_string(), value);
        match attributes.iter_mut().find(|a| a.key == kv.key) {
            Some(existing) => *existing = kv,
            None => attributes.push(kv),
        }
    }
    otlp::Resource {
        attributes,
        dropped_attributes_count: 0,
    }
}

/// The instrumentation scope of every span: lstrace and its version.
pub(crate) fn otlp_scope() -> otlp::InstrumentationScope {
    otlp::InstrumentationScope {
        name: "lstrace".to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        attributes: Vec::new(),
        dropped_attributes_count: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value<'a>(tags: &'a [KeyValue], key: &str) -> Option<&'a Value> {
        tags.iter()
            .find(|t| t.key == key)
            .and_then(|t| t.value.as_ref())
    }

    fn string(tags: &[KeyValue], key: &str) -> String {
        match value(tags, key) {
            Some(Value::StringValue(s)) => s.clone(),
            other => panic!("{key}: {other:?}"),
        }
    }

    #[test]
    fn carries_the_tracer_identity() {
        let tags = reporter_tags("svc", &[], "tok").unwrap();
        assert_eq!(string(&tags, COMPONENT_NAME), "svc");
        assert_eq!(string(&tags, TRACER_PLATFORM), "rust");
        assert!(string(&tags, TRACER_PLATFORM_VERSION).starts_with("rustc "));
        assert_eq!(string(&tags, TRACER_VERSION), env!("CARGO_PKG_VERSION"));
        assert!(!string(&tags, HOSTNAME).is_empty());
        assert!(!string(&tags, COMMAND_LINE).is_empty());
    }

    #[test]
    fn user_tags_keep_their_type_and_may_override() {
        let user = [
            Tag::new("replicas", 3),
            Tag::new(HOSTNAME, "pod-7"),
            Tag::new(COMPONENT_NAME, "renamed"),
        ];
        let tags = reporter_tags("svc", &user, "tok").unwrap();
        assert_eq!(value(&tags, "replicas"), Some(&Value::IntValue(3)));
        assert_eq!(string(&tags, HOSTNAME), "pod-7");
        assert_eq!(string(&tags, COMPONENT_NAME), "renamed");
        assert_eq!(tags.iter().filter(|t| t.key == HOSTNAME).count(), 1);
    }

    #[test]
    fn the_otlp_resource_names_the_service_host_and_sdk() {
        let user = [Tag::new("replicas", 3), Tag::new("host.name", "pod-7")];
        let resource = otlp_resource("svc", &user, "tok");
        let get = |key: &str| {
            resource
                .attributes
                .iter()
                .find(|a| a.key == key)
                .and_then(|a| a.value.clone())
                .and_then(|v| v.value)
        };
        let string = |s: &str| Some(otlp::any_value::Value::StringValue(s.into()));
        assert_eq!(get("service.name"), string("svc"));
        assert_eq!(get("telemetry.sdk.name"), string("lstrace"));
        assert_eq!(get("telemetry.sdk.language"), string("rust"));
        assert_eq!(
            get("telemetry.sdk.version"),
            string(env!("CARGO_PKG_VERSION"))
        );
        assert_eq!(get("host.name"), string("pod-7"));
        assert_eq!(get("replicas"), Some(otlp::any_value::Value::IntValue(3)));
        assert_eq!(
            resource
                .attributes
                .iter()
                .filter(|a| a.key == "host.name")
                .count(),
            1
        );
        let scope = otlp_scope();
        assert_eq!(
            (scope.name.as_str(), scope.version.as_str()),
            ("lstrace", env!("CARGO_PKG_VERSION"))
        );
    }

    #[test]
    fn refuses_guid_and_an_empty_component() {
        assert_eq!(
            reporter_tags("svc", &[Tag::new(GUID, 1)], "tok"),
            Err(InitError::ReservedTag { key: GUID.into() })
        );
        assert_eq!(
            reporter_tags(" ", &[], "tok"),
            Err(InitError::EmptyComponentName)
        );
        assert_eq!(
            reporter_tags("svc", &[Tag::new(COMPONENT_NAME, 5)], "tok"),
            Err(InitError::EmptyComponentName)
        );
    }
}
