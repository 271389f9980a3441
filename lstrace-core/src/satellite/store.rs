//! The traces behind the satellite's web view: spans grouped by trace as they arrive, in
//! any order, within fixed bounds, and assembled into waterfall rows when asked.
//!
//! Spans enter as the satellite decodes them, read as [`ReceivedSpan`]s whatever protocol
//! carried them (without their resource, which the view does not show). Traces are keyed by
//! the low 64 bits of their id, which is what LightStep reports carry, so that the spans of
//! one trace meet whichever protocol reported them.

use super::span::{low_64, FieldValue, ReceivedSpan};
use crate::reporter::protocol::otlp::wire::{ERROR_TAG, SPAN_KIND_TAG};
use std::collections::{HashMap, HashSet, VecDeque};

/// How much the web view keeps: the most recently arrived traces, up to both bounds.
///
/// When a new trace would exceed `max_traces`, or a new span `max_spans`, the traces that
/// arrived first are evicted whole. A span that finds no room even then (its own trace
/// holds `max_spans` spans) is not kept. Both are counted and shown on the page.
///
/// ```
/// use lstrace_core::satellite::ViewLimits;
///
/// let mut limits = ViewLimits::default();
/// limits.max_traces = 50;
/// # assert_eq!(limits.max_spans, ViewLimits::default().max_spans);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ViewLimits {
    /// The most traces kept (at least 1).
    pub max_traces: usize,
    /// The most spans kept, all traces together (at least 1).
    pub max_spans: usize,
}

impl Default for ViewLimits {
    /// 1,000 traces, 200,000 spans: a few hundred megabytes at most for spans of typical
    /// size, and room for traces of tens of thousands of spans.
    fn default() -> Self {
        ViewLimits {
            max_traces: 1_000,
            max_spans: 200_000,
        }
    }
}

/// What the store holds and what it let go, for the page and for tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ViewStats {
    /// Traces held.
    pub traces: usize,
    /// Spans held.
    pub spans: usize,
    /// Traces evicted to make room.
    pub evicted_traces: u64,
    /// Spans let go: those of evicted traces, and those that found no room.
    pub evicted_spans: u64,
}

fn start_nanos(span: &ReceivedSpan) -> u64 {
    span.start_unix_nanos
}

fn duration_nanos(span: &ReceivedSpan) -> u64 {
    u64::try_from(span.duration.as_nanos()).unwrap_or(u64::MAX)
}

fn end_nanos(span: &ReceivedSpan) -> u64 {
    start_nanos(span).saturating_add(duration_nanos(span))
}

/// The `error` tag is true (as a bool, or the string `true`).
fn is_error(span: &ReceivedSpan) -> bool {
    span.tags.iter().any(|(key, value)| {
        key == ERROR_TAG
            && match value {
                FieldValue::Bool(b) => *b,
                FieldValue::Str(s) => s.eq_ignore_ascii_case("true"),
                _ => false,
            }
    })
}

/// The `span.kind` tag's text, if any.
fn kind(span: &ReceivedSpan) -> Option<&str> {
    match span.tag(SPAN_KIND_TAG) {
        Some(FieldValue::Str(kind)) => Some(kind),
        _ => None,
    }
}

#[derive(Debug, Default)]
struct Trace {
    spans: Vec<ReceivedSpan>,
    /// Spans of this trace that found no room.
    spans_not_kept: u64,
}

/// Which traces a listing shows.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Filter {
    /// Traces with a span of this service.
    pub(crate) service: Option<String>,
    /// Traces with a span of this operation (of `service`, when both are given).
    pub(crate) operation: Option<String>,
    /// Traces with at least one error span.
    pub(crate) errors_only: bool,
    /// Traces at least this long.
    pub(crate) min_duration_nanos: u64,
    /// At most this many traces, the most recent.
    pub(crate) limit: usize,
}

/// One trace of a listing.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct TraceSummary {
    pub(crate) trace_id: u64,
    /// The root span's operation and service; without a root, the earliest span's.
    pub(crate) root_operation: String,
    pub(crate) root_service: String,
    /// No span of the trace is a root (it is still arriving, or its root was not kept).
    pub(crate) root_missing: bool,
    /// Services in order of their first span's start.
    pub(crate) services: Vec<String>,
    pub(crate) start_unix_nanos: u64,
    pub(crate) duration_nanos: u64,
    pub(crate) span_count: usize,
    pub(crate) error_count: usize,
    pub(crate) spans_not_kept: u64,
}

