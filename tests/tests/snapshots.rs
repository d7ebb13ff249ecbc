//! Snapshots and keyed memory against the events they stand for.
//!
//! For every aggregate type a seeded random history of a few thousand
//! commands runs through the real `CommandBus` (which loads from the
//! snapshot, the events after it and the recalled keyed memory). Every
//! command is also decided on a copy rebuilt from all the events (which knows
//! every keyed-memory entry): both must decide alike, step by step. After the
//! history the state loaded from the snapshot must equal the one rebuilt
//! from the events, the snapshot must be the state at its sequence, the keyed
//! memory must be what the events remember, and more commands (decided, not
//! run) must give the same events from both copies.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, AggregateError};
use domain::cart::{cart_id_for, Cart, CartCommand, CartServices};
use domain::category::{Category, CategoryCommand, CategoryServices};
use domain::coupon::{coupon_id_for, Coupon, CouponCommand, Discount};
use domain::customer::{Customer, CustomerCommand, Email, Fullname, Phone, Username};
use domain::inventory::{HoldRequest, InventoryCommand, InventoryItem};
use domain::invoice::{numbering_id, InvoiceNumbering, InvoiceNumberingCommand};
use domain::metadata::{Actor, CommandMetadata, Role};
use domain::order::{
    CancellationReason, Order, OrderCommand, OrderCoupon, OrderLine, OrderStatus, PaymentMethod,
    ShippingAddress,
};
use domain::product::{Product, ProductCommand, ProductServices};
use domain::shop::{Shop, ShopCommand};
use domain::sku::{claim_id, SkuClaim, SkuCommand};
use domain::stored::StoredAggregate;
use domain::values::{
    CategoryId, Currency, CustomerId, Money, OrderId, ProductId, Quantity, ShopId, Sku,
};
use domain::wallet::{wallet_id, Wallet, WalletCommand};
use projections::event_store::streams::SNAPSHOT_AFTER;
use projections::event_store::{load_aggregate, CommandBus};
use projections::lookups::EventStoreLookups;
use serde::Serialize;
use serde_json::Value;
use sqlx::PgPool;
use testkit::fresh_database;
use uuid::Uuid;

/// Commands attempted per aggregate type.
const STEPS: usize = 2_400;
/// Commands decided (not run) on both copies after a history.
const PROBES: usize = 150;

// ---- the harness ----

/// xorshift64*: a seeded, reproducible sequence.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed ^ 0x9E37_79B9_7F4A_7C15 | 1)
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    /// A number in `lo..=hi`.
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo + 1) as u64) as i64
    }
    fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
    fn quantity(&mut self, lo: i64, hi: i64) -> Quantity {
        Quantity::new(self.range(lo, hi)).expect("a quantity")
    }
}

/// The time of step `step`: one minute per command.
fn at(step: usize) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap() + Duration::minutes(step as i64)
}

fn usd(minor: i64) -> Money {
    Money {
        minor,
        currency: Currency::usd(),
    }
}

fn eur(minor: i64) -> Money {
    Money {
        minor,
        currency: Currency::parse("EUR").unwrap(),
    }
}

fn meta() -> CommandMetadata {
    CommandMetadata::new(
        Actor::System("snapshot-check".to_string()),
        "snapshots",
        "RandomHistory",
    )
}

fn uuid(kind: u128, n: u64) -> Uuid {
    Uuid::from_u128((kind << 64) | u128::from(n))
}

/// Picks the next command (and the aggregate it goes to) from the step and
/// the aggregates as their events say.
type Pick<A> =
    Box<dyn FnMut(&mut Rng, usize, &BTreeMap<String, A>) -> (String, <A as Aggregate>::Command)>;

/// A random history of one aggregate type.
struct Scenario<A: StoredAggregate> {
    services: A::Services,
    pick: Pick<A>,
    /// Every command variant, each of which must have written events at least
    /// once in the history.
    variants: &'static [&'static str],
}

/// What a history did, and the aggregates as their events say.
struct History<A> {
    shadows: BTreeMap<String, A>,
    sequences: BTreeMap<String, i64>,
    /// Per command variant: (written events, changed nothing, refused).
    by_variant: BTreeMap<String, [usize; 3]>,
    steps: usize,
}

impl<A> History<A> {
    fn totals(&self) -> [usize; 3] {
        self.by_variant.values().fold([0; 3], |mut t, c| {
            for i in 0..3 {
                t[i] += c[i];
            }
            t
        })
    }
}

/// The enum variant of a command, as serde names it.
fn variant_of<C: Serialize>(command: &C) -> String {
    match serde_json::to_value(command).expect("a command serializes") {
        Value::String(name) => name,
        Value::Object(map) => map.keys().next().cloned().unwrap_or_default(),
        other => other.to_string(),
    }
}

/// Decides `command` on `aggregate`: the events, or the refusal.
async fn decide<A: StoredAggregate>(
    mut aggregate: A,
    command: A::Command,
    services: &A::Services,
) -> Result<Vec<A::Event>, A::Error> {
    let sink = EventSink::default();
    aggregate.handle(command, services, &sink).await?;
    Ok(sink.collect().await)
}

/// The stored events of an aggregate after `sequence`: (sequence, position,
/// event).
async fn events_after<A: StoredAggregate>(
    pool: &PgPool,
    id: &str,
    sequence: i64,
) -> Vec<(i64, i64, A::Event)> {
    // Read as every reader of the store reads them: personal fields
    // decrypted (see `projections::event_store::personal`).
    type Row = (i64, i64, String, String, String, Option<Vec<u8>>);
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT e.sequence, e.global_position, e.event_type, e.event_version, e.payload::text,
                k.wrapped_key
           FROM events e LEFT JOIN personal_data_keys k ON k.subject = e.personal_key
          WHERE e.aggregate_type = $1 AND e.aggregate_id = $2 AND e.sequence > $3
          ORDER BY e.sequence",
    )
    .bind(A::TYPE)
    .bind(id)
    .bind(sequence)
    .fetch_all(pool)
    .await
    .expect("read the events");
    rows.into_iter()
        .map(|(sequence, position, event_type, version, payload, key)| {
            let event = projections::event_store::streams::decode::<A>(
                &event_type,
                &version,
                &payload,
                key.as_deref(),
            )
            .unwrap_or_else(|e| panic!("{} {id} #{sequence} does not decode: {e}", A::TYPE));
            (sequence, position, event)
        })
        .collect()
}

/// The stored keyed-memory entries of `keys` (forgotten ones left out), as
/// the store hands them to `recall`.
async fn recalled(
    pool: &PgPool,
    aggregate_type: &str,
    id: &str,
    keys: &[String],
) -> Vec<(String, Value)> {
    sqlx::query_as(
        "SELECT key, value FROM aggregate_memory
          WHERE aggregate_type = $1 AND aggregate_id = $2 AND key = ANY($3) AND value IS NOT NULL
          ORDER BY key",
    )
    .bind(aggregate_type)
    .bind(id)
    .bind(keys)
    .fetch_all(pool)
    .await
    .expect("read the keyed memory")
}

/// Every keyed-memory row of an aggregate: key and value (`None`: forgotten).
async fn memory_of(
    pool: &PgPool,
    aggregate_type: &str,
    id: &str,
) -> BTreeMap<String, Option<Value>> {
    let rows: Vec<(String, Option<Value>)> = sqlx::query_as(
        "SELECT key, value FROM aggregate_memory WHERE aggregate_type = $1 AND aggregate_id = $2",
    )
    .bind(aggregate_type)
    .bind(id)
    .fetch_all(pool)
    .await
    .expect("read the keyed memory");
    rows.into_iter().collect()
}

