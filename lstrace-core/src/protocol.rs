//! The messages of the two protocols the reporter speaks, for reading what it sent: the local
//! satellite's spans as the protocols carried them (feature `satellite`), and report bodies
//! decoded in tests (`prost::Message::decode`).
//!
//! - [`lightstep`]: LightStep's collector protocol (`POST /api/v2/reports`, a
//!   `ReportRequest`) and its binary carrier.
//! - [`otlp`]: OTLP/HTTP trace export (`POST /v1/traces`, an `ExportTraceServiceRequest`).
//!
//! Both are prost messages with the field numbers of the published schemas. Their structs and
//! enums are exhaustive on purpose, as prost's are: they follow those schemas, and tests build
//! them with struct literals (`..Default::default()`).

pub use crate::reporter::protocol::lightstep::messages as lightstep;
pub use crate::reporter::protocol::otlp::messages as otlp;