/// A listing: the traces a filter matches, most recent start first, and what the filters
/// can choose from.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Listing {
    pub(crate) traces: Vec<TraceSummary>,
    /// How many traces matched (before `limit`).
    pub(crate) matched: usize,
    pub(crate) services: Vec<String>,
    pub(crate) operations: Vec<String>,
}

/// One row of a waterfall.
#[derive(Debug, PartialEq)]
pub(crate) struct Row<'a> {
    /// How deep it nests: 0 for roots and orphans.
    pub(crate) depth: usize,
    /// It references a parent that the trace does not hold.
    pub(crate) orphan: bool,
    pub(crate) span: &'a ReceivedSpan,
    pub(crate) error: bool,
    pub(crate) kind: Option<&'a str>,
    /// Start, in nanoseconds after the trace's start.
    pub(crate) offset_nanos: u64,
    pub(crate) start_unix_nanos: u64,
    pub(crate) duration_nanos: u64,
}

/// A trace assembled for the waterfall.
#[derive(Debug)]
pub(crate) struct Assembled<'a> {
    pub(crate) summary: TraceSummary,
    /// Rows in display order: each span under its parent, siblings by start time.
    pub(crate) rows: Vec<Row<'a>>,
    /// The ids of the trace's spans, to tell references in the trace from the others.
    pub(crate) span_ids: HashSet<u64>,
}

/// The traces, bounded by [`ViewLimits`].
#[derive(Debug)]
pub(crate) struct TraceStore {
    limits: ViewLimits,
    traces: HashMap<u64, Trace>,
    /// Trace ids in order of arrival of their first span: the front is evicted first.
    arrival: VecDeque<u64>,
    spans: usize,
    evicted_traces: u64,
    evicted_spans: u64,
    /// Changes whenever what the store holds changes, so that the page redraws only then.
    version: u64,
}

impl TraceStore {
    pub(crate) fn new(limits: ViewLimits) -> Self {
        TraceStore {
            limits: ViewLimits {
                max_traces: limits.max_traces.max(1),
                max_spans: limits.max_spans.max(1),
            },
            traces: HashMap::new(),
            arrival: VecDeque::new(),
            spans: 0,
            evicted_traces: 0,
            evicted_spans: 0,
            version: 0,
        }
    }

    pub(crate) fn limits(&self) -> ViewLimits {
        self.limits
    }

    pub(crate) fn version(&self) -> u64 {
        self.version
    }

    pub(crate) fn stats(&self) -> ViewStats {
        ViewStats {
            traces: self.traces.len(),
            spans: self.spans,
            evicted_traces: self.evicted_traces,
            evicted_spans: self.evicted_spans,
        }
    }

    /// Keeps the spans of a report, evicting the oldest traces to make room.
    pub(crate) fn insert(&mut self, spans: impl IntoIterator<Item = ReceivedSpan>) {
        for span in spans {
            self.insert_one(span);
        }
        self.version += 1;
    }

    fn insert_one(&mut self, span: ReceivedSpan) {
        let trace_id = low_64(span.trace_id);
        if !self.traces.contains_key(&trace_id) {
            while self.traces.len() >= self.limits.max_traces {
                self.evict(None);
            }
            self.traces.insert(trace_id, Trace::default());
            self.arrival.push_back(trace_id);
        }
        while self.spans >= self.limits.max_spans {
            if !self.evict(Some(trace_id)) {
                break;
            }
        }
        let Some(trace) = self.traces.get_mut(&trace_id) else {
            return;
        };
        if self.spans >= self.limits.max_spans {
            trace.spans_not_kept += 1;
            self.evicted_spans += 1;
            return;
        }
        trace.spans.push(span);
        self.spans += 1;
    }