/// The snapshot row of an aggregate: (version, last_sequence, payload).
async fn snapshot_of(pool: &PgPool, aggregate_type: &str, id: &str) -> Option<(i32, i64, Value)> {
    let row: Option<(i32, i64, String)> = sqlx::query_as(
        "SELECT version, last_sequence, payload::text FROM snapshots
          WHERE aggregate_type = $1 AND aggregate_id = $2",
    )
    .bind(aggregate_type)
    .bind(id)
    .fetch_optional(pool)
    .await
    .expect("read the snapshot");
    row.map(|(version, sequence, payload)| {
        (
            version,
            sequence,
            serde_json::from_str(&payload).expect("a JSON snapshot"),
        )
    })
}

fn json<T: Serialize>(value: &T) -> Value {
    serde_json::to_value(value).expect("serializes")
}

/// Runs `steps` commands of `scenario` through a real command bus; each is
/// also decided on the aggregate rebuilt from its events, and both must
/// decide alike (the same events, or the same refusal).
async fn run_history<A>(
    pool: &PgPool,
    scenario: &mut Scenario<A>,
    steps: usize,
    seed: u64,
) -> History<A>
where
    A: StoredAggregate + Clone,
    A::Command: Clone + Serialize + Debug,
    A::Services: Clone,
{
    let bus = CommandBus::<A>::new(pool.clone(), scenario.services.clone());
    let mut rng = Rng::new(seed);
    let mut history = History {
        shadows: BTreeMap::new(),
        sequences: BTreeMap::new(),
        by_variant: BTreeMap::new(),
        steps,
    };
    for step in 0..steps {
        let (id, command) = (scenario.pick)(&mut rng, step, &history.shadows);
        let variant = variant_of(&command);
        let shadow = history.shadows.entry(id.clone()).or_default();
        let sequence = history.sequences.entry(id.clone()).or_insert(0);
        let expected = decide(shadow.clone(), command.clone(), &scenario.services).await;
        let result = bus.execute(&id, command.clone(), &meta()).await;
        let written = events_after::<A>(pool, &id, *sequence).await;
        let counts = history.by_variant.entry(variant).or_default();
        match (expected, result) {
            (Ok(events), Ok(committed)) => {
                let stored: Vec<A::Event> = written.iter().map(|(_, _, e)| e.clone()).collect();
                assert_eq!(
                    stored, events,
                    "step {step}, {} {id}, {command:?}: the store wrote other events than the events alone decide",
                    A::TYPE
                );
                assert_eq!(committed.wrote_events, !events.is_empty(), "step {step}: {committed:?}");
                if let Some((_, position, _)) = written.last() {
                    assert_eq!(committed.position, *position, "step {step}: the position answered");
                }
                counts[if events.is_empty() { 1 } else { 0 }] += 1;
            }
            (Err(refusal), Err(AggregateError::UserError(got))) => {
                assert_eq!(
                    format!("{got:?}"),
                    format!("{refusal:?}"),
                    "step {step}, {} {id}, {command:?}: refused for another reason",
                    A::TYPE
                );
                assert!(written.is_empty(), "step {step}: a refused command wrote events");
                counts[2] += 1;
            }
            (expected, got) => panic!(
                "step {step}, {} {id}, {command:?}: the events alone decide {expected:?}, the store decided {got:?}",
                A::TYPE
            ),
        }
        for (s, _, event) in written {
            shadow.apply(event);
            *sequence = s;
        }
    }
    history
}

/// After a history: every aggregate loaded from its snapshot equals the one
/// rebuilt from its events; its snapshot is the state at its sequence and
/// recent; its keyed memory is what its events remember; and further
/// commands decided on both copies give the same events. Answers how many
/// aggregates have a snapshot.
async fn check_history<A>(
    pool: &PgPool,
    scenario: &mut Scenario<A>,
    history: &History<A>,
    seed: u64,
) -> usize
where
    A: StoredAggregate + Clone,
    A::Command: Clone + Serialize + Debug,
    A::Services: Clone,
{
    let bus = CommandBus::<A>::new(pool.clone(), scenario.services.clone());
    let mut snapshotted = 0;
    for (id, shadow) in &history.shadows {
        let sequence = history.sequences[id];
        let from_snapshot = bus.load(id).await.expect("load through the bus");
        let from_events = load_aggregate::<A>(pool, id, None).await.expect("replay");
        assert_eq!(
            json(&from_snapshot),
            json(&from_events),
            "{} {id}: loaded from its snapshot differs from rebuilt from its events",
            A::TYPE
        );
        if sequence == 0 {
            assert!(from_events.is_none(), "{} {id} has no events", A::TYPE);
            continue;
        }
        assert_eq!(json(&from_events), json(&Some(shadow)), "{} {id}", A::TYPE);
        match snapshot_of(pool, A::TYPE, id).await {
            Some((version, last_sequence, payload)) => {
                snapshotted += 1;
                assert_eq!(version, A::SNAPSHOT_VERSION, "{} {id}", A::TYPE);
                assert!(
                    last_sequence > 0 && last_sequence <= sequence,
                    "{} {id}: {last_sequence}",
                    A::TYPE
                );
                assert!(
                    sequence - last_sequence < SNAPSHOT_AFTER,
                    "{} {id}: {sequence} events, snapshot at {last_sequence}",
                    A::TYPE
                );
                let then = load_aggregate::<A>(pool, id, Some(last_sequence))
                    .await
                    .expect("replay");
                assert_eq!(
                    payload,
                    json(&then),
                    "{} {id}: the snapshot is not the state after its {last_sequence} events",
                    A::TYPE
                );
            }
            None => assert!(
                sequence < SNAPSHOT_AFTER,
                "{} {id}: {sequence} events and no snapshot",
                A::TYPE
            ),
        }
        let mut remembered = BTreeMap::new();
        for (_, _, event) in events_after::<A>(pool, id, 0).await {
            remembered.extend(A::remembers(&event));
        }
        assert_eq!(
            memory_of(pool, A::TYPE, id).await,
            remembered,
            "{} {id}: the keyed memory is not what its events remember",
            A::TYPE
        );
    }
    // More commands, decided on the aggregate as the store loads it for each
    // (snapshot, later events, recalled entries) and as its events say.
    let mut rng = Rng::new(seed ^ 0xDEC1DE);
    let mut shadows = history.shadows.clone();
    for probe in 0..PROBES {
        let (id, command) = (scenario.pick)(&mut rng, history.steps + probe, &shadows);
        let keys = A::recall_keys(&command);
        let mut loaded = bus.load(&id).await.expect("load").unwrap_or_default();
        let entries = recalled(pool, A::TYPE, &id, &keys).await;
        if !entries.is_empty() {
            loaded.recall(entries);
        }
        let rebuilt = load_aggregate::<A>(pool, &id, None)
            .await
            .expect("replay")
            .unwrap_or_default();
        let from_store = decide(loaded, command.clone(), &scenario.services).await;
        let from_events = decide(rebuilt, command.clone(), &scenario.services).await;
        assert_eq!(
            format!("{from_store:?}"),
            format!("{from_events:?}"),
            "probe {probe}, {} {id}, {command:?}: decided otherwise on the stored state",
            A::TYPE
        );
        shadows.entry(id).or_default();
    }
    snapshotted
}

