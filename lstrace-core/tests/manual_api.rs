//! The manual span API: builder options, live spans, baggage, handing context to threads.

use lstrace_core::testing::TestRecorder;
use lstrace_core::{span, Relationship, SpanContext, SpanId, TagValue, TraceId};
use std::time::{Duration, Instant, SystemTime};

#[test]
fn builder_sets_tags_kind_and_references() {
    let capture = TestRecorder::install().capture();
    let (parent_ctx, follower_parent) = capture.in_scope(|| {
        let parent = span("parent").with_tag("n", 1).with_tag("n", 2).start();
        let ctx = parent.context().unwrap();
        let _child = span("child").kind(lstrace_core::SpanKind::Client).start();
        drop(_child);
        let follower = span("follower").follows_from_current().start();
        let follower_ctx = follower.context().unwrap();
        drop(follower);
        (ctx, follower_ctx)
    });
    assert_eq!(
        capture.tree(),
        "parent [n=2]\n  child [span.kind=client]\n  follower\n"
    );
    let child = capture.span("child").unwrap();
    assert_eq!(
        child.parent(),
        Some((Relationship::ChildOf, parent_ctx.span_id().get()))
    );
    assert_eq!(child.context().trace_id(), parent_ctx.trace_id());
    let follower = capture.span("follower").unwrap();
    assert_eq!(
        follower.parent(),
        Some((Relationship::FollowsFrom, parent_ctx.span_id().get()))
    );
    assert_eq!(follower.context().span_id(), follower_parent.span_id());
    assert_eq!(
        capture.span("parent").unwrap().tag("n"),
        Some(&TagValue::Int(2))
    );
}

#[test]
fn explicit_parent_and_follows_from_override_the_current_span() {
    let recorder = TestRecorder::install();
    let remote = SpanContext::new(
        TraceId::from_u128(0xabc << 64 | 0xdef),
        SpanId::new(42).unwrap(),
        true,
    );
    let capture = recorder.capture();
    capture.in_scope(|| {
        span("from remote").child_of(&remote).start().finish();
        span("after remote").follows_from(&remote).start().finish();
    });
    let spans = recorder.trace(remote.trace_id());
    let child = spans.iter().find(|s| s.name() == "from remote").unwrap();
    assert_eq!(child.parent(), Some((Relationship::ChildOf, 42)));
    assert_eq!(
        child.context().trace_id(),
        remote.trace_id(),
        "all 128 bits are kept"
    );
    let follower = spans.iter().find(|s| s.name() == "after remote").unwrap();
    assert_eq!(follower.parent(), Some((Relationship::FollowsFrom, 42)));
    assert!(
        capture.spans().is_empty(),
        "spans with an explicit parent leave the capture"
    );
}

#[test]
fn root_starts_a_new_trace() {
    let recorder = TestRecorder::install();
    let capture = recorder.capture();
    let root_ctx = capture.in_scope(|| {
        let _outer = span("outer").start();
        let root = span("fresh").root().start();
        root.context().unwrap()
    });
    assert_ne!(root_ctx.trace_id(), capture.context().trace_id());
    let fresh = recorder.trace(root_ctx.trace_id());
    assert_eq!(fresh.len(), 1);
    assert_eq!(fresh[0].parent(), None);
}

/// How far a span's duration may be from the same stretch measured by the standard library's
/// clocks: 1% for the rates (the span clock's is known to a few hundred ppm) and 100 µs for
/// the readings. A clock at half or double speed is far outside it.
fn tolerance(measured: Duration) -> Duration {
    measured / 100 + Duration::from_micros(100)
}

