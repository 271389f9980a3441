//! `#[traced]` on every kind of synchronous function, with every argument. The lints below
//! make `cargo clippy` check that the expansion raises no warning in a strict crate.
#![deny(warnings, clippy::all, clippy::pedantic, unsafe_op_in_unsafe_fn)]

use lstrace::testing::{Capture, TestRecorder};
use lstrace::{traced, Relationship, TagValue};
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};

fn capture() -> Capture {
    TestRecorder::install().capture()
}

fn tag(capture: &Capture, span: &str, key: &str) -> Option<TagValue> {
    capture
        .span(span)
        .unwrap_or_else(|| panic!("no span {span}"))
        .tag(key)
        .cloned()
}

fn text(s: &str) -> TagValue {
    TagValue::from(s.to_owned())
}

#[traced]
fn leaf(x: u32) -> u32 {
    x + 1
}

#[traced]
fn parent(x: u32) -> u32 {
    leaf(x) + leaf(x + 1)
}

#[test]
fn plain_function_is_a_span_named_after_it_with_its_callees_as_children() {
    let capture = capture();
    assert_eq!(capture.in_scope(|| parent(1)), 5);
    assert_eq!(capture.tree(), "parent\n  leaf\n  leaf\n");
}

#[traced(name = "custom name")]
fn renamed() {}

#[traced(name = "kinded", kind = client)]
fn client_call() {}

#[test]
fn name_and_kind() {
    let capture = capture();
    capture.in_scope(|| {
        renamed();
        client_call();
    });
    assert_eq!(capture.tree(), "custom name\nkinded [span.kind=client]\n");
}

#[derive(Debug)]
struct Point {
    x: i32,
}

impl fmt::Display for Point {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "({})", self.x)
    }
}

#[traced(tags(
    int = 3,
    negative = -4,
    float = 1.5,
    small = 0.1f32,
    byte = 255u8,
    huge = 18_446_744_073_709_551_615u64,
    flag = true,
    "http.method" = "GET",
    computed = count * 2,
    name_len = label.len(),
    label = label,
    owned = String::from("o"),
    maybe = Some(count),
    debug = ?point,
    display = %point,
    r#type = "raw key",
))]
fn tagged(count: u32, label: &str, point: &Point) -> usize {
    label.len() + usize::try_from(count).unwrap_or(0) + usize::try_from(point.x).unwrap_or(0)
}

#[test]
fn tags_keep_their_types_and_may_use_the_arguments() {
    let capture = capture();
    let point = Point { x: 2 };
    assert_eq!(capture.in_scope(|| tagged(5, "abc", &point)), 10);
    let t = |key| tag(&capture, "tagged", key);
    assert_eq!(t("int"), Some(TagValue::Int(3)));
    assert_eq!(t("negative"), Some(TagValue::Int(-4)));
    assert_eq!(t("float"), Some(TagValue::Float(1.5)));
    assert_eq!(t("small"), Some(TagValue::Float(f64::from(0.1f32))));
    assert_eq!(t("byte"), Some(TagValue::Int(255)));
    // Past `i64`, an integer is recorded as its decimal text, as a `u64` variable would be.
    assert_eq!(t("huge"), Some(text("18446744073709551615")));
    assert_eq!(t("flag"), Some(TagValue::Bool(true)));
    assert_eq!(t("http.method"), Some(TagValue::from_static("GET")));
    assert_eq!(t("computed"), Some(TagValue::Int(10)));
    assert_eq!(t("name_len"), Some(TagValue::Int(3)));
    assert_eq!(t("label"), Some(text("abc")));
    assert_eq!(t("owned"), Some(text("o")));
    assert_eq!(t("maybe"), Some(TagValue::Int(5)));
    assert_eq!(t("debug"), Some(text("Point { x: 2 }")));
    assert_eq!(t("display"), Some(text("(2)")));
    assert_eq!(t("type"), Some(text("raw key")));
}

