//! Which task gets a request: the one with the fewest outstanding requests
//! (ties in turn), counted by a [`Lease`] that lives as long as the request.
//!
//! One [`Balancer`] per service. It does not own the address list (the
//! [`TaskWatcher`](super::TaskWatcher) does): each pick gets the current
//! addresses, so a task that left is never picked again and counts of
//! addresses no longer in use simply drain to zero and vanish.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How long a task whose connection failed is avoided by other requests
/// (used only if nothing else is left); by then the watcher has usually
/// dropped it, or it was only starting and listens now.
const SUSPECT_FOR: Duration = Duration::from_secs(2);

/// Spreads one service's requests over its tasks.
#[derive(Debug, Default)]
pub struct Balancer {
    state: Mutex<State>,
    in_flight: AtomicUsize,
    requests: AtomicU64,
    connect_failures: AtomicU64,
}

#[derive(Debug, Default)]
struct State {
    /// Outstanding requests per task address; only addresses with some.
    outstanding: HashMap<SocketAddr, usize>,
    /// Turns among tied tasks, so equal load spreads instead of piling on
    /// the first address.
    turn: usize,
    /// Addresses whose connection failed lately, and until when to avoid them.
    suspects: HashMap<SocketAddr, Instant>,
}

/// A request outstanding on one task, until dropped.
#[derive(Debug)]
pub struct Lease {
    balancer: Arc<Balancer>,
    addr: SocketAddr,
}

impl Balancer {
    pub fn new() -> Arc<Balancer> {
        Arc::new(Balancer::default())
    }

    /// A new request: the task among `addrs` (not in `exclude`) with the
    /// fewest outstanding requests, avoiding tasks whose connection failed
    /// lately while others are left. `None` when no address is left.
    pub fn pick(self: &Arc<Self>, addrs: &[SocketAddr], exclude: &[SocketAddr]) -> Option<Lease> {
        let lease = self.choose(addrs, exclude)?;
        self.requests.fetch_add(1, Ordering::Relaxed);
        Some(lease)
    }

    /// The connection to `failed`'s task could not be made: note it, and
    /// pick another task for the same request (not counted as a new one).
    /// The caller puts `failed.addr()` in `exclude` so this request does not
    /// go back there.
    pub fn repick(
        self: &Arc<Self>,
        failed: Lease,
        addrs: &[SocketAddr],
        exclude: &[SocketAddr],
    ) -> Option<Lease> {
        self.connect_failed(failed);
        self.choose(addrs, exclude)
    }

    /// The connection to `failed`'s task could not be made and the request
    /// gives up: note it (other requests avoid the task for a moment) and
    /// end the lease.
    pub fn connect_failed(&self, failed: Lease) {
        self.connect_failures.fetch_add(1, Ordering::Relaxed);
        self.lock()
            .suspects
            .insert(failed.addr, Instant::now() + SUSPECT_FOR);
        drop(failed);
    }

    /// The same request again after a pause, once every task was excluded:
    /// neither a new request nor excluding anything.
    pub(crate) fn pick_again(self: &Arc<Self>, addrs: &[SocketAddr]) -> Option<Lease> {
        self.choose(addrs, &[])
    }

