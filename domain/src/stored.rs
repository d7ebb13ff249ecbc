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
//! `as_of`) knows every entry without the store.

use cqrs_es::Aggregate;
use serde_json::Value;

/// An aggregate the event store can load and append to.
pub trait StoredAggregate: Aggregate {
    /// The version of the serialized state. Raise it whenever the state's
    /// shape or meaning changes, so snapshots taken by older code are ignored
    /// (and the aggregate is rebuilt from its events) instead of being read
    /// into the new shape.
    const SNAPSHOT_VERSION: i32 = 1;

    /// The keyed-memory entries `event` writes: `(key, Some(value))` sets the
    /// entry, `(key, None)` forgets it.
    fn remembers(_event: &Self::Event) -> Vec<(String, Option<Value>)> {
        Vec::new()
    }

    /// The keyed-memory entries `command` needs to be decided.
    fn recall_keys(_command: &Self::Command) -> Vec<String> {
        Vec::new()
    }

    /// Receives, before `handle`, the stored entries for the keys asked for
    /// (a key without an entry is left out).
    fn recall(&mut self, _entries: Vec<(String, Value)>) {}
}