#[test]
fn literal_string_tags_borrow_the_literal() {
    let capture = capture();
    capture.in_scope(|| tagged(1, "a", &Point { x: 0 }));
    let span = capture.span("tagged").expect("recorded");
    // A literal is recorded as `TagValue::from_static`: the string is borrowed, not copied.
    assert!(matches!(
        span.tag("http.method"),
        Some(TagValue::Str(s)) if s.is_static() && *s == "GET"
    ));
    assert!(matches!(
        span.tag("label"),
        Some(TagValue::Str(s)) if !s.is_static()
    ));
}

static EVALUATED: AtomicUsize = AtomicUsize::new(0);

fn counted(n: u32) -> u32 {
    EVALUATED.fetch_add(1, Ordering::SeqCst);
    n
}

#[traced(tags(n = counted(n)))]
fn evaluates_its_tag(n: u32) -> u32 {
    n
}

#[test]
fn tag_expressions_are_evaluated_once_when_the_span_starts() {
    let capture = capture();
    let before = EVALUATED.load(Ordering::SeqCst);
    assert_eq!(capture.in_scope(|| evaluates_its_tag(4)), 4);
    assert_eq!(EVALUATED.load(Ordering::SeqCst) - before, 1);
    assert_eq!(
        tag(&capture, "evaluates_its_tag", "n"),
        Some(TagValue::Int(4))
    );
}

#[traced(args(id, ?point, %shown, flag))]
#[allow(clippy::needless_pass_by_value)]
fn with_args(id: u64, point: Point, shown: Point, flag: bool, not_recorded: u8) -> u8 {
    let _ = (id, point, shown, flag);
    not_recorded
}

#[test]
fn args_records_the_named_parameters_only() {
    let capture = capture();
    capture.in_scope(|| with_args(9, Point { x: 1 }, Point { x: 2 }, false, 7));
    assert_eq!(
        capture.tree(),
        "with_args [flag=false, id=9, point=Point { x: 1 }, shown=(2)]\n"
    );
    assert_eq!(tag(&capture, "with_args", "id"), Some(TagValue::Int(9)));
    assert_eq!(
        tag(&capture, "with_args", "flag"),
        Some(TagValue::Bool(false))
    );
}

#[derive(Debug, PartialEq)]
struct ParseFailure(String);

impl fmt::Display for ParseFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot parse {:?}", self.0)
    }
}

#[traced(err)]
fn parse(s: &str) -> Result<i64, ParseFailure> {
    if s.is_empty() {
        // An early return is seen too.
        return Err(ParseFailure(String::new()));
    }
    s.parse().map_err(|_| ParseFailure(s.to_owned()))
}

#[traced(err(?))]
fn parse_debug(s: &str) -> Result<i64, ParseFailure> {
    s.parse().map_err(|_| ParseFailure(s.to_owned()))
}

#[traced(err)]
fn sum(a: &str, b: &str) -> Result<i64, Box<dyn std::error::Error>> {
    // `?` converts into the declared error type, as it would without the macro.
    let a: i64 = a.parse()?;
    let b: i64 = b.parse()?;
    Ok(a + b)
}

