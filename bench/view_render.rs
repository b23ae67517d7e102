//! Views made from a cached 50,000-record list, in process: for each view, the wall time of one
//! rendering (what a first request waits for, before the body is sent), this process's CPU time
//! for it and the pages of memory it first touched (minor page faults: fresh memory, which on
//! these virtual machines costs about as much as the work itself), the median of ROUNDS.
//!
//! `cargo bench --bench view_render [-- ROUNDS [VIEW]]`, VIEW naming one view to make alone (for
//! `perf record`), such as `attendance`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "huge_list.rs"]
mod huge_list;

use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use wemeet_gateway::api::{Of, ViewParams, render, render_view};
use wemeet_gateway::upstream::PAGE_SIZE;

fn process_cpu() -> Duration {
    use nix::time::{ClockId, clock_gettime};
    Duration::from(clock_gettime(ClockId::CLOCK_PROCESS_CPUTIME_ID).expect("a process clock"))
}

fn page_faults() -> i64 {
    use nix::sys::resource::{UsageWho, getrusage};
    getrusage(UsageWho::RUSAGE_SELF)
        .expect("own usage")
        .minor_page_faults()
}

fn main() {
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    let rounds: usize = args.next().map_or(11, |a| a.parse().unwrap());
    let only = args.next();
    let (head, records, as_of) = huge_list::huge_list();
    let mut renderer = render();
    for page in records.chunks(PAGE_SIZE as usize) {
        renderer.page(page.to_vec());
    }
    let stored = renderer.finish(&head);
    println!(
        "{} cores; 50,000 records; median of {rounds}",
        std::thread::available_parallelism().unwrap()
    );
    for (name, of, query) in [
        ("attendance", Of::Attendance, ""),
        (
            "attendance CSV",
            Of::Attendance,
            "format=csv&tz=Europe/Berlin",
        ),
        (
            "participants CSV",
            Of::Participants,
            "format=csv&tz=Europe/Berlin",
        ),
        ("participants still in", Of::Participants, "still_in=true"),
    ] {
        if only.as_ref().is_some_and(|only| only != name) {
            continue;
        }
        let view = ViewParams::from_query_string(query)
            .unwrap()
            .into_view(of, &HeaderMap::new())
            .unwrap();
        let (mut walls, mut cpus, mut faults) = (Vec::new(), Vec::new(), Vec::new());
        let mut bytes = 0;
        for _ in 0..rounds {
            let (wall, cpu, fault) = (Instant::now(), process_cpu(), page_faults());
            let rendered = render_view(&stored, as_of, &view);
            walls.push(wall.elapsed());
            cpus.push(process_cpu() - cpu);
            faults.push(page_faults() - fault);
            bytes = http_body::Body::size_hint(&rendered.body(false))
                .exact()
                .unwrap();
        }
        walls.sort();
        cpus.sort();
        faults.sort();
        println!(
            "{name:22} {:6.1} ms wall (min {:5.1}, max {:5.1}), {:6.1} ms CPU, {:6} page faults; \
             {bytes} bytes",
            walls[rounds / 2].as_secs_f64() * 1e3,
            walls[0].as_secs_f64() * 1e3,
            walls[rounds - 1].as_secs_f64() * 1e3,
            cpus[rounds / 2].as_secs_f64() * 1e3,
            faults[rounds / 2],
        );
    }
}
