//! What the cache does with a request, as two pure functions: [`decide`] when it looks (from
//! what it holds, what the request wishes and the time), [`settle`] after waiting for a fetch.
//! Everything else in the cache carries these decisions out.

use tokio::time::Instant;

use super::CacheError;

/// What a request asks of the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wish {
    /// A fresh copy will do (the default).
    Cached,
    /// Fetch anew from the upstream (`Cache-Control: no-cache`), shared with any fetch running.
    Refresh,
}

/// How an answer came to be served, for `Cache-Status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum How {
    /// Fresh from the cache.
    Hit,
    /// Stale from the cache while one refresh runs in the background.
    StaleWhileRevalidate,
    /// Fetched for this request; `collapsed` when it joined a fetch already running.
    Miss { collapsed: bool },
    /// The entry held was too stale to serve at once; fetched again for this request.
    Revalidated { collapsed: bool },
    /// Fetched because the caller asked for a refresh.
    Refreshed { collapsed: bool },
    /// Stale, because the refresh failed (now, or the last time it ran). `fwd_status` is the
    /// HTTP status the upstream itself answered, when it answered at all.
    StaleIfError { fwd_status: Option<u16> },
    /// Stale, because the refresh outlasted the caller's wait.
    StaleStillFetching,
}

/// A failed fetch, as a stale answer reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failure {
    /// The upstream's own HTTP status, when it answered one.
    pub fwd_status: Option<u16>,
}

/// What the decision needs to know of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryState {
    pub fetched_at: Instant,
    pub fresh_until: Instant,
    /// Past this the entry is of no use, not even for a failing upstream.
    pub usable_until: Instant,
    /// The last refresh since the entry was stored failed like this.
    pub failed_refresh: Option<Failure>,
}

/// Why a request waits for a fetch: says how a landed result is reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// Nothing usable was held.
    Miss,
    /// What was held is too stale to serve at once.
    Revalidate,
    /// The request asked for a refresh.
    Refresh,
}

/// What to do when a request looks into the cache, with the entry `E` it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision<E> {
    /// Answer with the fresh entry.
    Hit(E),
    /// Answer with the stale entry at once, as `How`, while one refresh runs in the background.
    ServeStale(E, How),
    /// Start or join a fetch and wait for it, with the usable entry held (if any) as the
    /// fallback.
    Fetch(Why, Option<E>),
}

/// The decision for a request that finds `held` (an entry and its state, if anything) at `now`.
///
/// A stale entry is served at once while it is refreshed for as long again as it was fresh;
/// older than that, the caller waits for the refresh and gets the stale entry only if the
/// refresh fails or outlasts the wait.
pub fn decide<E>(held: Option<(E, EntryState)>, wish: Wish, now: Instant) -> Decision<E> {
    let Some((entry, state)) = held.filter(|(_, state)| now < state.usable_until) else {
        return match wish {
            Wish::Cached => Decision::Fetch(Why::Miss, None),
            Wish::Refresh => Decision::Fetch(Why::Refresh, None),
        };
    };
    let serves_while_revalidating =
        now < state.fresh_until + (state.fresh_until - state.fetched_at);
    match wish {
        Wish::Refresh => Decision::Fetch(Why::Refresh, Some(entry)),
        Wish::Cached if now < state.fresh_until => Decision::Hit(entry),
        Wish::Cached if serves_while_revalidating => Decision::ServeStale(
            entry,
            match state.failed_refresh {
                Some(failure) => How::StaleIfError {
                    fwd_status: failure.fwd_status,
                },
                None => How::StaleWhileRevalidate,
            },
        ),
        Wish::Cached => Decision::Fetch(Why::Revalidate, Some(entry)),
    }
}

/// How a wait for a fetch ended.
#[derive(Debug)]
pub enum Waited<T> {
    /// The fetch stored a new entry.
    Landed(T),
    /// The fetch failed.
    Failed(CacheError),
    /// The fetch outlasted the wait; it goes on.
    StillFetching,
}

/// The answer after a wait.
#[derive(Debug)]
pub enum Settled<T, S> {
    /// The new entry.
    Landed(T, How),
    /// The stale entry held, standing in.
    Stale(S, How),
    /// Nothing to answer yet: the list is still being fetched.
    Pending,
    /// The failure, as it is.
    Failed(CacheError),
}

