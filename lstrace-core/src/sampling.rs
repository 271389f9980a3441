//! Head sampling: which traces are recorded, decided once when a trace starts and carried by
//! its context to every child, in this process and downstream.
//!
//! A [`Sampling`] policy has a [`Sampler`] for new traces (roots) and follows the decision
//! of a span's parent by default. The samplers lstrace brings:
//!
//! | sampler | records |
//! |---|---|
//! | [`AlwaysOn`] | every new trace (the default) |
//! | [`AlwaysOff`] | none |
//! | [`TraceIdRatio`] | a fraction of traces, decided from the trace id, so that every service with the same ratio makes the same decision |
//! | [`RateLimited`] | at most N new traces a second, among those its inner sampler records |
//! | your own [`Sampler`] | what it decides from the operation name and start tags |
//!
//! `init` installs the policy of [`Options::sampling`](crate::Options::sampling) (or the
//! environment's, see [`Options::from_env`](crate::Options::from_env)); [`set_global`] does
//! it for other recorders (a test's, say).
//!
//! The policy is consulted when a new trace starts: [`span(..).root()`](crate::SpanBuilder::root),
//! `#[traced(root)]`, `#[traced]` and [`span`](crate::span) calls with no current span, and
//! requests without a caller's context in the HTTP integrations. Children of the current span
//! inherit its decision without asking the sampler, which is what keeps a sampled-out trace
//! as cheap as an unsampled one. A span started as the child of a context given explicitly
//! ([`SpanBuilder::child_of`](crate::SpanBuilder::child_of), typically a context extracted
//! from a request) follows that context's decision, unless the policy was built with
//! [`Sampling::ignoring_parent`]: the sampler then decides for it too. A B3 debug flag from
//! upstream forces sampling in either case. [`SpanBuilder::sampled`](crate::SpanBuilder::sampled)
//! overrides the sampler for one new trace.
//!
//! ```
//! use lstrace_core::sampling::{RateLimited, Sampling, TraceIdRatio};
//!
//! // One trace in ten, and never more than 50 new traces a second.
//! let ratio = TraceIdRatio::new(0.1).expect("a ratio between 0 and 1");
//! let policy = Sampling::parent_based(RateLimited::new(50.0, ratio).expect("a valid rate"));
//! let options = lstrace_core::Options::new("token").sampling(policy);
//! # drop(options);
//! ```

use crate::context::id::TraceId;
use crate::context::SpanContext;
use crate::tag::TagList;
use std::cell::RefCell;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Decides whether a new trace is recorded, from what is known when its first span starts.
///
/// Implemented for closures too: `|start: &SamplingStart<'_>| start.name() != "health"`.
///
/// A sampler runs on the thread that starts the span, before the span exists: it must be
/// quick and must not block.
pub trait Sampler: Send + Sync + 'static {
    /// True when the trace that `start` begins is recorded.
    fn should_sample(&self, start: &SamplingStart<'_>) -> bool;
}

impl<F> Sampler for F
where
    F: Fn(&SamplingStart<'_>) -> bool + Send + Sync + 'static,
{
    fn should_sample(&self, start: &SamplingStart<'_>) -> bool {
        self(start)
    }
}

/// What a [`Sampler`] knows about the span it decides for.
#[derive(Clone, Copy, Debug)]
pub struct SamplingStart<'a> {
    trace_id: TraceId,
    name: &'a str,
    tags: &'a TagList,
    parent: Option<&'a SpanContext>,
}

impl<'a> SamplingStart<'a> {
    /// What a sampler is asked about: the span named `name` with `tags` starts in the trace
    /// `trace_id`, as the child of `parent` (`None` for a new trace). Useful to test a
    /// sampler.
    #[must_use]
    pub fn new(
        trace_id: TraceId,
        name: &'a str,
        tags: &'a TagList,
        parent: Option<&'a SpanContext>,
    ) -> Self {
        SamplingStart {
            trace_id,
            name,
            tags,
            parent,
        }
    }

    /// The trace id (new, or the parent's).
    #[must_use]
    pub fn trace_id(&self) -> TraceId {
        self.trace_id
    }