/// A whole check of one aggregate type.
async fn history_matches_events<A>(pool: &PgPool, mut scenario: Scenario<A>, seed: u64)
where
    A: StoredAggregate + Clone,
    A::Command: Clone + Serialize + Debug,
    A::Services: Clone,
{
    let started = std::time::Instant::now();
    let history = run_history(pool, &mut scenario, STEPS, seed).await;
    let snapshotted = check_history(pool, &mut scenario, &history, seed).await;
    let [wrote, unchanged, refused] = history.totals();
    eprintln!(
        "{}: {STEPS} commands ({wrote} wrote events, {unchanged} changed nothing, {refused} refused) \
         on {} aggregates, {snapshotted} with a snapshot, in {:.1} s; by command: {:?}",
        A::TYPE,
        history.shadows.len(),
        started.elapsed().as_secs_f64(),
        history.by_variant
    );
    assert_eq!(wrote + unchanged + refused, STEPS);
    for variant in scenario.variants {
        let counts = history
            .by_variant
            .get(*variant)
            .copied()
            .unwrap_or_default();
        assert!(
            counts[0] > 0,
            "{}: {variant} never wrote an event: {counts:?}",
            A::TYPE
        );
    }
    assert!(refused > 0, "{}: nothing was refused", A::TYPE);
    assert!(snapshotted > 0, "{}: no snapshot was taken", A::TYPE);
    let rows: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM snapshots WHERE aggregate_type = $1 AND last_sequence > 0",
    )
    .bind(A::TYPE)
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(rows, snapshotted as i64);
}

// ---- the scenarios, one per aggregate type ----

fn lookups(pool: &PgPool) -> Arc<EventStoreLookups> {
    Arc::new(EventStoreLookups::new(pool.clone()))
}

/// An id from a pool that slides with the steps: mostly recent ones, now and
/// then one from long ago (whose facts are in keyed memory by then, from
/// before the latest snapshot).
fn sliding(rng: &mut Rng, step: usize, kind: u128, width: u64, per: usize) -> Uuid {
    let high = width + (step / per) as u64;
    let n = if rng.one_in(5) {
        rng.below(high)
    } else {
        high - width + rng.below(width)
    };
    uuid(kind, n)
}

fn inventory_scenario() -> Scenario<InventoryItem> {
    let products: Vec<ProductId> = (0..3).map(|n| ProductId(uuid(0x1, n))).collect();
    Scenario {
        services: (),
        variants: &[
            "Receive",
            "Adjust",
            "PlaceHold",
            "ReleaseHold",
            "ExpireHold",
            "CommitHold",
            "Decrement",
            "ReturnOrderStock",
            "PlaceHolds",
            "CommitHolds",
        ],
        pick: Box::new(move |rng, step, shadows| {
            let now = at(step);
            let product = *rng.pick(&products);
            let id = product.to_string();
            let stocked = shadows.get(&id).is_some_and(|i| i.product_id().is_some());
            let owner = sliding(rng, step, 0x2, 25, 15);
            let expiry = |rng: &mut Rng| match rng.below(4) {
                0 => None,
                1 => Some(now - Duration::minutes(1)),
                _ => Some(now + Duration::minutes(rng.range(1, 30))),
            };
            let command = if !stocked && !rng.one_in(8) {
                InventoryCommand::Receive {
                    product_id: product,
                    quantity: rng.quantity(20, 60),
                    reason: None,
                }
            } else {
                match rng.below(100) {
                    0..=11 => InventoryCommand::Receive {
                        product_id: if rng.one_in(15) {
                            *rng.pick(&products)
                        } else {
                            product
                        },
                        quantity: rng.quantity(1, 60),
                        reason: rng
                            .pick(&[None, Some("delivery"), Some("   "), Some("long")])
                            .map(|r| {
                                if r == "long" {
                                    "x".repeat(501)
                                } else {
                                    r.to_string()
                                }
                            }),
                    },
                    12..=16 => InventoryCommand::Adjust {
                        delta: rng.range(-15, 15),
                        reason: rng.pick(&["recount", "damaged", " "]).to_string(),
                    },
                    17..=33 => InventoryCommand::PlaceHold {
                        owner_id: owner,
                        quantity: rng.quantity(1, 8),
                        expires_at: expiry(rng),
                        now,
                    },
                    34..=40 => InventoryCommand::ReleaseHold { owner_id: owner },
                    41..=47 => InventoryCommand::ExpireHold {
                        owner_id: owner,
                        now: now + Duration::minutes(rng.range(0, 40)),
                    },
                    48..=58 => InventoryCommand::CommitHold { owner_id: owner },
                    59..=67 => InventoryCommand::Decrement {
                        order_id: OrderId(owner),
                        quantity: rng.quantity(1, 6),
                    },
                    68..=77 => InventoryCommand::ReturnOrderStock {
                        order_id: OrderId(owner),
                    },
                    78..=89 => InventoryCommand::PlaceHolds {
                        holds: (0..rng.range(1, 5))
                            .map(|_| HoldRequest {
                                owner_id: sliding(rng, step, 0x2, 25, 15),
                                quantity: rng.quantity(1, 6),
                                expires_at: expiry(rng),
                            })
                            .collect(),
                        now,
                    },
                    _ => InventoryCommand::CommitHolds {
                        owner_ids: (0..rng.range(1, 5))
                            .map(|_| sliding(rng, step, 0x2, 25, 15))
                            .collect(),
                    },
                }
            };
            (id, command)
        }),
    }
}

fn invoice_scenario() -> Scenario<InvoiceNumbering> {
    let years = [2025, 2026];
    Scenario {
        services: (),
        variants: &["Allocate", "AllocateRun"],
        pick: Box::new(move |rng, step, _| {
            let own = *rng.pick(&years);
            let id = numbering_id(own).to_string();
            let year = match rng.below(40) {
                0 => 0,
                1 | 2 => 2027,
                _ => own,
            };
            let order = |rng: &mut Rng| OrderId(sliding(rng, step, 0x3, 20, 6));
            let command = if rng.below(10) < 6 {
                InvoiceNumberingCommand::Allocate {
                    year,
                    order_id: order(rng),
                    now: at(step),
                }
            } else {
                InvoiceNumberingCommand::AllocateRun {
                    year,
                    orders: (0..rng.range(1, 6)).map(|_| order(rng)).collect(),
                    now: at(step),
                }
            };
            (id, command)
        }),
    }
}

fn coupon_scenario() -> Scenario<Coupon> {
    let codes = ["SPRING", "summer-2026", "once_only"];
    Scenario {
        services: (),
        variants: &["Create", "Redeem", "ReleaseRedemption"],
        pick: Box::new(move |rng, step, shadows| {
            let index = rng.below(codes.len() as u64) as usize;
            let code = codes[index];
            let coupon_id = coupon_id_for(code);
            let id = coupon_id.to_string();
            let created = shadows.get(&id).is_some_and(|c| c.coupon_id().is_some());
            let order = OrderId(sliding(rng, step, 0x4 + index as u128, 30, 8));
            let command = if (!created && rng.below(2) == 0) || rng.one_in(25) {
                CouponCommand::Create {
                    coupon_id,
                    code: if rng.one_in(6) {
                        "x!".to_string()
                    } else {
                        code.to_string()
                    },
                    discount: match rng.below(6) {
                        0 => Discount::Percent(0),
                        1 | 2 => Discount::Fixed(usd(500)),
                        _ => Discount::Percent(10),
                    },
                    valid_from: at(0) - Duration::days(1),
                    // The summer coupon ends halfway through the history.
                    valid_until: if index == 1 {
                        at(STEPS / 2)
                    } else {
                        at(0) + Duration::days(365)
                    },
                    usage_limit: match (index, rng.below(8)) {
                        (_, 0) => Some(0),
                        (2, _) => Some(25),
                        _ => None,
                    },
                }
            } else if rng.below(100) < 60 {
                CouponCommand::Redeem {
                    order_id: order,
                    now: if rng.one_in(20) {
                        at(0) - Duration::days(2)
                    } else {
                        at(step)
                    },
                }
            } else {
                CouponCommand::ReleaseRedemption { order_id: order }
            };
            (id, command)
        }),
    }
}