    /// Requests outstanding on the service's tasks now (what the autoscaler
    /// reads).
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Requests given a task since the balancer was made.
    pub fn requests_total(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Connections to a task that failed (each retried elsewhere or failed).
    pub fn connect_failures_total(&self) -> u64 {
        self.connect_failures.load(Ordering::Relaxed)
    }

    /// Requests outstanding on one task.
    pub fn outstanding(&self, addr: SocketAddr) -> usize {
        self.lock().outstanding.get(&addr).copied().unwrap_or(0)
    }

    fn choose(self: &Arc<Self>, addrs: &[SocketAddr], exclude: &[SocketAddr]) -> Option<Lease> {
        let mut state = self.lock();
        let now = Instant::now();
        state.suspects.retain(|_, until| *until > now);
        let candidates: Vec<SocketAddr> = addrs
            .iter()
            .copied()
            .filter(|a| !exclude.contains(a))
            .collect();
        let healthy: Vec<SocketAddr> = candidates
            .iter()
            .copied()
            .filter(|a| !state.suspects.contains_key(a))
            .collect();
        let pool = if healthy.is_empty() {
            candidates
        } else {
            healthy
        };
        let load = |a: &SocketAddr| state.outstanding.get(a).copied().unwrap_or(0);
        let least = pool.iter().map(load).min()?;
        let tied: Vec<SocketAddr> = pool.iter().copied().filter(|a| load(a) == least).collect();
        let addr = *tied.get(state.turn % tied.len())?;
        state.turn = state.turn.wrapping_add(1);
        *state.outstanding.entry(addr).or_insert(0) += 1;
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        Some(Lease {
            balancer: self.clone(),
            addr,
        })
    }

    /// The state stays consistent even if a holder panicked (every update is
    /// a single step), so a poisoned lock is used as is.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Lease {
    /// The task's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let mut state = self.balancer.lock();
        if let Some(count) = state.outstanding.get_mut(&self.addr) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                state.outstanding.remove(&self.addr);
            }
        }
        self.balancer.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(n: u16) -> Vec<SocketAddr> {
        (1..=n)
            .map(|i| SocketAddr::from(([127, 0, 0, 1], 10_000 + i)))
            .collect()
    }

    #[test]
    fn the_least_loaded_task_gets_the_request() {
        let b = Balancer::new();
        let a = addrs(3);
        let first = b.pick(&a, &[]).unwrap();
        let second = b.pick(&a, &[]).unwrap();
        let third = b.pick(&a, &[]).unwrap();
        let mut used = vec![first.addr(), second.addr(), third.addr()];
        used.sort();
        assert_eq!(used, a, "equal load spreads over every task");
        assert_eq!(b.in_flight(), 3);
        // The task that finishes first is the least loaded one.
        let freed = second.addr();
        drop(second);
        let next = b.pick(&a, &[]).unwrap();
        assert_eq!(next.addr(), freed);
        assert_eq!(b.outstanding(freed), 1);
        drop((first, third, next));
        assert_eq!(b.in_flight(), 0);
        assert_eq!(b.requests_total(), 4);
        assert!(b.lock().outstanding.is_empty(), "no count is kept at zero");
    }

    #[test]
    fn ties_take_turns() {
        let b = Balancer::new();
        let a = addrs(2);
        let picks: Vec<SocketAddr> = (0..4).map(|_| b.pick(&a, &[]).unwrap().addr()).collect();
        assert_eq!(picks, vec![a[0], a[1], a[0], a[1]]);
    }

    #[test]
    fn a_failed_task_is_excluded_then_avoided() {
        let b = Balancer::new();
        let a = addrs(2);
        let lease = b.pick(&a, &[]).unwrap();
        let failed = lease.addr();
        let retry = b.repick(lease, &a, &[failed]).unwrap();
        assert_ne!(retry.addr(), failed);
        assert_eq!(b.in_flight(), 1, "the retry is the same request");
        assert_eq!(b.requests_total(), 1);
        assert_eq!(b.connect_failures_total(), 1);
        // Other requests avoid the suspect even though it is less loaded...
        let other = b.pick(&a, &[]).unwrap();
        assert_ne!(other.addr(), failed);
        // ...unless it is all that is left.
        let only = b.pick(&[failed], &[]).unwrap();
        assert_eq!(only.addr(), failed);
    }

    #[test]
    fn nothing_to_pick_is_none() {
        let b = Balancer::new();
        assert!(b.pick(&[], &[]).is_none());
        let a = addrs(1);
        assert!(b.pick(&a, &a).is_none());
        let lease = b.pick(&a, &[]).unwrap();
        assert!(b.repick(lease, &a, &a).is_none());
        assert_eq!(b.in_flight(), 0);
    }
}