    /// The span's operation name.
    #[must_use]
    pub fn name(&self) -> &'a str {
        self.name
    }

    /// The tags the span starts with.
    #[must_use]
    pub fn tags(&self) -> &'a TagList {
        self.tags
    }

    /// The parent context, for a policy built with [`Sampling::ignoring_parent`] asked about
    /// the child of an explicit parent; `None` for a new trace.
    #[must_use]
    pub fn parent(&self) -> Option<&'a SpanContext> {
        self.parent
    }
}

/// Records every trace.
#[derive(Clone, Copy, Debug, Default)]
pub struct AlwaysOn;

impl Sampler for AlwaysOn {
    fn should_sample(&self, _: &SamplingStart<'_>) -> bool {
        true
    }
}

/// Records no trace.
#[derive(Clone, Copy, Debug, Default)]
pub struct AlwaysOff;

impl Sampler for AlwaysOff {
    fn should_sample(&self, _: &SamplingStart<'_>) -> bool {
        false
    }
}

/// A sampling setting that cannot be used.
#[derive(Clone, Debug, PartialEq)]
pub struct SamplingError {
    message: String,
}

impl SamplingError {
    fn new(message: impl Into<String>) -> Self {
        SamplingError {
            message: message.into(),
        }
    }
}

impl fmt::Display for SamplingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for SamplingError {}

/// The trace id bits a ratio decision reads: the low 56, which every format's ids fill with
/// random bits (W3C trace context level 2 names them the trace's randomness).
const RANDOM_BITS: u32 = 56;
const RANDOM_MASK: u64 = (1 << RANDOM_BITS) - 1;

/// Records a fraction of traces, decided from the trace id alone: every service that uses
/// the same ratio makes the same decision for a trace, and a larger ratio records every trace
/// a smaller one does.
///
/// A trace is recorded when the low 56 bits of its id, as a number, are at least
/// `(1 - ratio) * 2^56` (the rule of OpenTelemetry's consistent probability sampling).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceIdRatio {
    /// Trace ids whose random bits are at least this are recorded.
    threshold: u64,
}

impl TraceIdRatio {
    /// Records the fraction `ratio` of traces (0 = none, 1 = all).
    ///
    /// # Errors
    /// When `ratio` is not a number between 0 and 1.
    pub fn new(ratio: f64) -> Result<Self, SamplingError> {
        if !(0.0..=1.0).contains(&ratio) {
            return Err(SamplingError::new(format!(
                "a sampling ratio is a number between 0 and 1, not {ratio}"
            )));
        }
        let span = (1u64 << RANDOM_BITS) as f64;
        // In [0, 2^56]: exact for 0 and 1, and 2^56 (ratio 0) is above every id.
        let threshold = ((1.0 - ratio) * span).round() as u64;
        Ok(TraceIdRatio { threshold })
    }

    /// True when this ratio records the trace `trace_id`.
    #[must_use]
    pub fn samples(&self, trace_id: TraceId) -> bool {
        trace_id.low() & RANDOM_MASK >= self.threshold
    }
}

impl Sampler for TraceIdRatio {
    fn should_sample(&self, start: &SamplingStart<'_>) -> bool {
        self.samples(start.trace_id)
    }
}

/// Where a [`RateLimited`] sampler reads the time: how long since some fixed instant. Tests
/// give one they control.
pub type MonotonicClock = Arc<dyn Fn() -> Duration + Send + Sync>;

/// Records at most `per_second` new traces a second (bursts up to one second's worth, at
/// least one trace), among those its inner sampler records: combined with [`TraceIdRatio`],
/// a ratio with a ceiling.
pub struct RateLimited<S> {
    inner: S,
    per_second: f64,
    burst: f64,
    clock: MonotonicClock,
    bucket: Mutex<Bucket>,
}

/// A token bucket: a trace takes a token; tokens come back at the rate, up to the burst.
struct Bucket {
    tokens: f64,
    at: Duration,
}

impl<S: Sampler> RateLimited<S> {
    /// At most `per_second` traces a second among those `inner` records (pass [`AlwaysOn`]
    /// for a plain rate limit).
    ///
    /// # Errors
    /// When `per_second` is negative or not a finite number.
    pub fn new(per_second: f64, inner: S) -> Result<Self, SamplingError> {
        let start = Instant::now();
        Self::with_clock(per_second, inner, Arc::new(move || start.elapsed()))
    }

