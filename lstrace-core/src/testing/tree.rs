//! Renders spans as an indented trace tree: readable text that tests can assert on.

use std::collections::{HashMap, HashSet};
use std::fmt::Write;
use std::time::Duration;

/// One span, as the tree renderer needs it. Both the [`TestRecorder`] and the local
/// satellite turn what they hold into these.
///
/// [`TestRecorder`]: crate::testing::TestRecorder
#[derive(Clone, Debug, PartialEq)]
pub struct TreeSpan {
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
pub struct TreeStyle {
    /// Show each span's duration (not stable from run to run: leave it off in assertions).
    pub durations: bool,
    /// Show each span's logs, one line each under the span.
    pub logs: bool,
}

/// Renders spans as a tree, two spaces of indent per level. Roots are the spans whose parent
/// is not among `spans`; siblings are ordered by start time, then name. Tags are sorted by key:
///
/// ```text
/// handle [span.kind=server]
///   load [cache.hit=false]
/// ```
#[must_use]
pub fn render(spans: &[TreeSpan], style: TreeStyle) -> String {
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
}
