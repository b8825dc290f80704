//! What nodes share to scale services as one ([`ferrite_queue::shared`]),
//! one suite run against both servers: a real `redis-server` of the test's
//! own ([`ferrite_testkit::redis`]) and a fresh database of the shared
//! PostgreSQL cluster ([`ferrite_testkit::postgres`]).

use std::time::Duration;

use ferrite_queue::shared::Shared;
use ferrite_testkit::postgres::fresh_database;
use ferrite_testkit::redis::RedisServer;

const TIMEOUT: Duration = Duration::from_secs(2);

/// Two nodes, `a` and `b`, of installation `scope` on one server, and a
/// node `x` of another installation there.
async fn nodes(url: &str, scope: &str) -> (Shared, Shared, Shared) {
    let open = |node: &'static str, scope: String| {
        let url = url.to_string();
        async move {
            Shared::open(&url, &scope, node, TIMEOUT)
                .await
                .expect("open")
        }
    };
    (
        open("a", scope.to_string()).await,
        open("b", scope.to_string()).await,
        open("x", format!("{scope}-other")).await,
    )
}

async fn loads_are_summed_per_key_and_forgotten_when_stale(url: &str) {
    let (a, b, x) = nodes(url, "loads").await;
    let long = Duration::from_secs(60);
    a.publish_loads(&[("s1".into(), 2.5), ("s2".into(), 1.0)])
        .await
        .unwrap();
    b.publish_loads(&[("s1".into(), 4.0)]).await.unwrap();
    x.publish_loads(&[("s1".into(), 100.0)]).await.unwrap();
    let seen = b.loads(long).await.unwrap();
    assert_eq!(seen["s1"]["a"], 2.5, "{seen:?}");
    assert_eq!(seen["s1"]["b"], 4.0, "{seen:?}");
    assert_eq!(
        seen["s1"].len(),
        2,
        "another installation's load is apart: {seen:?}"
    );
    assert_eq!(seen["s2"]["a"], 1.0);
    // Published again: replaced, never counted twice.
    a.publish_loads(&[("s1".into(), 3.0)]).await.unwrap();
    assert_eq!(a.loads(long).await.unwrap()["s1"]["a"], 3.0);
    // b stops publishing; past the time to live only a's fresh share counts.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    a.publish_loads(&[("s1".into(), 3.5)]).await.unwrap();
    let fresh = a.loads(Duration::from_secs(1)).await.unwrap();
    assert_eq!(fresh.get("s1").map(|m| m.len()), Some(1), "{fresh:?}");
    assert_eq!(fresh["s1"]["a"], 3.5);
}

async fn one_node_holds_the_lease_until_it_expires_or_is_given_up(url: &str) {
    let (a, b, x) = nodes(url, "lease").await;
    let ttl = Duration::from_secs(3);
    let first = a.lease(ttl).await.unwrap();
    assert_eq!(first.holder.as_deref(), Some("a"));
    assert!(first.held_until.is_some());
    let other = b.lease(ttl).await.unwrap();
    assert_eq!(
        other.holder.as_deref(),
        Some("a"),
        "b must not take a held lease"
    );
    assert_eq!(other.held_until, None);
    // Another installation has a lease of its own.
    assert_eq!(x.lease(ttl).await.unwrap().holder.as_deref(), Some("x"));
    // Renewed by its holder, it outlives the first time to live.
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(a.lease(ttl).await.unwrap().held_until.is_some());
        assert_eq!(b.lease(ttl).await.unwrap().holder.as_deref(), Some("a"));
    }
    // Its holder gone quiet, it expires and b takes it.
    tokio::time::sleep(ttl + Duration::from_millis(500)).await;
    let taken = b.lease(ttl).await.unwrap();
    assert_eq!(taken.holder.as_deref(), Some("b"));
    assert_eq!(a.lease(ttl).await.unwrap().holder.as_deref(), Some("b"));
    // Given up (a's release changes nothing: b holds it), then free at once.
    a.release().await.unwrap();
    assert_eq!(a.lease(ttl).await.unwrap().holder.as_deref(), Some("b"));
    b.release().await.unwrap();
    assert_eq!(a.lease(ttl).await.unwrap().holder.as_deref(), Some("a"));
}

async fn decisions_are_replaced_whole_and_expire(url: &str) {
    let (a, b, _) = nodes(url, "decisions").await;
    let long = Duration::from_secs(60);
    a.publish_decisions(
        &[("s1".into(), "one".into()), ("s2".into(), "two".into())],
        long,
    )
    .await
    .unwrap();
    let seen = b.decisions().await.unwrap();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen["s1"], "one");
    a.publish_decisions(&[("s2".into(), "three".into())], Duration::from_secs(2))
        .await
        .unwrap();
    let seen = b.decisions().await.unwrap();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen["s2"], "three");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(b.decisions().await.unwrap().is_empty());
}

#[tokio::test]
async fn over_redis() {
    let server = RedisServer::start_in_memory();
    let url = server.url(&format!("shared-{}", std::process::id()));
    loads_are_summed_per_key_and_forgotten_when_stale(&url).await;
    one_node_holds_the_lease_until_it_expires_or_is_given_up(&url).await;
    decisions_are_replaced_whole_and_expire(&url).await;
}

#[tokio::test]
async fn over_postgres() {
    let url = fresh_database();
    loads_are_summed_per_key_and_forgotten_when_stale(&url).await;
    one_node_holds_the_lease_until_it_expires_or_is_given_up(&url).await;
    decisions_are_replaced_whole_and_expire(&url).await;
    // Nodes starting together make the tables once, without a race.
    let opened =
        futures_util::future::join_all((0..4).map(|_| Shared::open(&url, "again", "n", TIMEOUT)))
            .await;
    assert!(opened.iter().all(Result::is_ok));
}
