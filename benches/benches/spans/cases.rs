//! The cases every library runs, and what a library provides to run them.

use std::fmt;

/// One benchmark case. Every iteration is one root span with its children, so that each
/// library's whole recording pipeline (including the per-trace work at the root) is measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Case {
    /// A root span and `n` synchronous children, one after the other.
    Wide(usize),
    /// A root span and `n` synchronous children, each with three tags (a string, an
    /// integer, a boolean) and a log of one field, as the end-to-end runs make them.
    Tagged(usize),
    /// A root span and a chain of nested children, `depth` spans in all.
    Deep(usize),
    /// A root future and `n` awaited `async fn` children, on `futures::executor::block_on`.
    Async(usize),
    /// The wide case on two threads at once.
    WideTwoThreads(usize),
    /// `n` calls of a traced function while no tracer is initialised (and no root span).
    NoTracer(usize),
    /// A root span that is not sampled and `n` synchronous children.
    Unsampled(usize),
    /// A root span that the sampler leaves out (a trace id ratio of 0) and `n` synchronous
    /// children; with no children, what a sampled-out root costs by itself.
    SampledOut(usize),
}

/// Every case, in the order the report lists them.
pub(crate) const ALL: &[Case] = &[
    Case::Wide(1),
    Case::Wide(10),
    Case::Wide(100),
    Case::Wide(1000),
    Case::Tagged(100),
    Case::Deep(100),
    Case::Async(1),
    Case::Async(10),
    Case::Async(100),
    Case::Async(1000),
    Case::WideTwoThreads(100),
    Case::WideTwoThreads(1000),
    Case::NoTracer(100),
    Case::Unsampled(100),
    Case::SampledOut(0),
    Case::SampledOut(100),
];

impl Case {
    /// Worker threads that run iterations at once.
    pub(crate) fn threads(self) -> usize {
        match self {
            Case::WideTwoThreads(_) => 2,
            _ => 1,
        }
    }

    /// What the per-span figures divide by: spans (or calls) per iteration per worker. For
    /// the unsampled and sampled-out cases only the children count, so the figure is the cost
    /// per child; a sampled-out root without children counts itself.
    pub(crate) fn spans_per_iteration(self) -> u64 {
        let n = match self {
            Case::Wide(n) | Case::Tagged(n) | Case::Async(n) | Case::WideTwoThreads(n) => n + 1,
            Case::Deep(depth) => depth,
            Case::NoTracer(n) | Case::Unsampled(n) => n,
            Case::SampledOut(n) => n.max(1),
        };
        n as u64
    }

    /// Spans an iteration hands to the sink, over all workers.
    pub(crate) fn recorded_per_iteration(self) -> u64 {
        match self {
            Case::NoTracer(_) | Case::Unsampled(_) | Case::SampledOut(_) => 0,
            // `measure` counts iterations over all workers already.
            _ => self.spans_per_iteration(),
        }
    }

    /// Whether the library's pipeline is set up for this case.
    pub(crate) fn initialises_tracer(self) -> bool {
        !matches!(self, Case::NoTracer(_))
    }

    /// Parses [`Case`]'s `Display` form.
    pub(crate) fn parse(text: &str) -> Option<Case> {
        let (kind, n) = text.split_once('/')?;
        let n: usize = n.parse().ok()?;
        Some(match kind {
            "wide" => Case::Wide(n),
            "tagged" => Case::Tagged(n),
            "deep" => Case::Deep(n),
            "async" => Case::Async(n),
            "wide-2-threads" => Case::WideTwoThreads(n),
            "no-tracer" => Case::NoTracer(n),
            "unsampled" => Case::Unsampled(n),
            "sampled-out" => Case::SampledOut(n),
            _ => return None,
        })
    }
}

impl fmt::Display for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Case::Wide(n) => write!(f, "wide/{n}"),
            Case::Tagged(n) => write!(f, "tagged/{n}"),
            Case::Deep(n) => write!(f, "deep/{n}"),
            Case::Async(n) => write!(f, "async/{n}"),
            Case::WideTwoThreads(n) => write!(f, "wide-2-threads/{n}"),
            Case::NoTracer(n) => write!(f, "no-tracer/{n}"),
            Case::Unsampled(n) => write!(f, "unsampled/{n}"),
            Case::SampledOut(n) => write!(f, "sampled-out/{n}"),
        }
    }
}

/// A tracing library set up with its real recording pipeline and a sink that discards.
pub(crate) trait Library: Sync {
    /// Whether this library has the case (tracing without OpenTelemetry has no sampling).
    fn supports(&self, case: Case) -> bool;

    /// Sets up the pipeline for `case` (once per process). `verify` asks for a sink that
    /// counts even where the plain pipeline has none, for the smoke run's checks.
    fn init(&self, case: Case, verify: bool);

    /// One iteration of `case` on this thread.
    fn iteration(&self, case: Case);

    /// Pushes everything pending through to the sink.
    fn settle(&self);

    /// Spans the sink has received, where it can count them.
    fn delivered(&self) -> Option<u64>;

    /// Spans the pipeline says it dropped.
    fn dropped(&self) -> u64;
}
