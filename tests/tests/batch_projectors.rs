//! The read-model projectors batch by batch against event by event, on a
//! real database: the same log gives the same read models whatever the batch
//! size; a poison event in the middle of a batch is dead-lettered with every
//! event before it applied and none after; an aggregate whose events were
//! committed out of sequence order comes out of a batch as it does event by
//! event.
//!
//! The log of the first test is random but reproducible: it prints its seed,
//! and `BATCH_TEST_SEED=<seed>` writes the same log again
//! (`BATCH_TEST_EVENTS` sets its length, 3,000 events by default).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Display;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use cqrs_es::{AggregateError, DomainEvent};
use domain::category::{Category, CategoryCommand, CategoryServices};
use domain::inventory::{HoldRequest, InventoryCommand, InventoryEvent, InventoryItem};
use domain::metadata::{Actor, CommandMetadata};
use domain::order::{
    CancellationReason, Order, OrderCommand, OrderCoupon, OrderEvent, OrderLine, OrderStatus,
    PaymentMethod, PaymentMethodKind, PaymentStatus, ShippingAddress,
};
use domain::product::{Product, ProductCommand, ProductEvent, ProductServices};
use domain::shop::{Shop, ShopCommand};
use domain::stored::StoredAggregate;
use domain::values::{
    CategoryId, CouponId, Currency, CustomerId, Money, OrderId, ProductId, Quantity, ShopId, Sku,
};
use projections::admin;
use projections::event_store::log::{read_after, Checkpoint};
use projections::event_store::{CommandBus, Committed};
use projections::lookups::EventStoreLookups;
use projections::projector::Projector;
use projections::read_models::catalog::CatalogProjector;
use projections::read_models::orders::OrdersProjector;
use projections::runtime::{step, RuntimeConfig};
use sqlx::{Connection, PgConnection, PgPool};
use testkit::{eventually, fresh_database, TestDatabase};
use uuid::Uuid;

// ---- the random log ----

/// splitmix64: a seed gives the same numbers on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` at least 1).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// A number in `low..=high`.
    fn between(&mut self, low: i64, high: i64) -> i64 {
        low + (self.next() % (high - low + 1) as u64) as i64
    }

    fn percent(&mut self, p: u64) -> bool {
        self.next() % 100 < p
    }

    fn uuid(&mut self) -> Uuid {
        let bytes = (u128::from(self.next()) << 64 | u128::from(self.next())).to_le_bytes();
        uuid::Builder::from_random_bytes(bytes).into_uuid()
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> Option<T> {
        (!items.is_empty()).then(|| items[self.below(items.len())])
    }
}

/// `BATCH_TEST_SEED`, or a new seed.
fn seed() -> u64 {
    match std::env::var("BATCH_TEST_SEED") {
        Ok(raw) => raw
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("BATCH_TEST_SEED must be a number, got {raw:?}")),
        Err(_) => Uuid::new_v4().as_u128() as u64,
    }
}

/// A command bus per aggregate type the two read models follow.
struct Buses {
    categories: CommandBus<Category>,
    shops: CommandBus<Shop>,
    products: CommandBus<Product>,
    inventory: CommandBus<InventoryItem>,
    orders: CommandBus<Order>,
}

impl Buses {
    fn new(pool: &PgPool) -> Self {
        let lookups = Arc::new(EventStoreLookups::new(pool.clone()));
        Self {
            categories: CommandBus::new(pool.clone(), CategoryServices::new(lookups.clone())),
            shops: CommandBus::new(pool.clone(), ()),
            products: CommandBus::new(pool.clone(), ProductServices::new(lookups)),
            inventory: CommandBus::new(pool.clone(), ()),
            orders: CommandBus::new(pool.clone(), ()),
        }
    }
}

fn metadata() -> CommandMetadata {
    CommandMetadata::new(
        Actor::System("batch-projector-test".to_string()),
        Uuid::new_v4().to_string(),
        "Test",
    )
}

/// Sends `command`; what it did and the state after it, or `None` when the
/// domain refused it.
async fn send<A: StoredAggregate>(
    bus: &CommandBus<A>,
    id: impl Display,
    command: A::Command,
) -> Option<(Committed, A)> {
    match bus
        .execute_returning(&id.to_string(), command, &metadata())
        .await
    {
        Ok(done) => Some(done),
        Err(AggregateError::UserError(_)) => None,
        Err(e) => panic!("a {} command failed: {e}", A::TYPE),
    }
}

/// Sends `command`, which must write events; answers the state after it.
async fn must<A: StoredAggregate>(bus: &CommandBus<A>, id: impl Display, command: A::Command) -> A {
    let id = id.to_string();
    let (committed, state) = send(bus, &id, command)
        .await
        .unwrap_or_else(|| panic!("the {} command on {id} was refused", A::TYPE));
    assert!(
        committed.wrote_events,
        "the {} command on {id} wrote nothing",
        A::TYPE
    );
    state
}

fn usd(minor: i64) -> Money {
    Money::new(minor, Currency::usd()).expect("money")
}

fn quantity(n: i64) -> Quantity {
    Quantity::new(n).expect("quantity")
}

fn address() -> ShippingAddress {
    ShippingAddress {
        name: "Ada Lovelace".to_string(),
        line1: "12 St James's Square".to_string(),
        line2: None,
        city: "London".to_string(),
        postal_code: "SW1Y 4JH".to_string(),
        country: "gb".to_string(),
    }
}

#[derive(Clone)]
struct Listed {
    id: ProductId,
    name: String,
    price: Money,
}

/// Writes a random log through the domain's commands, keeping just enough of
/// the state to choose commands that mostly succeed.
struct World {
    rng: Rng,
    buses: Buses,
    now: DateTime<Utc>,
    /// The global position of the newest event written.
    head: i64,
    counter: u64,
    categories: Vec<CategoryId>,
    parents: HashMap<CategoryId, Option<CategoryId>>,
    /// Moves of a category that had children at the time.
    subtree_moves: usize,
    shops: Vec<ShopId>,
    products: Vec<Listed>,
    stock: HashMap<ProductId, InventoryItem>,
    /// Orders that took stock from a product for good (committed or
    /// decremented), for returns.
    taken: HashMap<ProductId, Vec<Uuid>>,
    customers: Vec<CustomerId>,
    orders: Vec<(OrderId, Order)>,
}

impl World {
    fn new(pool: &PgPool, seed: u64) -> Self {
        let mut rng = Rng(seed);
        let customers = (0..20).map(|_| CustomerId(rng.uuid())).collect();
        Self {
            rng,
            buses: Buses::new(pool),
            now: Utc.with_ymd_and_hms(2026, 11, 2, 9, 0, 0).unwrap(),
            head: 0,
            counter: 0,
            categories: Vec::new(),
            parents: HashMap::new(),
            subtree_moves: 0,
            shops: Vec::new(),
            products: Vec::new(),
            stock: HashMap::new(),
            taken: HashMap::new(),
            customers,
            orders: Vec::new(),
        }
    }

    fn number(&mut self) -> u64 {
        self.counter += 1;
        self.counter
    }