    /// [`RateLimited::new`] with time read from `clock`.
    ///
    /// # Errors
    /// As [`RateLimited::new`].
    pub fn with_clock(
        per_second: f64,
        inner: S,
        clock: MonotonicClock,
    ) -> Result<Self, SamplingError> {
        if !(per_second.is_finite() && per_second >= 0.0) {
            return Err(SamplingError::new(format!(
                "a rate limit is a number of traces per second, at least 0, not {per_second}"
            )));
        }
        let burst = per_second.max(1.0);
        let at = clock();
        Ok(RateLimited {
            inner,
            per_second,
            burst,
            clock,
            bucket: Mutex::new(Bucket { tokens: burst, at }),
        })
    }

    /// Takes a token if there is one.
    fn take(&self) -> bool {
        if self.per_second == 0.0 {
            return false;
        }
        let now = (self.clock)();
        let mut bucket = self.bucket.lock().unwrap_or_else(PoisonError::into_inner);
        // A clock that goes backwards gives no tokens rather than a negative count.
        let elapsed = now.saturating_sub(bucket.at);
        bucket.at = bucket.at.max(now);
        bucket.tokens = (bucket.tokens + elapsed.as_secs_f64() * self.per_second).min(self.burst);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

impl<S: Sampler> Sampler for RateLimited<S> {
    fn should_sample(&self, start: &SamplingStart<'_>) -> bool {
        self.inner.should_sample(start) && self.take()
    }
}

impl<S: fmt::Debug> fmt::Debug for RateLimited<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimited")
            .field("per_second", &self.per_second)
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

/// A sampling policy: the sampler for new traces, and whether a span follows its parent's
/// decision. See the [module documentation](self).
#[derive(Clone)]
pub struct Sampling {
    new_traces: Arc<dyn Sampler>,
    follow_parent: bool,
}

impl Sampling {
    /// `sampler` decides for new traces; every other span follows its parent's decision,
    /// sampled or not.
    #[must_use]
    pub fn parent_based(sampler: impl Sampler) -> Self {
        Sampling {
            new_traces: Arc::new(sampler),
            follow_parent: true,
        }
    }

    /// `sampler` decides for new traces and for the children of contexts given explicitly
    /// (extracted from a request, say), whatever the caller decided, as OpenTelemetry's
    /// samplers that are not parent-based do. Children of the current span still follow
    /// it; a B3 debug flag still forces sampling.
    #[must_use]
    pub fn ignoring_parent(sampler: impl Sampler) -> Self {
        Sampling {
            new_traces: Arc::new(sampler),
            follow_parent: false,
        }
    }

    /// Parent-based, recording the fraction `ratio` of new traces ([`TraceIdRatio`]).
    ///
    /// # Errors
    /// When `ratio` is not a number between 0 and 1.
    pub fn ratio(ratio: f64) -> Result<Self, SamplingError> {
        TraceIdRatio::new(ratio).map(Self::parent_based)
    }

    /// Whether a new trace is recorded.
    fn sample_new_trace(&self, trace_id: TraceId, name: &str, tags: &TagList) -> bool {
        self.new_traces
            .should_sample(&SamplingStart::new(trace_id, name, tags, None))
    }

    /// Whether the child of the explicit parent `parent` is recorded.
    fn sample_child(&self, parent: &SpanContext, name: &str, tags: &TagList) -> bool {
        if self.follow_parent || parent.is_debug() {
            return parent.is_sampled();
        }
        self.new_traces.should_sample(&SamplingStart::new(
            parent.trace_id(),
            name,
            tags,
            Some(parent),
        ))
    }

    /// The policy that `OTEL_TRACES_SAMPLER` and `OTEL_TRACES_SAMPLER_ARG` name, or the
    /// lstrace variables `LS_SAMPLING_RATIO` (parent-based ratio) and
    /// `LS_SAMPLING_MAX_TRACES_PER_SECOND` (a rate limit on the new traces the rest records),
    /// which take precedence. `Ok(None)` when none is set.
    ///
    /// # Errors
    /// An unknown sampler name or a value out of range, in words.
    #[cfg(feature = "reporter")]
    pub(crate) fn from_vars(
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Sampling>, SamplingError> {
        let var = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        let ratio = |name: &str, value: &str| {
            value
                .trim()
                .parse::<f64>()
                .map_err(|_| SamplingError::new(format!("{name}={value:?} is not a number")))
                .and_then(TraceIdRatio::new)
                .map_err(|e| SamplingError::new(format!("{name}={value:?}: {e}")))
        };
        let mut policy = None;
        if let Some(name) = var("OTEL_TRACES_SAMPLER") {
            let arg = var("OTEL_TRACES_SAMPLER_ARG");
            let arg_ratio = || match &arg {
                Some(value) => ratio("OTEL_TRACES_SAMPLER_ARG", value),
                None => TraceIdRatio::new(1.0),
            };
            policy = Some(match name.trim().to_ascii_lowercase().as_str() {
                "always_on" => Sampling::ignoring_parent(AlwaysOn),
                "always_off" => Sampling::ignoring_parent(AlwaysOff),
                "traceidratio" => Sampling::ignoring_parent(arg_ratio()?),
                "parentbased_always_on" => Sampling::parent_based(AlwaysOn),
                "parentbased_always_off" => Sampling::parent_based(AlwaysOff),
                "parentbased_traceidratio" => Sampling::parent_based(arg_ratio()?),
                other => {
                    return Err(SamplingError::new(format!(
                        "OTEL_TRACES_SAMPLER={other:?} is not a sampler lstrace knows \
                         (always_on, always_off, traceidratio, parentbased_always_on, \
                         parentbased_always_off, parentbased_traceidratio)"
                    )))
                }
            });
        }
        if let Some(value) = var("LS_SAMPLING_RATIO") {
            policy = Some(Sampling::parent_based(ratio("LS_SAMPLING_RATIO", &value)?));
        }
        if let Some(value) = var("LS_SAMPLING_MAX_TRACES_PER_SECOND") {
            let name = "LS_SAMPLING_MAX_TRACES_PER_SECOND";
            let per_second = value
                .trim()
                .parse::<f64>()
                .map_err(|_| SamplingError::new(format!("{name}={value:?} is not a number")))?;
            let base = policy.unwrap_or_default();
            let limited = RateLimited::new(per_second, SharedSampler(base.new_traces))
                .map_err(|e| SamplingError::new(format!("{name}={value:?}: {e}")))?;
            policy = Some(Sampling {
                new_traces: Arc::new(limited),
                follow_parent: base.follow_parent,
            });
        }
        Ok(policy)
    }
}

impl Default for Sampling {
    /// Parent-based, recording every new trace.
    fn default() -> Self {
        Sampling::parent_based(AlwaysOn)
    }
}

impl fmt::Debug for Sampling {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sampling")
            .field("follow_parent", &self.follow_parent)
            .finish_non_exhaustive()
    }
}

/// A sampler already shared by a policy, wrapped by another (the environment's rate limit).
#[cfg(feature = "reporter")]
struct SharedSampler(Arc<dyn Sampler>);

#[cfg(feature = "reporter")]
impl Sampler for SharedSampler {
    fn should_sample(&self, start: &SamplingStart<'_>) -> bool {
        self.0.should_sample(start)
    }
}

/// Bumped by every [`set_global`]; zero while the default policy is in force, which then
/// costs a new trace a load and a branch.
static GENERATION: AtomicU64 = AtomicU64::new(0);
static GLOBAL: Mutex<Option<Arc<Sampling>>> = Mutex::new(None);

thread_local! {
    /// This thread's copy of the global policy and its generation: threads read it without
    /// touching a shared lock or reference count.
    static CACHED: RefCell<(u64, Option<Arc<Sampling>>)> = const { RefCell::new((0, None)) };
}

/// Makes `policy` the process's sampling policy (`init` does this with its options').
pub fn set_global(policy: Sampling) {
    let mut global = GLOBAL.lock().unwrap_or_else(PoisonError::into_inner);
    *global = Some(Arc::new(policy));
    GENERATION.fetch_add(1, Ordering::Release);
}

/// The process's sampling policy.
#[must_use]
pub fn global() -> Sampling {
    global_arc().map_or_else(Sampling::default, |p| (*p).clone())
}

fn global_arc() -> Option<Arc<Sampling>> {
    GLOBAL
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
}

/// Runs `decide` with the global policy, `None` for the default one.
#[inline]
fn with_policy(decide: impl Fn(Option<&Sampling>) -> bool) -> bool {
    let generation = GENERATION.load(Ordering::Acquire);
    if generation == 0 {
        return decide(None);
    }
    let cached = CACHED.try_with(|cached| {
        // A sampler that starts spans itself finds the cache borrowed: it reads the global.
        let mut cached = cached.try_borrow_mut().ok()?;
        if cached.0 != generation {
            *cached = (generation, global_arc());
        }
        Some(decide(cached.1.as_deref()))
    });
    match cached {
        Ok(Some(decision)) => decision,
        _ => decide(global_arc().as_deref()),
    }
}

/// Whether the new trace `trace_id`, starting with the span `name` and `tags`, is recorded.
#[inline]
pub(crate) fn sample_new_trace(trace_id: TraceId, name: &str, tags: &TagList) -> bool {
    with_policy(|policy| policy.is_none_or(|p| p.sample_new_trace(trace_id, name, tags)))
}

/// True when children of explicit parents follow their decision (the policy is parent-based).
#[cfg(feature = "tower")]
pub(crate) fn follows_parent() -> bool {
    with_policy(|policy| policy.is_none_or(|p| p.follow_parent))
}

/// Whether a span named `name` with `tags`, the child of the explicit parent `parent`, is
/// recorded.
#[inline]
pub(crate) fn sample_child(parent: &SpanContext, name: &str, tags: &TagList) -> bool {
    with_policy(|policy| match policy {
        None => parent.is_sampled(),
        Some(p) => p.sample_child(parent, name, tags),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::id::SpanId;
    use proptest::prelude::*;
    use std::sync::atomic::AtomicU64;

    fn decides(sampler: &impl Sampler, trace_id: TraceId) -> bool {
        sampler.should_sample(&SamplingStart::new(trace_id, "op", &TagList::new(), None))
    }

    #[test]
    fn ratio_bounds_and_errors() {
        let all = TraceIdRatio::new(1.0).unwrap();
        let none = TraceIdRatio::new(0.0).unwrap();
        for id in [0, 1, RANDOM_MASK, u64::MAX] {
            assert!(all.samples(TraceId(u128::from(id))));
            assert!(!none.samples(TraceId(u128::from(id))));
        }
        for bad in [-0.1, 1.5, f64::NAN, f64::INFINITY] {
            let error = TraceIdRatio::new(bad).unwrap_err().to_string();
            assert!(error.contains("between 0 and 1"), "{error}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Over many random trace ids, the fraction recorded is the ratio, within five
        /// standard deviations.
        #[test]
        fn ratio_records_its_fraction_of_random_traces(ratio in 0.0f64..=1.0) {
            let sampler = TraceIdRatio::new(ratio).unwrap();
            let n = 20_000u32;
            let recorded = (0..n).filter(|_| decides(&sampler, TraceId::random())).count();
            let expected = ratio * f64::from(n);
            let sigma = (f64::from(n) * ratio * (1.0 - ratio)).sqrt();
            prop_assert!(
                (recorded as f64 - expected).abs() <= 5.0 * sigma + 1.0,
                "ratio {ratio}: {recorded} of {n}"
            );
        }

        /// Services with the same ratio agree on every trace, and a larger ratio records
        /// every trace a smaller one does.
        #[test]
        fn ratio_decisions_agree_and_nest(a in 0.0f64..=1.0, b in 0.0f64..=1.0, id: u128) {
            let (low, high) = (TraceIdRatio::new(a.min(b)).unwrap(), TraceIdRatio::new(a.max(b)).unwrap());
            let trace = TraceId(id);
            prop_assert_eq!(low.samples(trace), TraceIdRatio::new(a.min(b)).unwrap().samples(trace));
            prop_assert!(!low.samples(trace) || high.samples(trace));
        }

        /// With a clock the test moves, a rate limiter never records more than its burst plus
        /// its rate times the time that passed, and records at its rate when asked more often.
        #[test]
        fn rate_limit_holds_over_time(
            per_second in 1u32..500,
            steps in proptest::collection::vec((0u64..200_000_000, 0u32..20), 1..200),
        ) {
            let nanos = Arc::new(AtomicU64::new(0));
            let clock = {
                let nanos = nanos.clone();
                Arc::new(move || Duration::from_nanos(nanos.load(Ordering::Relaxed)))
            };
            let per_second = f64::from(per_second);
            let limiter = RateLimited::with_clock(per_second, AlwaysOn, clock).unwrap();
            let mut recorded = 0u64;
            for (advance, requests) in &steps {
                nanos.fetch_add(*advance, Ordering::Relaxed);
                recorded += (0..*requests).filter(|_| decides(&limiter, TraceId::random())).count() as u64;
                let elapsed = Duration::from_nanos(nanos.load(Ordering::Relaxed)).as_secs_f64();
                prop_assert!(recorded as f64 <= per_second + per_second * elapsed + 1e-6);
            }
            // Flooded for ten seconds, one request every millisecond: the rate is reached.
            let before = recorded;
            for _ in 0..10_000 {
                nanos.fetch_add(1_000_000, Ordering::Relaxed);
                recorded += u64::from(decides(&limiter, TraceId::random()));
            }
            let flood = (recorded - before) as f64;
            let wanted = (per_second * 10.0).min(10_000.0);
            prop_assert!(flood >= wanted - 1.0 && flood <= wanted + per_second + 1.0, "{flood} for {wanted}");
        }
    }

    #[test]
    fn rate_limit_combines_with_a_ratio_and_survives_a_clock_going_back() {
        let nanos = Arc::new(AtomicU64::new(5_000_000_000));
        let clock = {
            let nanos = nanos.clone();
            Arc::new(move || Duration::from_nanos(nanos.load(Ordering::Relaxed)))
        };
        let limiter =
            RateLimited::with_clock(2.0, TraceIdRatio::new(0.0).unwrap(), clock.clone()).unwrap();
        assert!(
            !decides(&limiter, TraceId(u128::MAX)),
            "the ratio says no first"
        );
        let limiter = RateLimited::with_clock(2.0, AlwaysOn, clock).unwrap();
        assert!(decides(&limiter, TraceId(1)) && decides(&limiter, TraceId(2)));
        assert!(!decides(&limiter, TraceId(3)), "two a second, burst spent");
        nanos.store(1, Ordering::Relaxed);
        assert!(
            !decides(&limiter, TraceId(4)),
            "no tokens from a clock going back"
        );
        nanos.store(5_500_000_000, Ordering::Relaxed);
        assert!(decides(&limiter, TraceId(5)), "half a second: one more");
        for bad in [-1.0, f64::NAN, f64::INFINITY] {
            assert!(RateLimited::new(bad, AlwaysOn).is_err());
        }
        let never = RateLimited::new(0.0, AlwaysOn).unwrap();
        assert!(!decides(&never, TraceId(6)));
    }

    #[test]
    fn parent_based_follows_and_ignoring_parent_decides() {
        let tags = TagList::new();
        let sampled = SpanContext::new(TraceId(u128::MAX), SpanId::random(), true);
        let unsampled = sampled.clone().with_sampled(false);
        let follow = Sampling::parent_based(AlwaysOff);
        assert!(follow.sample_child(&sampled, "op", &tags));
        assert!(!follow.sample_child(&unsampled, "op", &tags));
        assert!(!follow.sample_new_trace(TraceId(1), "op", &tags));
        let on = Sampling::ignoring_parent(AlwaysOn);
        assert!(on.sample_child(&unsampled, "op", &tags));
        let off = Sampling::ignoring_parent(AlwaysOff);
        assert!(!off.sample_child(&sampled, "op", &tags));
        assert!(off.sample_child(&unsampled.clone().with_debug(true), "op", &tags));
        let by_parent = Sampling::ignoring_parent(|s: &SamplingStart<'_>| {
            s.parent().is_some_and(SpanContext::is_sampled)
        });
        assert!(by_parent.sample_child(&sampled, "op", &tags));
        assert!(!by_parent.sample_new_trace(TraceId(1), "op", &tags));
    }

    #[cfg(feature = "reporter")]
    fn from_env(vars: &[(&str, &str)]) -> Result<Option<Sampling>, SamplingError> {
        Sampling::from_vars(|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[cfg(feature = "reporter")]
    type Vars = &'static [(&'static str, &'static str)];
    #[cfg(feature = "reporter")]
    type Behaviour = (bool, bool, bool, bool);

    /// How a policy decides: (new trace with random bits 0, new trace with all random
    /// bits set, child of a sampled parent, child of an unsampled parent).
    #[cfg(feature = "reporter")]
    fn behaviour(policy: &Sampling) -> Behaviour {
        let tags = TagList::new();
        let parent = SpanContext::new(TraceId(1), SpanId::random(), true);
        (
            policy.sample_new_trace(TraceId(0), "op", &tags),
            policy.sample_new_trace(TraceId(u128::from(RANDOM_MASK)), "op", &tags),
            policy.sample_child(&parent, "op", &tags),
            policy.sample_child(&parent.clone().with_sampled(false), "op", &tags),
        )
    }

    #[cfg(feature = "reporter")]
    #[test]
    fn the_environment_names_policies() {
        assert!(from_env(&[]).unwrap().is_none());
        let cases: [(Vars, Behaviour); 9] = [
            (
                &[("OTEL_TRACES_SAMPLER", "always_on")],
                (true, true, true, true),
            ),
            (
                &[("OTEL_TRACES_SAMPLER", "always_off")],
                (false, false, false, false),
            ),
            (
                &[
                    ("OTEL_TRACES_SAMPLER", "traceidratio"),
                    ("OTEL_TRACES_SAMPLER_ARG", "0.5"),
                ],
                (false, true, false, false),
            ),
            (
                &[("OTEL_TRACES_SAMPLER", "traceidratio")],
                (true, true, true, true),
            ),
            (
                &[("OTEL_TRACES_SAMPLER", "parentbased_always_on")],
                (true, true, true, false),
            ),
            (
                &[("OTEL_TRACES_SAMPLER", "ParentBased_Always_Off")],
                (false, false, true, false),
            ),
            (
                &[
                    ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
                    ("OTEL_TRACES_SAMPLER_ARG", "0.5"),
                ],
                (false, true, true, false),
            ),
            (
                &[
                    ("OTEL_TRACES_SAMPLER", "always_on"),
                    ("LS_SAMPLING_RATIO", " 0 "),
                ],
                (false, false, true, false),
            ),
            (
                &[
                    ("LS_SAMPLING_RATIO", "1"),
                    ("LS_SAMPLING_MAX_TRACES_PER_SECOND", "0"),
                ],
                (false, false, true, false),
            ),
        ];
        for (vars, expected) in cases {
            let policy = from_env(vars).unwrap().expect("a policy");
            assert_eq!(behaviour(&policy), expected, "{vars:?}");
        }
    }

    #[cfg(feature = "reporter")]
    #[test]
    fn bad_environment_values_are_explained() {
        let cases: [(Vars, &str); 5] = [
            (
                &[("OTEL_TRACES_SAMPLER", "jaeger_remote")],
                "not a sampler lstrace knows",
            ),
            (
                &[
                    ("OTEL_TRACES_SAMPLER", "traceidratio"),
                    ("OTEL_TRACES_SAMPLER_ARG", "half"),
                ],
                "OTEL_TRACES_SAMPLER_ARG=\"half\" is not a number",
            ),
            (&[("LS_SAMPLING_RATIO", "1.5")], "between 0 and 1"),
            (&[("LS_SAMPLING_MAX_TRACES_PER_SECOND", "-3")], "at least 0"),
            (
                &[("LS_SAMPLING_MAX_TRACES_PER_SECOND", "many")],
                "is not a number",
            ),
        ];
        for (vars, message) in cases {
            let error = from_env(vars).expect_err("an error").to_string();
            assert!(error.contains(message), "{vars:?}: {error}");
        }
    }
}