    /// Evicts the trace that arrived first, other than `keep`. False when there is none.
    fn evict(&mut self, keep: Option<u64>) -> bool {
        let Some(at) = self.arrival.iter().position(|id| Some(*id) != keep) else {
            return false;
        };
        let Some(trace_id) = self.arrival.remove(at) else {
            return false;
        };
        if let Some(trace) = self.traces.remove(&trace_id) {
            self.spans -= trace.spans.len();
            self.evicted_traces += 1;
            self.evicted_spans += trace.spans.len() as u64;
        }
        true
    }

    /// The traces `filter` matches, most recent start first.
    pub(crate) fn list(&self, filter: &Filter) -> Listing {
        let mut services = HashSet::new();
        let mut operations = HashSet::new();
        let mut matching = Vec::new();
        for (trace_id, trace) in &self.traces {
            for span in &trace.spans {
                services.insert(span.service.as_str());
                if filter.service.as_deref().is_none_or(|s| s == span.service) {
                    operations.insert(span.name.as_str());
                }
            }
            if matches(trace, filter) {
                matching.push(summarize(*trace_id, trace));
            }
        }
        matching.sort_by(|a, b| {
            (b.start_unix_nanos, b.trace_id).cmp(&(a.start_unix_nanos, a.trace_id))
        });
        let matched = matching.len();
        matching.truncate(filter.limit);
        let sorted = |set: HashSet<&str>| {
            let mut list: Vec<String> = set.into_iter().map(str::to_owned).collect();
            list.sort();
            list
        };
        Listing {
            traces: matching,
            matched,
            services: sorted(services),
            operations: sorted(operations),
        }
    }

    /// One trace's summary.
    pub(crate) fn summary(&self, trace_id: u64) -> Option<TraceSummary> {
        self.traces.get(&trace_id).map(|t| summarize(trace_id, t))
    }

    /// One trace, assembled into waterfall rows.
    pub(crate) fn assemble(&self, trace_id: u64) -> Option<Assembled<'_>> {
        let trace = self.traces.get(&trace_id)?;
        Some(assemble(trace_id, trace))
    }
}

fn matches(trace: &Trace, filter: &Filter) -> bool {
    let span_matches = |s: &ReceivedSpan| {
        filter
            .service
            .as_deref()
            .is_none_or(|name| name == s.service)
            && filter.operation.as_deref().is_none_or(|op| op == s.name)
    };
    (filter.service.is_none() && filter.operation.is_none() || trace.spans.iter().any(span_matches))
        && (!filter.errors_only || trace.spans.iter().any(is_error))
        && (filter.min_duration_nanos == 0 || span_range(trace).1 >= filter.min_duration_nanos)
}

/// The trace's start and duration, in nanoseconds.
fn span_range(trace: &Trace) -> (u64, u64) {
    let start = trace.spans.iter().map(start_nanos).min();
    let end = trace.spans.iter().map(end_nanos).max();
    match (start, end) {
        (Some(start), Some(end)) => (start, end.saturating_sub(start)),
        _ => (0, 0),
    }
}

fn summarize(trace_id: u64, trace: &Trace) -> TraceSummary {
    let earliest = |s: &&ReceivedSpan| (start_nanos(s), s.span_id);
    let root = trace
        .spans
        .iter()
        .filter(|s| s.parent_id.is_none())
        .min_by_key(earliest);
    let shown = root.or_else(|| trace.spans.iter().min_by_key(earliest));
    let mut by_start: Vec<&ReceivedSpan> = trace.spans.iter().collect();
    by_start.sort_by_key(|s| start_nanos(s));
    let mut services: Vec<String> = Vec::new();
    for span in by_start {
        if !services.contains(&span.service) {
            services.push(span.service.clone());
        }
    }
    let (start_unix_nanos, duration_nanos) = span_range(trace);
    TraceSummary {
        trace_id,
        root_operation: shown.map_or_else(String::new, |s| s.name.clone()),
        root_service: shown.map_or_else(String::new, |s| s.service.clone()),
        root_missing: root.is_none(),
        services,
        start_unix_nanos,
        duration_nanos,
        span_count: trace.spans.len(),
        error_count: trace.spans.iter().filter(|s| is_error(s)).count(),
        spans_not_kept: trace.spans_not_kept,
    }
}

