//! The change bus over PostgreSQL (LISTEN/NOTIFY), on a real server: the
//! shared throwaway cluster of [`ferrite_testkit::postgres`] (a database per
//! test), or a cluster of the test's own where the server is restarted.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ferrite_queue::bus::{ChangeBus, Heard, MAX_MESSAGE_BYTES};
use ferrite_queue::QueueError;
use ferrite_testkit::postgres::fresh_database;
use ferrite_testkit::PrivatePostgres;
use tokio::sync::mpsc::UnboundedReceiver;

/// Every operation's bound.
const TIMEOUT: Duration = Duration::from_secs(2);
/// The most a test waits for something it expects to hear.
const PATIENCE: Duration = Duration::from_secs(30);

/// Listen on `bus` as a node does: again after every broken subscription.
/// What it hears arrives on the receiver.
fn listen(bus: &Arc<ChangeBus>) -> (UnboundedReceiver<Heard>, tokio::task::JoinHandle<()>) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let bus = bus.clone();
    let task = tokio::spawn(async move {
        loop {
            let tx = tx.clone();
            if bus
                .listen(move |heard| tx.send(heard).is_ok())
                .await
                .is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    (rx, task)
}

/// The next thing heard, within [`PATIENCE`].
async fn next(rx: &mut UnboundedReceiver<Heard>) -> Heard {
    tokio::time::timeout(PATIENCE, rx.recv())
        .await
        .expect("nothing heard in time")
        .expect("the listener ended")
}

/// Everything heard until the next [`Heard::Subscribed`], within [`PATIENCE`].
async fn until_subscribed(rx: &mut UnboundedReceiver<Heard>) -> Vec<Heard> {
    let mut heard = Vec::new();
    let renewed = tokio::time::timeout(PATIENCE, async {
        while let Some(h) = rx.recv().await {
            if h == Heard::Subscribed {
                return;
            }
            heard.push(h);
        }
    })
    .await;
    assert!(renewed.is_ok(), "no new subscription; heard {heard:?}");
    heard
}

fn message(text: &str) -> Heard {
    Heard::Message(text.to_string())
}

async fn open(url: &str) -> Arc<ChangeBus> {
    Arc::new(ChangeBus::open(url, TIMEOUT).await.expect("open the bus"))
}

/// Run `sql` on the database of `url`.
async fn sql(url: &str, sql: &str) {
    let pool = sqlx::PgPool::connect(url).await.expect("connect");
    sqlx::raw_sql(sql).execute(&pool).await.expect("run SQL");
    pool.close().await;
}

/// The process id of the backend listening for `url`'s bus (its session
/// is named `ferrite-changes`), once there is one.
async fn listening_backend(url: &str) -> i32 {
    let pool = sqlx::PgPool::connect(url).await.expect("connect");
    let began = Instant::now();
    loop {
        let pid: Option<i32> = sqlx::query_scalar(
            "SELECT pid FROM pg_stat_activity \
             WHERE datname = current_database() AND application_name = 'ferrite-changes'",
        )
        .fetch_optional(&pool)
        .await
        .expect("pg_stat_activity");
        if let Some(pid) = pid {
            pool.close().await;
            return pid;
        }
        assert!(began.elapsed() < PATIENCE, "no listening backend");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Nodes on one database hear each other; a bus on another database, or on
/// another schema of the same one (another installation), hears nothing
/// of theirs.
#[tokio::test]
async fn nodes_of_one_store_hear_each_other_and_no_one_else() {
    let url = fresh_database();
    let (a, b) = (open(&url).await, open(&url).await);
    let (mut heard_a, _la) = listen(&a);
    assert_eq!(next(&mut heard_a).await, Heard::Subscribed);

    let elsewhere = fresh_database();
    let other_db = open(&elsewhere).await;
    let (mut heard_other_db, _lo) = listen(&other_db);
    assert_eq!(next(&mut heard_other_db).await, Heard::Subscribed);

    sql(&url, "CREATE SCHEMA other").await;
    let other_schema = open(&format!("{url}?options=-c%20search_path%3Dother")).await;
    let (mut heard_other_schema, _ls) = listen(&other_schema);
    assert_eq!(next(&mut heard_other_schema).await, Heard::Subscribed);

    b.publish("from b").await.expect("publish");
    assert_eq!(next(&mut heard_a).await, message("from b"));
    a.publish("from a").await.expect("publish");
    assert_eq!(next(&mut heard_a).await, message("from a"), "its own too");

    // Published after those of b and a: had theirs leaked, they would come first.
    other_db.publish("other db").await.expect("publish");
    other_schema.publish("other schema").await.expect("publish");
    assert_eq!(next(&mut heard_other_db).await, message("other db"));
    assert_eq!(next(&mut heard_other_schema).await, message("other schema"));
    b.publish("last").await.expect("publish");
    assert_eq!(next(&mut heard_a).await, message("last"));
}

/// The largest message goes through PostgreSQL whole; one byte more is
/// refused before it is sent.
#[tokio::test]
async fn messages_are_bounded_by_what_postgres_carries() {
    let url = fresh_database();
    let bus = open(&url).await;
    let (mut heard, _l) = listen(&bus);
    assert_eq!(next(&mut heard).await, Heard::Subscribed);
    let largest = "x".repeat(MAX_MESSAGE_BYTES);
    bus.publish(&largest).await.expect("the largest message");
    assert_eq!(next(&mut heard).await, Heard::Message(largest));
    let err = bus
        .publish(&"x".repeat(MAX_MESSAGE_BYTES + 1))
        .await
        .expect_err("too large");
    assert!(matches!(err, QueueError::TooLarge { .. }), "{err:?}");
}

/// A listening backend that is killed (`pg_terminate_backend`) means a new
/// subscription, announced as such, and messages are heard again.
#[tokio::test]
async fn a_killed_backend_means_a_new_subscription() {
    let url = fresh_database();
    let bus = open(&url).await;
    let (mut heard, _l) = listen(&bus);
    assert_eq!(next(&mut heard).await, Heard::Subscribed);
    let first = listening_backend(&url).await;
    sql(&url, &format!("SELECT pg_terminate_backend({first})")).await;
    until_subscribed(&mut heard).await;
    assert_ne!(listening_backend(&url).await, first);
    bus.publish("after").await.expect("publish");
    assert_eq!(next(&mut heard).await, message("after"));
}

/// A listening backend that stops answering (SIGSTOP: its connection stays
/// open and silent) is noticed by the ping: a new subscription on a new
/// connection, while publishing goes on.
#[tokio::test]
async fn a_hung_backend_means_a_new_subscription() {
    let url = fresh_database();
    let bus = open(&url).await;
    let (mut heard, _l) = listen(&bus);
    assert_eq!(next(&mut heard).await, Heard::Subscribed);
    let hung = listening_backend(&url).await;
    let signal = |sig: &str| {
        let status = std::process::Command::new("kill")
            .args([sig, &hung.to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill {sig} {hung}");
    };
    signal("-STOP");
    let began = Instant::now();
    let missed = until_subscribed(&mut heard).await;
    println!(
        "a hung listening backend: subscribed again after {:?} (timeout {TIMEOUT:?}); heard meanwhile {missed:?}",
        began.elapsed()
    );
    signal("-CONT");
    bus.publish("after").await.expect("publish");
    assert_eq!(next(&mut heard).await, message("after"));
}

/// The server restarts: publishing fails, bounded, while it is down; the
/// subscription is renewed once it is back, and messages flow again.
#[tokio::test]
async fn a_restarted_server_means_a_new_subscription() {
    let postgres = PrivatePostgres::start();
    let url = postgres.url();
    let bus = open(&url).await;
    let (mut heard, _l) = listen(&bus);
    assert_eq!(next(&mut heard).await, Heard::Subscribed);
    bus.publish("before").await.expect("publish");
    assert_eq!(next(&mut heard).await, message("before"));

    postgres.stop();
    let began = Instant::now();
    bus.publish("lost").await.expect_err("the server is down");
    assert!(began.elapsed() < TIMEOUT * 3, "{:?}", began.elapsed());
    postgres.start_again();
    until_subscribed(&mut heard).await;
    // The publisher's connection may need a try to find the server back.
    let began = Instant::now();
    while bus.publish("after").await.is_err() {
        assert!(began.elapsed() < PATIENCE, "publishing never worked again");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(next(&mut heard).await, message("after"));
}
