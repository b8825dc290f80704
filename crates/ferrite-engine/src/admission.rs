//! The node's memory budget. A call is admitted only while the memory of
//! everything running (calls and containers started ahead) fits; otherwise
//! it waits in FIFO order for a bounded time and is refused.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::EngineError;

/// Memory held by a running or waiting container; released on drop.
#[derive(Debug)]
pub struct MemoryPermit {
    _permit: OwnedSemaphorePermit,
    mib: u64,
}

impl MemoryPermit {
    pub fn mib(&self) -> u64 {
        self.mib
    }
}

pub struct Admission {
    /// One permit per MiB. Tokio's semaphore queues waiters in FIFO order.
    semaphore: Arc<Semaphore>,
    budget_mib: u64,
    /// Calls waiting for memory; containers started ahead are not started
    /// while anyone waits, so they never take memory a call is queued for.
    waiting: AtomicUsize,
    wait_limit: Duration,
}

fn permits(mib: u64) -> u32 {
    u32::try_from(mib).unwrap_or(u32::MAX)
}

struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Admission {
    pub fn new(budget_mib: u64, wait_limit: Duration) -> Admission {
        let budget_mib = budget_mib.min(u64::from(u32::MAX >> 3));
        Admission {
            semaphore: Arc::new(Semaphore::new(permits(budget_mib) as usize)),
            budget_mib,
            waiting: AtomicUsize::new(0),
            wait_limit,
        }
    }

    pub fn budget_mib(&self) -> u64 {
        self.budget_mib
    }

    pub fn available_mib(&self) -> u64 {
        self.semaphore.available_permits() as u64
    }

    /// Take `mib` without waiting, for a call; `None` if it does not fit now.
    pub fn try_admit(&self, mib: u64) -> Result<Option<MemoryPermit>, EngineError> {
        self.check_size(mib)?;
        Ok(self
            .semaphore
            .clone()
            .try_acquire_many_owned(permits(mib))
            .ok()
            .map(|p| MemoryPermit { _permit: p, mib }))
    }

    /// Take `mib` for a container started ahead of demand: only when no call
    /// is waiting, so calls always come first.
    pub fn try_admit_spare(&self, mib: u64) -> Option<MemoryPermit> {
        if self.waiting.load(Ordering::SeqCst) > 0 {
            return None;
        }
        self.try_admit(mib).ok().flatten()
    }

    /// Take `mib` for a call, waiting in line up to the configured limit.
    pub async fn admit(&self, mib: u64) -> Result<MemoryPermit, EngineError> {
        self.check_size(mib)?;
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let _waiting = Waiting(&self.waiting);
        let started = Instant::now();
        let acquire = self.semaphore.clone().acquire_many_owned(permits(mib));
        match tokio::time::timeout(self.wait_limit, acquire).await {
            Ok(Ok(permit)) => Ok(MemoryPermit {
                _permit: permit,
                mib,
            }),
            Ok(Err(_closed)) => Err(EngineError::ShuttingDown),
            Err(_elapsed) => Err(EngineError::Overloaded {
                needed: mib,
                budget: self.budget_mib,
                waited_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            }),
        }
    }

    /// Whether calls are queued for memory.
    #[cfg(test)]
    pub fn has_waiters(&self) -> bool {
        self.waiting.load(Ordering::SeqCst) > 0
    }

    fn check_size(&self, mib: u64) -> Result<(), EngineError> {
        if mib > self.budget_mib {
            return Err(EngineError::TooLarge {
                needed: mib,
                budget: self.budget_mib,
            });
        }
        Ok(())
    }

    /// Refuse every waiting and future call (shutdown).
    pub fn close(&self) {
        self.semaphore.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn fifo_and_bounded_wait() {
        let admission = Arc::new(Admission::new(100, Duration::from_millis(200)));
        let a = admission.admit(60).await.unwrap();
        assert_eq!(admission.available_mib(), 40);
        // Does not fit: waits, then is refused with the figures.
        let err = admission.admit(50).await.unwrap_err();
        assert!(
            matches!(
                err,
                EngineError::Overloaded {
                    needed: 50,
                    budget: 100,
                    ..
                }
            ),
            "{err}"
        );
        // A waiter gets the memory when it is released.
        let waiter = {
            let admission = admission.clone();
            tokio::spawn(async move { admission.admit(50).await.map(|p| p.mib()) })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(admission.has_waiters());
        assert!(
            admission.try_admit_spare(10).is_none(),
            "spare containers yield to waiting calls"
        );
        drop(a);
        assert_eq!(waiter.await.unwrap().unwrap(), 50);
    }

    #[tokio::test]
    async fn larger_than_the_budget_is_refused_at_once() {
        let admission = Admission::new(100, Duration::from_secs(5));
        assert!(matches!(
            admission.admit(101).await,
            Err(EngineError::TooLarge { .. })
        ));
    }
}
