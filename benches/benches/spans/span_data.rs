//! What a span records, measured rather than timed per span: how far span times drift from the
//! host's wall clock over a long run (`--drift SECONDS`), and what tags, baggage items and logs
//! cost as one span gets many of them (`--per-span`). Each runs in a process of its own, with
//! the in-memory test recorder.

use lstrace::testing::TestRecorder;
use std::hint::black_box;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn unix_nanos(t: SystemTime) -> i128 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128)
}

/// Spans made every 100 ms for `seconds`, drained every second (as a reporter would); each
/// span's start is compared with wall-clock readings taken just before and after it. Also
/// shows what one anchor at start with quanta's calibration (lstrace 0.1 before re-anchoring)
/// would have placed at the same moments, and, for a span lasting the whole run, how far its
/// duration is from the wall clock's (ppm), and how far its end and the logs made on it every
/// second are outside the wall-clock readings around them.
pub(crate) fn drift(seconds: u64) -> Result<String, String> {
    let capture = TestRecorder::install().capture();
    let quanta = quanta::Clock::new();
    let (start_raw, start_wall) = (quanta.raw(), unix_nanos(SystemTime::now()));
    let began = Instant::now();
    let run = Duration::from_secs(seconds);
    let mut long = capture.in_scope(|| lstrace::span("whole run").start_detached());
    let long_start = unix_nanos(SystemTime::now());
    // The wall-clock readings around each log on the long span.
    let mut long_logs = Vec::new();
    // (seconds since the start, reading before, reading after, one-anchor estimate)
    let mut samples = Vec::new();
    let mut i = 0u64;
    loop {
        let elapsed = began.elapsed();
        let before = unix_nanos(SystemTime::now());
        let one_anchor = start_wall + quanta.delta_as_nanos(start_raw, quanta.raw()) as i128;
        capture.in_scope(|| lstrace::span(format!("sample {i}")).start().finish());
        let after = unix_nanos(SystemTime::now());
        samples.push((elapsed.as_secs_f64(), before, after, one_anchor));
        if i % 10 == 9 {
            let before = unix_nanos(SystemTime::now());
            long.log([("sample", i as i64)]);
            long_logs.push((before, unix_nanos(SystemTime::now())));
            // Drains, and anchors the time line again.
            black_box(capture.spans().len());
        }
        if elapsed >= run {
            break;
        }
        i += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
    let long_end_before = unix_nanos(SystemTime::now());
    long.finish();
    let long_end = unix_nanos(SystemTime::now());
    let spans = capture.spans();
    // How far outside [before, after]; zero inside.
    let outside = |at: i128, before: i128, after: i128| {
        if at < before {
            at - before
        } else if at > after {
            at - after
        } else {
            0
        }
    };
    let mut worst = 0i128;
    let mut worst_one_anchor = 0i128;
    let mut rows = String::new();
    for (n, (at, before, after, one_anchor)) in samples.iter().enumerate() {
        let name = format!("sample {n}");
        let span = spans
            .iter()
            .find(|s| s.name() == name)
            .ok_or_else(|| format!("{name} was not recorded"))?;
        let off = outside(i128::from(span.start_unix_nanos()), *before, *after);
        let one_anchor_off = one_anchor - (before + after) / 2;
        if off.abs() > worst.abs() {
            worst = off;
        }
        if one_anchor_off.abs() > worst_one_anchor.abs() {
            worst_one_anchor = one_anchor_off;
        }
        if n % 100 == 0 || n + 1 == samples.len() {
            rows.push_str(&format!(
                "| {at:.1} | {:.1} | {:.1} | {:.1} |\n",
                off as f64 / 1e3,
                (after - before) as f64 / 1e3,
                one_anchor_off as f64 / 1e3
            ));
        }
    }
    let whole = spans
        .iter()
        .find(|s| s.name() == "whole run")
        .ok_or("the whole-run span was not recorded")?;
    let wall = (long_end - long_start) as f64;
    let ppm = (whole.duration().as_nanos() as f64 - wall) / wall * 1e6;
    let whole_start = i128::from(whole.start_unix_nanos());
    let end_off = outside(
        whole_start + whole.duration().as_nanos() as i128,
        long_end_before,
        long_end,
    );
    if whole.logs().len() != long_logs.len() {
        return Err(format!(
            "{} logs of {}",
            whole.logs().len(),
            long_logs.len()
        ));
    }
    let worst_log = whole
        .logs()
        .iter()
        .zip(&long_logs)
        .map(|(log, (before, after))| outside(i128::from(log.unix_nanos()), *before, *after))
        .max_by_key(|off| off.abs())
        .unwrap_or(0);
    Ok(format!(
        "Span start times against the wall clock, {seconds} s, one span every 100 ms, drained \
         every second (load average after: {}).\n\n\
         | seconds | lstrace: µs outside the wall-clock readings around the span | width of \
         those readings, µs | one anchor at start (before): µs off |\n|---|---|---|---|\n{rows}\n\
         Worst: lstrace {:.1} µs outside the readings; one anchor at start {:.1} µs off. \
         A span lasting the whole run: {:.2} ppm from the wall clock's duration; its end {:.1} \
         µs and its {} logs (one a second) at worst {:.1} µs outside the readings around \
         them.\n",
        crate::load_average(),
        worst as f64 / 1e3,
        worst_one_anchor as f64 / 1e3,
        ppm,
        end_off as f64 / 1e3,
        long_logs.len(),
        worst_log as f64 / 1e3,
    ))
}

/// Milliseconds to give one span `count` tags, baggage items or logs, on the calling thread,
/// with the per-span caps lifted; the issue measured quadratic growth (5 k to 40 k tags: 61 to
/// 3,328 ms).
pub(crate) fn per_span(quick: bool) -> Result<String, String> {
    let recorder = TestRecorder::install();
    lstrace::__private::set_max_tags_per_span(usize::MAX);
    lstrace::__private::set_max_baggage_items(usize::MAX);
    lstrace::__private::set_max_logs_per_span(usize::MAX);
    let counts: &[usize] = if quick {
        &[100]
    } else {
        &[5_000, 10_000, 20_000, 40_000, 80_000]
    };
    let keys: Vec<String> = (0..counts[counts.len() - 1])
        .map(|i| format!("key.{i}"))
        .collect();
    let mut rows = String::new();
    for &count in counts {
        // A capture per count: its spans are this count's only.
        let capture = recorder.capture();
        let keys = &keys[..count];
        let time = |f: &dyn Fn()| {
            let start = Instant::now();
            capture.in_scope(f);
            start.elapsed()
        };
        let tags = time(&|| {
            let mut span = lstrace::span("tags").start();
            for key in keys {
                span.set_tag(key.clone(), 1);
            }
        });
        let baggage = time(&|| {
            let mut span = lstrace::span("baggage").start();
            for key in keys {
                span.set_baggage_item(key.as_str(), "v");
            }
        });
        let logs = time(&|| {
            let mut span = lstrace::span("logs").start();
            for key in keys {
                span.log([("event", key.clone())]);
            }
        });
        let spans = capture.spans();
        let tagged = spans.iter().find(|s| s.name() == "tags").ok_or("no span")?;
        if tagged.tags().len() != count {
            return Err(format!("{} tags of {count} kept", tagged.tags().len()));
        }
        black_box(spans);
        let per = |d: Duration| d.as_nanos() as f64 / count as f64;
        rows.push_str(&format!(
            "| {count} | {:.1} ({:.0} ns each) | {:.1} ({:.0}) | {:.1} ({:.0}) |\n",
            tags.as_secs_f64() * 1e3,
            per(tags),
            baggage.as_secs_f64() * 1e3,
            per(baggage),
            logs.as_secs_f64() * 1e3,
            per(logs),
        ));
    }
    Ok(format!(
        "One span with many tags, baggage items, logs: ms on the calling thread (load average \
         after: {}).\n\n| per span | set_tag | set_baggage_item | log |\n|---|---|---|---|\n{rows}",
        crate::load_average()
    ))
}