    fn wrote(&mut self, committed: &Committed) {
        if committed.wrote_events {
            self.head = self.head.max(committed.position);
        }
    }

    /// Writes commands until the log holds at least `events` events.
    async fn write(&mut self, events: i64) {
        let mut commands = 0;
        while self.head < events {
            commands += 1;
            assert!(
                commands < events * 10,
                "the commands stopped writing events"
            );
            self.now += chrono::Duration::seconds(self.rng.between(1, 20));
            self.one_step().await;
        }
    }

    async fn one_step(&mut self) {
        if self.categories.len() < 3 {
            self.create_category(None).await;
            return;
        }
        if self.products.len() < 3 {
            self.create_product().await;
            return;
        }
        match self.rng.below(100) {
            0..=5 => self.category_command().await,
            6..=9 => self.shop_command().await,
            10..=19 => self.create_product().await,
            20..=31 => {
                let product = self.some_product();
                self.product_command(product).await;
            }
            32..=51 => {
                let product = self.some_product();
                self.inventory_command(product).await;
            }
            52..=59 => self.place_order().await,
            60..=75 => {
                if let Some(order) = self.some_order() {
                    self.advance_order(order).await;
                }
            }
            // Bursts: several events of one row close together in the log.
            76..=85 => {
                let product = self.some_product();
                for _ in 0..self.rng.between(2, 6) {
                    if self.rng.percent(40) {
                        self.product_command(product).await;
                    } else {
                        self.inventory_command(product).await;
                    }
                }
            }
            86..=96 => {
                if self.rng.percent(40) {
                    self.place_order().await;
                }
                if let Some(order) = self.some_order() {
                    for _ in 0..self.rng.between(2, 6) {
                        self.advance_order(order).await;
                    }
                }
            }
            _ => {
                // A new subtree, moved right away, and a category created
                // under its moved child.
                let parent = self.rng.pick(&self.categories);
                if let Some(top) = self.create_category(parent).await {
                    if let Some(child) = self.create_category(Some(top)).await {
                        self.move_category(top).await;
                        self.create_category(Some(child)).await;
                        self.rename_category(child).await;
                    }
                }
            }
        }
    }

    fn some_product(&mut self) -> usize {
        // Recent products more often: their rows see more events.
        let n = self.products.len();
        if self.rng.percent(50) {
            n - 1 - self.rng.below(n.min(15))
        } else {
            self.rng.below(n)
        }
    }

    fn some_order(&mut self) -> Option<usize> {
        let n = self.orders.len();
        if n == 0 {
            return None;
        }
        Some(if self.rng.percent(75) {
            n - 1 - self.rng.below(n.min(40))
        } else {
            self.rng.below(n)
        })
    }

    // -- categories and shops --

    async fn create_category(&mut self, parent: Option<CategoryId>) -> Option<CategoryId> {
        let id = CategoryId(self.rng.uuid());
        let n = self.number();
        let command = CategoryCommand::Create {
            category_id: id,
            name: format!("Category {n}"),
            parent,
        };
        let (committed, _) = send(&self.buses.categories, id, command).await?;
        self.wrote(&committed);
        self.categories.push(id);
        self.parents.insert(id, parent);
        Some(id)
    }

    async fn rename_category(&mut self, id: CategoryId) {
        let n = self.number();
        let command = CategoryCommand::Rename {
            name: format!("Category {n}"),
        };
        if let Some((committed, _)) = send(&self.buses.categories, id, command).await {
            self.wrote(&committed);
        }
    }

    async fn move_category(&mut self, id: CategoryId) {
        let new_parent = if self.rng.percent(25) {
            None
        } else {
            self.rng.pick(&self.categories)
        };
        let had_children = self.parents.values().any(|p| *p == Some(id));
        let command = CategoryCommand::Move { new_parent };
        if let Some((committed, state)) = send(&self.buses.categories, id, command).await {
            self.wrote(&committed);
            if committed.wrote_events && had_children {
                self.subtree_moves += 1;
            }
            self.parents.insert(id, state.parent());
        }
    }

    async fn category_command(&mut self) {
        match self.rng.below(10) {
            0..=3 => {
                let parent = if self.rng.percent(30) {
                    None
                } else {
                    self.rng.pick(&self.categories)
                };
                self.create_category(parent).await;
            }
            4..=5 => {
                let id = self.rng.pick(&self.categories).expect("a category");
                self.rename_category(id).await;
            }
            _ => {
                let parents: Vec<CategoryId> = self.parents.values().flatten().copied().collect();
                let id = match self.rng.percent(50) {
                    true => self.rng.pick(&parents),
                    false => None,
                };
                let id = id
                    .or_else(|| self.rng.pick(&self.categories))
                    .expect("a category");
                self.move_category(id).await;
            }
        }
    }

    async fn shop_command(&mut self) {
        let n = self.number();
        let (id, command) = if self.shops.len() < 2 || self.rng.percent(30) {
            let id = ShopId(self.rng.uuid());
            let command = ShopCommand::Create {
                shop_id: id,
                name: format!("Shop {n}"),
                description: self.rng.percent(50).then(|| format!("Goods no. {n}")),
                address: self.rng.percent(50).then(|| format!("{n} High Street")),
            };
            (id, command)
        } else {
            let id = self.rng.pick(&self.shops).expect("a shop");
            let clear = self.rng.percent(30);
            let command = ShopCommand::Update {
                name: self.rng.percent(50).then(|| format!("Shop {n}")),
                description: Some(if clear {
                    String::new()
                } else {
                    format!("Goods no. {n}")
                }),
                address: self.rng.percent(50).then(|| format!("{n} Market Square")),
            };
            (id, command)
        };
        let created = matches!(command, ShopCommand::Create { .. });
        if let Some((committed, _)) = send(&self.buses.shops, id, command).await {
            self.wrote(&committed);
            if created {
                self.shops.push(id);
            }
        }
    }

    // -- products and stock --

    async fn create_product(&mut self) {
        let id = ProductId(self.rng.uuid());
        let n = self.number();
        let price = usd(self.rng.between(100, 100_000));
        let shop_id = match self.rng.percent(50) {
            true => self.rng.pick(&self.shops),
            false => None,
        };
        let command = ProductCommand::Create {
            product_id: id,
            name: format!("Product {n}"),
            description: format!("Description of product {n}"),
            price: price.clone(),
            sku: Sku::parse(&format!("SKU-{n}")).expect("sku"),
            image_url: self
                .rng
                .percent(50)
                .then(|| format!("https://img.example.com/{n}.png")),
            category_id: self.rng.pick(&self.categories).expect("a category"),
            shop_id,
        };
        if let Some((committed, _)) = send(&self.buses.products, id, command).await {
            self.wrote(&committed);
            self.products.push(Listed {
                id,
                name: format!("Product {n}"),
                price,
            });
        }
    }

