//! Seeding the event store straight with SQL, for tests and benchmarks that
//! need many events fast: a catalog of categories, products and stock whose
//! events have the domain's exact shape (checked by decoding them back into
//! the domain's types), and orders moved through their life, whose events
//! the domain's own order decides.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure, Context, Result};
use chrono::{DateTime, Duration as Span, TimeZone, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use domain::category::{Category, CategoryEvent};
use domain::inventory::{InventoryEvent, InventoryItem};
use domain::order::{
    CancellationReason, Order, OrderCommand, OrderCoupon, OrderEvent, OrderLine, PaymentMethod,
    ShippingAddress,
};
use domain::product::{Product, ProductEvent};
use domain::values::{
    CategoryId, CouponId, Currency, CustomerId, Money, OrderId, ProductId, Quantity, Sku,
};
use serde_json::Value;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// Root categories; each gets [`CHILDREN`] sub-categories, and every product
/// sits in one of the sub-categories.
pub const ROOTS: [&str; 10] = [
    "Home",
    "Kitchen",
    "Garden",
    "Outdoors",
    "Sports",
    "Electronics",
    "Fashion",
    "Toys",
    "Books",
    "Office",
];
pub const CHILDREN: usize = 10;

const ADJECTIVES: [&str; 17] = [
    "Classic", "Modern", "Rustic", "Compact", "Deluxe", "Vintage", "Sleek", "Sturdy", "Premium",
    "Handmade", "Portable", "Elegant", "Minimal", "Bold", "Cozy", "Smart", "Gentle",
];
const COLOURS: [&str; 11] = [
    "Red", "Blue", "Green", "Black", "White", "Grey", "Teal", "Amber", "Olive", "Navy", "Ivory",
];
const NOUNS: [&str; 25] = [
    "Lamp",
    "Chair",
    "Table",
    "Mug",
    "Kettle",
    "Backpack",
    "Jacket",
    "Sneaker",
    "Watch",
    "Headphones",
    "Blender",
    "Notebook",
    "Pen",
    "Sofa",
    "Rug",
    "Mirror",
    "Vase",
    "Bottle",
    "Tent",
    "Bicycle",
    "Helmet",
    "Camera",
    "Speaker",
    "Keyboard",
    "Monitor",
];
const MATERIALS: [&str; 12] = [
    "oak",
    "steel",
    "bamboo",
    "leather",
    "cotton",
    "wool",
    "glass",
    "ceramic",
    "aluminium",
    "linen",
    "walnut",
    "copper",
];
/// The word that about 1% of the descriptions carry (and nothing else).
pub const RARE_WORD: &str = "aurora";
/// A material: in about 1 in 12 descriptions.
pub const COMMON_WORD: &str = "steel";

/// Inserts, in one transaction, a catalog of 110 categories (10 roots of 10
/// each) and `products` products spread over the leaves; every other
/// product then receives stock `restocks` times. Events:
/// `110 + products + products / 2 * restocks`. Answers the root category ids.
pub async fn catalog(pool: &PgPool, products: i64, restocks: i64) -> Result<Vec<Uuid>> {
    let currency = Currency::usd();
    let mut tx = pool.begin().await?;

    // Categories: few, so written one by one with the real event type.
    let mut roots = Vec::new();
    let mut leaves = Vec::new();
    for (r, root_name) in ROOTS.iter().enumerate() {
        let root = Uuid::new_v5(
            &Uuid::NAMESPACE_OID,
            format!("bench-category-{r}").as_bytes(),
        );
        roots.push(root);
        insert_category(&mut tx, root, root_name.to_string(), None).await?;
        for c in 0..CHILDREN {
            let child = Uuid::new_v5(
                &Uuid::NAMESPACE_OID,
                format!("bench-category-{r}-{c}").as_bytes(),
            );
            leaves.push(child);
            insert_category(&mut tx, child, format!("{root_name} aisle {c}"), Some(root)).await?;
        }
    }

    // The shape of the events comes from the real types: a product and a
    // stock event serialized by serde, whose tag and field names the SQL
    // below must (and at the end is checked to) reproduce.
    let product_template = ProductEvent::ProductCreated {
        product_id: ProductId(Uuid::nil()),
        name: "n".into(),
        description: "d".into(),
        price: Money::new(1, currency.clone())?,
        sku: Sku::parse("S-1")?,
        image_url: None,
        category_id: CategoryId(Uuid::nil()),
        shop_id: None,
    };
    let stock_template = InventoryEvent::StockReceived {
        product_id: ProductId(Uuid::nil()),
        quantity: Quantity::new(1)?,
        reason: None,
        on_hand_after: 1,
        held_after: 0,
    };
    let (product_tag, product_fields) = shape(&product_template)?;
    let (stock_tag, stock_fields) = shape(&stock_template)?;
    const PRODUCT_FIELDS: [&str; 8] = [
        "product_id",
        "name",
        "description",
        "price",
        "sku",
        "image_url",
        "category_id",
        "shop_id",
    ];
    const STOCK_FIELDS: [&str; 5] = [
        "product_id",
        "quantity",
        "reason",
        "on_hand_after",
        "held_after",
    ];
    ensure!(
        product_fields
            == PRODUCT_FIELDS
                .iter()
                .map(|s| s.to_string())
                .collect::<BTreeSet<_>>(),
        "ProductCreated changed shape: {product_fields:?}; update the seeding SQL"
    );
    ensure!(
        stock_fields
            == STOCK_FIELDS
                .iter()
                .map(|s| s.to_string())
                .collect::<BTreeSet<_>>(),
        "StockReceived changed shape: {stock_fields:?}; update the seeding SQL"
    );

    // One md5 per product gives four independent pseudo-random numbers
    // (r1..r4, 0..2^32), so the data is varied yet the same on every run.
    const PRODUCTS_CTE: &str = "
        WITH raw AS (
            SELECT i, md5('bench-product-' || i) AS h FROM generate_series(1, $1::bigint) AS i
        ), p AS (
            SELECT i, h::uuid AS id,
                   ('x' || lpad(substr(md5(h), 1, 8), 16, '0'))::bit(64)::bigint AS r1,
                   ('x' || lpad(substr(md5(h), 9, 8), 16, '0'))::bit(64)::bigint AS r2,
                   ('x' || lpad(substr(md5(h), 17, 8), 16, '0'))::bit(64)::bigint AS r3,
                   ('x' || lpad(substr(md5(h), 25, 8), 16, '0'))::bit(64)::bigint AS r4
              FROM raw
        )";
    let adjectives: Vec<&str> = ADJECTIVES.to_vec();
    let colours: Vec<&str> = COLOURS.to_vec();
    let nouns: Vec<&str> = NOUNS.to_vec();
    let materials: Vec<&str> = MATERIALS.to_vec();
    let product_sql = format!(
        "{PRODUCTS_CTE}
        INSERT INTO events
            (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
        SELECT $2, p.id::text, 1, $3, $4,
               json_build_object($5::text, json_build_object(
                   'product_id', p.id,
                   'name', ($7::text[])[1 + r4 % 17] || ' ' || ($8::text[])[1 + (r4 / 17) % 11] || ' '
                           || ($9::text[])[1 + (r4 / 187) % 25] || ' ' || (100 + r1 % 9900),
                   'description',
                       'A ' || lower(($7::text[])[1 + r4 % 17]) || ' ' || lower(($9::text[])[1 + (r4 / 187) % 25])
                       || ' in ' || lower(($8::text[])[1 + (r4 / 17) % 11]) || ', made of '
                       || ($10::text[])[1 + (r2 / 7) % 12] || '. '
                       || CASE WHEN r3 % 100 = 0 THEN 'Part of the limited ' || $12::text || ' collection. ' ELSE '' END
                       || 'Ships in ' || (1 + r1 % 7) || ' days.',
                   'price', json_build_object('minor', 99 + r2 % 100000, 'currency', $6::text),
                   'sku', 'BENCH-' || lpad(i::text, 7, '0'),
                   'image_url', CASE WHEN i % 3 = 0 THEN NULL
                                     ELSE 'https://img.example.com/p/' || i || '.jpg' END,
                   'category_id', ($11::uuid[])[1 + r1 % 100],
                   'shop_id', NULL)),
               '{{}}'::json
          FROM p ORDER BY i"
    );
    sqlx::query(&product_sql)
        .bind(products)
        .bind(Product::TYPE)
        .bind(product_template.event_type())
        .bind(product_template.event_version())
        .bind(&product_tag)
        .bind(currency.as_str())
        .bind(&adjectives)
        .bind(&colours)
        .bind(&nouns)
        .bind(&materials)
        .bind(&leaves)
        .bind(capitalized(RARE_WORD))
        .execute(&mut *tx)
        .await
        .context("insert the ProductCreated events")?;

    // Stock for every other product, `restocks` times.
    let stock_sql = format!(
        "{PRODUCTS_CTE}
        INSERT INTO events
            (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
        SELECT $2, p.id::text, j, $3, $4,
               json_build_object($5::text, json_build_object(
                   'product_id', p.id,
                   'quantity', 1 + r2 % 50,
                   'reason', NULL,
                   'on_hand_after', j * (1 + r2 % 50),
                   'held_after', 0)),
               '{{}}'::json
          FROM p CROSS JOIN generate_series(1, $6::bigint) AS j
         WHERE i % 2 = 0 ORDER BY i, j"
    );
    sqlx::query(&stock_sql)
        .bind(products)
        .bind(InventoryItem::TYPE)
        .bind(stock_template.event_type())
        .bind(stock_template.event_version())
        .bind(&stock_tag)
        .bind(restocks)
        .execute(&mut *tx)
        .await
        .context("insert the StockReceived events")?;
    tx.commit().await?;

    // Every kind of seeded event decodes into the real type and serializes
    // back to exactly what is stored: the shape is the domain's.
    check_round_trip::<CategoryEvent>(pool, Category::TYPE).await?;
    check_round_trip::<ProductEvent>(pool, Product::TYPE).await?;
    check_round_trip::<InventoryEvent>(pool, InventoryItem::TYPE).await?;
    Ok(roots)
}

fn capitalized(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// The enum tag and the field names of a serialized event.
fn shape<E: DomainEvent>(event: &E) -> Result<(String, BTreeSet<String>)> {
    let value = serde_json::to_value(event)?;
    let (tag, fields) = value
        .as_object()
        .and_then(|o| o.iter().next())
        .ok_or_else(|| anyhow!("not an externally tagged enum: {value}"))?;
    let fields = fields
        .as_object()
        .ok_or_else(|| anyhow!("not a struct variant: {value}"))?
        .keys()
        .cloned()
        .collect();
    Ok((tag.clone(), fields))
}

async fn insert_category(
    conn: &mut PgConnection,
    id: Uuid,
    name: String,
    parent: Option<Uuid>,
) -> Result<()> {
    let event = CategoryEvent::CategoryCreated {
        category_id: CategoryId(id),
        name,
        parent: parent.map(CategoryId),
    };
    sqlx::query(
        "INSERT INTO events
             (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         VALUES ($1, $2, 1, $3, $4, $5::json, '{}')",
    )
    .bind(Category::TYPE)
    .bind(id.to_string())
    .bind(event.event_type())
    .bind(event.event_version())
    .bind(serde_json::to_string(&event)?)
    .execute(conn)
    .await?;
    Ok(())
}

async fn check_round_trip<E>(pool: &PgPool, aggregate_type: &str) -> Result<()>
where
    E: DomainEvent,
{
    let rows: Vec<(String, String, Value)> = sqlx::query_as(
        "SELECT event_type, event_version, payload::jsonb FROM events
          WHERE aggregate_type = $1 ORDER BY global_position LIMIT 50",
    )
    .bind(aggregate_type)
    .fetch_all(pool)
    .await?;
    ensure!(!rows.is_empty(), "no {aggregate_type} events were seeded");
    for (event_type, version, stored) in rows {
        let event: E = serde_json::from_value(stored.clone()).with_context(|| {
            format!("a seeded {aggregate_type} event does not decode: {stored}")
        })?;
        ensure!(
            serde_json::to_value(&event)? == stored
                && event.event_type() == event_type
                && event.event_version() == version,
            "a seeded {aggregate_type} event is not in the domain's shape: {stored}"
        );
    }
    Ok(())
}

/// What [`orders`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeededOrders {
    pub orders: i64,
    pub events: i64,
}

/// Where an order's life ends, per 100 orders (see [`orders`]).
const ORDER_FATES: [(u64, Fate); 10] = [
    (55, Fate::Delivered),
    (10, Fate::Shipped),
    (10, Fate::Processing),
    (5, Fate::Paid),
    (4, Fate::RefundedAfterDelivery),
    (2, Fate::PartlyRefundedAfterDelivery),
    (3, Fate::CancelledAfterPayment),
    (4, Fate::PaymentFailed),
    (4, Fate::PaymentTimedOut),
    (3, Fate::AwaitingPayment),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Delivered,
    Shipped,
    Processing,
    Paid,
    RefundedAfterDelivery,
    PartlyRefundedAfterDelivery,
    CancelledAfterPayment,
    PaymentFailed,
    PaymentTimedOut,
    AwaitingPayment,
}

/// splitmix64 over a counter: the same numbers for the same order on
/// every run.
struct Numbers(u64);

impl Numbers {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `low..=high`.
    fn between(&mut self, low: i64, high: i64) -> i64 {
        low + (self.next() % (high - low + 1) as u64) as i64
    }
}

/// One order event, when it happens (seconds after the first order).
struct Timed {
    at: i64,
    order: i64,
    sequence: i64,
    event: OrderEvent,
}

/// Lets `order` decide `command` and records its events at `at`.
async fn decide(
    order: &mut Order,
    command: OrderCommand,
    index: i64,
    at: i64,
    out: &mut Vec<Timed>,
) -> Result<()> {
    let sink = EventSink::default();
    order
        .handle(command, &(), &sink)
        .await
        .map_err(|e| anyhow!("seeded order {index} was refused: {e}"))?;
    for event in sink.collect().await {
        let sequence = out
            .last()
            .filter(|t| t.order == index)
            .map_or(0, |t| t.sequence)
            + 1;
        out.push(Timed {
            at,
            order: index,
            sequence,
            event,
        });
    }
    Ok(())
}

/// The life of seeded order `index`: its events, decided by the domain's
/// order from the commands the shop would send.
async fn order_life(
    index: i64,
    products: &[(ProductId, String, i64)],
    currency: &Currency,
    out: &mut Vec<Timed>,
) -> Result<()> {
    let mut n = Numbers(index as u64 ^ 0x0D0E_5EED);
    let order_id = OrderId(Uuid::new_v5(
        &Uuid::NAMESPACE_OID,
        format!("bench-order-{index}").as_bytes(),
    ));
    let customer_id = CustomerId(Uuid::new_v5(
        &Uuid::NAMESPACE_OID,
        format!("bench-customer-{}", n.next() % 10_000).as_bytes(),
    ));
    let mut lines: Vec<OrderLine> = Vec::new();
    for _ in 0..n.between(1, 3) {
        let (product_id, name, price) = &products[(n.next() % products.len() as u64) as usize];
        if lines.iter().any(|l| l.product_id == *product_id) {
            continue;
        }
        let quantity = Quantity::new(n.between(1, 3))?;
        let unit_price = Money::new(*price, currency.clone())?;
        lines.push(OrderLine {
            product_id: *product_id,
            name: name.clone(),
            line_total: unit_price.checked_mul(quantity)?,
            unit_price,
            quantity,
        });
    }
    let subtotal: i64 = lines.iter().map(|l| l.line_total.minor).sum();
    let coupon = match n.next() % 10 {
        0 => Some(OrderCoupon {
            coupon_id: CouponId(Uuid::new_v5(&Uuid::NAMESPACE_OID, b"bench-coupon")),
            code: "WELCOME10".to_string(),
            discount: Money::new(subtotal / 10, currency.clone())?,
        }),
        _ => None,
    };
    let card = !n.next().is_multiple_of(5);
    let payment = match card {
        true => PaymentMethod::Card {
            token: "tok_visa".to_string(),
        },
        false => PaymentMethod::Wallet,
    };
    let mut roll = n.next() % 100;
    let fate = ORDER_FATES
        .iter()
        .find(|(share, _)| {
            let here = roll < *share;
            roll = roll.saturating_sub(*share);
            here
        })
        .map_or(Fate::Delivered, |(_, fate)| *fate);

    let start: DateTime<Utc> = Utc.with_ymd_and_hms(2026, 11, 2, 8, 0, 0).unwrap();
    let mut at = index * 2;
    let now = |at: i64| start + Span::seconds(at);
    let mut order = Order::default();
    let place = OrderCommand::Place {
        order_id,
        customer_id,
        lines,
        coupon,
        shipping_address: ShippingAddress {
            name: "Ada Lovelace".to_string(),
            line1: format!("{} St James's Square", 1 + index % 200),
            line2: None,
            city: "London".to_string(),
            postal_code: "SW1Y 4JH".to_string(),
            country: "GB".to_string(),
        },
        payment,
        expected_total: None,
        currency: currency.clone(),
        now: now(at),
    };
    decide(&mut order, place, index, at, out).await?;
    // Stock, payment and invoice follow within seconds (the workflow);
    // processing, shipping and delivery come hours and days later.
    at += n.between(1, 3);
    let command = OrderCommand::ConfirmStockReserved { now: now(at) };
    decide(&mut order, command, index, at, out).await?;
    let total = order.total().clone();
    let payment_id = format!("pay_{order_id}");
    match fate {
        Fate::AwaitingPayment => return Ok(()),
        Fate::PaymentTimedOut => {
            at += 900;
            let command = OrderCommand::Expire { now: now(at) };
            return decide(&mut order, command, index, at, out).await;
        }
        Fate::PaymentFailed => {
            at += n.between(1, 5);
            let command = OrderCommand::FailPayment {
                reason: "card declined".to_string(),
                now: now(at),
            };
            return decide(&mut order, command, index, at, out).await;
        }
        _ => {}
    }
    if card {
        at += n.between(1, 4);
        let command = OrderCommand::AuthorizePayment {
            payment_id: payment_id.clone(),
            amount: total.clone(),
            now: now(at),
        };
        decide(&mut order, command, index, at, out).await?;
    }
    at += n.between(1, 4);
    let command = OrderCommand::CapturePayment {
        payment_id,
        amount: total.clone(),
        now: now(at),
    };
    decide(&mut order, command, index, at, out).await?;
    at += n.between(1, 3);
    let command = OrderCommand::IssueInvoice {
        invoice_number: format!("INV-2026-{:07}", index + 1),
        now: now(at),
    };
    decide(&mut order, command, index, at, out).await?;
    let refund = |amount: Option<Money>, at: i64| OrderCommand::Refund {
        amount,
        reason: "returned".to_string(),
        now: now(at),
    };
    match fate {
        Fate::Paid => return Ok(()),
        Fate::CancelledAfterPayment => {
            at += n.between(600, 7_200);
            let command = OrderCommand::Cancel {
                reason: CancellationReason::CustomerRequest,
                now: now(at),
            };
            decide(&mut order, command, index, at, out).await?;
            at += n.between(60, 600);
            return decide(&mut order, refund(None, at), index, at, out).await;
        }
        _ => {}
    }
    at += n.between(600, 3_600);
    let command = OrderCommand::StartProcessing { now: now(at) };
    decide(&mut order, command, index, at, out).await?;
    if fate == Fate::Processing {
        return Ok(());
    }
    at += n.between(3_600, 86_400);
    let command = OrderCommand::Ship {
        tracking_number: format!("TRK{:09}", index + 1),
        carrier: Some("DHL".to_string()),
        now: now(at),
    };
    decide(&mut order, command, index, at, out).await?;
    if fate == Fate::Shipped {
        return Ok(());
    }
    at += n.between(86_400, 259_200);
    let command = OrderCommand::Deliver { now: now(at) };
    decide(&mut order, command, index, at, out).await?;
    at += n.between(86_400, 604_800);
    match fate {
        Fate::RefundedAfterDelivery => decide(&mut order, refund(None, at), index, at, out).await,
        Fate::PartlyRefundedAfterDelivery => {
            let half = Money::new((total.minor / 2).max(1), currency.clone())?;
            decide(&mut order, refund(Some(half), at), index, at, out).await
        }
        _ => Ok(()),
    }
}

/// Inserts, in one transaction, orders moved through their life until the
/// store holds at least `events` more events. Each order has 1 to 3 lines of
/// products taken from the store's first 1,000 `ProductCreated` events (seed
/// a catalog first), one in ten a coupon, four in five a card payment (the
/// others a wallet). Per 100 orders: 55 delivered, 10 shipped, 10
/// processing, 5 paid and invoiced, 4 refunded after delivery, 2 partly
/// refunded after delivery, 3 cancelled after payment and refunded, 4
/// failed payments, 4 payment timeouts, 3 awaiting payment; about 7 events
/// per order. The events are the domain's: each order decides the commands
/// the shop would send it. One order is placed every 2 seconds; its stock,
/// payment and invoice follow within seconds, processing, shipping and
/// delivery hours and days later, and the log holds the events of all
/// orders in that time order, so the orders' lives interleave.
pub async fn orders(pool: &PgPool, events: i64) -> Result<SeededOrders> {
    let currency = Currency::usd();
    let rows: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT aggregate_id, payload::jsonb -> 'ProductCreated' ->> 'name',
                (payload::jsonb -> 'ProductCreated' -> 'price' ->> 'minor')::bigint
           FROM events WHERE aggregate_type = $1 AND event_type = 'ProductCreated'
          ORDER BY global_position LIMIT 1000",
    )
    .bind(Product::TYPE)
    .fetch_all(pool)
    .await
    .context("read products to order")?;
    ensure!(
        !rows.is_empty(),
        "no products to order: seed a catalog first"
    );
    let products = rows
        .into_iter()
        .map(|(id, name, price)| Ok((ProductId(id.parse()?), name, price)))
        .collect::<Result<Vec<_>>>()?;

    let mut timed = Vec::new();
    let mut orders = 0;
    while (timed.len() as i64) < events {
        order_life(orders, &products, &currency, &mut timed).await?;
        orders += 1;
    }
    timed.sort_by_key(|t| (t.at, t.order, t.sequence));

    let mut tx = pool.begin().await?;
    for chunk in timed.chunks(5_000) {
        let mut ids = Vec::with_capacity(chunk.len());
        let mut sequences = Vec::with_capacity(chunk.len());
        let mut types = Vec::with_capacity(chunk.len());
        let mut versions = Vec::with_capacity(chunk.len());
        let mut payloads = Vec::with_capacity(chunk.len());
        for t in chunk {
            ids.push(t.event.order_id().to_string());
            sequences.push(t.sequence);
            types.push(t.event.event_type());
            versions.push(t.event.event_version());
            payloads.push(serde_json::to_string(&t.event)?);
        }
        sqlx::query(
            "INSERT INTO events
                 (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
             SELECT $1, i, s, t, v, p::json, '{}'
               FROM UNNEST($2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[])
                    WITH ORDINALITY AS u(i, s, t, v, p, n)
              ORDER BY n",
        )
        .bind(Order::TYPE)
        .bind(&ids)
        .bind(&sequences)
        .bind(&types)
        .bind(&versions)
        .bind(&payloads)
        .execute(&mut *tx)
        .await
        .context("insert the order events")?;
    }
    tx.commit().await?;
    check_round_trip::<OrderEvent>(pool, Order::TYPE).await?;
    Ok(SeededOrders {
        orders,
        events: timed.len() as i64,
    })
}

/// Waits until the projector's checkpoint reaches `head`, printing progress
/// every 10 s; answers how many events it applied.
pub async fn wait_for_projector(pool: &PgPool, name: &str, head: i64) -> Result<i64> {
    let started = Instant::now();
    let mut reported = Instant::now();
    loop {
        let row: Option<(i64, i64, String)> = sqlx::query_as(
            "SELECT global_position, events_applied, state FROM projector_checkpoints WHERE name = $1",
        )
        .bind(name)
        .fetch_optional(pool)
        .await?;
        if let Some((position, applied, state)) = row {
            if position >= head {
                return Ok(applied);
            }
            if state != "running" {
                let errors: Vec<(String,)> = sqlx::query_as(
                    "SELECT error FROM projector_dead_letters WHERE projector = $1 LIMIT 3",
                )
                .bind(name)
                .fetch_all(pool)
                .await?;
                bail!("the {name} projector is {state} at position {position}: {errors:?}");
            }
            if reported.elapsed() >= Duration::from_secs(10) {
                println!(
                    "  projecting: {applied} events applied after {:.0} s",
                    started.elapsed().as_secs_f64()
                );
                reported = Instant::now();
            }
        }
        if started.elapsed() > Duration::from_secs(1800) {
            bail!("the {name} projector did not reach position {head} in 30 minutes");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
