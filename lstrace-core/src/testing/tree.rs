//! Renders spans as an indented trace tree: readable text that tests can assert on.

use crate::record::SpanRecord;
use crate::tag::Tag;
use std::collections::{HashMap, HashSet};
use std::fmt::Write;
use std::time::Duration;

/// One span, as the tree renderer needs it: [`render`] takes these, or anything that turns
/// into them (a [`SpanRecord`] of the test recorder, a span the local satellite received).
///
/// Non-exhaustive, so that the renderer can show more of a span later: build one with
/// [`TreeSpan::new`], then set its public fields.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct TreeSpan {
    /// The trace id (the low 64 bits only, for a span of the LightStep protocol).
    pub trace_id: u128,
    /// The span id.
    pub span_id: u64,
    /// The referenced span, if any.
    pub parent_id: Option<u64>,
    /// The operation name.
    pub name: String,
    /// Start, in nanoseconds since the Unix epoch (orders siblings).
    pub start_unix_nanos: u64,
    /// The duration.
    pub duration: Duration,
    /// Tags, rendered as `key=value`.
    pub tags: Vec<(String, String)>,
    /// Logs, each rendered as its `key=value` fields.
    pub logs: Vec<Vec<(String, String)>>,
}

/// What to show besides names and tags.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TreeStyle {
    /// Show each span's duration (not stable from run to run: leave it off in assertions).
    pub durations: bool,
    /// Show each span's logs, one line each under the span.
    pub logs: bool,
}

impl TreeStyle {
    /// This style, showing each span's duration or not.
    ///
    /// ```
    /// use lstrace_core::testing::tree::TreeStyle;
    ///
    /// let style = TreeStyle::default().with_logs(true).with_durations(false);
    /// assert!(style.logs && !style.durations);
    /// ```
    #[must_use]
    pub const fn with_durations(mut self, durations: bool) -> Self {
        self.durations = durations;
        self
    }

    /// This style, showing each span's logs or not.
    #[must_use]
    pub const fn with_logs(mut self, logs: bool) -> Self {
        self.logs = logs;
        self
    }
}

/// Renders spans as trees, two spaces of indent per level: one tree per trace, traces in
/// order of their first span's start. Roots are the spans whose parent is not among `spans`;
/// siblings are ordered by start time, then name. Tags are sorted by key, and tags and log
/// fields show their values only (`n=3`, `error=true`):
///
/// ```text
/// handle [span.kind=server]
///   load [cache.hit=false]
/// ```
///
/// It renders whatever turns into a [`TreeSpan`]: the [`SpanRecord`]s of a test recorder
/// (`&records`) and the spans a local satellite received alike.
#[must_use]
pub fn render<S: Into<TreeSpan>>(spans: impl IntoIterator<Item = S>, style: TreeStyle) -> String {
    let mut traces: HashMap<u128, Vec<TreeSpan>> = HashMap::new();
    for span in spans {
        let span = span.into();
        traces.entry(span.trace_id).or_default().push(span);
    }
    let mut traces: Vec<(u128, Vec<TreeSpan>)> = traces.into_iter().collect();
    traces.sort_by_key(|(trace_id, spans)| {
        let first_start = spans.iter().map(|s| s.start_unix_nanos).min();
        (first_start, *trace_id)
    });
    traces
        .iter()
        .map(|(_, spans)| render_trace(spans, style))
        .collect()
}

fn render_trace(spans: &[TreeSpan], style: TreeStyle) -> String {
    let ids: HashSet<u64> = spans.iter().map(|s| s.span_id).collect();
    let mut children: HashMap<Option<u64>, Vec<&TreeSpan>> = HashMap::new();
    for span in spans {
        let parent = span.parent_id.filter(|p| ids.contains(p));
        children.entry(parent).or_default().push(span);
    }
    for list in children.values_mut() {
        list.sort_by(|a, b| {
            (a.start_unix_nanos, &a.name, a.span_id).cmp(&(b.start_unix_nanos, &b.name, b.span_id))
        });
    }
    let mut out = String::new();
    let mut stack: Vec<(&TreeSpan, usize)> = children
        .get(&None)
        .map(|roots| roots.iter().rev().map(|s| (*s, 0)).collect())
        .unwrap_or_default();
    while let Some((span, depth)) = stack.pop() {
        render_line(&mut out, span, depth, style);
        if let Some(kids) = children.get(&Some(span.span_id)) {
            stack.extend(kids.iter().rev().map(|s| (*s, depth + 1)));
        }
    }
    out
}