fn wallet_scenario() -> Scenario<Wallet> {
    let customers: Vec<CustomerId> = (0..3).map(|n| CustomerId(uuid(0x5, n))).collect();
    Scenario {
        services: (),
        variants: &["Credit", "Debit"],
        pick: Box::new(move |rng, step, _| {
            let customer = *rng.pick(&customers);
            let id = wallet_id(customer).to_string();
            let customer_id = if rng.one_in(25) {
                *rng.pick(&customers)
            } else {
                customer
            };
            let n = sliding(rng, step, 0x6, 30, 8).as_u128() & 0xFFFF_FFFF;
            let reference = match rng.below(30) {
                0 => "   ".to_string(),
                1..=4 => format!("  ref-{n} "),
                _ => format!("ref-{n}"),
            };
            let amount = match rng.below(30) {
                0 => usd(0),
                1 => eur(100),
                _ => usd(rng.range(1, 4_000)),
            };
            let command = if rng.below(100) < 55 {
                WalletCommand::Credit {
                    customer_id,
                    reference,
                    amount,
                }
            } else {
                WalletCommand::Debit {
                    customer_id,
                    reference,
                    amount,
                }
            };
            (id, command)
        }),
    }
}

fn sku_scenario() -> Scenario<SkuClaim> {
    let skus: Vec<Sku> = ["TEA-1", "TEA-2", "MUG-9"]
        .iter()
        .map(|s| Sku::parse(s).unwrap())
        .collect();
    let products: Vec<ProductId> = (0..3).map(|n| ProductId(uuid(0x7, n))).collect();
    Scenario {
        services: (),
        variants: &["Claim", "Release"],
        pick: Box::new(move |rng, _, _| {
            let sku = rng.pick(&skus).clone();
            let id = claim_id(&sku).to_string();
            let product_id = *rng.pick(&products);
            let command = if rng.below(100) < 55 {
                SkuCommand::Claim { sku, product_id }
            } else {
                SkuCommand::Release { sku, product_id }
            };
            (id, command)
        }),
    }
}

fn shop_scenario() -> Scenario<Shop> {
    let shops: Vec<ShopId> = (0..3).map(|n| ShopId(uuid(0x8, n))).collect();
    let names = ["Tea House", "  The Mug  ", "Kettle & Co", "", "Tea House"];
    let texts = [
        "Loose leaf since 1901",
        "",
        "  ",
        "Open Monday to Friday",
        "12 High Street",
    ];
    Scenario {
        services: (),
        variants: &["Create", "Update"],
        pick: Box::new(move |rng, _, shadows| {
            let shop_id = *rng.pick(&shops);
            let id = shop_id.to_string();
            let created = shadows.get(&id).is_some_and(Shop::is_created);
            let text = |rng: &mut Rng| (!rng.one_in(3)).then(|| rng.pick(&texts).to_string());
            let command = if (!created && rng.below(2) == 0) || rng.one_in(15) {
                ShopCommand::Create {
                    shop_id,
                    name: rng.pick(&names).to_string(),
                    description: text(rng),
                    address: text(rng),
                }
            } else {
                ShopCommand::Update {
                    name: (!rng.one_in(3)).then(|| rng.pick(&names).to_string()),
                    description: text(rng),
                    address: text(rng),
                }
            };
            (id, command)
        }),
    }
}

fn customer_scenario() -> Scenario<Customer> {
    let usernames = ["ada", "grace", "Linus"];
    let roles = [Role::Customer, Role::Admin, Role::Operator, Role::Auditor];
    Scenario {
        services: (),
        variants: &["Register", "ChangeRole", "Promote", "RevokeTokens"],
        pick: Box::new(move |rng, step, shadows| {
            let name = *rng.pick(&usernames);
            let username = Username::parse(name).unwrap();
            let customer_id = username.customer_id();
            let id = customer_id.to_string();
            let registered = shadows.get(&id).is_some_and(Customer::is_registered);
            let hash = |rng: &mut Rng| {
                if rng.one_in(12) {
                    " ".to_string()
                } else {
                    format!("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA${step}")
                }
            };
            let command = if (!registered && rng.below(2) == 0) || rng.one_in(12) {
                CustomerCommand::Register {
                    customer_id,
                    username: Username::parse(&name.to_uppercase()).unwrap(),
                    password_hash: hash(rng),
                    fullname: Fullname::parse("Ada Lovelace").unwrap(),
                    email: Email::parse(&format!("{name}@example.com")).unwrap(),
                    phone: Phone::parse("+44 20 7946 0000").unwrap(),
                    role: Role::Customer,
                }
            } else if rng.below(2) == 0 {
                CustomerCommand::ChangeRole {
                    role: *rng.pick(&roles),
                }
            } else if rng.below(2) == 0 {
                CustomerCommand::RevokeTokens
            } else {
                CustomerCommand::Promote {
                    role: *rng.pick(&roles),
                    password_hash: hash(rng),
                }
            };
            (id, command)
        }),
    }
}

/// Runs `command` on a fresh bus and insists that it wrote events.
async fn must<A>(pool: &PgPool, services: A::Services, id: impl ToString, command: A::Command)
where
    A: StoredAggregate,
{
    let committed = CommandBus::<A>::new(pool.clone(), services)
        .execute(&id.to_string(), command, &meta())
        .await
        .unwrap_or_else(|e| panic!("setting up {}: {e:?}", A::TYPE));
    assert!(committed.wrote_events, "setting up {}", A::TYPE);
}

async fn create_category(pool: &PgPool, id: CategoryId, name: &str) {
    let services = CategoryServices::new(lookups(pool));
    let command = CategoryCommand::Create {
        category_id: id,
        name: name.to_string(),
        parent: None,
    };
    must::<Category>(pool, services, id, command).await;
}

async fn create_shop(pool: &PgPool, id: ShopId) {
    let command = ShopCommand::Create {
        shop_id: id,
        name: "Tea House".to_string(),
        description: None,
        address: None,
    };
    must::<Shop>(pool, (), id, command).await;
}

fn category_scenario(pool: &PgPool) -> Scenario<Category> {
    let ids: Vec<CategoryId> = (0..8).map(|n| CategoryId(uuid(0x9, n))).collect();
    let names = ["Tea", "Coffee", "  Kitchen ", "Garden", "", "long"];
    Scenario {
        services: CategoryServices::new(lookups(pool)),
        variants: &["Create", "Rename", "Move"],
        pick: Box::new(move |rng, _, shadows| {
            let category_id = *rng.pick(&ids);
            let id = category_id.to_string();
            let created = shadows.get(&id).is_some_and(Category::is_created);
            let parent = |rng: &mut Rng| match rng.below(12) {
                0..=2 => None,
                3 => Some(CategoryId(uuid(0x9, 99))),
                _ => Some(*rng.pick(&ids)),
            };
            let command = if (!created && rng.below(2) == 0) || rng.one_in(20) {
                CategoryCommand::Create {
                    category_id,
                    name: rng.pick(&names[..4]).to_string(),
                    parent: parent(rng),
                }
            } else if rng.below(100) < 55 {
                let name = *rng.pick(&names);
                CategoryCommand::Rename {
                    name: if name == "long" {
                        "x".repeat(101)
                    } else {
                        name.to_string()
                    },
                }
            } else {
                CategoryCommand::Move {
                    new_parent: parent(rng),
                }
            };
            (id, command)
        }),
    }
}

