//! History growth benchmark: how the latency of one command grows with the
//! length of its aggregate's history, on the write path without HTTP
//! (`CommandBus::execute`: load, decide, append, answer the position).
//!
//! ```sh
//! cargo run --release -p bench --bin growth
//! ```
//!
//! For each history length (0, 10,000 and 100,000 events by default) it
//! seeds, with SQL (`generate_series`, one statement per history), three
//! aggregates:
//!
//! - a cart (`domain::cart`) whose customer added, changed and removed lines
//!   (`CartItemAdded`, `CartItemQuantityChanged`, `CartItemAdded`,
//!   `CartItemRemoved` over and over, so the cart ends empty); command:
//!   `AddItem` of one product, through the cart's command bus as the server
//!   builds it (with its catalog and coupon lookups);
//! - an inventory item (`domain::inventory`): one `StockReceived` of
//!   1,000,000, then checkout holds of 1 to 3 placed and committed
//!   (`HoldPlaced`, `HoldCommitted`; with an odd count the newest hold is
//!   still open), so 10,000 events are 5,000 holds; at length 0 it still has
//!   its `StockReceived` (a hold needs stock). Commands: `PlaceHold` for a
//!   new owner, then `ReleaseHold` of it, each timed;
//! - the invoice numbering of a year (`domain::invoice`, aggregate
//!   `numbering_id(year)`, one year per length) with that many
//!   `InvoiceNumberAllocated`; command: `Allocate` for a new order.
//!
//! The rows have the exact shape of the real events and metadata: every
//! seeded event kind, the first and last rows of every history, decode into
//! the domain's types and serialize back to what is stored; the sequences
//! are 1..n; and every history is loaded through the command bus and its
//! state checked. The rows leave `hash` to the database (the insert trigger
//! computes it).
//!
//! Every command is executed on the same aggregate, so it grows by the
//! commands themselves (the table shows the history the timed commands
//! saw). Nothing else runs: no server, no projectors. Each case first runs
//! its warm-up, then its timed commands; both stop early when their time
//! cap is spent (after at least one command), so that a slow case cannot
//! make the run last for ever; the table shows how many ran.
//!
//! Knobs (environment): `BENCH_HISTORIES` (comma-separated event counts,
//! default `0,10000,100000`; the ratio compares the last with the first),
//! `BENCH_WARMUP` commands before timing each case (20) and
//! `BENCH_WARMUP_SECS` their cap (5), `BENCH_COMMANDS` timed commands per
//! case (200) and `BENCH_CASE_SECS` their cap (15; 0 lifts either cap),
//! `BENCH_KEEP_DB` as in the listing benchmark.
#![forbid(unsafe_code)]

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::{anyhow, ensure, Context, Result};
use api::startup::{AppConfig, AppState};
use chrono::{TimeZone, Utc};
use cqrs_es::{Aggregate, DomainEvent};
use domain::cart::{cart_id_for, Cart, CartCommand, CartEvent};
use domain::inventory::{InventoryCommand, InventoryEvent, InventoryItem};
use domain::invoice::{
    format_invoice_number, numbering_id, InvoiceNumbering, InvoiceNumberingCommand,
    InvoiceNumberingEvent,
};
use domain::metadata::{Actor, CommandMetadata, Role};
use domain::values::{CartId, CustomerId, OrderId, ProductId, Quantity};
use projections::event_store::CommandBus;
use serde_json::Value;
use sqlx::PgPool;
use testkit::seed;
use uuid::Uuid;

/// What the inventory item received first: the most one receipt may be.
const STOCK: i64 = Quantity::MAX as i64;
/// The numbering of history length number `i` is that of year `FIRST_YEAR + i`.
const FIRST_YEAR: i32 = 2001;
/// Products the seeded carts cycle through.
const CART_PRODUCTS: usize = 10;
/// Rows checked at each end of every history.
const CHECKED_ROWS: i64 = 8;

struct Settings {
    histories: Vec<i64>,
    budget: Budget,
}