    async fn product_command(&mut self, index: usize) {
        let id = self.products[index].id;
        let n = self.number();
        let command = match self.rng.below(20) {
            0..=7 => ProductCommand::UpdateDetails {
                name: self.rng.percent(40).then(|| format!("Product {n}")),
                description: self.rng.percent(40).then(|| format!("Now with {n} extras")),
                sku: self
                    .rng
                    .percent(20)
                    .then(|| Sku::parse(&format!("SKU-{n}")).expect("sku")),
                image_url: self.rng.percent(30).then(|| match self.rng.percent(50) {
                    true => String::new(),
                    false => format!("https://img.example.com/{n}.jpg"),
                }),
                category_id: match self.rng.percent(30) {
                    true => self.rng.pick(&self.categories),
                    false => None,
                },
                shop_id: match self.rng.percent(30) {
                    true if self.rng.percent(30) => Some(None),
                    true => self.rng.pick(&self.shops).map(Some),
                    false => None,
                },
            },
            8..=18 => ProductCommand::ChangePrice {
                price: usd(self.rng.between(100, 100_000)),
            },
            _ => ProductCommand::Discontinue,
        };
        if let Some((committed, state)) = send(&self.buses.products, id, command).await {
            self.wrote(&committed);
            let listed = &mut self.products[index];
            if let Some(name) = state.name() {
                listed.name = name.to_string();
            }
            if let Some(price) = state.price() {
                listed.price = price.clone();
            }
        }
    }

    async fn inventory_command(&mut self, index: usize) {
        let product = self.products[index].id;
        let state = self.stock.get(&product).cloned().unwrap_or_default();
        let holds: Vec<Uuid> = state.holds().keys().copied().collect();
        let expiring: Vec<(Uuid, DateTime<Utc>)> = state
            .holds()
            .iter()
            .filter_map(|(owner, hold)| hold.expires_at.map(|at| (*owner, at)))
            .collect();
        let now = self.now;
        let expiry = |rng: &mut Rng| {
            rng.percent(50)
                .then(|| now + chrono::Duration::seconds(rng.between(60, 1_800)))
        };
        let mut taking = Vec::new();
        let command = if state.product_id().is_none() || self.rng.percent(15) {
            InventoryCommand::Receive {
                product_id: product,
                quantity: quantity(self.rng.between(1, 40)),
                reason: self.rng.percent(30).then(|| "delivery".to_string()),
            }
        } else {
            match self.rng.below(10) {
                0 => {
                    let delta = self.rng.between(-5, 10);
                    InventoryCommand::Adjust {
                        delta: if delta == 0 { 1 } else { delta },
                        reason: "recount".to_string(),
                    }
                }
                1 | 2 => InventoryCommand::PlaceHold {
                    owner_id: self.rng.uuid(),
                    quantity: quantity(self.rng.between(1, 5)),
                    expires_at: expiry(&mut self.rng),
                    now,
                },
                3 => InventoryCommand::ReleaseHold {
                    owner_id: self.rng.pick(&holds).unwrap_or_else(Uuid::new_v4),
                },
                4 => match self.rng.pick(&expiring) {
                    Some((owner_id, at)) => InventoryCommand::ExpireHold {
                        owner_id,
                        now: at.max(now),
                    },
                    None => InventoryCommand::PlaceHold {
                        owner_id: self.rng.uuid(),
                        quantity: quantity(1),
                        expires_at: Some(now + chrono::Duration::seconds(60)),
                        now,
                    },
                },
                5 => {
                    let owner_id = self.rng.pick(&holds).unwrap_or_else(Uuid::new_v4);
                    taking.push(owner_id);
                    InventoryCommand::CommitHold { owner_id }
                }
                6 => {
                    let order_id = OrderId(self.rng.uuid());
                    taking.push(order_id.as_uuid());
                    InventoryCommand::Decrement {
                        order_id,
                        quantity: quantity(self.rng.between(1, 3)),
                    }
                }
                7 => {
                    let taken = self.taken.get(&product).cloned().unwrap_or_default();
                    InventoryCommand::ReturnOrderStock {
                        order_id: OrderId(self.rng.pick(&taken).unwrap_or_else(Uuid::new_v4)),
                    }
                }
                8 => {
                    let mut requests = Vec::new();
                    for _ in 0..self.rng.between(2, 4) {
                        requests.push(HoldRequest {
                            owner_id: self.rng.uuid(),
                            quantity: quantity(self.rng.between(1, 4)),
                            expires_at: expiry(&mut self.rng),
                        });
                    }
                    if let Some(owner_id) = self.rng.pick(&holds) {
                        requests.push(HoldRequest {
                            owner_id,
                            quantity: quantity(1),
                            expires_at: None,
                        });
                    }
                    InventoryCommand::PlaceHolds {
                        holds: requests,
                        now,
                    }
                }
                _ => {
                    let mut owner_ids = Vec::new();
                    for _ in 0..self.rng.between(1, 3) {
                        if let Some(owner) = self.rng.pick(&holds) {
                            owner_ids.push(owner);
                        }
                    }
                    owner_ids.push(Uuid::new_v4());
                    taking.extend(owner_ids.iter().copied());
                    InventoryCommand::CommitHolds { owner_ids }
                }
            }
        };
        if let Some((committed, state)) = send(&self.buses.inventory, product, command).await {
            self.wrote(&committed);
            self.stock.insert(product, state);
            if committed.wrote_events {
                self.taken.entry(product).or_default().extend(taking);
            }
        }
    }

    // -- orders --

    async fn place_order(&mut self) {
        let id = OrderId(self.rng.uuid());
        let mut lines: Vec<OrderLine> = Vec::new();
        for _ in 0..self.rng.between(1, 3) {
            let index = self.some_product();
            let product = self.products[index].clone();
            if lines.iter().any(|l| l.product_id == product.id) {
                continue;
            }
            let quantity = quantity(self.rng.between(1, 4));
            lines.push(OrderLine {
                product_id: product.id,
                name: product.name,
                line_total: product.price.checked_mul(quantity).expect("line total"),
                unit_price: product.price,
                quantity,
            });
        }
        let subtotal: i64 = lines.iter().map(|l| l.line_total.minor).sum();
        let coupon = self.rng.percent(15).then(|| OrderCoupon {
            coupon_id: CouponId(self.rng.uuid()),
            code: "save10".to_string(),
            discount: usd(subtotal / 10),
        });
        let payment = match self.rng.percent(70) {
            true => PaymentMethod::Card {
                token: "tok_visa".to_string(),
            },
            false => PaymentMethod::Wallet,
        };
        let command = OrderCommand::Place {
            order_id: id,
            customer_id: self.rng.pick(&self.customers).expect("a customer"),
            lines,
            coupon,
            shipping_address: address(),
            payment,
            expected_total: None,
            currency: Currency::usd(),
            now: self.now,
        };
        if let Some((committed, state)) = send(&self.buses.orders, id, command).await {
            self.wrote(&committed);
            self.orders.push((id, state));
        }
    }