/// The answer for a request that waited `why`, and whether it `collapsed` into a running fetch,
/// given how the wait ended and the stale entry held (if any). A stale entry stands in for a
/// failure, never for a refusal (the meeting is gone, the operator lost access, a parameter is
/// refused): a refusal is answered as it is.
pub fn settle<T, S>(
    why: Why,
    collapsed: bool,
    waited: Waited<T>,
    stale: Option<S>,
) -> Settled<T, S> {
    match (waited, stale) {
        (Waited::Landed(entry), _) => Settled::Landed(
            entry,
            match why {
                Why::Miss => How::Miss { collapsed },
                Why::Revalidate => How::Revalidated { collapsed },
                Why::Refresh => How::Refreshed { collapsed },
            },
        ),
        (Waited::StillFetching, Some(stale)) => Settled::Stale(stale, How::StaleStillFetching),
        (Waited::StillFetching, None) => Settled::Pending,
        (Waited::Failed(error), Some(stale)) if !error.is_refusal() => Settled::Stale(
            stale,
            How::StaleIfError {
                fwd_status: error.failure().fwd_status,
            },
        ),
        (Waited::Failed(error), _) => Settled::Failed(error),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::upstream::{ErrorClass, UpstreamError};

    /// An entry fetched at 0 s, fresh for 60 s, usable for 600 s.
    fn entry(failed_refresh: Option<Failure>) -> (Instant, EntryState) {
        let t0 = Instant::now();
        let state = EntryState {
            fetched_at: t0,
            fresh_until: t0 + Duration::from_secs(60),
            usable_until: t0 + Duration::from_secs(600),
            failed_refresh,
        };
        (t0, state)
    }

    #[test]
    fn every_look_is_decided_by_what_is_held_the_wish_and_the_time() {
        use Decision::*;
        let failed = Some(Failure {
            fwd_status: Some(500),
        });
        let secs = Duration::from_secs;
        let (t0, ok) = entry(None);
        let (_, failing) = entry(failed);
        let cases = [
            // held, wish, seconds after the fetch, decision
            (None, Wish::Cached, 0, Fetch(Why::Miss, None)),
            (None, Wish::Refresh, 0, Fetch(Why::Refresh, None)),
            (Some(ok), Wish::Cached, 0, Hit(())),
            (Some(ok), Wish::Cached, 59, Hit(())),
            (Some(ok), Wish::Refresh, 30, Fetch(Why::Refresh, Some(()))),
            (
                Some(ok),
                Wish::Cached,
                60,
                ServeStale((), How::StaleWhileRevalidate),
            ),
            (
                Some(ok),
                Wish::Cached,
                119,
                ServeStale((), How::StaleWhileRevalidate),
            ),
            (
                Some(failing),
                Wish::Cached,
                90,
                ServeStale(
                    (),
                    How::StaleIfError {
                        fwd_status: Some(500),
                    },
                ),
            ),
            (Some(failing), Wish::Cached, 30, Hit(())),
            (
                Some(ok),
                Wish::Cached,
                120,
                Fetch(Why::Revalidate, Some(())),
            ),
            (
                Some(failing),
                Wish::Cached,
                599,
                Fetch(Why::Revalidate, Some(())),
            ),
            (Some(ok), Wish::Refresh, 300, Fetch(Why::Refresh, Some(()))),
            // Past its use: as if nothing were held.
            (Some(ok), Wish::Cached, 600, Fetch(Why::Miss, None)),
            (Some(ok), Wish::Refresh, 600, Fetch(Why::Refresh, None)),
        ];
        for (held, wish, at, expected) in cases {
            assert_eq!(
                decide(held.map(|state| ((), state)), wish, t0 + secs(at)),
                expected,
                "{held:?}, {wish:?}, at {at} s"
            );
        }
    }

    fn api_error(code: i64, status: u16) -> CacheError {
        CacheError::Upstream(UpstreamError::Api {
            class: ErrorClass::of_code(code),
            status,
            code,
            new_code: None,
            message: String::new(),
        })
    }

    /// The outcome as a comparable string: what is answered and how.
    fn outcome(settled: Settled<&str, &str>) -> String {
        match settled {
            Settled::Landed(entry, how) => format!("{entry} {how:?}"),
            Settled::Stale(entry, how) => format!("{entry} {how:?}"),
            Settled::Pending => "pending".into(),
            Settled::Failed(error) => format!("failed: {error}"),
        }
    }

    #[test]
    fn every_wait_is_settled_by_how_it_ended_and_what_stands_by() {
        let landed = || Waited::Landed("new");
        let upstream_500 = || Waited::Failed(api_error(41, 500));
        let timeout = || {
            Waited::Failed(CacheError::Upstream(UpstreamError::Deadline(
                Duration::from_secs(1),
            )))
        };
        let internal = || Waited::Failed(CacheError::Internal("rendering the list failed"));
        let not_found = || Waited::Failed(api_error(9003, 400));
        // why, collapsed, how the wait ended, the stale entry held, the outcome
        type Case = (
            Why,
            bool,
            Waited<&'static str>,
            Option<&'static str>,
            &'static str,
        );
        let cases: [Case; 13] = [
            (
                Why::Miss,
                false,
                landed(),
                None,
                "new Miss { collapsed: false }",
            ),
            (
                Why::Miss,
                true,
                landed(),
                None,
                "new Miss { collapsed: true }",
            ),
            (
                Why::Revalidate,
                false,
                landed(),
                Some("old"),
                "new Revalidated { collapsed: false }",
            ),
            (
                Why::Refresh,
                true,
                landed(),
                Some("old"),
                "new Refreshed { collapsed: true }",
            ),
            (Why::Miss, false, Waited::StillFetching, None, "pending"),
            (
                Why::Revalidate,
                true,
                Waited::StillFetching,
                Some("old"),
                "old StaleStillFetching",
            ),
            (
                Why::Revalidate,
                false,
                upstream_500(),
                Some("old"),
                "old StaleIfError { fwd_status: Some(500) }",
            ),
            (
                Why::Refresh,
                false,
                timeout(),
                Some("old"),
                "old StaleIfError { fwd_status: None }",
            ),
            (
                Why::Revalidate,
                false,
                internal(),
                Some("old"),
                "old StaleIfError { fwd_status: None }",
            ),
            (
                Why::Miss,
                false,
                upstream_500(),
                None,
                "failed: upstream error 41 (HTTP 500): ",
            ),
            (
                Why::Miss,
                false,
                internal(),
                None,
                "failed: the cache failed: rendering the list failed",
            ),
            // A refusal is answered as it is, stale copy or not.
            (
                Why::Revalidate,
                false,
                not_found(),
                Some("old"),
                "failed: upstream error 9003 (HTTP 400): ",
            ),
            (
                Why::Refresh,
                true,
                not_found(),
                None,
                "failed: upstream error 9003 (HTTP 400): ",
            ),
        ];
        for (why, collapsed, waited, stale, expected) in cases {
            let described = format!("{why:?}, collapsed {collapsed}, {waited:?}, {stale:?}");
            assert_eq!(
                outcome(settle(why, collapsed, waited, stale)),
                expected,
                "{described}"
            );
        }
    }
}