#[tokio::main]
async fn main() -> Result<()> {
    let histories = match std::env::var("BENCH_HISTORIES") {
        Ok(raw) => raw
            .split(',')
            .map(|n| {
                n.trim()
                    .parse::<i64>()
                    .map_err(|_| anyhow!("BENCH_HISTORIES must be numbers, got {raw:?}"))
            })
            .collect::<Result<Vec<_>>>()?,
        Err(_) => vec![0, 10_000, 100_000],
    };
    // Seconds; 0 lifts the cap.
    let cap = |secs: f64| (secs > 0.0).then(|| Duration::from_secs_f64(secs));
    let settings = Settings {
        histories,
        budget: Budget {
            warmup: bench::env_number("BENCH_WARMUP", 20)?,
            warmup_time: cap(bench::env_number("BENCH_WARMUP_SECS", 5.0)?),
            commands: bench::env_number("BENCH_COMMANDS", 200)?,
            case_time: cap(bench::env_number("BENCH_CASE_SECS", 15.0)?),
        },
    };
    ensure!(
        !settings.histories.is_empty() && settings.histories.iter().all(|n| *n >= 0),
        "BENCH_HISTORIES must list event counts >= 0"
    );
    ensure!(settings.budget.commands >= 1, "BENCH_COMMANDS must be >= 1");
    bench::with_fresh_database("growth", |db| async move { run(&settings, db.pool).await }).await
}

/// One history length's aggregates.
struct Subjects {
    history: i64,
    customer: CustomerId,
    cart: String,
    stock: ProductId,
    year: i32,
    numbering: String,
}

/// One timed command on one history.
struct Row {
    aggregate: &'static str,
    command: &'static str,
    seeded: i64,
    /// Warm-up steps run before timing.
    warmed: usize,
    /// History length at the first and at the last timed command.
    saw: (i64, i64),
    latency: bench::Latency,
}