    async fn advance_order(&mut self, index: usize) {
        let (id, order) = self.orders[index].clone();
        let now = self.now;
        let n = self.number();
        let total = order.total().clone();
        let payment_id = format!("pay_{id}");
        let invoice = OrderCommand::IssueInvoice {
            invoice_number: format!("INV-{n:06}"),
            now,
        };
        let uninvoiced = order.invoice_number().is_none() && order.is_paid_for();
        let refundable = order.refundable().minor;
        let partial_refund = OrderCommand::Refund {
            amount: Some(usd((refundable / 3).max(1))),
            reason: "damaged in transit".to_string(),
            now,
        };
        let full_refund = OrderCommand::Refund {
            amount: None,
            reason: "returned".to_string(),
            now,
        };
        let r = self.rng.below(100);
        let command = match order.status() {
            OrderStatus::Pending => {
                if r < 4 {
                    OrderCommand::Expire { now }
                } else if r < 9 {
                    OrderCommand::FailPayment {
                        reason: "card declined".to_string(),
                        now,
                    }
                } else if r < 12 {
                    OrderCommand::Cancel {
                        reason: CancellationReason::CustomerRequest,
                        now,
                    }
                } else if !order.stock_reserved() {
                    OrderCommand::ConfirmStockReserved { now }
                } else if order.payment_method() == Some(PaymentMethodKind::Card)
                    && order.payment_status() == PaymentStatus::Pending
                {
                    OrderCommand::AuthorizePayment {
                        payment_id,
                        amount: total,
                        now,
                    }
                } else {
                    OrderCommand::CapturePayment {
                        payment_id,
                        amount: total,
                        now,
                    }
                }
            }
            OrderStatus::Paid => match r {
                0..=39 if uninvoiced => invoice,
                0..=59 => OrderCommand::StartProcessing { now },
                60..=79 => OrderCommand::ChangeStatus {
                    to: OrderStatus::Processing,
                    tracking_number: None,
                    now,
                },
                80..=89 => OrderCommand::Cancel {
                    reason: CancellationReason::Admin,
                    now,
                },
                _ => partial_refund,
            },
            OrderStatus::Processing => match r {
                0..=19 if uninvoiced => invoice,
                0..=59 => OrderCommand::Ship {
                    tracking_number: format!("TRK{n}"),
                    carrier: self.rng.percent(50).then(|| "DHL".to_string()),
                    now,
                },
                60..=79 => OrderCommand::ChangeStatus {
                    to: OrderStatus::Shipped,
                    tracking_number: Some(format!("TRK{n}")),
                    now,
                },
                80..=89 => OrderCommand::Cancel {
                    reason: CancellationReason::CustomerRequest,
                    now,
                },
                _ => partial_refund,
            },
            OrderStatus::Shipped => match r {
                0..=59 => OrderCommand::Deliver { now },
                60..=84 => OrderCommand::ChangeStatus {
                    to: OrderStatus::Delivered,
                    tracking_number: None,
                    now,
                },
                _ => partial_refund,
            },
            OrderStatus::Delivered => match r {
                0..=29 if uninvoiced => invoice,
                0..=59 => full_refund,
                _ => partial_refund,
            },
            OrderStatus::Cancelled if refundable > 0 => full_refund,
            OrderStatus::Cancelled | OrderStatus::Refunded if uninvoiced => invoice,
            OrderStatus::Cancelled | OrderStatus::Refunded => return,
        };
        if let Some((committed, state)) = send(&self.buses.orders, id, command).await {
            self.wrote(&committed);
            self.orders[index].1 = state;
        }
    }
}

// ---- building read models and comparing them ----

/// A read model as a whole: every row of every table of the projector, and
/// where its checkpoint stands.
#[derive(Debug, PartialEq)]
struct ReadModel {
    /// `(table, row as JSON)`, each table in primary-key order.
    rows: Vec<(String, String)>,
    checkpoint: Checkpoint,
    state: String,
    events_applied: i64,
    /// `(position, aggregate type, sequence, resolution)` of each dead letter.
    dead_letters: Vec<(i64, String, i64, Option<String>)>,
}

/// The columns of `table`'s primary key, for ORDER BY.
async fn primary_key(conn: &mut PgConnection, table: &str) -> String {
    let key: Option<String> = sqlx::query_scalar(
        "SELECT string_agg(quote_ident(a.attname), ', '
                           ORDER BY array_position(i.indkey::int2[], a.attnum))
           FROM pg_index i
           JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
          WHERE i.indrelid = $1::text::regclass AND i.indisprimary",
    )
    .bind(table)
    .fetch_one(&mut *conn)
    .await
    .expect("read the primary key");
    key.unwrap_or_else(|| "1".to_string())
}

async fn checkpoint_of(conn: &mut PgConnection, name: &str) -> Option<(Checkpoint, String, i64)> {
    let row: Option<(String, i64, String, i64)> = sqlx::query_as(
        "SELECT transaction_id::text, global_position, state, events_applied
           FROM projector_checkpoints WHERE name = $1",
    )
    .bind(name)
    .fetch_optional(&mut *conn)
    .await
    .expect("read the checkpoint");
    row.map(|(transaction_id, global_position, state, applied)| {
        let checkpoint = Checkpoint {
            transaction_id: transaction_id.parse().expect("an xid8"),
            global_position,
        };
        (checkpoint, state, applied)
    })
}

async fn read_model(conn: &mut PgConnection, projector: &dyn Projector) -> ReadModel {
    let mut rows = Vec::new();
    for table in projector.tables() {
        let key = primary_key(conn, table).await;
        let sql = format!("SELECT to_jsonb(t)::text FROM {table} t ORDER BY {key}");
        let part: Vec<String> = sqlx::query_scalar(&sql)
            .fetch_all(&mut *conn)
            .await
            .expect("read the table");
        rows.extend(part.into_iter().map(|row| (table.to_string(), row)));
    }
    let (checkpoint, state, events_applied) = checkpoint_of(conn, projector.name())
        .await
        .unwrap_or((Checkpoint::START, "none".to_string(), 0));
    let dead_letters = sqlx::query_as(
        "SELECT global_position, aggregate_type, sequence, resolution FROM projector_dead_letters
          WHERE projector = $1 ORDER BY global_position",
    )
    .bind(projector.name())
    .fetch_all(&mut *conn)
    .await
    .expect("read the dead letters");
    ReadModel {
        rows,
        checkpoint,
        state,
        events_applied,
        dead_letters,
    }
}

/// Empties the projector's tables and forgets its checkpoint and dead
/// letters: the next step starts from the first event.
async fn reset(conn: &mut PgConnection, projector: &dyn Projector) {
    let tables = projector.tables().join(", ");
    sqlx::query(&format!("TRUNCATE {tables}"))
        .execute(&mut *conn)
        .await
        .expect("empty the read model");
    for sql in [
        "DELETE FROM projector_checkpoints WHERE name = $1",
        "DELETE FROM projector_dead_letters WHERE projector = $1",
    ] {
        sqlx::query(sql)
            .bind(projector.name())
            .execute(&mut *conn)
            .await
            .expect("forget the checkpoint");
    }
}

/// The last event of the log in commit order.
async fn head(pool: &PgPool) -> Checkpoint {
    let (transaction_id, global_position): (String, i64) = sqlx::query_as(
        "SELECT transaction_id::text, global_position FROM events
          ORDER BY transaction_id DESC, global_position DESC LIMIT 1",
    )
    .fetch_one(pool)
    .await
    .expect("read the head of the log");
    Checkpoint {
        transaction_id: transaction_id.parse().expect("an xid8"),
        global_position,
    }
}

