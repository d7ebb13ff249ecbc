//! The event store on a real database: append-only, optimistic concurrency,
//! metadata on every event, and reading the log in commit order.

use cqrs_es::event_sink::EventSink;
use cqrs_es::persist::{PersistedEventRepository, PersistenceError, SerializedEvent};
use cqrs_es::{Aggregate, DomainEvent};
use domain::metadata::{Actor, CommandMetadata, Role};
use postgres_es::PostgresEventRepository;
use projections::event_store::log::{read_after, Checkpoint, StoredEvent};
use projections::event_store::CommandBus;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::{Connection, PgConnection, PgPool};
use testkit::fresh_database;

async fn insert_event(conn: &mut PgConnection, aggregate_id: &str, sequence: i64) {
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         VALUES ('Probe', $1, $2, 'Probed', '1.0', '{}', '{}')",
    )
    .bind(aggregate_id)
    .bind(sequence)
    .execute(conn)
    .await
    .expect("insert an event");
}

async fn connect(url: &str) -> PgConnection {
    PgConnection::connect(url).await.expect("connect")
}

/// Reads the whole log after `from` in batches of `batch`, like a projector.
async fn drain(pool: &PgPool, from: Checkpoint, batch: i64) -> (Vec<StoredEvent>, Checkpoint) {
    let mut checkpoint = from;
    let mut all = Vec::new();
    loop {
        let events = read_after(pool, checkpoint, batch)
            .await
            .expect("read the log");
        let Some(last) = events.last() else {
            return (all, checkpoint);
        };
        checkpoint = last.checkpoint();
        all.extend(events);
    }
}