async fn product_scenario(pool: &PgPool) -> Scenario<Product> {
    let categories: Vec<CategoryId> = (0..2).map(|n| CategoryId(uuid(0xA, n))).collect();
    let shops: Vec<ShopId> = (0..2).map(|n| ShopId(uuid(0xB, n))).collect();
    for (n, category) in categories.iter().enumerate() {
        create_category(pool, *category, &format!("Category {n}")).await;
    }
    for shop in &shops {
        create_shop(pool, *shop).await;
    }
    let mut category_pool = categories.clone();
    category_pool.push(CategoryId(uuid(0xA, 99)));
    let mut shop_pool = shops.clone();
    shop_pool.push(ShopId(uuid(0xB, 99)));
    let products: Vec<ProductId> = (0..3).map(|n| ProductId(uuid(0xC, n))).collect();
    let names = ["Green tea", "  Black tea ", "Mug", ""];
    let urls = [
        "https://img.example.com/tea.png",
        "",
        "ftp://nope",
        "http://img.example.com/mug.png",
    ];
    let skus = ["TEA-1", "TEA-2", "MUG-1"];
    Scenario {
        services: ProductServices::new(lookups(pool)),
        variants: &["Create", "UpdateDetails", "ChangePrice", "Discontinue"],
        pick: Box::new(move |rng, step, shadows| {
            let product_id = *rng.pick(&products);
            let id = product_id.to_string();
            let created = shadows.get(&id).is_some_and(Product::is_created);
            let sku = |rng: &mut Rng| Sku::parse(rng.pick::<&str>(&skus)).unwrap();
            let command = if (!created && rng.below(2) == 0) || rng.one_in(30) {
                ProductCommand::Create {
                    product_id,
                    name: rng.pick(&names).to_string(),
                    description: "Loose leaf".to_string(),
                    price: usd(if rng.one_in(10) {
                        0
                    } else {
                        rng.range(100, 10_000)
                    }),
                    sku: sku(rng),
                    image_url: rng
                        .pick(&[None, Some(urls[0]), Some(urls[2])])
                        .map(str::to_string),
                    category_id: *rng.pick(&category_pool),
                    shop_id: rng
                        .pick(&[None, Some(shop_pool[0]), Some(shop_pool[2])])
                        .to_owned(),
                }
            } else if step > STEPS * 9 / 10 && rng.one_in(40) {
                ProductCommand::Discontinue
            } else if rng.below(100) < 55 {
                ProductCommand::UpdateDetails {
                    name: rng.one_in(2).then(|| rng.pick(&names).to_string()),
                    description: rng.one_in(3).then(|| format!("Batch {}", rng.below(5))),
                    sku: rng.one_in(4).then(|| sku(rng)),
                    image_url: rng.one_in(3).then(|| rng.pick(&urls).to_string()),
                    category_id: rng.one_in(3).then(|| *rng.pick(&category_pool)),
                    shop_id: rng.one_in(3).then(|| {
                        rng.pick(&[
                            None,
                            Some(shop_pool[0]),
                            Some(shop_pool[1]),
                            Some(shop_pool[2]),
                        ])
                        .to_owned()
                    }),
                }
            } else {
                ProductCommand::ChangePrice {
                    price: match rng.below(20) {
                        0 => usd(0),
                        1 => eur(500),
                        _ => usd(rng.range(100, 10_000)),
                    },
                }
            };
            (id, command)
        }),
    }
}

async fn cart_scenario(pool: &PgPool) -> Scenario<Cart> {
    let category = CategoryId(uuid(0xD, 0));
    create_category(pool, category, "Tea").await;
    let mut products: Vec<ProductId> = (0..5).map(|n| ProductId(uuid(0xE, n))).collect();
    let product_services = ProductServices::new(lookups(pool));
    for (n, product) in products.iter().enumerate() {
        let command = ProductCommand::Create {
            product_id: *product,
            name: format!("Tea no. {n}"),
            description: String::new(),
            price: usd(450),
            sku: Sku::parse(&format!("TEA-{n}")).unwrap(),
            image_url: None,
            category_id: category,
            shop_id: None,
        };
        must::<Product>(pool, product_services.clone(), product, command).await;
    }
    must::<Product>(
        pool,
        product_services.clone(),
        products[4],
        ProductCommand::Discontinue,
    )
    .await;
    products.push(ProductId(uuid(0xE, 99)));
    // A coupon one may use, one not valid yet, one used up.
    for (code, valid_from, limit) in [
        ("SAVE10", at(0) - Duration::days(1), None),
        ("LATER", at(0) + Duration::days(400), None),
        ("ONCE", at(0) - Duration::days(1), Some(1)),
    ] {
        let command = CouponCommand::Create {
            coupon_id: coupon_id_for(code),
            code: code.to_string(),
            discount: Discount::Percent(10),
            valid_from,
            valid_until: at(0) + Duration::days(500),
            usage_limit: limit,
        };
        must::<Coupon>(pool, (), coupon_id_for(code), command).await;
    }
    let redeem = CouponCommand::Redeem {
        order_id: OrderId(uuid(0xF, 0)),
        now: at(0),
    };
    must::<Coupon>(pool, (), coupon_id_for("ONCE"), redeem).await;
    let customers: Vec<CustomerId> = (0..3).map(|n| CustomerId(uuid(0x10, n))).collect();
    let codes = ["SAVE10", " save10 ", "LATER", "ONCE", "NOPE", ""];
    let mut orders = 0_u64;
    let lookups = lookups(pool);
    Scenario {
        services: CartServices {
            catalog: lookups.clone(),
            coupons: lookups,
        },
        variants: &[
            "AddItem",
            "ChangeQuantity",
            "RemoveItem",
            "Empty",
            "ApplyCoupon",
            "RemoveCoupon",
            "CheckOut",
        ],
        pick: Box::new(move |rng, step, shadows| {
            let customer = *rng.pick(&customers);
            let id = cart_id_for(&customer).to_string();
            let cart = shadows.get(&id);
            // Mostly a product that has a line, when there is one.
            let product = match cart.map(Cart::lines).filter(|l| !l.is_empty()) {
                Some(lines) if rng.below(3) > 0 => rng.pick(lines).product_id,
                _ => *rng.pick(&products),
            };
            let command = match rng.below(100) {
                0..=34 => CartCommand::AddItem {
                    customer_id: if rng.one_in(25) {
                        *rng.pick(&customers)
                    } else {
                        customer
                    },
                    product_id: product,
                    quantity: if rng.one_in(60) {
                        rng.quantity(999_000, 1_000_000)
                    } else {
                        rng.quantity(1, 5)
                    },
                },
                35..=49 => CartCommand::ChangeQuantity {
                    product_id: product,
                    quantity: rng.range(0, 6) as u32,
                },
                50..=57 => CartCommand::RemoveItem {
                    product_id: product,
                },
                58..=61 => CartCommand::Empty,
                62..=75 => CartCommand::ApplyCoupon {
                    code: rng.pick(&codes).to_string(),
                    now: at(step),
                },
                76..=83 => CartCommand::RemoveCoupon,
                _ => {
                    let repeat = rng.one_in(3) && orders > 0;
                    if !repeat {
                        orders += 1;
                    }
                    CartCommand::CheckOut {
                        order_id: OrderId(uuid(0x11, orders)),
                    }
                }
            };
            (id, command)
        }),
    }
}