/// Waits until `count` events are readable by a projector (the snapshot
/// horizon is cluster-wide: another test's open transaction may hold the
/// newest events back for a moment).
async fn wait_readable(pool: &PgPool, count: usize) {
    eventually(
        "the log's newest events to be readable",
        Duration::from_secs(60),
        async || {
            read_after(pool, Checkpoint::START, count as i64 + 1)
                .await
                .expect("read the log")
                .len()
                >= count
        },
    )
    .await;
}

/// How many events each step asks for.
enum BatchSizes {
    Fixed(i64),
    /// Sizes from 1 to 3,000, small ones often.
    Mixed(Rng),
}

impl BatchSizes {
    fn next(&mut self) -> i64 {
        match self {
            BatchSizes::Fixed(size) => *size,
            BatchSizes::Mixed(rng) => {
                const SIZES: [i64; 12] = [1, 2, 3, 5, 8, 13, 40, 100, 250, 500, 1_000, 3_000];
                let size = SIZES[rng.below(SIZES.len())];
                rng.between(1.max(size / 2), size)
            }
        }
    }
}

/// Steps `projector` until its checkpoint reaches `head` or it is stopped
/// by a poison event. Answers its state.
async fn run(
    conn: &mut PgConnection,
    projector: &dyn Projector,
    sizes: &mut BatchSizes,
    head: Checkpoint,
) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let read = step(conn, projector, sizes.next()).await.expect("step");
        if read > 0 {
            continue;
        }
        let (at, state, _) = checkpoint_of(conn, projector.name())
            .await
            .expect("a checkpoint after a step");
        if at >= head || state != "running" {
            return state;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} did not reach the head of the log",
            projector.name()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Panics at the first row where the two read models differ.
fn assert_same(expected: &ReadModel, actual: &ReadModel, what: &str) {
    let rows = expected.rows.len().max(actual.rows.len());
    if let Some(i) = (0..rows).find(|&i| expected.rows.get(i) != actual.rows.get(i)) {
        panic!(
            "{what}: row {i} differs ({} rows event by event, {} here)\n  event by event: {:?}\n  here:           {:?}",
            expected.rows.len(),
            actual.rows.len(),
            expected.rows.get(i),
            actual.rows.get(i),
        );
    }
    assert_eq!(
        (
            &expected.checkpoint,
            &expected.state,
            expected.events_applied
        ),
        (&actual.checkpoint, &actual.state, actual.events_applied),
        "{what}: the checkpoint (event by event first)"
    );
    assert_eq!(
        expected.dead_letters, actual.dead_letters,
        "{what}: the dead letters (event by event first)"
    );
}

/// Builds the projector's read model event by event, following the log
/// while it is written, until `written` gives the head of the finished log.
async fn event_by_event(
    db: &TestDatabase,
    projector: &dyn Projector,
    mut written: tokio::sync::watch::Receiver<Option<Checkpoint>>,
) -> ReadModel {
    let name = projector.name();
    let mut conn = PgConnection::connect(&db.url).await.expect("connect");
    let started = std::time::Instant::now();
    let head = loop {
        if let Some(head) = *written.borrow() {
            break head;
        }
        while step(&mut conn, projector, 1).await.expect("step") > 0 {}
        let _ = tokio::time::timeout(Duration::from_millis(20), written.changed()).await;
    };
    let state = run(&mut conn, projector, &mut BatchSizes::Fixed(1), head).await;
    assert_eq!(state, "running", "{name} stopped event by event");
    let built = read_model(&mut conn, projector).await;
    println!(
        "{name}: {} rows, {} events applied, event by event in {:.1} s",
        built.rows.len(),
        built.events_applied,
        started.elapsed().as_secs_f64()
    );
    built
}

/// Builds the projector's read model from the whole log again with batches
/// of several sizes, and compares each to `expected` (built event by event).
async fn same_read_model_whatever_the_batch_size(
    db: &TestDatabase,
    projector: &dyn Projector,
    expected: &ReadModel,
    head: Checkpoint,
    seed: u64,
) {
    let name = projector.name();
    let mut conn = PgConnection::connect(&db.url).await.expect("connect");
    let default = RuntimeConfig::default().batch_size;
    let runs = [
        (format!("batches of {default}"), BatchSizes::Fixed(default)),
        ("batches of 5000".to_string(), BatchSizes::Fixed(5_000)),
        (
            "batches of mixed sizes".to_string(),
            BatchSizes::Mixed(Rng(seed ^ 0x5EED_BA7C)),
        ),
    ];
    for (label, mut sizes) in runs {
        reset(&mut conn, projector).await;
        let started = std::time::Instant::now();
        run(&mut conn, projector, &mut sizes, head).await;
        let actual = read_model(&mut conn, projector).await;
        println!(
            "{name}: {label} in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        assert_same(
            expected,
            &actual,
            &format!("{name}, {label} (seed {seed}: BATCH_TEST_SEED={seed} writes this log again)"),
        );
    }
}

/// Every event type the catalog and the orders read models handle.
const HANDLED_EVENT_TYPES: [&str; 30] = [
    "CategoryCreated",
    "CategoryRenamed",
    "CategoryMoved",
    "ShopCreated",
    "ShopUpdated",
    "ProductCreated",
    "ProductDetailsUpdated",
    "ProductPriceChanged",
    "ProductDiscontinued",
    "StockReceived",
    "StockAdjusted",
    "HoldPlaced",
    "HoldReleased",
    "HoldExpired",
    "HoldCommitted",
    "StockDecremented",
    "OrderStockReturned",
    "HoldsPlaced",
    "HoldsCommitted",
    "OrderPlaced",
    "StockReserved",
    "PaymentAuthorized",
    "PaymentCaptured",
    "PaymentFailed",
    "OrderProcessingStarted",
    "OrderShipped",
    "OrderDelivered",
    "OrderCancelled",
    "OrderRefunded",
    "InvoiceIssued",
];

