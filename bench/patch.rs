//! Patching a cached 50,000-record list: 100 records replaced in the middle, and 100 appended at
//! its end. Each rebuilds the stored entry (both codings and the ETag) from the old one; the CPU
//! time is this thread's own (`CLOCK_THREAD_CPUTIME_ID`), the median of ROUNDS.
//!
//! `cargo bench --bench patch [-- ROUNDS]`

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "huge_list.rs"]
mod huge_list;

use std::time::Duration;

use wemeet_gateway::api::{StoredList, patch, render};
use wemeet_gateway::upstream::{ListHead, PAGE_SIZE, Participant};

/// This thread's CPU time so far.
fn thread_cpu() -> Duration {
    use nix::time::{ClockId, clock_gettime};
    Duration::from(clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID).expect("a thread clock"))
}

fn median_cpu(rounds: usize, mut work: impl FnMut() -> StoredList) -> (Duration, StoredList) {
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..rounds {
        let start = thread_cpu();
        let result = work();
        times.push(thread_cpu() - start);
        last = Some(result);
    }
    times.sort();
    (times[times.len() / 2], last.unwrap())
}

fn main() {
    let rounds: usize = std::env::args()
        .skip(1)
        .find(|a| a != "--bench")
        .map_or(21, |a| a.parse().unwrap());
    let (head, records, _) = huge_list::huge_list();
    let (full, stored) = median_cpu(3, || {
        let mut renderer = render();
        for page in records.chunks(PAGE_SIZE as usize) {
            renderer.page(page.to_vec());
        }
        renderer.finish(&head)
    });
    let replaced: Vec<(usize, Participant)> = (24_950..25_050)
        .map(|i| {
            let mut record = records[i].clone();
            record.left_time = Some(record.join_time + 60);
            (i, record)
        })
        .collect();
    let appended: Vec<Participant> = records[..100].to_vec();
    let (replace, _) = median_cpu(rounds, || patch(&stored, &head, &replaced, &[]).unwrap());
    let longer = ListHead {
        records: head.records + appended.len(),
        ..head.clone()
    };
    let (append, _) = median_cpu(rounds, || patch(&stored, &longer, &[], &appended).unwrap());
    println!(
        "50,000 records: rendered whole in {:.1} ms of CPU",
        full.as_secs_f64() * 1e3
    );
    println!(
        "100 records replaced in the middle: {:.2} ms of CPU (median of {rounds})",
        replace.as_secs_f64() * 1e3
    );
    println!(
        "100 records appended: {:.2} ms of CPU (median of {rounds})",
        append.as_secs_f64() * 1e3
    );
}