fn error_log(capture: &Capture, span: &str) -> Vec<(String, String)> {
    let span = capture.span(span).expect("recorded");
    assert_eq!(span.tag("error"), Some(&TagValue::Bool(true)));
    span.logs()[0]
        .fields()
        .iter()
        .map(|f| (f.key.to_string(), f.value.to_string()))
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn err_marks_the_span_and_logs_the_error() {
    let capture = capture();
    capture.in_scope(|| {
        assert_eq!(parse("x"), Err(ParseFailure("x".to_owned())));
    });
    assert_eq!(
        error_log(&capture, "parse"),
        pairs(&[("event", "error"), ("message", "cannot parse \"x\"")])
    );

    let capture = self::capture();
    capture.in_scope(|| assert!(parse("").is_err()));
    assert_eq!(
        error_log(&capture, "parse"),
        pairs(&[("event", "error"), ("message", "cannot parse \"\"")])
    );

    let capture = self::capture();
    capture.in_scope(|| assert!(parse_debug("y").is_err()));
    assert_eq!(
        error_log(&capture, "parse_debug"),
        pairs(&[("event", "error"), ("message", "ParseFailure(\"y\")")])
    );

    let capture = self::capture();
    capture.in_scope(|| assert!(sum("1", "z").is_err()));
    assert_eq!(
        error_log(&capture, "sum"),
        pairs(&[
            ("event", "error"),
            ("message", "invalid digit found in string")
        ])
    );
}

#[test]
fn err_leaves_a_successful_call_unmarked() {
    let capture = capture();
    assert_eq!(capture.in_scope(|| parse("12")), Ok(12));
    assert_eq!(capture.in_scope(|| sum("1", "2")).ok(), Some(3));
    assert_eq!(capture.tree(), "parse\nsum\n");
    assert!(capture.spans().iter().all(|s| s.logs().is_empty()));
}

#[traced(ret)]
fn typed_return(x: i32) -> i32 {
    x * 10
}

#[traced(ret(?))]
fn debug_return(x: i32) -> Option<Point> {
    Some(Point { x })
}

#[traced(ret(%))]
fn display_return(x: i32) -> Point {
    Point { x }
}

#[traced(err, ret)]
fn checked_half(x: u32) -> Result<u32, String> {
    if x % 2 == 1 {
        return Err(format!("{x} is odd"));
    }
    Ok(x / 2)
}

#[traced(ret(?))]
fn result_as_a_whole(x: u32) -> Result<u32, String> {
    Ok(x)
}

#[test]
fn ret_records_the_returned_value() {
    let capture = capture();
    capture.in_scope(|| {
        assert_eq!(typed_return(4), 40);
        assert_eq!(debug_return(5).map(|p| p.x), Some(5));
        assert_eq!(display_return(6).x, 6);
        assert_eq!(checked_half(8), Ok(4));
        assert_eq!(result_as_a_whole(1), Ok(1));
    });
    assert_eq!(
        tag(&capture, "typed_return", "return"),
        Some(TagValue::Int(40))
    );
    assert_eq!(
        tag(&capture, "debug_return", "return"),
        Some(text("Some(Point { x: 5 })"))
    );
    assert_eq!(tag(&capture, "display_return", "return"), Some(text("(6)")));
    assert_eq!(
        tag(&capture, "checked_half", "return"),
        Some(TagValue::Int(4))
    );
    assert_eq!(
        tag(&capture, "result_as_a_whole", "return"),
        Some(text("Ok(1)"))
    );
}

#[test]
fn ret_with_err_records_the_error_and_no_return_value() {
    let capture = capture();
    assert!(capture.in_scope(|| checked_half(3)).is_err());
    assert_eq!(tag(&capture, "checked_half", "return"), None);
    assert_eq!(
        error_log(&capture, "checked_half"),
        pairs(&[("event", "error"), ("message", "3 is odd")])
    );
}

#[traced(follows_from)]
fn follower() {}

#[traced]
fn leader() {
    follower();
}

#[traced(root)]
fn new_trace() -> Option<lstrace::SpanContext> {
    lstrace::current()
}

#[test]
fn follows_from_references_the_current_span() {
    let capture = capture();
    capture.in_scope(leader);
    let leader = capture.span("leader").expect("leader");
    let follower = capture.span("follower").expect("follower");
    assert_eq!(
        follower.parent(),
        Some((Relationship::FollowsFrom, leader.context().span_id().get()))
    );
    assert_eq!(capture.tree(), "leader\n  follower\n");
}

#[test]
fn root_starts_a_new_trace() {
    let capture = capture();
    let context = capture.in_scope(new_trace).expect("recording");
    assert_ne!(context.trace_id(), capture.context().trace_id());
    assert_eq!(capture.tree(), "");
    let trace = TestRecorder::install().trace(context.trace_id());
    assert_eq!(trace.len(), 1);
    assert_eq!(trace[0].name(), "new_trace");
    assert_eq!(trace[0].parent(), None);
}

#[test]
fn under_an_unsampled_span_only_root_spans_record() {
    let recorder = TestRecorder::install();
    let (unsampled, sampled_root) = {
        let _unsampled = lstrace::span("unsampled").root().sampled(false).start();
        assert_eq!(parent(1), 5);
        (
            lstrace::current().expect("the unsampled root is current"),
            new_trace().expect("a root span records"),
        )
    };
    assert!(!unsampled.is_sampled());
    assert!(recorder.trace(unsampled.trace_id()).is_empty());
    assert!(sampled_root.is_sampled());
    let trace = recorder.trace(sampled_root.trace_id());
    assert_eq!(trace.len(), 1);
    assert_eq!(trace[0].name(), "new_trace");
}

struct Counter {
    count: u32,
}

impl Counter {
    #[traced(args(by))]
    fn add(&mut self, by: u32) -> u32 {
        self.count += by;
        self.count
    }

    #[traced(tags(count = self.count), ret)]
    fn get(&self) -> u32 {
        self.count
    }

    #[traced(args(?self))]
    fn into_count(self) -> u32 {
        self.count
    }
}

impl fmt::Debug for Counter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Counter({})", self.count)
    }
}