#[tokio::test]
async fn batch_projectors_build_the_same_read_models_as_event_by_event() {
    let seed = seed();
    println!("seed {seed} (BATCH_TEST_SEED={seed} writes the same log)");
    let events: i64 = std::env::var("BATCH_TEST_EVENTS")
        .ok()
        .map(|raw| raw.parse().expect("BATCH_TEST_EVENTS must be a number"))
        .unwrap_or(3_000);
    let db = fresh_database().await;

    // The event-by-event read models follow the log while it is written.
    let (finished, written) = tokio::sync::watch::channel(None);
    let mut world = World::new(&db.pool, seed);
    let write = async {
        let started = std::time::Instant::now();
        world.write(events).await;
        println!("wrote the log in {:.1} s", started.elapsed().as_secs_f64());
        finished.send_replace(Some(head(&db.pool).await));
    };
    let (_, catalog, orders) = tokio::join!(
        write,
        event_by_event(&db, &CatalogProjector, written.clone()),
        event_by_event(&db, &OrdersProjector, written),
    );
    let counts: BTreeMap<String, i64> =
        sqlx::query_as("SELECT event_type, count(*) FROM events GROUP BY event_type")
            .fetch_all(&db.pool)
            .await
            .unwrap()
            .into_iter()
            .collect();
    println!("{} events: {counts:?}", counts.values().sum::<i64>());
    for event_type in HANDLED_EVENT_TYPES {
        assert!(
            counts.get(event_type).is_some_and(|n| *n > 0),
            "no {event_type} in the log (seed {seed})"
        );
    }
    assert!(
        world.subtree_moves > 0,
        "no category with children was moved (seed {seed})"
    );
    // Many events follow another event of their aggregate closely, so one
    // batch holds several events of one row.
    let close: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (
             SELECT global_position - lag(global_position) OVER
                        (PARTITION BY aggregate_type, aggregate_id ORDER BY sequence) AS gap
               FROM events) g
          WHERE gap <= 20",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert!(
        close * 5 >= world.head,
        "only {close} events follow one of their aggregate within 20 positions (seed {seed})"
    );

    for built in [&catalog, &orders] {
        assert!(built.dead_letters.is_empty(), "{built:?} (seed {seed})");
    }

    let head = head(&db.pool).await;
    tokio::join!(
        same_read_model_whatever_the_batch_size(&db, &CatalogProjector, &catalog, head, seed),
        same_read_model_whatever_the_batch_size(&db, &OrdersProjector, &orders, head, seed),
    );
}

// ---- poison events and sequences out of order ----

/// Inserts an event as-is, in a transaction of its own; answers its global
/// position.
async fn insert_raw(
    pool: &PgPool,
    aggregate_type: &str,
    aggregate_id: impl Display,
    sequence: i64,
    event_type: &str,
    payload: &str,
) -> i64 {
    sqlx::query_scalar(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         VALUES ($1, $2, $3, $4, '1.0', $5::json, '{}') RETURNING global_position",
    )
    .bind(aggregate_type)
    .bind(aggregate_id.to_string())
    .bind(sequence)
    .bind(event_type)
    .bind(payload)
    .fetch_one(pool)
    .await
    .expect("insert an event")
}

/// Inserts a domain event as-is (see [`insert_raw`]).
async fn insert_event<E: DomainEvent>(
    pool: &PgPool,
    aggregate_type: &str,
    aggregate_id: impl Display,
    sequence: i64,
    event: &E,
) -> i64 {
    let payload = serde_json::to_string(event).expect("serialize the event");
    insert_raw(
        pool,
        aggregate_type,
        aggregate_id,
        sequence,
        &event.event_type(),
        &payload,
    )
    .await
}

async fn product_row(pool: &PgPool, id: ProductId) -> Option<(String, i64, bool)> {
    sqlx::query_as("SELECT name, price, discontinued FROM rm_products WHERE id = $1")
        .bind(id.as_uuid())
        .fetch_optional(pool)
        .await
        .unwrap()
}

async fn stock_row(pool: &PgPool, id: ProductId) -> Option<(i64, i64)> {
    sqlx::query_as("SELECT on_hand, held FROM rm_availability WHERE product_id = $1")
        .bind(id.as_uuid())
        .fetch_optional(pool)
        .await
        .unwrap()
}

async fn category_path(pool: &PgPool, id: CategoryId) -> Option<Vec<Uuid>> {
    sqlx::query_scalar("SELECT path FROM rm_categories WHERE id = $1")
        .bind(id.as_uuid())
        .fetch_optional(pool)
        .await
        .unwrap()
}

async fn event_count(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(pool)
        .await
        .expect("count the events")
}

/// The last position of the log so far.
async fn last_position(pool: &PgPool) -> i64 {
    projections::event_store::log::head_position(pool)
        .await
        .expect("read the head position")
}