async fn run(settings: &Settings, pool: PgPool) -> Result<()> {
    // ---- seed ----
    let started = Instant::now();
    // Products to put in the carts, and products without stock for the
    // inventory items (the catalog seed stocks every other product).
    let wanted = settings.histories.len() + CART_PRODUCTS;
    seed::catalog(&pool, 2 * wanted as i64, 1).await?;
    let cart_products: Vec<Uuid> = sqlx::query_scalar(
        "SELECT aggregate_id::uuid FROM events WHERE aggregate_type = 'Product'
          ORDER BY global_position LIMIT $1",
    )
    .bind(CART_PRODUCTS as i64)
    .fetch_all(&pool)
    .await?;
    let stock_products: Vec<Uuid> = sqlx::query_scalar(
        "SELECT p.aggregate_id::uuid FROM events p
          WHERE p.aggregate_type = 'Product'
            AND NOT EXISTS (SELECT 1 FROM events i
                             WHERE i.aggregate_type = $1 AND i.aggregate_id = p.aggregate_id)
          ORDER BY p.global_position",
    )
    .bind(InventoryItem::TYPE)
    .fetch_all(&pool)
    .await?;
    ensure!(
        cart_products.len() == CART_PRODUCTS && stock_products.len() >= settings.histories.len(),
        "the catalog seed has too few products"
    );
    let seeded_before: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&pool)
        .await?;
    let mut subjects = Vec::new();
    for (i, &history) in settings.histories.iter().enumerate() {
        let customer = CustomerId(Uuid::new_v5(
            &Uuid::NAMESPACE_OID,
            format!("bench-growth-customer-{i}-{history}").as_bytes(),
        ));
        let year = FIRST_YEAR + i as i32;
        let s = Subjects {
            history,
            customer,
            cart: cart_id_for(&customer).to_string(),
            stock: ProductId(stock_products[i]),
            year,
            numbering: numbering_id(year).to_string(),
        };
        seed_cart(&pool, &s, &cart_products).await?;
        seed_inventory(&pool, &s).await?;
        seed_invoices(&pool, &s).await?;
        subjects.push(s);
    }
    let seeded: i64 = sqlx::query_scalar::<_, i64>("SELECT count(*) FROM events")
        .fetch_one(&pool)
        .await?
        - seeded_before;
    println!(
        "seeded {seeded} cart, inventory and invoice numbering events (histories {:?}) in {:.1} s",
        settings.histories,
        started.elapsed().as_secs_f64()
    );
    sqlx::query("VACUUM ANALYZE events").execute(&pool).await?;

    // The command buses: the cart's as the server builds it.
    let state = AppState::new(pool.clone(), AppConfig::with_random_secret());
    let carts: CommandBus<Cart> = state.carts.clone();
    let inventory = CommandBus::<InventoryItem>::new(pool.clone(), ());
    let invoices = CommandBus::<InvoiceNumbering>::new(pool.clone(), ());

    // ---- check ----
    let checking = Instant::now();
    for s in &subjects {
        check_cart(&pool, &carts, s).await?;
        check_inventory(&pool, &inventory, s).await?;
        check_invoices(&pool, &invoices, s).await?;
    }
    println!(
        "checked every history (shape of the rows, sequences, state) in {:.1} s",
        checking.elapsed().as_secs_f64()
    );

    // ---- measure ----
    let budget = &settings.budget;
    let mut rows = Vec::new();
    for s in &subjects {
        rows.extend(measure_cart(&carts, s, cart_products[0], budget).await?);
    }
    for s in &subjects {
        rows.extend(measure_inventory(&inventory, s, budget).await?);
    }
    for s in &subjects {
        rows.extend(measure_invoices(&invoices, s, budget).await?);
    }

    // ---- report ----
    println!();
    let secs = |cap: Option<Duration>| {
        cap.map_or("no limit".to_string(), |c| {
            format!("{:.0} s", c.as_secs_f64())
        })
    };
    println!(
        "per case: {} warm-up (at most {}), then {} timed commands (at most {}), one at a time, CommandBus::execute",
        budget.warmup,
        secs(budget.warmup_time),
        budget.commands,
        secs(budget.case_time)
    );
    println!(
        "| aggregate | command | seeded history | warm-up | history seen | count | p50 ms | p99 ms | max ms |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|");
    for row in &rows {
        println!(
            "| {} | {} | {} | {} | {}..{} | {} | {:.2} | {:.2} | {:.2} |",
            row.aggregate,
            row.command,
            row.seeded,
            row.warmed,
            row.saw.0,
            row.saw.1,
            row.latency.count,
            row.latency.p50,
            row.latency.p99,
            row.latency.max
        );
    }
    let (first, last) = (
        settings.histories[0],
        settings.histories[settings.histories.len() - 1],
    );
    println!();
    let mut pairs: Vec<(&str, &str)> = Vec::new();
    for row in &rows {
        if !pairs.contains(&(row.aggregate, row.command)) {
            pairs.push((row.aggregate, row.command));
        }
    }
    for (aggregate, command) in pairs {
        let of = |history: i64| {
            rows.iter()
                .find(|r| r.aggregate == aggregate && r.command == command && r.seeded_as(history))
                .map(|r| r.latency.p50)
        };
        if let (Some(small), Some(large)) = (of(first), of(last)) {
            println!(
                "{aggregate} {command}: p50({last}) / p50({first}) = {:.2} ({large:.2} ms / {small:.2} ms; target at most 1.3)",
                large / small
            );
        }
    }
    Ok(())
}

impl Row {
    /// Whether this row is the case of nominal history length `history`
    /// (the inventory item always has its `StockReceived`).
    fn seeded_as(&self, history: i64) -> bool {
        self.seeded == history.max(self.min_history())
    }
    fn min_history(&self) -> i64 {
        if self.aggregate == InventoryItem::TYPE {
            1
        } else {
            0
        }
    }
}

// ---- seeding ----

/// The externally tagged enum's tag of a serialized event.
fn tag<E: DomainEvent>(event: &E) -> Result<String> {
    let value = serde_json::to_value(event)?;
    value
        .as_object()
        .filter(|o| o.len() == 1)
        .and_then(|o| o.keys().next().cloned())
        .ok_or_else(|| anyhow!("not an externally tagged enum: {value}"))
}

/// The metadata keys every command writes (checked against the seeded rows).
fn metadata_keys() -> BTreeSet<String> {
    CommandMetadata::new(Actor::Anonymous, "c", "Command")
        .to_map()
        .into_keys()
        .collect()
}

fn one() -> Quantity {
    Quantity::new(1).expect("1 is a quantity")
}

