//! What the event store needs to know about an aggregate beyond cqrs-es's
//! `Aggregate`: how its snapshots are versioned, and the facts it recalls by
//! key instead of keeping them in memory.
//!
//! An aggregate's in-memory state must stay small however long its history
//! grows, because it is loaded (from a snapshot plus the events after it) for
//! every command. Facts that are needed only by key ("did order X already
//! take stock from this product?", "which number did order Y get?") live in
//! the aggregate's *keyed memory* instead: every event names the entries it
//! sets or forgets ([`StoredAggregate::remembers`]), the event store writes
//! them in the same transaction as the event, and before a command is decided
//! it hands the aggregate the entries that command asks for
//! ([`StoredAggregate::recall_keys`], [`StoredAggregate::recall`]).
//!
//! An aggregate keeps recalled entries in a field that is not serialized
//! (`#[serde(skip)]`), so snapshots stay small; its `apply` updates that
//! field too, so an aggregate rebuilt from its events (tests, history,
//! `as_of`) knows every entry without the store. [`KeyedMemory`] is that
//! field.
//!
//! What an aggregate knows by key therefore depends on how it was loaded:
//! rebuilt from all its events it knows every entry; loaded from a snapshot
//! it knows only the entries written by the events after the snapshot and
//! those it was handed by [`StoredAggregate::recall`]. Its rules read only
//! keys that [`StoredAggregate::recall_keys`] names for the command being
//! decided, so both ways decide alike.
//!
//! Keys are short stable strings (`committed:<uuid>`, `invoice:<uuid>`, ...),
//! unique within one aggregate; each aggregate defines every key format in
//! one function used by both `remembers` and `recall_keys`. Values are JSON.
//! Uuids in keys are lower-case and hyphenated, as events serialize them.
//!
//! | aggregate          | key                      | value    | module docs            |
//! |--------------------|--------------------------|----------|------------------------|
//! | `InventoryItem`    | `committed:<owner id>`   | quantity | [`crate::inventory`]   |
//! |                    | `decremented:<order id>` | quantity |                        |
//! |                    | `returned:<order id>`    | quantity |                        |
//! | `InvoiceNumbering` | `invoice:<order id>`     | number   | [`crate::invoice`]     |
//! | `Coupon`           | `redeemed:<order id>`    | `true`   | [`crate::coupon`]      |
//! | `Wallet`           | `reference:<reference>`  | `true`   | [`crate::wallet`]      |
//!
//! The other aggregates remember nothing by key.

use std::collections::BTreeMap;

use cqrs_es::Aggregate;
use serde_json::Value;

/// An aggregate the event store can load and append to. Its events say
/// which of their fields hold personal data ([`PersonalData`]).
///
/// [`PersonalData`]: crate::personal::PersonalData
pub trait StoredAggregate: Aggregate<Event: crate::personal::PersonalData> {
    /// The version of the serialized state. Raise it whenever the state's
    /// shape or meaning changes, so snapshots taken by older code are ignored
    /// (and the aggregate is rebuilt from its events) instead of being read
    /// into the new shape.
    const SNAPSHOT_VERSION: i32 = 1;

    /// The keyed-memory entries `event` writes: `(key, Some(value))` sets the
    /// entry, `(key, None)` forgets it. A function of the event alone (not of
    /// the state it is applied to), so the store can write the entries
    /// without loading the aggregate, and a backfill can compute them from
    /// stored events.
    fn remembers(_event: &Self::Event) -> Vec<(String, Option<Value>)> {
        Vec::new()
    }

    /// The keyed-memory entries `command` needs to be decided. A function of
    /// the command alone; asking for a key that has no entry is fine.
    fn recall_keys(_command: &Self::Command) -> Vec<String> {
        Vec::new()
    }

    /// Receives, before `handle`, the stored entries for the keys asked for
    /// (a key without an entry is left out). Entries already known are
    /// replaced by the recalled ones.
    fn recall(&mut self, _entries: Vec<(String, Value)>) {}
}

/// The keyed-memory entries an aggregate knows: those written by the events
/// it applied and those it recalled. Kept beside the state, never in it: the
/// aggregate's field is `#[serde(skip)]`, so a snapshot never holds it, and
/// the aggregates leave it out of their equality.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyedMemory {
    entries: BTreeMap<String, Value>,
}

impl KeyedMemory {
    /// The entry of `key`, if known.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.entries.get(key)
    }

    /// Whether an entry of `key` is known.
    pub fn contains(&self, key: &str) -> bool {
        self.entries.contains_key(key)
    }

    /// Writes what an event remembers ([`StoredAggregate::remembers`]):
    /// `Some` sets the entry, `None` forgets it.
    pub fn write(&mut self, entries: Vec<(String, Option<Value>)>) {
        for (key, value) in entries {
            match value {
                Some(value) => {
                    self.entries.insert(key, value);
                }
                None => {
                    self.entries.remove(&key);
                }
            }
        }
    }

    /// Takes the entries the store recalled ([`StoredAggregate::recall`]).
    pub fn recall(&mut self, entries: Vec<(String, Value)>) {
        self.entries.extend(entries);
    }

    /// Every known entry, by key.
    pub fn entries(&self) -> &BTreeMap<String, Value> {
        &self.entries
    }
}

/// Test helpers: deciding a command on an aggregate loaded the way the event
/// store loads it (snapshot plus recalled entries) rather than from all its
/// events, as cqrs-es's `TestFramework` does.
#[cfg(test)]
pub(crate) mod testing {
    use std::collections::BTreeMap;

    use cqrs_es::event_sink::EventSink;
    use serde_json::Value;

    use super::StoredAggregate;

    /// Decides `command` on `aggregate`: the events, or the refusal.
    pub fn decide<A: StoredAggregate>(
        mut aggregate: A,
        command: A::Command,
        services: &A::Services,
    ) -> Result<Vec<A::Event>, A::Error> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a test runtime");
        runtime.block_on(async {
            let sink = EventSink::<A>::default();
            aggregate.handle(command, services, &sink).await?;
            Ok(sink.collect().await)
        })
    }

    /// The aggregate rebuilt from all of `history`.
    pub fn rebuilt<A: StoredAggregate>(history: &[A::Event]) -> A {
        let mut aggregate = A::default();
        for event in history {
            aggregate.apply(event.clone());
        }
        aggregate
    }

    /// The entries the event store holds after `history`: every event's
    /// [`StoredAggregate::remembers`] written in order.
    pub fn stored_entries<A: StoredAggregate>(history: &[A::Event]) -> BTreeMap<String, Value> {
        let mut entries = BTreeMap::new();
        for event in history {
            for (key, value) in A::remembers(event) {
                match value {
                    Some(value) => {
                        entries.insert(key, value);
                    }
                    None => {
                        entries.remove(&key);
                    }
                }
            }
        }
        entries
    }

    /// The aggregate as the store loads it to decide `command`: its snapshot
    /// after `history` (through JSON, so without memory), then the stored
    /// entries of the keys `command` asks for.
    pub fn loaded_for<A: StoredAggregate>(history: &[A::Event], command: &A::Command) -> A {
        let snapshot = serde_json::to_value(rebuilt::<A>(history)).expect("a snapshot");
        let mut aggregate: A = serde_json::from_value(snapshot).expect("a loaded snapshot");
        let stored = stored_entries::<A>(history);
        let recalled = A::recall_keys(command)
            .into_iter()
            .filter_map(|key| stored.get(&key).cloned().map(|value| (key, value)))
            .collect();
        aggregate.recall(recalled);
        aggregate
    }
}