fn shipping_address() -> ShippingAddress {
    ShippingAddress {
        name: "Ada Lovelace".to_string(),
        line1: "12 St James's Square".to_string(),
        line2: None,
        city: "London".to_string(),
        postal_code: "SW1Y 4JH".to_string(),
        country: "gb".to_string(),
    }
}

/// A `Place` that adds up (or, now and then, does not).
fn place(rng: &mut Rng, order_id: OrderId, now: DateTime<Utc>) -> OrderCommand {
    let mut lines: Vec<OrderLine> = (0..rng.range(1, 3))
        .map(|n| {
            let price = rng.range(100, 5_000);
            let quantity = rng.quantity(1, 5);
            OrderLine {
                product_id: ProductId(uuid(0x12, n as u64)),
                name: format!("Tea no. {n}"),
                unit_price: usd(price),
                quantity,
                line_total: usd(price * i64::from(quantity.get())),
            }
        })
        .collect();
    let subtotal: i64 = lines.iter().map(|l| l.line_total.minor).sum();
    let coupon = rng.one_in(3).then(|| OrderCoupon {
        coupon_id: coupon_id_for("SAVE10"),
        code: "save10".to_string(),
        discount: usd(subtotal / 10),
    });
    let total = subtotal - coupon.as_ref().map_or(0, |c| c.discount.minor);
    let mut address = shipping_address();
    let mut expected_total = rng.one_in(2).then_some(total);
    match rng.below(25) {
        0 => lines.clear(),
        1 => address.country = "GBR".to_string(),
        2 => expected_total = Some(total + 1),
        3 => lines[0].line_total = usd(1),
        _ => {}
    }
    OrderCommand::Place {
        order_id,
        customer_id: CustomerId(uuid(0x13, 0)),
        lines,
        coupon,
        shipping_address: address,
        payment: if rng.one_in(3) {
            PaymentMethod::Wallet
        } else {
            PaymentMethod::Card {
                token: "tok_visa".to_string(),
            }
        },
        expected_total,
        currency: Currency::usd(),
        now,
    }
}

fn order_scenario() -> Scenario<Order> {
    const SLOTS: usize = 4;
    let mut slots: Vec<u64> = (0..SLOTS as u64).collect();
    let mut next = SLOTS as u64;
    Scenario {
        services: (),
        variants: &[
            "Place",
            "ConfirmStockReserved",
            "AuthorizePayment",
            "CapturePayment",
            "FailPayment",
            "StartProcessing",
            "Ship",
            "Deliver",
            "Cancel",
            "Refund",
            "Expire",
            "IssueInvoice",
            "ChangeStatus",
        ],
        pick: Box::new(move |rng, step, shadows| {
            let now = at(step);
            let slot = rng.below(SLOTS as u64) as usize;
            let mut order_id = OrderId(uuid(0x14, slots[slot]));
            let over = |o: &Order| {
                o.status() == OrderStatus::Refunded
                    || (o.status() == OrderStatus::Cancelled && o.refundable().minor == 0)
            };
            if shadows.get(&order_id.to_string()).is_some_and(over) && rng.below(3) == 0 {
                slots[slot] = next;
                next += 1;
                order_id = OrderId(uuid(0x14, slots[slot]));
            }
            let id = order_id.to_string();
            let order = shadows.get(&id).cloned().unwrap_or_default();
            let total = order.total().clone();
            let payment_id = format!("pay-{}", order_id.as_uuid().as_u128() & 0xFFFF);
            let refundable = order.refundable().minor;
            let refund = |rng: &mut Rng| OrderCommand::Refund {
                amount: if rng.one_in(25) {
                    None
                } else {
                    Some(usd(rng.range(1, (refundable / 8).max(1))))
                },
                reason: if rng.one_in(20) {
                    " ".to_string()
                } else {
                    "damaged".to_string()
                },
                now,
            };
            let invoice = |rng: &mut Rng| OrderCommand::IssueInvoice {
                invoice_number: if rng.one_in(6) {
                    "2026-999999".to_string()
                } else {
                    format!("2026-{:06}", order_id.as_uuid().as_u128() & 0xFFFF)
                },
                now,
            };
            let cancel = |rng: &mut Rng| OrderCommand::Cancel {
                reason: *rng.pick(&CancellationReason::ALL),
                now,
            };
            let sensible = rng.below(4) > 0;
            let command = if !order.is_placed() && sensible {
                place(rng, order_id, now)
            } else if sensible {
                match order.status() {
                    OrderStatus::Pending => match rng.below(20) {
                        0..=4 => OrderCommand::ConfirmStockReserved { now },
                        5..=9 => OrderCommand::AuthorizePayment {
                            payment_id,
                            amount: total,
                            now,
                        },
                        10..=16 => OrderCommand::CapturePayment {
                            payment_id,
                            amount: total,
                            now,
                        },
                        17 => OrderCommand::FailPayment {
                            reason: "card_declined".to_string(),
                            now,
                        },
                        18 => OrderCommand::Expire { now },
                        _ => cancel(rng),
                    },
                    OrderStatus::Paid | OrderStatus::Processing | OrderStatus::Shipped => {
                        match rng.below(20) {
                            0..=5 => OrderCommand::ChangeStatus {
                                to: match order.status() {
                                    OrderStatus::Paid => OrderStatus::Processing,
                                    OrderStatus::Processing => OrderStatus::Shipped,
                                    _ => OrderStatus::Delivered,
                                },
                                tracking_number: rng.one_in(2).then(|| "TRK-1".to_string()),
                                now,
                            },
                            6..=11 => match order.status() {
                                OrderStatus::Paid => OrderCommand::StartProcessing { now },
                                OrderStatus::Processing => OrderCommand::Ship {
                                    tracking_number: format!("TRK-{}", rng.below(3)),
                                    carrier: rng.one_in(2).then(|| "dhl".to_string()),
                                    now,
                                },
                                _ => OrderCommand::Deliver { now },
                            },
                            12..=14 => invoice(rng),
                            15..=17 => refund(rng),
                            _ => cancel(rng),
                        }
                    }
                    OrderStatus::Delivered | OrderStatus::Cancelled => match rng.below(10) {
                        0 => invoice(rng),
                        _ => refund(rng),
                    },
                    OrderStatus::Refunded => invoice(rng),
                }
            } else {
                // Any command at all, mostly to be refused.
                match rng.below(13) {
                    0 => place(rng, order_id, now),
                    1 => OrderCommand::ConfirmStockReserved { now },
                    2 => OrderCommand::AuthorizePayment {
                        payment_id: rng.pick(&[payment_id.as_str(), "other", " "]).to_string(),
                        amount: usd(total.minor + rng.range(0, 1)),
                        now,
                    },
                    3 => OrderCommand::CapturePayment {
                        payment_id: rng.pick(&[payment_id.as_str(), "other"]).to_string(),
                        amount: usd(total.minor + rng.range(0, 1)),
                        now,
                    },
                    4 => OrderCommand::FailPayment {
                        reason: "card_declined".to_string(),
                        now,
                    },
                    5 => OrderCommand::StartProcessing { now },
                    6 => OrderCommand::Ship {
                        tracking_number: rng.pick(&["TRK-1", " "]).to_string(),
                        carrier: None,
                        now,
                    },
                    7 => OrderCommand::Deliver { now },
                    8 => cancel(rng),
                    9 => OrderCommand::Refund {
                        amount: Some(rng.pick(&[usd(refundable + 1), eur(1), usd(0)]).clone()),
                        reason: "damaged".to_string(),
                        now,
                    },
                    10 => OrderCommand::Expire { now },
                    11 => invoice(rng),
                    _ => OrderCommand::ChangeStatus {
                        to: *rng.pick(&OrderStatus::ALL),
                        tracking_number: rng.one_in(2).then(|| "TRK-1".to_string()),
                        now,
                    },
                }
            };
            (id, command)
        }),
    }
}