/// The cart's history: a cycle of four events per product, in turn.
async fn seed_cart(pool: &PgPool, s: &Subjects, products: &[Uuid]) -> Result<()> {
    let cart_id = CartId(s.cart.parse()?);
    let product_id = ProductId(products[0]);
    let added = CartEvent::CartItemAdded {
        cart_id,
        customer_id: s.customer,
        product_id,
        quantity: one(),
        line_quantity: one(),
    };
    let changed = CartEvent::CartItemQuantityChanged {
        cart_id,
        product_id,
        quantity: one(),
    };
    let removed = CartEvent::CartItemRemoved {
        cart_id,
        product_id,
    };
    let actor = Actor::User {
        id: s.customer.as_uuid(),
        role: Role::Customer,
    };
    let products: Vec<String> = products.iter().map(Uuid::to_string).collect();
    sqlx::query(
        "WITH e AS (
             SELECT s, (s - 1) / 4 AS k, (s - 1) % 4 AS step
               FROM generate_series(1, $1::bigint) AS s
         )
         INSERT INTO events
             (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata,
              recorded_at)
         SELECT $2, $3, s,
                CASE step WHEN 1 THEN $6::text WHEN 3 THEN $8::text ELSE $4::text END,
                $10,
                CASE step
                    WHEN 1 THEN json_build_object($7::text, json_build_object(
                        'cart_id', $3::text,
                        'product_id', ($12::text[])[1 + k % cardinality($12::text[])],
                        'quantity', 2))
                    WHEN 3 THEN json_build_object($9::text, json_build_object(
                        'cart_id', $3::text,
                        'product_id', ($12::text[])[1 + k % cardinality($12::text[])]))
                    ELSE json_build_object($5::text, json_build_object(
                        'cart_id', $3::text,
                        'customer_id', $11::text,
                        'product_id', ($12::text[])[1 + k % cardinality($12::text[])],
                        'quantity', 1,
                        'line_quantity', CASE step WHEN 0 THEN 1 ELSE 3 END))
                END,
                json_build_object(
                    'actor', $13::text,
                    'correlation_id', md5($3 || '-request-' || s)::uuid,
                    'causation_id', md5($3 || '-command-' || s)::uuid,
                    'command', CASE step WHEN 1 THEN 'ChangeCartQuantity'
                                         WHEN 3 THEN 'RemoveCartItem'
                                         ELSE 'AddCartItem' END,
                    'command_id', md5($3 || '-command-' || s)::uuid),
                now() - ($1 - s) * interval '1 second'
           FROM e ORDER BY s",
    )
    .bind(s.history)
    .bind(Cart::TYPE)
    .bind(&s.cart)
    .bind(added.event_type())
    .bind(tag(&added)?)
    .bind(changed.event_type())
    .bind(tag(&changed)?)
    .bind(removed.event_type())
    .bind(tag(&removed)?)
    .bind(added.event_version())
    .bind(s.customer.to_string())
    .bind(&products)
    .bind(actor.to_string())
    .execute(pool)
    .await
    .context("seed a cart")?;
    Ok(())
}

