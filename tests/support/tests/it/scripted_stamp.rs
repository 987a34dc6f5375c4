//! The `stamp` directive, which the load benchmark uses to measure output latency.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::common::assistant_texts;
use crate::scripted_agent::Scratch;

fn now_us() -> u64 {
    let elapsed = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    u64::try_from(elapsed.as_micros()).unwrap()
}

fn stamps(lines: &[Value]) -> Vec<u64> {
    lines
        .iter()
        .filter(|line| line["type"] == "assistant")
        .map(|line| line["message"]["stamp_us"].as_u64().expect("stamp_us"))
        .collect()
}

#[test]
fn stamp_prints_n_lines_stamped_with_the_write_time_interval_apart() {
    let scratch = Scratch::new();
    let mut agent = scratch.spawn(&[]);
    let before = now_us();
    agent.user("stamp 4 30");
    let lines = agent.until_result();
    let after = now_us();
    assert_eq!(
        assistant_texts(&lines),
        ["stamp 1", "stamp 2", "stamp 3", "stamp 4"]
    );
    let stamps = stamps(&lines);
    assert!(
        stamps[0] >= before && stamps[3] <= after,
        "{stamps:?} not in [{before}, {after}]"
    );
    for pair in stamps.windows(2) {
        // Lines are written 30 ms apart; a sleep never ends early.
        assert!(pair[1] - pair[0] >= 30_000, "{stamps:?}");
    }
    let result = lines.last().unwrap();
    assert_eq!(result["subtype"], "success");
    assert_eq!(result["result"], "stamp 4");
}

#[test]
fn stamp_without_interval_writes_back_to_back() {
    let scratch = Scratch::new();
    let mut agent = scratch.spawn(&[]);
    agent.user("stamp 3 0");
    let lines = agent.until_result();
    let stamps = stamps(&lines);
    assert_eq!(stamps.len(), 3);
    assert!(
        stamps.windows(2).all(|pair| pair[0] <= pair[1]),
        "{stamps:?}"
    );
}

#[test]
fn stamp_with_a_malformed_count_is_echoed() {
    let scratch = Scratch::new();
    let mut agent = scratch.spawn(&[]);
    agent.user("stamp 3");
    let lines = agent.until_result();
    assert_eq!(assistant_texts(&lines), ["echo: stamp 3"]);
    agent.user("stamp 3 x");
    let lines = agent.until_result();
    assert_eq!(assistant_texts(&lines), ["echo: stamp 3 x"]);
}

#[test]
fn interrupt_stops_a_stamping_turn() {
    let scratch = Scratch::new();
    let mut agent = scratch.spawn(&[]);
    agent.user("stamp 1000 20");
    let first = agent.next_json();
    assert_eq!(first["subtype"], "init");
    let stamped = agent.next_json();
    assert!(stamped["message"]["stamp_us"].is_u64(), "{stamped}");
    agent.control("req_interrupt", "interrupt");
    let rest = agent.until_result();
    let result = rest.last().unwrap();
    assert_eq!(result["subtype"], "error_during_execution");
    assert!(
        stamps(&rest).len() < 100,
        "the turn went on after the interrupt"
    );
}