#[test]
fn methods_with_every_receiver() {
    let capture = capture();
    let total = capture.in_scope(|| {
        let mut counter = Counter { count: 0 };
        counter.add(2);
        assert_eq!(counter.get(), 2);
        counter.into_count()
    });
    assert_eq!(total, 2);
    assert_eq!(
        capture.tree(),
        "add [by=2]\nget [count=2, return=2]\ninto_count [self=Counter(2)]\n"
    );
}

trait Shape {
    fn area(&self) -> f64;
}

struct Square(f64);

impl Shape for Square {
    #[traced(ret)]
    fn area(&self) -> f64 {
        self.0 * self.0
    }
}

#[traced(tags(n = items.len()))]
fn largest<T, I>(items: &[T], extra: I) -> Option<T>
where
    T: PartialOrd + Copy,
    I: IntoIterator<Item = T>,
{
    items
        .iter()
        .copied()
        .chain(extra)
        .fold(None, |best, x| match best {
            Some(b) if b >= x => Some(b),
            _ => Some(x),
        })
}

#[traced(ret)]
fn total_area(shapes: impl IntoIterator<Item = Box<dyn Shape>>) -> f64 {
    shapes.into_iter().map(|s| s.area()).sum()
}

#[derive(Debug)]
struct Evens {
    next: u32,
    limit: u32,
}

impl Iterator for Evens {
    type Item = u32;
    fn next(&mut self) -> Option<u32> {
        let n = self.next;
        self.next += 2;
        (n < self.limit).then_some(n)
    }
}

#[traced(ret(?))]
fn evens(limit: u32) -> impl Iterator<Item = u32> + fmt::Debug {
    Evens { next: 0, limit }
}

#[traced(err)]
fn boxed_display(x: i32) -> Result<Box<dyn fmt::Display>, String> {
    // The `Box<Point>` coerces to `Box<dyn Display>` as it would without the macro.
    Ok(Box::new(Point { x }))
}

#[test]
fn trait_impls_generics_where_clauses_and_impl_trait() {
    let capture = capture();
    capture.in_scope(|| {
        assert_eq!(largest(&[3, 9, 2], vec![4]), Some(9));
        let shapes: Vec<Box<dyn Shape>> = vec![Box::new(Square(2.0)), Box::new(Square(1.0))];
        assert!((total_area(shapes) - 5.0).abs() < f64::EPSILON);
        assert_eq!(evens(5).collect::<Vec<_>>(), [0, 2, 4]);
        assert_eq!(
            boxed_display(3).map(|d| d.to_string()),
            Ok("(3)".to_owned())
        );
    });
    assert_eq!(
        capture.tree(),
        "largest [n=3]\n\
         total_area [return=5]\n  area [return=4]\n  area [return=1]\n\
         evens [return=Evens { next: 0, limit: 5 }]\n\
         boxed_display\n"
    );
}