/// Reads until `expected` events have arrived, or ten seconds pass. The
/// horizon is cluster-wide, so an open transaction of another test's database
/// may hold the reader back for a moment: that wait is the very guarantee
/// under test, so poll instead of asserting on the first read.
async fn drain_until(
    pool: &PgPool,
    from: Checkpoint,
    expected: usize,
) -> (Vec<StoredEvent>, Checkpoint) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut checkpoint = from;
    let mut all = Vec::new();
    loop {
        let (events, next) = drain(pool, checkpoint, 1).await;
        checkpoint = next;
        all.extend(events);
        if all.len() >= expected || tokio::time::Instant::now() > deadline {
            return (all, checkpoint);
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

fn positions(events: &[StoredEvent]) -> Vec<(String, i64)> {
    events
        .iter()
        .map(|e| (e.aggregate_id.clone(), e.sequence))
        .collect()
}

#[tokio::test]
async fn events_cannot_be_updated_deleted_or_truncated() {
    let db = fresh_database().await;
    let mut conn = connect(&db.url).await;
    insert_event(&mut conn, "a", 1).await;

    for sql in [
        "UPDATE events SET payload = '{\"forged\": true}'",
        "DELETE FROM events",
        "TRUNCATE events",
    ] {
        let err = sqlx::query(sql)
            .execute(&db.pool)
            .await
            .expect_err("changing history must fail");
        let message = err.to_string();
        assert!(
            message.contains("the event store is append-only"),
            "{sql}: {message}"
        );
    }
    let (count,): (i64,) = sqlx::query_as("SELECT count(*) FROM events WHERE payload::text = '{}'")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(count, 1, "the event is still there, unchanged");
}

#[tokio::test]
async fn extra_columns_fill_themselves() {
    let db = fresh_database().await;
    let mut conn = connect(&db.url).await;
    insert_event(&mut conn, "a", 1).await;
    insert_event(&mut conn, "a", 2).await;
    let rows: Vec<(i64, String, chrono::DateTime<chrono::Utc>)> = sqlx::query_as(
        "SELECT global_position, transaction_id::text, recorded_at FROM events ORDER BY sequence",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(rows.len(), 2);
    assert!(rows[0].0 < rows[1].0, "positions grow");
    assert!(rows[0].1.parse::<u64>().unwrap() < rows[1].1.parse::<u64>().unwrap());
}

#[tokio::test]
async fn two_concurrent_appends_at_one_sequence_give_one_success_and_one_conflict() {
    let db = fresh_database().await;
    let repo_a = PostgresEventRepository::new(db.pool.clone());
    let repo_b = PostgresEventRepository::new(db.pool.clone());
    let event = |who: &str| SerializedEvent {
        aggregate_id: "counter-1".to_string(),
        sequence: 1,
        aggregate_type: Counter::TYPE.to_string(),
        event_type: "Incremented".to_string(),
        event_version: "1.0".to_string(),
        payload: json!({"Incremented": {"by": 1}}),
        metadata: json!({"writer": who}),
    };
    let (event_a, event_b) = ([event("a")], [event("b")]);
    let (a, b) = tokio::join!(
        repo_a.persist::<Counter>(&event_a, None),
        repo_b.persist::<Counter>(&event_b, None),
    );
    let results = [a, b];
    let successes = results.iter().filter(|r| r.is_ok()).count();
    let conflicts = results
        .iter()
        .filter(|r| matches!(r, Err(PersistenceError::OptimisticLockError)))
        .count();
    assert_eq!((successes, conflicts), (1, 1), "{results:?}");
    let (count,): (i64,) = sqlx::query_as("SELECT count(*) FROM events")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(count, 1);
}

#[tokio::test]
async fn the_reader_waits_for_an_open_transaction_and_then_returns_every_event_once_in_commit_order(
) {
    let db = fresh_database().await;

    // The open transaction takes the lowest position...
    let mut open = connect(&db.url).await;
    let mut open_tx = open.begin().await.unwrap();
    insert_event(&mut open_tx, "late", 1).await;

    // ...while later transactions commit.
    let mut other = connect(&db.url).await;
    insert_event(&mut other, "early", 1).await;
    insert_event(&mut other, "early", 2).await;

    let (seen, checkpoint) = drain(&db.pool, Checkpoint::START, 10).await;
    assert!(
        seen.is_empty(),
        "nothing past the open transaction may be read: {:?}",
        positions(&seen)
    );
    assert_eq!(checkpoint, Checkpoint::START);

    open_tx.commit().await.unwrap();
    let (seen, checkpoint) = drain_until(&db.pool, checkpoint, 3).await;
    assert_eq!(
        positions(&seen),
        vec![
            ("late".to_string(), 1),
            ("early".to_string(), 1),
            ("early".to_string(), 2)
        ]
    );
    let (again, _) = drain(&db.pool, checkpoint, 10).await;
    assert!(again.is_empty(), "nothing is returned twice");
}

#[tokio::test]
async fn the_reader_moves_past_a_rolled_back_transaction() {
    let db = fresh_database().await;
    let mut open = connect(&db.url).await;
    let mut open_tx = open.begin().await.unwrap();
    insert_event(&mut open_tx, "rolled-back", 1).await;
    let mut other = connect(&db.url).await;
    insert_event(&mut other, "kept", 1).await;

    let (seen, checkpoint) = drain(&db.pool, Checkpoint::START, 10).await;
    assert!(seen.is_empty());

    open_tx.rollback().await.unwrap();
    let (seen, _) = drain_until(&db.pool, checkpoint, 1).await;
    assert_eq!(positions(&seen), vec![("kept".to_string(), 1)]);
}

#[tokio::test]
async fn every_event_of_a_command_carries_its_metadata_and_the_command_answers_its_position() {
    let db = fresh_database().await;
    let bus = CommandBus::<Counter>::new(db.pool.clone(), ());
    let user = uuid::Uuid::new_v4();
    let correlation = uuid::Uuid::new_v4();
    let metadata = CommandMetadata::new(
        Actor::User {
            id: user,
            role: Role::Admin,
        },
        correlation.to_string(),
        "IncrementTwice",
    );
    let committed = bus
        .execute("counter-9", CounterCommand::IncrementTwice, &metadata)
        .await
        .expect("execute");

    let rows: Vec<(i64, serde_json::Value)> = sqlx::query_as(
        "SELECT global_position, metadata::jsonb FROM events WHERE aggregate_id = 'counter-9' ORDER BY sequence",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(committed.position, rows[1].0);
    assert!(committed.wrote_events);
    for (_, meta) in &rows {
        assert_eq!(meta["actor"], format!("admin:{user}"));
        assert_eq!(meta["correlation_id"], correlation.to_string());
        assert_eq!(meta["causation_id"], metadata.command_id.to_string());
        assert_eq!(meta["command"], "IncrementTwice");
    }

    // A command that writes nothing answers the aggregate's latest position.
    let noop = CommandMetadata::new(Actor::Anonymous, correlation.to_string(), "Nothing");
    let committed = bus
        .execute("counter-9", CounterCommand::Nothing, &noop)
        .await
        .expect("execute");
    assert_eq!(committed.position, rows[1].0);
    assert!(!committed.wrote_events);
}

/// A minimal aggregate to drive cqrs-es in these tests.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Counter {
    value: u64,
}

#[derive(Debug, Clone)]
enum CounterCommand {
    IncrementTwice,
    Nothing,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum CounterEvent {
    Incremented { by: u64 },
}

impl DomainEvent for CounterEvent {
    fn event_type(&self) -> String {
        "Incremented".to_string()
    }
    fn event_version(&self) -> String {
        "1.0".to_string()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("never")]
struct CounterError;

impl Aggregate for Counter {
    const TYPE: &'static str = "Counter";
    type Command = CounterCommand;
    type Event = CounterEvent;
    type Error = CounterError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        if let CounterCommand::IncrementTwice = command {
            sink.write(CounterEvent::Incremented { by: 1 }, self).await;
            sink.write(CounterEvent::Incremented { by: 1 }, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        let CounterEvent::Incremented { by } = event;
        self.value += by;
    }
}

impl domain::stored::StoredAggregate for Counter {}

impl domain::personal::PersonalData for CounterEvent {
    fn personal_fields(_event_type: &str) -> &'static [&'static str] {
        &[]
    }
}