/// The inventory item's history: its first receipt, then holds placed and
/// committed.
async fn seed_inventory(pool: &PgPool, s: &Subjects) -> Result<()> {
    let received = InventoryEvent::StockReceived {
        product_id: s.stock,
        quantity: one(),
        reason: None,
        on_hand_after: 1,
        held_after: 0,
    };
    let placed = InventoryEvent::HoldPlaced {
        product_id: s.stock,
        owner_id: Uuid::nil(),
        quantity: one(),
        expires_at: None,
        on_hand_after: 1,
        held_after: 1,
    };
    let committed = InventoryEvent::HoldCommitted {
        product_id: s.stock,
        owner_id: Uuid::nil(),
        quantity: one(),
        on_hand_after: 0,
        held_after: 0,
    };
    let admin = Actor::User {
        id: Uuid::new_v5(&Uuid::NAMESPACE_OID, b"bench-growth-admin"),
        role: Role::Admin,
    };
    let workflow = Actor::System(projections::workflows::fulfilment::NAME.to_string());
    // Hold k (from 0) takes 1 + k % 3; `taken` is the total up to hold k.
    sqlx::query(
        "WITH h AS (
             SELECT k, 1 + k % 3 AS q, (sum(1 + k % 3) OVER (ORDER BY k))::bigint AS taken
               FROM generate_series(0, $1::bigint / 2 - 1) AS k
         ), e AS (
             SELECT 1::bigint AS s, 0 AS part, -1::bigint AS k, 0 AS q, 0::bigint AS taken
             UNION ALL
             SELECT 2 + 2 * k + part, part, k, q, taken
               FROM h CROSS JOIN generate_series(0, 1) AS part
         )
         INSERT INTO events
             (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata,
              recorded_at)
         SELECT $2, $3, s,
                CASE WHEN s = 1 THEN $4::text WHEN part = 0 THEN $6::text ELSE $8::text END,
                $10,
                CASE
                    WHEN s = 1 THEN json_build_object($5::text, json_build_object(
                        'product_id', $3::text,
                        'quantity', $11::bigint,
                        'reason', 'Opening stock',
                        'on_hand_after', $11::bigint,
                        'held_after', 0))
                    WHEN part = 0 THEN json_build_object($7::text, json_build_object(
                        'product_id', $3::text,
                        'owner_id', md5($3 || '-order-' || k)::uuid,
                        'quantity', q,
                        'expires_at', NULL,
                        'on_hand_after', $11::bigint - (taken - q),
                        'held_after', q))
                    ELSE json_build_object($9::text, json_build_object(
                        'product_id', $3::text,
                        'owner_id', md5($3 || '-order-' || k)::uuid,
                        'quantity', q,
                        'on_hand_after', $11::bigint - taken,
                        'held_after', 0))
                END,
                CASE WHEN s = 1 THEN json_build_object(
                    'actor', $12::text,
                    'correlation_id', md5($3 || '-request-' || s)::uuid,
                    'causation_id', md5($3 || '-command-' || s)::uuid,
                    'command', 'ReceiveStock',
                    'command_id', md5($3 || '-command-' || s)::uuid)
                ELSE json_build_object(
                    'actor', $13::text,
                    'correlation_id', md5($3 || '-checkout-' || k)::uuid,
                    'causation_id', 'event-' || (1000000 + 2 * k + part),
                    'command', CASE part WHEN 0 THEN 'PlaceHold' ELSE 'CommitHold' END,
                    'command_id', md5($3 || '-command-' || s)::uuid)
                END,
                now() - ($1 - s) * interval '1 second'
           FROM e WHERE s <= greatest($1::bigint, 1) ORDER BY s",
    )
    .bind(s.history)
    .bind(InventoryItem::TYPE)
    .bind(s.stock.to_string())
    .bind(received.event_type())
    .bind(tag(&received)?)
    .bind(placed.event_type())
    .bind(tag(&placed)?)
    .bind(committed.event_type())
    .bind(tag(&committed)?)
    .bind(received.event_version())
    .bind(STOCK)
    .bind(admin.to_string())
    .bind(workflow.to_string())
    .execute(pool)
    .await
    .context("seed an inventory item")?;
    Ok(())
}