impl TreeSpan {
    /// A span of trace `trace_id` with no parent, tags or logs, starting at the epoch and
    /// lasting nothing: set the fields that matter.
    ///
    /// ```
    /// use lstrace_core::testing::tree::{render, TreeSpan, TreeStyle};
    ///
    /// let root = TreeSpan::new(1, 10, "handle");
    /// let mut child = TreeSpan::new(1, 11, "load");
    /// child.parent_id = Some(10);
    /// child.tags.push(("cache".into(), "warm".into()));
    /// assert_eq!(
    ///     render([root, child], TreeStyle::default()),
    ///     "handle\n  load [cache=warm]\n"
    /// );
    /// ```
    #[must_use]
    pub fn new(trace_id: u128, span_id: u64, name: impl Into<String>) -> Self {
        TreeSpan {
            trace_id,
            span_id,
            parent_id: None,
            name: name.into(),
            start_unix_nanos: 0,
            duration: Duration::ZERO,
            tags: Vec::new(),
            logs: Vec::new(),
        }
    }
}

impl From<&TreeSpan> for TreeSpan {
    fn from(span: &TreeSpan) -> Self {
        span.clone()
    }
}

impl From<&SpanRecord> for TreeSpan {
    fn from(span: &SpanRecord) -> Self {
        fn fields<'a>(tags: impl Iterator<Item = &'a Tag>) -> Vec<(String, String)> {
            tags.map(|t| (t.key.to_string(), t.value.to_string()))
                .collect()
        }
        TreeSpan {
            trace_id: span.context().trace_id().to_u128(),
            span_id: span.context().span_id().get(),
            parent_id: span.parent_id(),
            name: span.name().to_owned(),
            start_unix_nanos: span.start_unix_nanos(),
            duration: span.duration(),
            tags: fields(span.tags().iter()),
            logs: span
                .logs()
                .iter()
                .map(|l| fields(l.fields().iter()))
                .collect(),
        }
    }
}

fn render_line(out: &mut String, span: &TreeSpan, depth: usize, style: TreeStyle) {
    let indent = "  ".repeat(depth);
    let _ = write!(out, "{indent}{}", span.name);
    if style.durations {
        let _ = write!(out, " ({:?})", span.duration);
    }
    if !span.tags.is_empty() {
        let mut tags: Vec<_> = span.tags.iter().collect();
        tags.sort();
        let rendered: Vec<String> = tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let _ = write!(out, " [{}]", rendered.join(", "));
    }
    out.push('\n');
    if style.logs {
        for log in &span.logs {
            let rendered: Vec<String> = log.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let _ = writeln!(out, "{indent}  - {}", rendered.join(", "));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: u64, parent: Option<u64>, name: &str, start: u64) -> TreeSpan {
        TreeSpan {
            trace_id: 1,
            span_id: id,
            parent_id: parent,
            name: name.into(),
            start_unix_nanos: start,
            duration: Duration::from_micros(3),
            tags: vec![],
            logs: vec![],
        }
    }

    #[test]
    fn nests_children_in_start_order() {
        let mut b = node(3, Some(1), "b", 20);
        b.tags = vec![("z".into(), "1".into()), ("a".into(), "x".into())];
        b.logs = vec![vec![("event".into(), "error".into())]];
        let spans = [
            node(2, Some(1), "c", 30),
            b,
            node(1, Some(99), "root", 10),
            node(4, Some(3), "d", 25),
        ];
        assert_eq!(
            render(
                &spans,
                TreeStyle {
                    durations: false,
                    logs: true
                }
            ),
            "root\n  b [a=x, z=1]\n    - event=error\n    d\n  c\n"
        );
        assert_eq!(
            render(
                &spans[2..3],
                TreeStyle {
                    durations: true,
                    logs: false
                }
            ),
            "root (3µs)\n"
        );
    }

    #[test]
    fn one_tree_per_trace_in_order_of_first_start() {
        let mut late = node(5, None, "late", 5);
        late.trace_id = 2;
        let mut early = node(6, Some(5), "early child", 1);
        early.trace_id = 2;
        let spans = [
            node(1, None, "one", 3),
            late,
            early,
            node(2, Some(1), "two", 4),
        ];
        // Trace 2 starts first (its child's start counts), so it comes first; span 6 is a
        // child of span 5 only within trace 2.
        assert_eq!(
            render(&spans, TreeStyle::default()),
            "late\n  early child\none\n  two\n"
        );
    }
}