// ---- one history per aggregate type ----

#[tokio::test]
async fn a_cart_loaded_from_its_snapshot_equals_the_one_rebuilt_from_its_events() {
    let db = fresh_database().await;
    let scenario = cart_scenario(&db.pool).await;
    history_matches_events(&db.pool, scenario, 1).await;
}

#[tokio::test]
async fn a_category_loaded_from_its_snapshot_equals_the_one_rebuilt_from_its_events() {
    let db = fresh_database().await;
    history_matches_events(&db.pool, category_scenario(&db.pool), 2).await;
}

#[tokio::test]
async fn a_coupon_loaded_from_its_snapshot_equals_the_one_rebuilt_from_its_events() {
    let db = fresh_database().await;
    history_matches_events(&db.pool, coupon_scenario(), 3).await;
}

#[tokio::test]
async fn a_customer_loaded_from_its_snapshot_equals_the_one_rebuilt_from_its_events() {
    let db = fresh_database().await;
    history_matches_events(&db.pool, customer_scenario(), 4).await;
}

#[tokio::test]
async fn an_inventory_item_loaded_from_its_snapshot_equals_the_one_rebuilt_from_its_events() {
    let db = fresh_database().await;
    history_matches_events(&db.pool, inventory_scenario(), 5).await;
}

#[tokio::test]
async fn an_invoice_numbering_loaded_from_its_snapshot_equals_the_one_rebuilt_from_its_events() {
    let db = fresh_database().await;
    history_matches_events(&db.pool, invoice_scenario(), 6).await;
}

#[tokio::test]
async fn an_order_loaded_from_its_snapshot_equals_the_one_rebuilt_from_its_events() {
    let db = fresh_database().await;
    history_matches_events(&db.pool, order_scenario(), 7).await;
}

#[tokio::test]
async fn a_product_loaded_from_its_snapshot_equals_the_one_rebuilt_from_its_events() {
    let db = fresh_database().await;
    let scenario = product_scenario(&db.pool).await;
    history_matches_events(&db.pool, scenario, 8).await;
}

#[tokio::test]
async fn a_shop_loaded_from_its_snapshot_equals_the_one_rebuilt_from_its_events() {
    let db = fresh_database().await;
    history_matches_events(&db.pool, shop_scenario(), 9).await;
}

#[tokio::test]
async fn a_sku_claim_loaded_from_its_snapshot_equals_the_one_rebuilt_from_its_events() {
    let db = fresh_database().await;
    history_matches_events(&db.pool, sku_scenario(), 10).await;
}

#[tokio::test]
async fn a_wallet_loaded_from_its_snapshot_equals_the_one_rebuilt_from_its_events() {
    let db = fresh_database().await;
    history_matches_events(&db.pool, wallet_scenario(), 11).await;
}

// ---- snapshots that cannot be used ----

/// How a snapshot is spoiled.
#[derive(Debug, Clone, Copy)]
enum Spoiled {
    /// JSON that is not the state's shape.
    Garbage,
    /// A state of the right shape, but of a version the code does not have.
    OtherVersion,
    /// A state of the right shape claiming events the stream does not have.
    BeyondTheStream,
}

/// Receives `quantity` for `product`; answers the `on_hand_after` of the
/// event written.
async fn receive(bus: &CommandBus<InventoryItem>, product: ProductId, quantity: i64) -> i64 {
    let pool = bus.pool().clone();
    let id = product.to_string();
    let before: i64 = sqlx::query_scalar(
        "SELECT coalesce(max(sequence), 0) FROM events WHERE aggregate_type = 'InventoryItem' AND aggregate_id = $1",
    )
    .bind(&id)
    .fetch_one(&pool)
    .await
    .unwrap();
    let command = InventoryCommand::Receive {
        product_id: product,
        quantity: Quantity::new(quantity).unwrap(),
        reason: None,
    };
    let committed = bus.execute(&id, command, &meta()).await.expect("a receipt");
    assert!(committed.wrote_events);
    let written = events_after::<InventoryItem>(&pool, &id, before).await;
    match written.as_slice() {
        [(_, _, domain::inventory::InventoryEvent::StockReceived { on_hand_after, .. })] => {
            *on_hand_after
        }
        other => panic!("a receipt wrote {other:?}"),
    }
}

/// Notes in `failures` when `loaded` is not what the events say.
fn same_as_events(
    failures: &mut Vec<String>,
    spoiled: Spoiled,
    when: &str,
    loaded: Option<InventoryItem>,
    rebuilt: Option<InventoryItem>,
) {
    if json(&loaded) != json(&rebuilt) {
        failures.push(format!(
            "{spoiled:?}, {when}: loaded {} but the events say {}",
            json(&loaded),
            json(&rebuilt)
        ));
    }
}

/// An inventory item of 25 receipts (a snapshot after 20) whose snapshot is
/// then spoiled: what went wrong, if anything.
async fn spoiled_snapshot_case(pool: &PgPool, spoiled: Spoiled) -> Vec<String> {
    let bus = CommandBus::<InventoryItem>::new(pool.clone(), ());
    let product = ProductId::new();
    let id = product.to_string();
    let mut on_hand = 0;
    for n in 1..=25 {
        on_hand += n;
        assert_eq!(receive(&bus, product, n).await, on_hand);
    }
    let (_, taken_at, payload) = snapshot_of(pool, "InventoryItem", &id)
        .await
        .expect("a snapshot");
    assert_eq!(taken_at, 20);
    // A state of the right shape that says something else.
    let mut misleading = payload.clone();
    misleading["on_hand"] = Value::from(999_999);
    let spoil = match spoiled {
        Spoiled::Garbage => sqlx::query(
            "UPDATE snapshots SET payload = '{\"garbage\": [1, 2, 3]}'
              WHERE aggregate_type = 'InventoryItem' AND aggregate_id = $1",
        ),
        Spoiled::OtherVersion => sqlx::query(
            "UPDATE snapshots SET version = version + 1, payload = $2::text::json
              WHERE aggregate_type = 'InventoryItem' AND aggregate_id = $1",
        ),
        Spoiled::BeyondTheStream => sqlx::query(
            "UPDATE snapshots SET last_sequence = 28, payload = $2::text::json
              WHERE aggregate_type = 'InventoryItem' AND aggregate_id = $1",
        ),
    };
    let updated = spoil
        .bind(&id)
        .bind(misleading.to_string())
        .execute(pool)
        .await
        .expect("spoil the snapshot")
        .rows_affected();
    assert_eq!(updated, 1);

    let mut failures = Vec::new();
    let rebuilt = load_aggregate::<InventoryItem>(pool, &id, None)
        .await
        .unwrap();
    same_as_events(
        &mut failures,
        spoiled,
        "after spoiling",
        bus.load(&id).await.unwrap(),
        rebuilt,
    );

    // The next command is decided on the state the events say, and (due, as
    // the stream has more than SNAPSHOT_AFTER events past no usable
    // snapshot) writes a good snapshot again.
    on_hand += 7;
    let answered = receive(&bus, product, 7).await;
    if answered != on_hand {
        failures.push(format!(
            "{spoiled:?}: a receipt answered on hand {answered}, not {on_hand}"
        ));
    }
    let replayed = json(
        &load_aggregate::<InventoryItem>(pool, &id, Some(26))
            .await
            .unwrap(),
    );
    match snapshot_of(pool, "InventoryItem", &id).await {
        Some((version, 26, payload)) if version == InventoryItem::SNAPSHOT_VERSION && payload == replayed => {}
        other => failures.push(format!(
            "{spoiled:?}: after the next command the snapshot is {other:?}, not version {} at 26: {replayed}",
            InventoryItem::SNAPSHOT_VERSION
        )),
    }

    // And the commands after it, past the sequence the spoiled snapshot
    // claimed, are decided on the true state.
    for n in 0..4 {
        on_hand += 1;
        let answered = receive(&bus, product, 1).await;
        if answered != on_hand {
            failures.push(format!(
                "{spoiled:?}: receipt {} (event {}) answered on hand {answered}, not {on_hand}",
                n + 2,
                27 + n
            ));
        }
    }
    let rebuilt = load_aggregate::<InventoryItem>(pool, &id, None)
        .await
        .unwrap();
    same_as_events(
        &mut failures,
        spoiled,
        "four commands later",
        bus.load(&id).await.unwrap(),
        rebuilt,
    );
    failures
}