/// The year's numbering: numbers 1..n, one a minute from New Year on.
async fn seed_invoices(pool: &PgPool, s: &Subjects) -> Result<()> {
    let new_year = Utc
        .with_ymd_and_hms(s.year, 1, 1, 0, 0, 0)
        .single()
        .ok_or_else(|| anyhow!("no New Year in {}", s.year))?;
    let allocated = InvoiceNumberingEvent::InvoiceNumberAllocated {
        year: s.year,
        number: 1,
        invoice_number: format_invoice_number(s.year, 1),
        order_id: OrderId(Uuid::nil()),
        at: new_year,
    };
    let workflow = Actor::System(projections::workflows::fulfilment::NAME.to_string());
    sqlx::query(
        "INSERT INTO events
             (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata,
              recorded_at)
         SELECT $2, $3, s, $4, $5,
                json_build_object($6::text, json_build_object(
                    'year', $7::int,
                    'number', s,
                    'invoice_number',
                        lpad($7::int::text, 4, '0') || '-' || lpad(s::text, greatest(6, length(s::text)), '0'),
                    'order_id', md5($3 || '-order-' || s)::uuid,
                    'at', to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'))),
                json_build_object(
                    'actor', $9::text,
                    'correlation_id', md5($3 || '-checkout-' || s)::uuid,
                    'causation_id', 'event-' || (2000000 + s),
                    'command', 'AllocateInvoiceNumber',
                    'command_id', md5($3 || '-command-' || s)::uuid),
                ts
           FROM (SELECT s, $8::timestamptz + s * interval '1 minute' AS ts
                   FROM generate_series(1, $1::bigint) AS s) AS e
          ORDER BY s",
    )
    .bind(s.history)
    .bind(InvoiceNumbering::TYPE)
    .bind(&s.numbering)
    .bind(allocated.event_type())
    .bind(allocated.event_version())
    .bind(tag(&allocated)?)
    .bind(s.year)
    .bind(new_year)
    .bind(workflow.to_string())
    .execute(pool)
    .await
    .context("seed an invoice numbering")?;
    Ok(())
}

// ---- checking ----

/// Checks one seeded history: `n` events with sequences 1..n, and its first
/// and last rows (among them every kind it holds) decode into `E` and
/// serialize back to exactly what is stored, with the real event type,
/// version and metadata keys. Answers those rows' events.
async fn check_history<E: DomainEvent>(
    pool: &PgPool,
    aggregate_type: &str,
    aggregate_id: &str,
    n: i64,
) -> Result<Vec<E>> {
    let (count, first, last, kinds): (i64, Option<i64>, Option<i64>, i64) = sqlx::query_as(
        "SELECT count(*), min(sequence), max(sequence), count(DISTINCT event_type) FROM events
          WHERE aggregate_type = $1 AND aggregate_id = $2",
    )
    .bind(aggregate_type)
    .bind(aggregate_id)
    .fetch_one(pool)
    .await?;
    ensure!(
        count == n && (n == 0 || (first == Some(1) && last == Some(n))),
        "{aggregate_type} {aggregate_id}: {count} events, sequences {first:?}..{last:?}, expected 1..{n}"
    );
    let rows: Vec<(String, String, Value, Value)> = sqlx::query_as(
        "SELECT event_type, event_version, payload::jsonb, metadata::jsonb FROM events
          WHERE aggregate_type = $1 AND aggregate_id = $2
            AND (sequence <= $3 OR sequence > $4 - $3)
          ORDER BY sequence",
    )
    .bind(aggregate_type)
    .bind(aggregate_id)
    .bind(CHECKED_ROWS)
    .bind(n)
    .fetch_all(pool)
    .await?;
    let keys = metadata_keys();
    let mut seen = BTreeSet::new();
    let mut events = Vec::new();
    for (event_type, version, stored, metadata) in rows {
        let event: E = serde_json::from_value(stored.clone()).with_context(|| {
            format!("a seeded {aggregate_type} event does not decode: {stored}")
        })?;
        ensure!(
            serde_json::to_value(&event)? == stored
                && event.event_type() == event_type
                && event.event_version() == version,
            "a seeded {aggregate_type} event is not in the domain's shape: {event_type} {version} {stored}"
        );
        let metadata: HashMap<String, String> = serde_json::from_value(metadata.clone())
            .with_context(|| format!("seeded metadata is not a string map: {metadata}"))?;
        ensure!(
            metadata.keys().cloned().collect::<BTreeSet<_>>() == keys,
            "seeded metadata has other keys than a command's: {metadata:?}"
        );
        seen.insert(event_type);
        events.push(event);
    }
    ensure!(
        seen.len() as i64 == kinds,
        "{aggregate_type} {aggregate_id}: the checked rows hold {} of {kinds} event kinds",
        seen.len()
    );
    Ok(events)
}

async fn check_cart(pool: &PgPool, bus: &CommandBus<Cart>, s: &Subjects) -> Result<()> {
    check_history::<CartEvent>(pool, Cart::TYPE, &s.cart, s.history).await?;
    let cart = bus
        .load(&s.cart)
        .await
        .map_err(|e| anyhow!("load the cart: {e}"))?
        .unwrap_or_default();
    ensure!(
        s.history == 0 || cart.customer_id() == Some(s.customer),
        "the seeded cart has owner {:?}",
        cart.customer_id()
    );
    ensure!(
        cart.is_empty() == (s.history % 4 == 0),
        "the seeded cart of {} events has {} lines",
        s.history,
        cart.lines().len()
    );
    Ok(())
}

async fn check_inventory(
    pool: &PgPool,
    bus: &CommandBus<InventoryItem>,
    s: &Subjects,
) -> Result<()> {
    let id = s.stock.to_string();
    let n = s.history.max(1);
    let events = check_history::<InventoryEvent>(pool, InventoryItem::TYPE, &id, n).await?;
    let item = bus
        .load(&id)
        .await
        .map_err(|e| anyhow!("load the inventory item: {e}"))?
        .ok_or_else(|| anyhow!("no inventory item {id}"))?;
    let (on_hand, held) = match events.last() {
        Some(
            InventoryEvent::StockReceived {
                on_hand_after,
                held_after,
                ..
            }
            | InventoryEvent::HoldPlaced {
                on_hand_after,
                held_after,
                ..
            }
            | InventoryEvent::HoldCommitted {
                on_hand_after,
                held_after,
                ..
            },
        ) => (*on_hand_after, *held_after),
        other => return Err(anyhow!("unexpected last inventory event {other:?}")),
    };
    ensure!(
        item.on_hand() == on_hand && item.held() == held && item.product_id() == Some(s.stock),
        "the inventory item's state ({} on hand, {} held) disagrees with its last event ({on_hand}, {held})",
        item.on_hand(),
        item.held()
    );
    ensure!(
        item.available() > 10_000,
        "the inventory item has only {} available",
        item.available()
    );
    Ok(())
}

async fn check_invoices(
    pool: &PgPool,
    bus: &CommandBus<InvoiceNumbering>,
    s: &Subjects,
) -> Result<()> {
    let events = check_history::<InvoiceNumberingEvent>(
        pool,
        InvoiceNumbering::TYPE,
        &s.numbering,
        s.history,
    )
    .await?;
    for event in &events {
        let InvoiceNumberingEvent::InvoiceNumberAllocated {
            year,
            number,
            invoice_number,
            at,
            ..
        } = event
        else {
            anyhow::bail!("the seeded numbering holds another event: {event:?}");
        };
        ensure!(
            *invoice_number == format_invoice_number(*year, *number)
                && *year == s.year
                && chrono::Datelike::year(at) == s.year,
            "a seeded invoice number is not the domain's: {event:?}"
        );
    }
    let numbering = bus
        .load(&s.numbering)
        .await
        .map_err(|e| anyhow!("load the numbering: {e}"))?
        .unwrap_or_default();
    ensure!(
        numbering.last() == s.history as u64,
        "the numbering of {} is at {} after {} events",
        s.year,
        numbering.last(),
        s.history
    );
    Ok(())
}

// ---- measuring ----

/// How many commands a case runs, and for how long at most.
struct Budget {
    warmup: usize,
    /// Warm-up stops early after this long (at least one command).
    warmup_time: Option<Duration>,
    commands: usize,
    /// Timing stops early after this long (at least one command).
    case_time: Option<Duration>,
}

/// Runs `step` (one or more commands, answering each one's time) for the
/// warm-up and then for the timed part; answers the warm-up steps done and
/// the timings of each of the step's commands.
async fn run_case<F, Fut>(budget: &Budget, mut step: F) -> Result<(usize, Vec<Vec<Duration>>)>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Vec<Duration>>>,
{
    let within =
        |started: Instant, cap: Option<Duration>| cap.is_none_or(|c| started.elapsed() < c);
    let started = Instant::now();
    let mut warmed = 0;
    while warmed < budget.warmup && (warmed == 0 || within(started, budget.warmup_time)) {
        step().await?;
        warmed += 1;
    }
    let started = Instant::now();
    let mut samples: Vec<Vec<Duration>> = Vec::new();
    let mut done = 0;
    while done < budget.commands && (done == 0 || within(started, budget.case_time)) {
        let took = step().await?;
        samples.resize_with(took.len(), Vec::new);
        for (sample, t) in samples.iter_mut().zip(took) {
            sample.push(t);
        }
        done += 1;
    }
    Ok((warmed, samples))
}

/// Executes one command; answers how long it took. It must write an event.
async fn timed<A: domain::stored::StoredAggregate>(
    bus: &CommandBus<A>,
    id: &str,
    command: A::Command,
    metadata: &CommandMetadata,
) -> Result<Duration> {
    let started = Instant::now();
    let committed = bus
        .execute(id, command, metadata)
        .await
        .map_err(|e| anyhow!("{} {id}: {e}", A::TYPE))?;
    let took = started.elapsed();
    ensure!(
        committed.wrote_events,
        "{} {id}: the command wrote nothing",
        A::TYPE
    );
    Ok(took)
}

fn request_id() -> String {
    Uuid::new_v4().to_string()
}

fn workflow_metadata(command: &str) -> CommandMetadata {
    CommandMetadata::new(
        Actor::System(projections::workflows::fulfilment::NAME.to_string()),
        request_id(),
        command,
    )
}

/// The rows of a case whose steps each wrote `per_step` events, one per
/// command named in `commands`.
fn rows(
    aggregate: &'static str,
    commands: &[&'static str],
    seeded: i64,
    (warmed, samples): (usize, Vec<Vec<Duration>>),
) -> Vec<Row> {
    let per_step = commands.len() as i64;
    let first = seeded + per_step * warmed as i64;
    commands
        .iter()
        .zip(samples)
        .enumerate()
        .map(|(i, (command, samples))| {
            let start = first + i as i64;
            Row {
                aggregate,
                command,
                seeded,
                warmed,
                saw: (start, start + per_step * (samples.len() as i64 - 1)),
                latency: bench::Latency::of(samples),
            }
        })
        .collect()
}

async fn measure_cart(
    bus: &CommandBus<Cart>,
    s: &Subjects,
    product: Uuid,
    budget: &Budget,
) -> Result<Vec<Row>> {
    let actor = Actor::User {
        id: s.customer.as_uuid(),
        role: Role::Customer,
    };
    let actor = &actor;
    let outcome = run_case(budget, || async move {
        let command = CartCommand::AddItem {
            customer_id: s.customer,
            product_id: ProductId(product),
            quantity: one(),
        };
        let metadata = CommandMetadata::new(actor.clone(), request_id(), "AddCartItem");
        Ok(vec![timed(bus, &s.cart, command, &metadata).await?])
    })
    .await?;
    Ok(rows(Cart::TYPE, &["AddItem"], s.history, outcome))
}

async fn measure_inventory(
    bus: &CommandBus<InventoryItem>,
    s: &Subjects,
    budget: &Budget,
) -> Result<Vec<Row>> {
    let id = &s.stock.to_string();
    let outcome = run_case(budget, || async move {
        let owner_id = Uuid::new_v4();
        let command = InventoryCommand::PlaceHold {
            owner_id,
            quantity: one(),
            expires_at: None,
            now: Utc::now(),
        };
        let placed = timed(bus, id, command, &workflow_metadata("PlaceHold")).await?;
        let command = InventoryCommand::ReleaseHold { owner_id };
        let released = timed(bus, id, command, &workflow_metadata("ReleaseHold")).await?;
        Ok(vec![placed, released])
    })
    .await?;
    Ok(rows(
        InventoryItem::TYPE,
        &["PlaceHold", "ReleaseHold"],
        s.history.max(1),
        outcome,
    ))
}

async fn measure_invoices(
    bus: &CommandBus<InvoiceNumbering>,
    s: &Subjects,
    budget: &Budget,
) -> Result<Vec<Row>> {
    let outcome = run_case(budget, || async move {
        let command = InvoiceNumberingCommand::Allocate {
            year: s.year,
            order_id: OrderId(Uuid::new_v4()),
            now: Utc::now(),
        };
        let metadata = workflow_metadata("AllocateInvoiceNumber");
        Ok(vec![timed(bus, &s.numbering, command, &metadata).await?])
    })
    .await?;
    Ok(rows(
        InvoiceNumbering::TYPE,
        &["Allocate"],
        s.history,
        outcome,
    ))
}
