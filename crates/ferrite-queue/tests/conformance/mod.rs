//! The conformance suite every `Queue` implementation must pass, included by
//! each backend's test binary (`mod conformance;`) and not shipped with the
//! library.
//!
//! Each case is a plain async function over `&dyn Queue`; the
//! [`queue_conformance_tests!`] macro turns
//! them into one `#[tokio::test]` each for a given backend, so the embedded
//! queue and Redis run the very same assertions. Cases assume an empty queue.
//! Lease expiry is tested with short leases (100 ms) and real sleeps.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use ferrite_queue::{Queue, QueueError, Task};

/// A lease that runs out within a test.
const SHORT: Duration = Duration::from_millis(100);
/// Comfortably past [`SHORT`].
const PAST_SHORT: Duration = Duration::from_millis(250);
/// A lease that never runs out within a test.
const LONG: Duration = Duration::from_secs(60);

fn task(id: &str) -> Task {
    Task {
        id: id.to_string(),
        payload: format!("payload of {id}").into_bytes(),
    }
}

pub async fn push_reserve_ack_round_trip(queue: &dyn Queue) {
    assert_eq!(queue.depth().await.unwrap(), 0);
    let sent = Task {
        id: "t1".into(),
        payload: vec![0, 1, 2, 255],
    };
    queue.push(&sent).await.unwrap();
    let lease = queue.reserve("w1", LONG).await.unwrap().expect("a task");
    assert_eq!(lease.task, sent);
    assert_eq!(lease.attempts, 1);
    assert!(!lease.token.is_empty());
    queue.ack(&lease).await.unwrap();
    assert_eq!(queue.depth().await.unwrap(), 0);
    assert!(queue.reserve("w1", LONG).await.unwrap().is_none());
}

pub async fn fifo_order(queue: &dyn Queue) {
    for i in 0..5 {
        queue.push(&task(&format!("f{i}"))).await.unwrap();
    }
    for i in 0..5 {
        let lease = queue.reserve("w", LONG).await.unwrap().expect("a task");
        assert_eq!(lease.task.id, format!("f{i}"));
        queue.ack(&lease).await.unwrap();
    }
}

pub async fn push_many_in_order(queue: &dyn Queue) {
    queue.push_many(&[]).await.unwrap();
    queue.push(&task("m0")).await.unwrap();
    let batch: Vec<Task> = (1..=100).map(|i| task(&format!("m{i}"))).collect();
    queue.push_many(&batch).await.unwrap();
    assert_eq!(queue.depth().await.unwrap(), 101);
    for i in 0..=100 {
        let lease = queue.reserve("w", LONG).await.unwrap().expect("a task");
        assert_eq!(lease.task, task(&format!("m{i}")), "push order kept");
        queue.ack(&lease).await.unwrap();
    }
}

pub async fn push_many_all_or_none(queue: &dyn Queue) {
    queue.push(&task("taken")).await.unwrap();
    let err = queue
        .push_many(&[task("n1"), task("taken"), task("n2")])
        .await
        .unwrap_err();
    assert!(
        matches!(err, QueueError::Duplicate(ref id) if id == "taken"),
        "{err:?}"
    );
    let err = queue
        .push_many(&[task("n3"), task("n3")])
        .await
        .unwrap_err();
    assert!(
        matches!(err, QueueError::Duplicate(ref id) if id == "n3"),
        "{err:?}"
    );
    assert_eq!(queue.depth().await.unwrap(), 1, "nothing of either batch");
    // More tasks than one statement takes, the taken id last: still none.
    let mut large: Vec<Task> = (0..2_500).map(|i| task(&format!("l{i}"))).collect();
    large.push(task("taken"));
    let err = queue.push_many(&large).await.unwrap_err();
    assert!(
        matches!(err, QueueError::Duplicate(ref id) if id == "taken"),
        "{err:?}"
    );
    assert_eq!(
        queue.depth().await.unwrap(),
        1,
        "nothing of the large batch"
    );
    large.pop();
    queue.push_many(&large).await.unwrap();
    assert_eq!(queue.depth().await.unwrap(), 2_501);
}

pub async fn duplicate_id_refused(queue: &dyn Queue) {
    queue.push(&task("dup")).await.unwrap();
    let err = queue
        .push(&Task {
            id: "dup".into(),
            payload: b"other".to_vec(),
        })
        .await
        .unwrap_err();
    assert!(
        matches!(err, QueueError::Duplicate(ref id) if id == "dup"),
        "{err:?}"
    );
    assert_eq!(queue.depth().await.unwrap(), 1);
    let lease = queue.reserve("w", LONG).await.unwrap().expect("a task");
    assert_eq!(lease.task, task("dup"), "the first push wins");
    // Still a duplicate while leased; free again once acknowledged.
    assert!(matches!(
        queue.push(&task("dup")).await,
        Err(QueueError::Duplicate(_))
    ));
    queue.ack(&lease).await.unwrap();
    queue.push(&task("dup")).await.unwrap();
}