#[tokio::test]
async fn a_corrupt_snapshot_is_ignored_and_the_aggregate_is_rebuilt_from_its_events() {
    let db = fresh_database().await;
    let mut failures = Vec::new();
    for spoiled in [
        Spoiled::Garbage,
        Spoiled::OtherVersion,
        Spoiled::BeyondTheStream,
    ] {
        failures.extend(spoiled_snapshot_case(&db.pool, spoiled).await);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Spoils the snapshot of every aggregate of a short history with JSON of
/// another shape: what was not ignored.
async fn garbage_snapshots<A>(pool: &PgPool, mut scenario: Scenario<A>, seed: u64) -> Vec<String>
where
    A: StoredAggregate + Clone,
    A::Command: Clone + Serialize + Debug,
    A::Services: Clone,
{
    let history = run_history(pool, &mut scenario, 400, seed).await;
    let bus = CommandBus::<A>::new(pool.clone(), scenario.services.clone());
    let mut failures = Vec::new();
    let mut spoiled = 0;
    for id in history.shadows.keys() {
        let updated = sqlx::query(
            "UPDATE snapshots SET payload = '{\"garbage\": [1, 2, 3]}'
              WHERE aggregate_type = $1 AND aggregate_id = $2",
        )
        .bind(A::TYPE)
        .bind(id)
        .execute(pool)
        .await
        .unwrap()
        .rows_affected();
        if updated == 0 {
            continue;
        }
        spoiled += 1;
        // What the store would take this garbage for: a state it accepts
        // as a snapshot, however the events happen to agree with it here.
        let decoded =
            projections::event_store::streams::read_snapshot::<A>(r#"{"garbage": [1, 2, 3]}"#)
                .map(|state| json(&state));
        let loaded = json(&bus.load(id).await.unwrap());
        let rebuilt = json(&load_aggregate::<A>(pool, id, None).await.unwrap());
        if loaded != rebuilt {
            failures.push(format!(
                "{} {id}: a snapshot {{\"garbage\": [1, 2, 3]}} was read as {loaded}; the events say {rebuilt}",
                A::TYPE
            ));
        } else if let Some(state) = decoded {
            failures.push(format!(
                "{} {id}: a snapshot {{\"garbage\": [1, 2, 3]}} decodes as the state {state}; \
                 loaded as the events say only because they agree with it here",
                A::TYPE
            ));
        }
    }
    assert!(spoiled > 0, "{}: no snapshot to spoil", A::TYPE);
    failures
}

#[tokio::test]
async fn a_snapshot_of_another_shape_is_ignored_for_every_aggregate_type() {
    let db = fresh_database().await;
    let pool = &db.pool;
    let mut failures = Vec::new();
    failures.extend(garbage_snapshots(pool, cart_scenario(pool).await, 21).await);
    failures.extend(garbage_snapshots(pool, category_scenario(pool), 22).await);
    failures.extend(garbage_snapshots(pool, coupon_scenario(), 23).await);
    failures.extend(garbage_snapshots(pool, customer_scenario(), 24).await);
    failures.extend(garbage_snapshots(pool, inventory_scenario(), 25).await);
    failures.extend(garbage_snapshots(pool, invoice_scenario(), 26).await);
    failures.extend(garbage_snapshots(pool, order_scenario(), 27).await);
    failures.extend(garbage_snapshots(pool, product_scenario(pool).await, 28).await);
    failures.extend(garbage_snapshots(pool, shop_scenario(), 29).await);
    failures.extend(garbage_snapshots(pool, sku_scenario(), 30).await);
    failures.extend(garbage_snapshots(pool, wallet_scenario(), 31).await);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ---- keyed memory of events stored before it existed ----

type MemoryRow = (String, String, String, Option<String>);

async fn memory_rows(pool: &PgPool) -> Vec<MemoryRow> {
    sqlx::query_as(
        "SELECT aggregate_type, aggregate_id, key, value::text FROM aggregate_memory ORDER BY 1, 2, 3",
    )
    .fetch_all(pool)
    .await
    .expect("read the keyed memory")
}

/// Rows of `a` not in `b`, counted by aggregate type and key kind, with an
/// example of each.
fn missing_from(a: &[MemoryRow], b: &[MemoryRow]) -> BTreeMap<String, (usize, String)> {
    let mut by_kind: BTreeMap<String, (usize, String)> = BTreeMap::new();
    for row in a.iter().filter(|row| !b.contains(row)) {
        let kind = format!("{} {}", row.0, row.2.split(':').next().unwrap_or_default());
        let entry = by_kind
            .entry(kind)
            .or_insert_with(|| (0, format!("{row:?}")));
        entry.0 += 1;
    }
    by_kind
}

#[tokio::test]
async fn keyed_memory_backfilled_from_stored_events_equals_what_the_store_writes() {
    let db = fresh_database().await;
    let pool = &db.pool;
    run_history(pool, &mut inventory_scenario(), 600, 41).await;
    run_history(pool, &mut invoice_scenario(), 400, 42).await;
    run_history(pool, &mut coupon_scenario(), 400, 43).await;
    run_history(pool, &mut wallet_scenario(), 400, 44).await;
    // Every event that remembers something is among them.
    for event_type in [
        "HoldCommitted",
        "HoldsCommitted",
        "StockDecremented",
        "OrderStockReturned",
        "InvoiceNumberAllocated",
        "InvoiceNumbersAllocated",
        "CouponRedeemed",
        "CouponRedemptionReleased",
        "WalletCredited",
        "WalletDebited",
    ] {
        let count: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = $1")
            .bind(event_type)
            .fetch_one(pool)
            .await
            .unwrap();
        assert!(count > 0, "no {event_type} event in the histories");
    }
    let written = memory_rows(pool).await;
    assert!(
        written.iter().any(|row| row.3.is_none()),
        "a forgotten entry (a released coupon redemption) among the rows"
    );

    sqlx::query("DELETE FROM aggregate_memory")
        .execute(pool)
        .await
        .unwrap();
    sqlx::raw_sql(include_str!(
        "../../migrations/20261201000015_keyed_memory_backfill.sql"
    ))
    .execute(pool)
    .await
    .expect("run the backfill");
    let backfilled = memory_rows(pool).await;

    let missing = missing_from(&written, &backfilled);
    let extra = missing_from(&backfilled, &written);
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{} rows written by the store, {} backfilled;\n\
         written but not backfilled (count, example) by kind: {missing:#?}\n\
         backfilled but not written: {extra:#?}",
        written.len(),
        backfilled.len()
    );
    assert_eq!(backfilled, written);
}