fn assemble(trace_id: u64, trace: &Trace) -> Assembled<'_> {
    let summary = summarize(trace_id, trace);
    let span_ids: HashSet<u64> = trace.spans.iter().map(|s| s.span_id).collect();
    let by_start = |&a: &usize, &b: &usize| {
        let (a, b) = (&trace.spans[a], &trace.spans[b]);
        (start_nanos(a), &a.name, a.span_id).cmp(&(start_nanos(b), &b.name, b.span_id))
    };
    // Top level: roots, and orphans (their parent is not in the trace).
    let mut children: HashMap<u64, Vec<usize>> = HashMap::new();
    let mut top: Vec<usize> = Vec::new();
    for (index, span) in trace.spans.iter().enumerate() {
        match span.parent_id.filter(|p| span_ids.contains(p)) {
            Some(parent) => children.entry(parent).or_default().push(index),
            None => top.push(index),
        }
    }
    for list in children.values_mut() {
        list.sort_by(by_start);
    }
    top.sort_by(by_start);
    // Spans in a reference cycle are reachable from no root: they follow as orphans.
    let mut unreached: Vec<usize> = (0..trace.spans.len()).collect();
    unreached.sort_by(by_start);
    let mut rows = Vec::with_capacity(trace.spans.len());
    let mut placed = vec![false; trace.spans.len()];
    for start in top.into_iter().chain(unreached) {
        // Depth-first without recursion: a chain of spans may be as deep as the trace is long.
        let mut stack = vec![(start, 0)];
        while let Some((index, depth)) = stack.pop() {
            if std::mem::replace(&mut placed[index], true) {
                continue;
            }
            let span = &trace.spans[index];
            rows.push(row(span, depth, summary.start_unix_nanos));
            if let Some(kids) = children.get(&span.span_id) {
                stack.extend(kids.iter().rev().map(|&kid| (kid, depth + 1)));
            }
        }
    }
    Assembled {
        summary,
        rows,
        span_ids,
    }
}