#[traced(args(a, c))]
#[allow(clippy::needless_pass_by_value)]
fn patterns(mut a: u32, _: u32, (b, c): (u32, u32), Point { x }: Point, [d, _e]: [u8; 2]) -> u32 {
    a += 1;
    a + b + c + u32::try_from(x).unwrap_or(0) + u32::from(d)
}

#[traced(err)]
fn early_exits(input: &[&str]) -> Result<usize, std::num::ParseIntError> {
    let mut total = 0;
    for s in input {
        if s.is_empty() {
            return Ok(total);
        }
        total += s.parse::<usize>()?;
    }
    Ok(total)
}

/// The `u32` at `pointer`: an `unsafe fn` stays `unsafe` under `#[traced]`.
///
/// # Safety
///
/// `pointer` must be non-null, aligned and point to a `u32` that is alive for the call.
#[traced(ret)]
unsafe fn read(pointer: *const u32) -> u32 {
    // SAFETY: the caller passes a valid pointer.
    unsafe { *pointer }
}

/// The `u32` at `pointer`, traced without `ret` (the body is not wrapped in a closure).
///
/// # Safety
///
/// `pointer` must be non-null, aligned and point to a `u32` that is alive for the call.
#[traced]
unsafe fn read_without_outcome(pointer: *const u32) -> u32 {
    // SAFETY: the caller passes a valid pointer.
    unsafe { *pointer }
}

#[test]
fn patterns_early_returns_question_marks_and_unsafe_fns() {
    let capture = capture();
    capture.in_scope(|| {
        assert_eq!(patterns(1, 0, (2, 3), Point { x: 4 }, [5, 6]), 16);
        assert_eq!(early_exits(&["1", "2", "", "x"]), Ok(3));
        assert!(early_exits(&["1", "x"]).is_err());
        let value = 7;
        // SAFETY: `value` is alive.
        assert_eq!(unsafe { read(std::ptr::addr_of!(value)) }, 7);
        assert_eq!(
            // SAFETY: `value` is alive.
            unsafe { read_without_outcome(std::ptr::addr_of!(value)) },
            7
        );
    });
    assert_eq!(
        capture.tree(),
        "patterns [a=1, c=3]\nearly_exits\nearly_exits [error=true]\nread [return=7]\n\
         read_without_outcome\n"
    );
}

#[traced]
fn panics(message: &str) {
    let _child = lstrace::span("child").start();
    panic!("{message}");
}

#[test]
fn a_panic_marks_the_span_as_an_error_and_goes_on() {
    let capture = capture();
    let caught = capture.in_scope(|| std::panic::catch_unwind(|| panics("boom")));
    let payload = caught.expect_err("the panic goes on");
    assert_eq!(
        payload.downcast_ref::<String>().map(String::as_str),
        Some("boom")
    );
    assert_eq!(
        capture.tree(),
        "panics [error=true]\n  child [error=true]\n"
    );
}

#[traced]
fn items_first(x: u32) -> u32 {
    const OFFSET: u32 = 1;
    fn helper(x: u32) -> u32 {
        x + OFFSET
    }
    helper(x)
}

#[traced(ret)]
fn items_first_with_ret(x: u32) -> u32 {
    fn helper(x: u32) -> u32 {
        x * 2
    }
    helper(x)
}

#[test]
fn bodies_that_start_with_items() {
    let capture = capture();
    capture.in_scope(|| {
        assert_eq!(items_first(1), 2);
        assert_eq!(items_first_with_ret(2), 4);
    });
    assert_eq!(
        capture.tree(),
        "items_first\nitems_first_with_ret [return=4]\n"
    );
}
