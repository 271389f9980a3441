//! The local satellite's memory under hostile clients, measured from outside its counters:
//! the process's resident memory (`/proc/self/status`). One test, alone in its binary, so
//! that no other test's allocations count.

#![cfg(target_os = "linux")]

use lstrace_core::protocol::lightstep::{Auth, KeyValue, ReportRequest, Reporter};
use lstrace_core::satellite::{Limits, LocalSatellite, MAX_REPORT_BYTES, REPORT_PATH};
use prost::Message;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

const MIB: u64 = 1 << 20;

/// A field of `/proc/self/status` in bytes (`VmRSS`: resident now, `VmHWM`: the most
/// resident so far).
fn status_bytes(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|line| line.starts_with(field)).unwrap();
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap();
    kib * 1024
}

/// Sends `head` and `body` and reads whatever answer comes; the satellite may refuse the
/// body before it has all arrived, so writing may fail.
fn upload(satellite: &LocalSatellite, head: &[u8], body: &[u8]) {
    let mut stream = TcpStream::connect(satellite.addr()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let _ = stream.write_all(head).and_then(|()| stream.write_all(body));
    let _ = stream.read_to_end(&mut Vec::new());
}

#[test]
fn hostile_clients_do_not_grow_the_satellites_memory_past_its_limits() {
    let mut limits = Limits::default();
    limits.body_read_timeout = Duration::from_millis(500);
    let held_limit = limits.max_body_bytes_held as u64;
    let satellite = LocalSatellite::start_with_limits(([127, 0, 0, 1], 0).into(), limits).unwrap();

    // 64 uploads of 4 MiB that stall one byte short: they raised the resident memory by
    // 240 MB, which stayed until the clients went away.
    let head = format!(
        "POST {REPORT_PATH} HTTP/1.1\r\nHost: x\r\nContent-Length: {MAX_REPORT_BYTES}\r\n\r\n"
    );
    // Written to before the measure starts, so that the clients' one copy is not counted.
    let body = vec![1u8; MAX_REPORT_BYTES - 1];
    let peak_before = status_bytes("VmHWM");
    std::thread::scope(|scope| {
        for _ in 0..64 {
            scope.spawn(|| upload(&satellite, head.as_bytes(), &body));
        }
    });
    let stats = satellite.stats();
    let growth = status_bytes("VmHWM").saturating_sub(peak_before);
    eprintln!(
        "stalled uploads: peak grew by {} MiB; {stats:?}",
        growth / MIB
    );
    assert!(stats.peak_body_bytes_held as u64 <= held_limit);
    assert!(
        stats.busy_requests > 0 && stats.timed_out_requests > 0,
        "{stats:?}"
    );
    // The bodies held, and for each connection a buffer and the runtime's bookkeeping.
    assert!(
        growth < held_limit + 32 * MIB,
        "the peak grew by {} MiB",
        growth / MIB
    );

    // 4 MB of empty spans: the first `spans()` call grew the resident memory by 375 MB.
    let mut report = ReportRequest {
        reporter: Some(Reporter {
            reporter_id: 1,
            tags: vec![KeyValue {
                key: "lightstep.component_name".into(),
                value: Some(
                    lstrace_core::protocol::lightstep::key_value::Value::StringValue("svc".into()),
                ),
            }],
        }),
        auth: Some(Auth::default()),
        ..ReportRequest::default()
    }
    .encode_to_vec();
    // As many empty spans as the largest body takes.
    report.extend_from_slice(&b"\x1a\x00".repeat((MAX_REPORT_BYTES - report.len()) / 2));
    let head = format!(
        "POST {REPORT_PATH} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
        report.len()
    );
    let resident_before = status_bytes("VmRSS");
    upload(&satellite, head.as_bytes(), &report);
    assert!(satellite.spans().is_empty());
    let growth = status_bytes("VmRSS").saturating_sub(resident_before);
    eprintln!("empty spans: resident grew by {} MiB", growth / MIB);
    assert!(growth < 32 * MIB, "resident grew by {} MiB", growth / MIB);
    assert_eq!(satellite.stats().oversized_reports, 1);
}