#[tokio::test]
async fn a_poison_event_in_the_middle_of_a_batch_is_dead_lettered_and_the_events_before_it_are_applied(
) {
    let db = fresh_database().await;
    let pool = &db.pool;
    let buses = Buses::new(pool);
    let catalog = CatalogProjector;
    let create_category = |name: &str, parent: Option<CategoryId>| {
        let id = CategoryId::new();
        let command = CategoryCommand::Create {
            category_id: id,
            name: name.to_string(),
            parent,
        };
        (id, command)
    };
    let create_product = |n: usize, category: CategoryId, shop: Option<ShopId>| {
        let id = ProductId::new();
        let command = ProductCommand::Create {
            product_id: id,
            name: format!("Tea no. {n}"),
            description: "Loose leaf".to_string(),
            price: usd(1_000 + n as i64),
            sku: Sku::parse(&format!("TEA-{n}")).unwrap(),
            image_url: None,
            category_id: category,
            shop_id: shop,
        };
        (id, command)
    };
    let receive = |id: ProductId, n: i64| InventoryCommand::Receive {
        product_id: id,
        quantity: quantity(n),
        reason: None,
    };
    let price = |minor: i64| ProductCommand::ChangePrice { price: usd(minor) };
    let now = Utc::now();

    // 24 catalog events before the poison event.
    let (tea, command) = create_category("Tea", None);
    must(&buses.categories, tea, command).await;
    let (green, command) = create_category("Green", Some(tea));
    must(&buses.categories, green, command).await;
    let (sencha, command) = create_category("Sencha", Some(green));
    must(&buses.categories, sencha, command).await;
    let (herbal, command) = create_category("Herbal", None);
    must(&buses.categories, herbal, command).await;
    let shop = ShopId::new();
    let command = ShopCommand::Create {
        shop_id: shop,
        name: "Tea House".to_string(),
        description: None,
        address: None,
    };
    must(&buses.shops, shop, command).await;
    let mut before = Vec::new();
    for n in 0..6 {
        let (id, command) = create_product(n, if n % 2 == 0 { sencha } else { herbal }, Some(shop));
        must(&buses.products, id, command).await;
        before.push(id);
    }
    for (n, id) in before.iter().enumerate() {
        must(&buses.inventory, id, receive(*id, 10 + n as i64)).await;
    }
    must(&buses.products, before[0], price(2_000)).await;
    must(&buses.products, before[1], price(2_100)).await;
    let (a_owner, b_owner) = (Uuid::new_v4(), Uuid::new_v4());
    for (id, owner, n) in [(before[0], a_owner, 2), (before[1], b_owner, 1)] {
        let command = InventoryCommand::PlaceHold {
            owner_id: owner,
            quantity: quantity(n),
            expires_at: None,
            now,
        };
        must(&buses.inventory, id, command).await;
    }
    let command = InventoryCommand::Adjust {
        delta: 5,
        reason: "recount".to_string(),
    };
    must(&buses.inventory, before[3], command).await;
    let command = CategoryCommand::Rename {
        name: "Green tea".to_string(),
    };
    must(&buses.categories, green, command).await;
    let command = ShopCommand::Update {
        name: None,
        description: Some("Since 1901".to_string()),
        address: None,
    };
    must(&buses.shops, shop, command).await;
    assert_eq!(event_count(pool).await, 24);
    let last_before = last_position(pool).await;

    // The poison event: a payload that does not decode.
    let poison = insert_raw(
        pool,
        "Product",
        Uuid::new_v4(),
        1,
        "ProductCreated",
        r#"{"ProductCreated": {"no": "fields"}}"#,
    )
    .await;

    // 25 catalog events after it.
    let mut after = Vec::new();
    for n in 6..11 {
        let (id, command) = create_product(n, green, None);
        must(&buses.products, id, command).await;
        after.push(id);
    }
    for id in &after {
        must(&buses.inventory, id, receive(*id, 5)).await;
    }
    for (id, minor) in [(before[0], 3_000), (before[2], 3_200), (before[3], 3_300)] {
        must(&buses.products, id, price(minor)).await;
    }
    let command = InventoryCommand::CommitHold { owner_id: a_owner };
    must(&buses.inventory, before[0], command).await;
    let command = InventoryCommand::ReleaseHold { owner_id: b_owner };
    must(&buses.inventory, before[1], command).await;
    // Green, with Sencha under it, moves under Herbal.
    let command = CategoryCommand::Move {
        new_parent: Some(herbal),
    };
    must(&buses.categories, green, command).await;
    let (rooibos, command) = create_category("Rooibos", Some(herbal));
    must(&buses.categories, rooibos, command).await;
    let command = ShopCommand::Update {
        name: Some("The Tea House".to_string()),
        description: None,
        address: None,
    };
    must(&buses.shops, shop, command).await;
    let command = ProductCommand::UpdateDetails {
        name: Some("Tea no. 4, first flush".to_string()),
        description: None,
        sku: None,
        image_url: None,
        category_id: Some(rooibos),
        shop_id: Some(None),
    };
    must(&buses.products, before[4], command).await;
    must(&buses.products, before[5], ProductCommand::Discontinue).await;
    let command = InventoryCommand::Adjust {
        delta: -3,
        reason: "breakage".to_string(),
    };
    must(&buses.inventory, before[2], command).await;
    must(&buses.inventory, before[3], receive(before[3], 7)).await;
    let command = InventoryCommand::Decrement {
        order_id: OrderId::new(),
        quantity: quantity(2),
    };
    must(&buses.inventory, before[4], command).await;
    let command = InventoryCommand::PlaceHolds {
        holds: vec![HoldRequest {
            owner_id: Uuid::new_v4(),
            quantity: quantity(1),
            expires_at: None,
        }],
        now,
    };
    must(&buses.inventory, after[0], command).await;
    let command = CategoryCommand::Rename {
        name: "Sencha and Gyokuro".to_string(),
    };
    must(&buses.categories, sencha, command).await;
    assert_eq!(event_count(pool).await, 50);
    wait_readable(pool, 50).await;
    let head = head(pool).await;

    // One step over all 50 events.
    let mut conn = PgConnection::connect(&db.url).await.unwrap();
    assert_eq!(step(&mut conn, &catalog, 100).await.unwrap(), 50);
    let halted = read_model(&mut conn, &catalog).await;
    assert_eq!(halted.state, "stopped");
    assert_eq!(halted.checkpoint.global_position, last_before);
    assert_eq!(halted.events_applied, 24);
    let dead: (i64, String, i64, String, Option<String>) = sqlx::query_as(
        "SELECT global_position, aggregate_type, sequence, error, resolution
           FROM projector_dead_letters WHERE projector = 'catalog'",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!((dead.0, dead.1.as_str(), dead.2), (poison, "Product", 1));
    assert!(!dead.3.trim().is_empty(), "a dead letter without its error");
    assert_eq!(dead.4, None);
    // The events before the poison event are applied...
    for (n, id) in before.iter().enumerate() {
        let row = product_row(pool, *id).await;
        let expected_price = [2_000, 2_100].get(n).copied().unwrap_or(1_000 + n as i64);
        assert_eq!(row, Some((format!("Tea no. {n}"), expected_price, false)));
    }
    assert_eq!(stock_row(pool, before[0]).await, Some((10, 2)));
    assert_eq!(stock_row(pool, before[1]).await, Some((11, 1)));
    assert_eq!(
        category_path(pool, sencha).await,
        Some(vec![tea.0, green.0, sencha.0])
    );
    let (green_name, shop_description): (String, Option<String>) = sqlx::query_as(
        "SELECT (SELECT name FROM rm_categories WHERE id = $1),
                (SELECT description FROM rm_shops WHERE id = $2)",
    )
    .bind(green.as_uuid())
    .bind(shop.as_uuid())
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(green_name, "Green tea");
    assert_eq!(shop_description.as_deref(), Some("Since 1901"));
    // ...and none after it.
    for id in &after {
        assert_eq!(product_row(pool, *id).await, None);
        assert_eq!(stock_row(pool, *id).await, None);
    }
    assert_eq!(category_path(pool, rooibos).await, None);
    assert_eq!(step(&mut conn, &catalog, 100).await.unwrap(), 0, "stopped");

    // The operator skips it; the rest is applied.
    assert_eq!(admin::skip(pool, "catalog").await.unwrap(), poison);
    assert_eq!(step(&mut conn, &catalog, 100).await.unwrap(), 25);
    let finished = read_model(&mut conn, &catalog).await;
    assert_eq!(finished.state, "running");
    assert_eq!(finished.checkpoint, head);
    assert_eq!(finished.events_applied, 49);
    for id in &after {
        assert!(product_row(pool, *id).await.is_some());
    }
    assert_eq!(product_row(pool, before[0]).await.unwrap().1, 3_000);
    assert!(
        product_row(pool, before[5]).await.unwrap().2,
        "discontinued"
    );
    assert_eq!(stock_row(pool, before[0]).await, Some((8, 0)));
    assert_eq!(stock_row(pool, before[1]).await, Some((11, 0)));
    assert_eq!(stock_row(pool, after[0]).await, Some((5, 1)));
    assert_eq!(
        category_path(pool, sencha).await,
        Some(vec![herbal.0, green.0, sencha.0])
    );
    assert_eq!(
        category_path(pool, rooibos).await,
        Some(vec![herbal.0, rooibos.0])
    );

    // Event by event, the projector halts at the same place with the same
    // rows, and ends with the same read model after the skip.
    reset(&mut conn, &catalog).await;
    assert_eq!(
        run(&mut conn, &catalog, &mut BatchSizes::Fixed(1), head).await,
        "stopped"
    );
    assert_same(
        &read_model(&mut conn, &catalog).await,
        &halted,
        "halted on the poison event in one batch",
    );
    assert_eq!(admin::skip(pool, "catalog").await.unwrap(), poison);
    run(&mut conn, &catalog, &mut BatchSizes::Fixed(1), head).await;
    assert_same(
        &read_model(&mut conn, &catalog).await,
        &finished,
        "after skipping the poison event in one batch",
    );
}

/// Builds `projector`'s read model over the whole log event by event, in
/// one batch, and in two batches split after `split` events; they must all
/// be the same. Answers the read model.
async fn same_in_every_batching(
    db: &TestDatabase,
    projector: &dyn Projector,
    split: i64,
) -> ReadModel {
    let count = event_count(&db.pool).await;
    wait_readable(&db.pool, count as usize).await;
    let head = head(&db.pool).await;
    let mut conn = PgConnection::connect(&db.url).await.unwrap();
    run(&mut conn, projector, &mut BatchSizes::Fixed(1), head).await;
    let expected = read_model(&mut conn, projector).await;

    reset(&mut conn, projector).await;
    step(&mut conn, projector, count + 10).await.unwrap();
    let one_batch = read_model(&mut conn, projector).await;
    assert_same(&expected, &one_batch, "in one batch");

    reset(&mut conn, projector).await;
    step(&mut conn, projector, split).await.unwrap();
    step(&mut conn, projector, count + 10).await.unwrap();
    let two_batches = read_model(&mut conn, projector).await;
    assert_same(&expected, &two_batches, "in two batches");
    expected
}

#[tokio::test]
async fn a_step_back_in_an_orders_sequence_is_poison_in_a_batch_as_it_is_event_by_event() {
    let db = fresh_database().await;
    let pool = &db.pool;
    let buses = Buses::new(pool);
    let orders = OrdersProjector;
    let now = Utc::now();
    let customer = CustomerId::new();
    let place = |order_id: OrderId| OrderCommand::Place {
        order_id,
        customer_id: customer,
        lines: vec![OrderLine {
            product_id: ProductId::new(),
            name: "Sencha".to_string(),
            unit_price: usd(1_250),
            quantity: quantity(2),
            line_total: usd(2_500),
        }],
        coupon: None,
        shipping_address: address(),
        payment: PaymentMethod::Card {
            token: "tok_visa".to_string(),
        },
        expected_total: None,
        currency: Currency::usd(),
        now,
    };
    let (first, stepping_back, last) = (OrderId::new(), OrderId::new(), OrderId::new());
    must(&buses.orders, first, place(first)).await;
    let placed = must(&buses.orders, stepping_back, place(stepping_back)).await;
    let placed_position = last_position(pool).await;
    // Its third event commits before its second: in the log, its sequence
    // goes 1, 3, 2.
    let authorized = OrderEvent::PaymentAuthorized {
        order_id: stepping_back,
        customer_id: customer,
        payment_id: format!("pay_{stepping_back}"),
        amount: placed.total().clone(),
        at: now,
    };
    let ahead = insert_event(pool, "Order", stepping_back, 3, &authorized).await;
    let reserved = OrderEvent::StockReserved {
        order_id: stepping_back,
        customer_id: customer,
        at: now,
    };
    insert_event(pool, "Order", stepping_back, 2, &reserved).await;
    let command = OrderCommand::ConfirmStockReserved { now };
    must(&buses.orders, first, command).await;
    must(&buses.orders, last, place(last)).await;

    // Event by event, in one batch, and with the order's row written by an
    // earlier batch: it halts on the event that came ahead of its turn.
    let halted = same_in_every_batching(&db, &orders, 2).await;
    assert_eq!(halted.state, "stopped");
    assert_eq!(halted.checkpoint.global_position, placed_position);
    assert_eq!(halted.events_applied, 2);
    assert_eq!(
        halted.dead_letters,
        vec![(ahead, "Order".to_string(), 3, None)]
    );
    let rows: Vec<(Uuid, i64)> =
        sqlx::query_as("SELECT id, last_sequence FROM rm_orders ORDER BY id")
            .fetch_all(pool)
            .await
            .unwrap();
    let mut expected = vec![(first.0, 1), (stepping_back.0, 1)];
    expected.sort();
    assert_eq!(rows, expected, "only the two placements are applied");

    // Skipped, the rest is applied (the second event now follows the first).
    assert_eq!(admin::skip(pool, "orders").await.unwrap(), ahead);
    let head = head(pool).await;
    let mut conn = PgConnection::connect(&db.url).await.unwrap();
    assert_eq!(step(&mut conn, &orders, 100).await.unwrap(), 3);
    let finished = read_model(&mut conn, &orders).await;
    assert_eq!(
        (finished.checkpoint, finished.state.as_str()),
        (head, "running")
    );
    let rows: Vec<(Uuid, i64)> =
        sqlx::query_as("SELECT id, last_sequence FROM rm_orders ORDER BY id")
            .fetch_all(pool)
            .await
            .unwrap();
    let mut expected = vec![(first.0, 2), (stepping_back.0, 2), (last.0, 1)];
    expected.sort();
    assert_eq!(rows, expected);
}

#[tokio::test]
async fn a_step_back_in_a_products_sequence_gives_the_catalog_the_same_rows_in_a_batch_as_event_by_event(
) {
    let db = fresh_database().await;
    let pool = &db.pool;
    let buses = Buses::new(pool);
    let category = CategoryId::new();
    let command = CategoryCommand::Create {
        category_id: category,
        name: "Tea".to_string(),
        parent: None,
    };
    must(&buses.categories, category, command).await;
    let product = ProductId::new();
    let command = ProductCommand::Create {
        product_id: product,
        name: "Sencha".to_string(),
        description: "Steamed".to_string(),
        price: usd(1_000),
        sku: Sku::parse("SENCHA").unwrap(),
        image_url: None,
        category_id: category,
        shop_id: None,
    };
    must(&buses.products, product, command).await;
    let command = InventoryCommand::Receive {
        product_id: product,
        quantity: quantity(10),
        reason: None,
    };
    must(&buses.inventory, product, command).await;
    // The product's and its stock's third events commit before their second.
    let third_price = ProductEvent::ProductPriceChanged {
        product_id: product,
        old_price: usd(2_000),
        new_price: usd(3_000),
    };
    insert_event(pool, "Product", product, 3, &third_price).await;
    let third_stock = InventoryEvent::StockAdjusted {
        product_id: product,
        delta: 5,
        reason: "recount".to_string(),
        on_hand_after: 25,
        held_after: 0,
    };
    insert_event(pool, "InventoryItem", product, 3, &third_stock).await;
    let second_price = ProductEvent::ProductPriceChanged {
        product_id: product,
        old_price: usd(1_000),
        new_price: usd(2_000),
    };
    insert_event(pool, "Product", product, 2, &second_price).await;
    let second_stock = InventoryEvent::StockReceived {
        product_id: product,
        quantity: quantity(10),
        reason: None,
        on_hand_after: 20,
        held_after: 0,
    };
    insert_event(pool, "InventoryItem", product, 2, &second_stock).await;
    // And an event after them.
    let other = ProductId::new();
    let command = ProductCommand::Create {
        product_id: other,
        name: "Genmaicha".to_string(),
        description: "With roasted rice".to_string(),
        price: usd(900),
        sku: Sku::parse("GENMAICHA").unwrap(),
        image_url: None,
        category_id: category,
        shop_id: None,
    };
    must(&buses.products, other, command).await;

    let built = same_in_every_batching(&db, &CatalogProjector, 3).await;
    println!(
        "catalog after a step back: state {}, {} dead letters, product {:?}, stock {:?}",
        built.state,
        built.dead_letters.len(),
        product_row(pool, product).await,
        stock_row(pool, product).await
    );
}