fn row(span: &ReceivedSpan, depth: usize, trace_start: u64) -> Row<'_> {
    Row {
        depth,
        orphan: depth == 0 && span.parent_id.is_some(),
        span,
        error: is_error(span),
        kind: kind(span),
        offset_nanos: start_nanos(span).saturating_sub(trace_start),
        start_unix_nanos: start_nanos(span),
        duration_nanos: duration_nanos(span),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reporter::Protocol;
    use crate::satellite::SpanReference;
    use crate::Relationship;
    use std::time::Duration;

    const T0: u64 = 1_700_000_000_000_000_000;

    /// A span of `trace`, `start_micros` after `T0`, lasting `micros`.
    fn span(
        trace: u64,
        id: u64,
        parent: Option<u64>,
        name: &str,
        start_micros: u64,
        micros: u64,
    ) -> ReceivedSpan {
        ReceivedSpan {
            protocol: Protocol::LightStep,
            service: String::new(),
            name: name.into(),
            trace_id: u128::from(trace),
            span_id: id,
            parent_id: parent,
            references: parent
                .map(|span_id| SpanReference {
                    relationship: Relationship::ChildOf,
                    trace_id: u128::from(trace),
                    span_id,
                })
                .into_iter()
                .collect(),
            start_unix_nanos: T0 + start_micros * 1000,
            duration: Duration::from_micros(micros),
            kind: None,
            error: false,
            tags: vec![],
            logs: vec![],
            resource: vec![],
        }
    }

    fn tagged(mut span: ReceivedSpan, key: &str, value: FieldValue) -> ReceivedSpan {
        span.tags.push((key.into(), value));
        span
    }

    impl TraceStore {
        /// Keeps spans that `service` reported.
        fn insert_from(&mut self, service: &str, spans: impl IntoIterator<Item = ReceivedSpan>) {
            self.insert(spans.into_iter().map(|mut span| {
                span.service = service.into();
                span
            }));
        }
    }

    /// The rows as `depth service:name` lines, with `(orphan)` and `!` (error) marks.
    fn rows(store: &TraceStore, trace: u64) -> Vec<String> {
        store
            .assemble(trace)
            .expect("the trace is there")
            .rows
            .iter()
            .map(|r| {
                format!(
                    "{}{}:{}{}{}",
                    "  ".repeat(r.depth),
                    r.span.service,
                    r.span.name,
                    if r.orphan { " (orphan)" } else { "" },
                    if r.error { " !" } else { "" },
                )
            })
            .collect()
    }

    fn everything() -> Filter {
        Filter {
            limit: usize::MAX,
            ..Filter::default()
        }
    }

    #[test]
    fn spans_arriving_in_any_order_from_two_services_make_one_waterfall() {
        let mut store = TraceStore::new(ViewLimits::default());
        // The backend reports first, the children before their parents.
        store.insert_from(
            "backend",
            [
                span(7, 5, Some(4), "db.query", 400, 100),
                tagged(
                    span(7, 4, Some(3), "GET /stock", 300, 400),
                    "span.kind",
                    FieldValue::Str("server".into()),
                ),
            ],
        );
        store.insert_from(
            "frontend",
            [
                tagged(
                    span(7, 6, Some(1), "charge", 900, 50),
                    "error",
                    FieldValue::Bool(true),
                ),
                span(7, 3, Some(2), "fetch stock", 250, 500),
                span(7, 2, Some(1), "load cart", 200, 600),
                span(7, 1, None, "checkout", 0, 1000),
            ],
        );
        assert_eq!(
            rows(&store, 7),
            [
                "frontend:checkout",
                "  frontend:load cart",
                "    frontend:fetch stock",
                "      backend:GET /stock",
                "        backend:db.query",
                "  frontend:charge !",
            ]
        );
        let trace = store.assemble(7).unwrap();
        assert_eq!(trace.rows[3].kind, Some("server"));
        assert_eq!(trace.rows[4].offset_nanos, 400_000);
        assert_eq!(trace.rows[4].duration_nanos, 100_000);
        let summary = trace.summary;
        assert_eq!(summary.root_operation, "checkout");
        assert_eq!(summary.root_service, "frontend");
        assert!(!summary.root_missing);
        assert_eq!(summary.services, ["frontend", "backend"]);
        assert_eq!(summary.start_unix_nanos, T0);
        assert_eq!(summary.duration_nanos, 1_000_000);
        assert_eq!((summary.span_count, summary.error_count), (6, 1));
    }

    #[test]
    fn spans_whose_parent_is_missing_are_orphans_at_the_top() {
        let mut store = TraceStore::new(ViewLimits::default());
        store.insert_from(
            "svc",
            [
                span(9, 12, Some(11), "grandchild", 30, 5),
                span(9, 11, Some(99), "child of a lost span", 20, 20),
                span(9, 13, Some(98), "another orphan", 10, 5),
            ],
        );
        assert_eq!(
            rows(&store, 9),
            [
                "svc:another orphan (orphan)",
                "svc:child of a lost span (orphan)",
                "  svc:grandchild",
            ]
        );
        let summary = store.assemble(9).unwrap().summary;
        assert!(summary.root_missing);
        assert_eq!(summary.root_operation, "another orphan");
        // The root arrives: it heads the trace, the orphans stay orphans.
        store.insert_from("svc", [span(9, 1, None, "root", 0, 100)]);
        assert_eq!(rows(&store, 9)[0], "svc:root");
        assert_eq!(store.assemble(9).unwrap().summary.root_operation, "root");
    }

    #[test]
    fn reference_cycles_and_duplicate_ids_show_every_span_once() {
        let mut store = TraceStore::new(ViewLimits::default());
        store.insert_from(
            "svc",
            [
                span(3, 1, Some(2), "a", 0, 10),
                span(3, 2, Some(1), "b", 5, 10),
                span(3, 4, Some(4), "self", 7, 1),
                span(3, 5, None, "twin", 8, 1),
                span(3, 5, None, "twin", 9, 1),
            ],
        );
        let rows = rows(&store, 3);
        assert_eq!(
            rows,
            [
                "svc:twin",
                "svc:twin",
                "svc:a (orphan)",
                "  svc:b",
                "svc:self (orphan)",
            ]
        );
    }

    #[test]
    fn a_deep_chain_does_not_recurse() {
        let mut store = TraceStore::new(ViewLimits::default());
        let depth = 100_000;
        store.insert_from(
            "svc",
            (1..=depth).map(|id| span(1, id, (id > 1).then(|| id - 1), "link", id, 1)),
        );
        let trace = store.assemble(1).unwrap();
        assert_eq!(trace.rows.len(), depth as usize);
        assert_eq!(trace.rows.last().unwrap().depth, depth as usize - 1);
    }

    #[test]
    fn the_oldest_traces_are_evicted_and_counted() {
        let mut store = TraceStore::new(ViewLimits {
            max_traces: 2,
            max_spans: 5,
        });
        store.insert_from("svc", [span(1, 1, None, "one", 0, 1)]);
        store.insert_from(
            "svc",
            [
                span(2, 1, None, "two", 1, 1),
                span(2, 2, Some(1), "x", 1, 1),
            ],
        );
        store.insert_from("svc", [span(3, 1, None, "three", 2, 1)]);
        // Three traces do not fit in two: the first to arrive goes.
        assert!(store.assemble(1).is_none());
        assert_eq!(
            store.stats(),
            ViewStats {
                traces: 2,
                spans: 3,
                evicted_traces: 1,
                evicted_spans: 1
            }
        );
        // A late span of trace 2 does not make it younger: it is still the first to go.
        store.insert_from("svc", [span(2, 3, Some(1), "late", 1, 1)]);
        store.insert_from(
            "svc",
            [
                span(3, 2, Some(1), "a", 3, 1),
                span(3, 3, Some(1), "b", 3, 1),
            ],
        );
        // Six spans do not fit in five: trace 2 (three spans) goes, trace 3 stays.
        assert!(store.assemble(2).is_none());
        assert_eq!(rows(&store, 3), ["svc:three", "  svc:a", "  svc:b"]);
        assert_eq!(
            store.stats(),
            ViewStats {
                traces: 1,
                spans: 3,
                evicted_traces: 2,
                evicted_spans: 4
            }
        );
        // A trace larger than the store keeps what fits and counts the rest.
        store.insert_from("svc", (1..=7).map(|id| span(4, id, None, "big", id, 1)));
        let big = store.assemble(4).unwrap().summary;
        assert_eq!((big.span_count, big.spans_not_kept), (5, 2));
        assert_eq!(
            store.stats(),
            ViewStats {
                traces: 1,
                spans: 5,
                evicted_traces: 3,
                evicted_spans: 9
            }
        );
    }

    #[test]
    fn listings_are_most_recent_first_and_filtered() {
        let mut store = TraceStore::new(ViewLimits::default());
        let error = |s| tagged(s, "error", FieldValue::Bool(true));
        store.insert_from(
            "web",
            [
                span(1, 1, None, "GET /", 0, 1000),
                span(2, 1, None, "GET /cart", 5000, 10),
                error(span(3, 1, None, "GET /pay", 3000, 3000)),
            ],
        );
        store.insert_from("db", [span(2, 2, Some(1), "SELECT", 5001, 5)]);
        let ids = |filter: Filter| -> Vec<u64> {
            store
                .list(&filter)
                .traces
                .iter()
                .map(|t| t.trace_id)
                .collect()
        };
        assert_eq!(ids(everything()), [2, 3, 1]);
        assert_eq!(
            ids(Filter {
                limit: 2,
                ..everything()
            }),
            [2, 3]
        );
        let by_service = Filter {
            service: Some("db".into()),
            ..everything()
        };
        assert_eq!(ids(by_service.clone()), [2]);
        assert_eq!(store.list(&by_service).operations, ["SELECT"]);
        assert_eq!(
            ids(Filter {
                operation: Some("GET /".into()),
                ..everything()
            }),
            [1]
        );
        // Service and operation of one span.
        assert!(ids(Filter {
            service: Some("db".into()),
            operation: Some("GET /cart".into()),
            ..everything()
        })
        .is_empty());
        assert_eq!(
            ids(Filter {
                errors_only: true,
                ..everything()
            }),
            [3]
        );
        assert_eq!(
            ids(Filter {
                min_duration_nanos: 1_000_000,
                ..everything()
            }),
            [3, 1]
        );
        let listing = store.list(&everything());
        assert_eq!(listing.matched, 3);
        assert_eq!(listing.services, ["db", "web"]);
        assert_eq!(
            listing.operations,
            ["GET /", "GET /cart", "GET /pay", "SELECT"]
        );
        assert_eq!(listing.traces[0].services, ["web", "db"]);
    }
}