pub async fn reserved_task_is_invisible(queue: &dyn Queue) {
    queue.push(&task("only")).await.unwrap();
    let first = queue.reserve("w1", LONG).await.unwrap().expect("a task");
    assert!(queue.reserve("w2", LONG).await.unwrap().is_none());
    assert_eq!(queue.depth().await.unwrap(), 1, "leased tasks count");
    queue.ack(&first).await.unwrap();
}

pub async fn expired_lease_redelivers(queue: &dyn Queue) {
    queue.push(&task("slow")).await.unwrap();
    let first = queue.reserve("dies", SHORT).await.unwrap().expect("a task");
    assert_eq!(first.attempts, 1);
    assert!(queue.reserve("w2", LONG).await.unwrap().is_none());
    tokio::time::sleep(PAST_SHORT).await;
    let second = queue
        .reserve("w2", LONG)
        .await
        .unwrap()
        .expect("redelivered");
    assert_eq!(second.task, task("slow"));
    assert_eq!(second.attempts, 2);
    assert_ne!(second.token, first.token);
    queue.ack(&second).await.unwrap();
    assert_eq!(queue.depth().await.unwrap(), 0);
}

pub async fn stale_lease_is_lost(queue: &dyn Queue) {
    queue.push(&task("stale")).await.unwrap();
    let old = queue.reserve("slow", SHORT).await.unwrap().expect("a task");
    tokio::time::sleep(PAST_SHORT).await;
    let new = queue
        .reserve("fast", LONG)
        .await
        .unwrap()
        .expect("redelivered");
    for result in [
        queue.ack(&old).await,
        queue.extend(&old, LONG).await,
        queue.release(&old, Duration::ZERO).await,
    ] {
        assert!(
            matches!(result, Err(QueueError::LeaseLost(ref id)) if id == "stale"),
            "{result:?}"
        );
    }
    assert_eq!(queue.depth().await.unwrap(), 1, "the task is not lost");
    assert!(
        queue.reserve("other", LONG).await.unwrap().is_none(),
        "the new holder keeps it"
    );
    queue.ack(&new).await.unwrap();
    assert_eq!(queue.depth().await.unwrap(), 0);
    assert!(matches!(
        queue.ack(&new).await,
        Err(QueueError::LeaseLost(_))
    ));
}

pub async fn extend_keeps_the_lease(queue: &dyn Queue) {
    queue.push(&task("long")).await.unwrap();
    let lease = queue.reserve("w", SHORT).await.unwrap().expect("a task");
    queue.extend(&lease, LONG).await.unwrap();
    tokio::time::sleep(PAST_SHORT).await;
    assert!(
        queue.reserve("w2", LONG).await.unwrap().is_none(),
        "extended past the first lease"
    );
    queue.ack(&lease).await.unwrap();
}

pub async fn release_with_delay(queue: &dyn Queue) {
    queue.push(&task("retry")).await.unwrap();
    let lease = queue.reserve("w", LONG).await.unwrap().expect("a task");
    queue
        .release(&lease, Duration::from_millis(200))
        .await
        .unwrap();
    assert!(
        queue.reserve("w", LONG).await.unwrap().is_none(),
        "hidden during the delay"
    );
    assert_eq!(queue.depth().await.unwrap(), 1);
    assert!(matches!(
        queue.ack(&lease).await,
        Err(QueueError::LeaseLost(_))
    ));
    tokio::time::sleep(Duration::from_millis(350)).await;
    let again = queue
        .reserve("w", LONG)
        .await
        .unwrap()
        .expect("visible again");
    assert_eq!(again.task, task("retry"));
    assert_eq!(again.attempts, 2);
    queue.ack(&again).await.unwrap();
}

pub async fn release_without_delay_is_visible_at_once(queue: &dyn Queue) {
    queue.push(&task("r0")).await.unwrap();
    let lease = queue.reserve("w", LONG).await.unwrap().expect("a task");
    queue.release(&lease, Duration::ZERO).await.unwrap();
    let again = queue.reserve("w", LONG).await.unwrap().expect("visible");
    assert_eq!(again.attempts, 2);
    queue.ack(&again).await.unwrap();
}

pub async fn cancel_only_unleased(queue: &dyn Queue) {
    queue.push(&task("held")).await.unwrap();
    queue.push(&task("waiting")).await.unwrap();
    let lease = queue.reserve("w", LONG).await.unwrap().expect("a task");
    assert_eq!(lease.task.id, "held");
    assert!(
        !queue.cancel("held").await.unwrap(),
        "leased: not cancelled"
    );
    assert!(queue.cancel("waiting").await.unwrap());
    assert!(!queue.cancel("waiting").await.unwrap(), "already gone");
    assert!(!queue.cancel("missing").await.unwrap());
    assert_eq!(queue.depth().await.unwrap(), 1);
    queue.ack(&lease).await.unwrap();
    assert_eq!(queue.depth().await.unwrap(), 0);
}