#[test]
fn explicit_start_time_and_monotonic_duration() {
    let capture = TestRecorder::install().capture();
    let started = SystemTime::now() - Duration::from_secs(3);
    // Wall-clock readings just before and just after the finish.
    let (before_finish, after_finish) = capture.in_scope(|| {
        let late = span("late").start_time(started).start();
        let before = SystemTime::now();
        late.finish();
        (before, SystemTime::now())
    });
    let late = capture.span("late").unwrap();
    let skew = late
        .start_time()
        .duration_since(started)
        .unwrap_or_else(|e| e.duration());
    assert!(
        skew < Duration::from_millis(50),
        "start {:?} vs {:?}",
        late.start_time(),
        started
    );
    // From the given start to the finish, on the wall clock: the rate does not enter (the
    // start is not a clock reading), only where the finish is placed.
    let (shortest, longest) = (
        before_finish.duration_since(started).unwrap(),
        after_finish.duration_since(started).unwrap(),
    );
    let slack = Duration::from_micros(100);
    assert!(
        late.duration() + slack >= shortest && late.duration() <= longest + slack,
        "{:?}, finished {shortest:?} to {longest:?} after its start",
        late.duration()
    );

    // `Instant` readings around the span: outside its start and finish (the span cannot be
    // longer), and inside them (it cannot be shorter). The sleep only makes the stretch long
    // enough for a wrong rate to show.
    let (outer, inner) = capture.in_scope(|| {
        let outer = Instant::now();
        let s = span("timed").start();
        let inner = Instant::now();
        std::thread::sleep(Duration::from_millis(20));
        let inner = inner.elapsed();
        s.finish();
        (outer.elapsed(), inner)
    });
    let timed = capture.span("timed").unwrap();
    assert!(
        timed.duration() + tolerance(inner) >= inner
            && timed.duration() <= outer + tolerance(outer),
        "{:?}, measured {inner:?} inside its start and finish, {outer:?} outside",
        timed.duration()
    );
    let now = SystemTime::now();
    assert!(timed.start_time() <= now && timed.start_time() > now - Duration::from_secs(60));
}

#[test]
fn live_spans_take_tags_logs_and_baggage() {
    let capture = TestRecorder::install().capture();
    capture.in_scope(|| {
        let mut outer = span("outer").start();
        outer.set_tag("ok", true);
        outer.log([("event", "started")]);
        outer.set_baggage_item("tenant", "acme");
        {
            let _inner = span("inner").start();
            lstrace_core::set_tag("depth", 2.5);
            lstrace_core::log([("event", TagValue::from("step")), ("n", TagValue::Int(1))]);
            assert_eq!(
                lstrace_core::baggage_item("tenant").as_deref(),
                Some("acme")
            );
            lstrace_core::set_baggage_item("user", "ann");
            let _leaf = span("leaf").start();
            assert_eq!(lstrace_core::baggage_item("user").as_deref(), Some("ann"));
            lstrace_core::record_error(&"disk full");
        }
        assert_eq!(
            lstrace_core::baggage_item("user"),
            None,
            "baggage flows down, not up"
        );
    });
    assert_eq!(
        capture.tree_with(lstrace_core::testing::tree::TreeStyle::default().with_logs(true)),
        "outer [ok=true]\n  - event=started\n  inner [depth=2.5]\n    - event=step, n=1\n    leaf [error=true]\n      - event=error, message=disk full\n"
    );
    let leaf = capture.span("leaf").unwrap();
    assert_eq!(leaf.context().baggage_item("tenant"), Some("acme"));
    assert_eq!(leaf.context().baggage_item("user"), Some("ann"));
}

#[test]
fn logs_beyond_the_limit_are_dropped_and_counted() {
    let capture = TestRecorder::install().capture();
    capture.in_scope(|| {
        let mut s = span("chatty").start();
        for i in 0..510 {
            s.log([("i", i)]);
        }
    });
    let chatty = capture.span("chatty").unwrap();
    assert_eq!(chatty.logs().len(), 500);
    assert_eq!(chatty.dropped_logs(), 10);
    assert_eq!(chatty.logs()[499].field("i"), Some(&TagValue::Int(499)));
}

#[test]
fn context_moves_to_a_thread_and_is_entered_there() {
    let capture = TestRecorder::install().capture();
    capture.in_scope(|| {
        let _parent = span("parent").start();
        let context = lstrace_core::current().unwrap();
        std::thread::spawn(move || {
            let _entered = context.enter();
            let _child = span("on thread").start();
        })
        .join()
        .unwrap();
        let mut detached = span("detached").start_detached();
        std::thread::spawn(move || {
            detached.in_scope(|| span("inside detached").start().finish());
            detached.set_tag("moved", true);
        })
        .join()
        .unwrap();
    });
    assert_eq!(
        capture.tree(),
        "parent\n  on thread\n  detached [moved=true]\n    inside detached\n"
    );
}

#[test]
fn a_detached_span_finishes_when_dropped() {
    let capture = TestRecorder::install().capture();
    capture.in_scope(|| {
        let mut s = span("dropped").start_detached();
        s.log([("event", "x")]);
    });
    assert_eq!(capture.tree(), "dropped\n");
}

#[test]
fn out_of_order_entered_spans_keep_the_stack_consistent() {
    let capture = TestRecorder::install().capture();
    capture.in_scope(|| {
        let a = span("a").start();
        let b = span("b").start();
        drop(a);
        let _c = span("c").start();
        drop(b);
        let _d = span("d").start();
    });
    // a and b are gone when d starts; c is still open, so d nests under c.
    assert_eq!(capture.tree(), "a\n  b\n    c\n      d\n");
}