pub async fn depth_counts_leased_and_waiting(queue: &dyn Queue) {
    assert_eq!(queue.depth().await.unwrap(), 0);
    for i in 0..3 {
        queue.push(&task(&format!("d{i}"))).await.unwrap();
    }
    assert_eq!(queue.depth().await.unwrap(), 3);
    let lease = queue.reserve("w", LONG).await.unwrap().expect("a task");
    assert_eq!(queue.depth().await.unwrap(), 3);
    queue.ack(&lease).await.unwrap();
    assert_eq!(queue.depth().await.unwrap(), 2);
}

/// 200 tasks, 8 workers reserving at once, leases that never run out: each
/// task is delivered exactly once.
pub async fn concurrent_workers_get_each_task_once(queue: Arc<dyn Queue>) {
    const TASKS: usize = 200;
    for i in 0..TASKS {
        queue.push(&task(&format!("c{i:03}"))).await.unwrap();
    }
    let workers: Vec<_> = (0..8)
        .map(|w| {
            let queue = queue.clone();
            tokio::spawn(async move {
                let name = format!("worker-{w}");
                let mut got = Vec::new();
                while let Some(lease) = queue.reserve(&name, LONG).await? {
                    assert_eq!(lease.attempts, 1, "{lease:?} delivered twice");
                    queue.ack(&lease).await?;
                    got.push(lease.task.id);
                }
                Ok::<_, QueueError>(got)
            })
        })
        .collect();
    let mut seen = HashSet::new();
    for worker in workers {
        for id in worker.await.expect("worker task").expect("worker") {
            assert!(seen.insert(id.clone()), "{id} delivered twice");
        }
    }
    assert_eq!(seen.len(), TASKS);
    assert_eq!(queue.depth().await.unwrap(), 0);
}

/// The first half of a restart test: leaves `a` acknowledged, `b` leased
/// (100 ms) and never acknowledged, and `c` waiting. The backend then
/// restarts (a process, a server) and [`find_work_after_a_restart`] runs.
pub async fn leave_work_for_a_restart(queue: &dyn Queue) {
    for id in ["a", "b", "c"] {
        queue.push(&task(id)).await.unwrap();
    }
    let done = queue.reserve("old", LONG).await.unwrap().expect("a");
    queue.ack(&done).await.unwrap();
    queue
        .reserve("old", SHORT)
        .await
        .unwrap()
        .expect("b, never acknowledged");
}

/// The second half: unacknowledged tasks survived, leased ones included,
/// whose lease runs out and which are delivered again.
pub async fn find_work_after_a_restart(queue: &dyn Queue) {
    assert_eq!(queue.depth().await.unwrap(), 2);
    tokio::time::sleep(PAST_SHORT).await;
    let mut got = Vec::new();
    while let Some(lease) = queue.reserve("new", LONG).await.unwrap() {
        got.push((lease.task.id.clone(), lease.attempts));
        queue.ack(&lease).await.unwrap();
    }
    // c was visible from its push, b only once the old lease ran out.
    assert_eq!(got, [("c".to_string(), 1), ("b".to_string(), 2)]);
}

/// Only visible, unleased tasks wait; the oldest is the first pushed.
pub async fn oldest_waiting_is_the_first_visible_task(queue: &dyn Queue) {
    assert_eq!(queue.oldest_waiting().await.unwrap(), None, "empty");
    queue.push(&task("old")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    queue.push(&task("new")).await.unwrap();
    let waited = queue.oldest_waiting().await.unwrap().expect("tasks wait");
    assert!(
        waited >= Duration::from_millis(20),
        "the older one: {waited:?}"
    );
    let old = queue.reserve("w", LONG).await.unwrap().expect("a task");
    let new = queue.reserve("w", LONG).await.unwrap().expect("a task");
    assert_eq!(queue.oldest_waiting().await.unwrap(), None, "both leased");
    queue.release(&new, LONG).await.unwrap();
    assert_eq!(
        queue.oldest_waiting().await.unwrap(),
        None,
        "released for later"
    );
    queue.ack(&old).await.unwrap();
}

/// Expand to one `#[tokio::test]` per conformance case. `$make` is an async
/// expression returning `(Arc<dyn Queue>, guard)`; the guard (a temp dir, a
/// server handle) lives until the case ends.
macro_rules! queue_conformance_tests {
    ($make:expr) => {
        $crate::conformance::queue_conformance_tests!(@by_ref $make;
            push_reserve_ack_round_trip, fifo_order, duplicate_id_refused,
            push_many_in_order, push_many_all_or_none,
            reserved_task_is_invisible, expired_lease_redelivers, stale_lease_is_lost,
            extend_keeps_the_lease, release_with_delay, release_without_delay_is_visible_at_once,
            cancel_only_unleased, depth_counts_leased_and_waiting,
            oldest_waiting_is_the_first_visible_task);
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn concurrent_workers_get_each_task_once() {
            let (queue, _guard) = $make.await;
            $crate::conformance::concurrent_workers_get_each_task_once(queue).await;
        }
    };
    (@by_ref $make:expr; $($case:ident),*) => {
        $(
            #[tokio::test]
            async fn $case() {
                let (queue, _guard) = $make.await;
                $crate::conformance::$case(&*queue).await;
            }
        )*
    };
}
pub(crate) use queue_conformance_tests;
