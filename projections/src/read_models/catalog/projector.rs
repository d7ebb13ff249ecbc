//! The catalog projector: categories, shops, product listings, availability.
//!
//! Batch-first: a batch of events is folded in memory into the rows it
//! changes, then written with one statement per table (`UNNEST` arrays):
//! the last state of each shop, product and availability row, and every
//! category the batch touched. Categories move with their whole subtree, so
//! a batch with category events folds on the whole (small) category table,
//! read once. A single event is a batch of one, so the event-by-event path
//! the runtime falls back to (to find a poison event) is the same code.
//!
//! What an event against a row that is not there does stays as it always
//! was: an update changes nothing; a second creation of a category or a
//! product is poison (the primary key refuses it), as is a parent category
//! the read model does not have.

use std::collections::HashMap;

use async_trait::async_trait;
use cqrs_es::Aggregate;
use domain::category::{Category, CategoryEvent};
use domain::inventory::{InventoryEvent, InventoryItem};
use domain::product::{Product, ProductEvent};
use domain::shop::{Shop, ShopEvent};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::event_store::log::StoredEvent;
use crate::read_models::decode;
use crate::runtime::{ApplyError, Projector};

pub const NAME: &str = "catalog";

pub struct CatalogProjector;

#[async_trait]
impl Projector for CatalogProjector {
    fn name(&self) -> &'static str {
        NAME
    }

    fn tables(&self) -> &'static [&'static str] {
        &[
            "rm_categories",
            "rm_shops",
            "rm_products",
            "rm_availability",
        ]
    }

    fn handles(&self, aggregate_type: &str) -> bool {
        [
            Category::TYPE,
            Shop::TYPE,
            Product::TYPE,
            InventoryItem::TYPE,
        ]
        .contains(&aggregate_type)
    }

    async fn apply(&self, conn: &mut PgConnection, event: &StoredEvent) -> Result<(), ApplyError> {
        self.apply_batch(conn, &[event]).await
    }

    async fn apply_batch(
        &self,
        conn: &mut PgConnection,
        events: &[&StoredEvent],
    ) -> Result<(), ApplyError> {
        let mut changes = Changes::default();
        for event in events {
            let position = event.global_position;
            match event.aggregate_type.as_str() {
                t if t == Category::TYPE => {
                    if changes.categories.is_none() {
                        changes.categories = Some(Categories::load(conn).await?);
                    }
                    if let Some(categories) = changes.categories.as_mut() {
                        categories.apply(decode(event)?, position)?;
                    }
                }
                t if t == Shop::TYPE => changes.shop(decode(event)?, position),
                t if t == Product::TYPE => changes.product(decode(event)?, position)?,
                t if t == InventoryItem::TYPE => changes.availability(decode(event)?),
                _ => {}
            }
        }
        changes.write(conn).await
    }
}

/// What a batch changes, one entry per row.
#[derive(Default)]
struct Changes {
    /// Loaded only when the batch has category events.
    categories: Option<Categories>,
    shops: HashMap<Uuid, ShopRow>,
    products: HashMap<Uuid, ProductChange>,
    availability: HashMap<Uuid, (i64, i64)>,
}

/// The whole category table, as the batch leaves it.
struct Categories {
    rows: HashMap<Uuid, CategoryRow>,
    /// Ids of the rows the batch created or changed.
    changed: Vec<Uuid>,
}

#[derive(sqlx::FromRow)]
struct StoredCategory {
    id: Uuid,
    name: String,
    parent_id: Option<Uuid>,
    path: Vec<Uuid>,
    position: i64,
}

#[derive(Clone)]
struct CategoryRow {
    name: String,
    parent_id: Option<Uuid>,
    /// Ancestors and the category itself, root first.
    path: Vec<Uuid>,
    position: i64,
}

struct ShopRow {
    name: String,
    description: Option<String>,
    address: Option<String>,
    /// Used only when the row is new: the first event's position.
    position: i64,
}

/// A product's row created in this batch, or changes to a row written
/// before.
enum ProductChange {
    Created(ProductRow),
    Changed(ProductPatch),
}

struct ProductRow {
    details: ProductDetails,
    price: i64,
    currency: String,
    discontinued: bool,
    created_position: i64,
}

#[derive(Clone)]
struct ProductDetails {
    name: String,
    description: String,
    sku: String,
    image_url: Option<String>,
    category_id: Uuid,
    shop_id: Option<Uuid>,
}

#[derive(Default)]
struct ProductPatch {
    details: Option<ProductDetails>,
    price: Option<(i64, String)>,
    discontinued: bool,
}

impl Categories {
    async fn load(conn: &mut PgConnection) -> Result<Self, ApplyError> {
        let rows: Vec<StoredCategory> =
            sqlx::query_as("SELECT id, name, parent_id, path, position FROM rm_categories")
                .fetch_all(conn)
                .await?;
        Ok(Self {
            rows: rows
                .into_iter()
                .map(|stored| {
                    let row = CategoryRow {
                        name: stored.name,
                        parent_id: stored.parent_id,
                        path: stored.path,
                        position: stored.position,
                    };
                    (stored.id, row)
                })
                .collect(),
            changed: Vec::new(),
        })
    }

    fn path_of(&self, id: Uuid) -> Result<Vec<Uuid>, ApplyError> {
        self.rows
            .get(&id)
            .map(|row| row.path.clone())
            .ok_or_else(|| {
                ApplyError::Poison(format!("parent category {id} is not in the read model"))
            })
    }

    fn touch(&mut self, id: Uuid) {
        if !self.changed.contains(&id) {
            self.changed.push(id);
        }
    }

    fn apply(&mut self, event: CategoryEvent, position: i64) -> Result<(), ApplyError> {
        match event {
            CategoryEvent::CategoryCreated {
                category_id,
                name,
                parent,
            } => {
                let id = category_id.as_uuid();
                if self.rows.contains_key(&id) {
                    return Err(ApplyError::Poison(format!(
                        "category {id} is created a second time"
                    )));
                }
                let mut path = match parent {
                    Some(parent) => self.path_of(parent.as_uuid())?,
                    None => Vec::new(),
                };
                path.push(id);
                let row = CategoryRow {
                    name,
                    parent_id: parent.map(|p| p.as_uuid()),
                    path,
                    position,
                };
                self.rows.insert(id, row);
                self.touch(id);
            }
            CategoryEvent::CategoryRenamed { category_id, name } => {
                let id = category_id.as_uuid();
                if let Some(row) = self.rows.get_mut(&id) {
                    row.name = name;
                    self.touch(id);
                }
            }
            CategoryEvent::CategoryMoved {
                category_id,
                new_parent,
                ..
            } => {
                let id = category_id.as_uuid();
                let mut prefix = match new_parent {
                    Some(parent) => self.path_of(parent.as_uuid())?,
                    None => Vec::new(),
                };
                prefix.push(id);
                if let Some(row) = self.rows.get_mut(&id) {
                    row.parent_id = new_parent.map(|p| p.as_uuid());
                }
                // The moved category and its whole subtree take the new prefix.
                let mut moved = Vec::new();
                for (other, row) in &mut self.rows {
                    if let Some(at) = row.path.iter().position(|p| *p == id) {
                        let mut path = prefix.clone();
                        path.extend_from_slice(&row.path[at + 1..]);
                        row.path = path;
                        moved.push(*other);
                    }
                }
                for other in moved {
                    self.touch(other);
                }
            }
        }
        Ok(())
    }
}

impl Changes {
    fn shop(&mut self, event: ShopEvent, position: i64) {
        let (ShopEvent::ShopCreated {
            shop_id,
            name,
            description,
            address,
        }
        | ShopEvent::ShopUpdated {
            shop_id,
            name,
            description,
            address,
        }) = event;
        let position = self
            .shops
            .get(&shop_id.as_uuid())
            .map_or(position, |row| row.position);
        let row = ShopRow {
            name,
            description,
            address,
            position,
        };
        self.shops.insert(shop_id.as_uuid(), row);
    }

    fn product(&mut self, event: ProductEvent, position: i64) -> Result<(), ApplyError> {
        match event {
            ProductEvent::ProductCreated {
                product_id,
                name,
                description,
                price,
                sku,
                image_url,
                category_id,
                shop_id,
            } => {
                let id = product_id.as_uuid();
                if let Some(ProductChange::Created(_)) = self.products.get(&id) {
                    return Err(ApplyError::Poison(format!(
                        "product {id} is created a second time"
                    )));
                }
                // Changes before the creation found no row: they did nothing.
                let row = ProductRow {
                    details: ProductDetails {
                        name,
                        description,
                        sku: sku.as_str().to_string(),
                        image_url,
                        category_id: category_id.as_uuid(),
                        shop_id: shop_id.map(|s| s.as_uuid()),
                    },
                    price: price.minor,
                    currency: price.currency.as_str().to_string(),
                    discontinued: false,
                    created_position: position,
                };
                self.products.insert(id, ProductChange::Created(row));
            }
            ProductEvent::ProductDetailsUpdated {
                product_id,
                name,
                description,
                sku,
                image_url,
                category_id,
                shop_id,
            } => {
                let details = ProductDetails {
                    name,
                    description,
                    sku: sku.as_str().to_string(),
                    image_url,
                    category_id: category_id.as_uuid(),
                    shop_id: shop_id.map(|s| s.as_uuid()),
                };
                match self.product_entry(product_id.as_uuid()) {
                    ProductChange::Created(row) => row.details = details,
                    ProductChange::Changed(patch) => patch.details = Some(details),
                }
            }
            ProductEvent::ProductPriceChanged {
                product_id,
                new_price,
                ..
            } => {
                let (minor, currency) = (new_price.minor, new_price.currency.as_str().to_string());
                match self.product_entry(product_id.as_uuid()) {
                    ProductChange::Created(row) => (row.price, row.currency) = (minor, currency),
                    ProductChange::Changed(patch) => patch.price = Some((minor, currency)),
                }
            }
            ProductEvent::ProductDiscontinued { product_id } => {
                match self.product_entry(product_id.as_uuid()) {
                    ProductChange::Created(row) => row.discontinued = true,
                    ProductChange::Changed(patch) => patch.discontinued = true,
                }
            }
        }
        Ok(())
    }

    fn product_entry(&mut self, id: Uuid) -> &mut ProductChange {
        self.products
            .entry(id)
            .or_insert_with(|| ProductChange::Changed(ProductPatch::default()))
    }

    fn availability(&mut self, event: InventoryEvent) {
        // Every inventory event carries the resulting numbers.
        let (product_id, on_hand, held) = match &event {
            InventoryEvent::StockReceived {
                product_id,
                on_hand_after,
                held_after,
                ..
            }
            | InventoryEvent::StockAdjusted {
                product_id,
                on_hand_after,
                held_after,
                ..
            }
            | InventoryEvent::HoldPlaced {
                product_id,
                on_hand_after,
                held_after,
                ..
            }
            | InventoryEvent::HoldReleased {
                product_id,
                on_hand_after,
                held_after,
                ..
            }
            | InventoryEvent::HoldExpired {
                product_id,
                on_hand_after,
                held_after,
                ..
            }
            | InventoryEvent::HoldCommitted {
                product_id,
                on_hand_after,
                held_after,
                ..
            }
            | InventoryEvent::StockDecremented {
                product_id,
                on_hand_after,
                held_after,
                ..
            }
            | InventoryEvent::OrderStockReturned {
                product_id,
                on_hand_after,
                held_after,
                ..
            }
            | InventoryEvent::HoldsPlaced {
                product_id,
                on_hand_after,
                held_after,
                ..
            }
            | InventoryEvent::HoldsCommitted {
                product_id,
                on_hand_after,
                held_after,
                ..
            } => (*product_id, *on_hand_after, *held_after),
        };
        self.availability
            .insert(product_id.as_uuid(), (on_hand, held));
    }

    /// One statement per table that has changes.
    async fn write(self, conn: &mut PgConnection) -> Result<(), ApplyError> {
        if let Some(categories) = self.categories {
            write_categories(conn, categories).await?;
        }
        write_shops(conn, self.shops).await?;
        write_products(conn, self.products).await?;
        write_availability(conn, self.availability).await
    }
}

/// A path as an array literal (`{a,b}`): UNNEST cannot take an array of
/// arrays of different lengths, so each travels as text and is cast back.
fn path_literal(path: &[Uuid]) -> String {
    let ids: Vec<String> = path.iter().map(Uuid::to_string).collect();
    format!("{{{}}}", ids.join(","))
}

async fn write_categories(
    conn: &mut PgConnection,
    categories: Categories,
) -> Result<(), ApplyError> {
    if categories.changed.is_empty() {
        return Ok(());
    }
    let mut ids = Vec::new();
    let mut names = Vec::new();
    let mut parents = Vec::new();
    let mut paths = Vec::new();
    let mut positions = Vec::new();
    for id in &categories.changed {
        if let Some(row) = categories.rows.get(id) {
            ids.push(*id);
            names.push(row.name.clone());
            parents.push(row.parent_id);
            paths.push(path_literal(&row.path));
            positions.push(row.position);
        }
    }
    sqlx::query(
        "INSERT INTO rm_categories (id, name, parent_id, path, position)
         SELECT id, name, parent_id, path::uuid[], position
           FROM UNNEST($1::uuid[], $2::text[], $3::uuid[], $4::text[], $5::int8[])
                AS c(id, name, parent_id, path, position)
         ON CONFLICT (id) DO UPDATE
            SET name = EXCLUDED.name, parent_id = EXCLUDED.parent_id, path = EXCLUDED.path",
    )
    .bind(ids)
    .bind(names)
    .bind(parents)
    .bind(paths)
    .bind(positions)
    .execute(conn)
    .await?;
    Ok(())
}

async fn write_shops(
    conn: &mut PgConnection,
    shops: HashMap<Uuid, ShopRow>,
) -> Result<(), ApplyError> {
    if shops.is_empty() {
        return Ok(());
    }
    let mut ids = Vec::new();
    let mut names = Vec::new();
    let mut descriptions = Vec::new();
    let mut addresses = Vec::new();
    let mut positions = Vec::new();
    for (id, row) in shops {
        ids.push(id);
        names.push(row.name);
        descriptions.push(row.description);
        addresses.push(row.address);
        positions.push(row.position);
    }
    sqlx::query(
        "INSERT INTO rm_shops (id, name, description, address, position)
         SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::int8[])
         ON CONFLICT (id) DO UPDATE
            SET name = EXCLUDED.name, description = EXCLUDED.description, address = EXCLUDED.address",
    )
    .bind(ids)
    .bind(names)
    .bind(descriptions)
    .bind(addresses)
    .bind(positions)
    .execute(conn)
    .await?;
    Ok(())
}

/// Columns of product details, one vector each.
#[derive(Default)]
struct DetailColumns {
    names: Vec<String>,
    descriptions: Vec<String>,
    skus: Vec<String>,
    image_urls: Vec<Option<String>>,
    category_ids: Vec<Uuid>,
    shop_ids: Vec<Option<Uuid>>,
}

impl DetailColumns {
    fn push(&mut self, details: ProductDetails) {
        self.names.push(details.name);
        self.descriptions.push(details.description);
        self.skus.push(details.sku);
        self.image_urls.push(details.image_url);
        self.category_ids.push(details.category_id);
        self.shop_ids.push(details.shop_id);
    }

    /// Placeholders for rows whose details do not change.
    fn push_unchanged(&mut self) {
        self.push(ProductDetails {
            name: String::new(),
            description: String::new(),
            sku: String::new(),
            image_url: None,
            category_id: Uuid::nil(),
            shop_id: None,
        });
    }
}

async fn write_products(
    conn: &mut PgConnection,
    products: HashMap<Uuid, ProductChange>,
) -> Result<(), ApplyError> {
    let mut created = (Vec::new(), DetailColumns::default());
    let (mut prices, mut currencies, mut discontinued, mut positions) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut changed = (Vec::new(), DetailColumns::default());
    let (mut has_details, mut new_prices, mut new_currencies, mut now_discontinued) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (id, change) in products {
        match change {
            ProductChange::Created(row) => {
                created.0.push(id);
                created.1.push(row.details);
                prices.push(row.price);
                currencies.push(row.currency);
                discontinued.push(row.discontinued);
                positions.push(row.created_position);
            }
            ProductChange::Changed(patch) => {
                changed.0.push(id);
                has_details.push(patch.details.is_some());
                match patch.details {
                    Some(details) => changed.1.push(details),
                    None => changed.1.push_unchanged(),
                }
                let (price, currency) = patch.price.unzip();
                new_prices.push(price);
                new_currencies.push(currency);
                now_discontinued.push(patch.discontinued);
            }
        }
    }
    if !created.0.is_empty() {
        let (ids, details) = created;
        sqlx::query(
            "INSERT INTO rm_products
                (id, name, description, price, currency, sku, image_url, category_id, shop_id,
                 discontinued, created_position)
             SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::int8[], $5::text[],
                                  $6::text[], $7::text[], $8::uuid[], $9::uuid[], $10::bool[],
                                  $11::int8[])",
        )
        .bind(ids)
        .bind(details.names)
        .bind(details.descriptions)
        .bind(prices)
        .bind(currencies)
        .bind(details.skus)
        .bind(details.image_urls)
        .bind(details.category_ids)
        .bind(details.shop_ids)
        .bind(discontinued)
        .bind(positions)
        .execute(&mut *conn)
        .await?;
    }
    if !changed.0.is_empty() {
        let (ids, details) = changed;
        sqlx::query(
            "UPDATE rm_products p
                SET name = CASE WHEN c.has_details THEN c.name ELSE p.name END,
                    description = CASE WHEN c.has_details THEN c.description ELSE p.description END,
                    sku = CASE WHEN c.has_details THEN c.sku ELSE p.sku END,
                    image_url = CASE WHEN c.has_details THEN c.image_url ELSE p.image_url END,
                    category_id = CASE WHEN c.has_details THEN c.category_id ELSE p.category_id END,
                    shop_id = CASE WHEN c.has_details THEN c.shop_id ELSE p.shop_id END,
                    price = coalesce(c.price, p.price),
                    currency = coalesce(c.currency, p.currency),
                    discontinued = p.discontinued OR c.discontinued
               FROM UNNEST($1::uuid[], $2::bool[], $3::text[], $4::text[], $5::text[], $6::text[],
                           $7::uuid[], $8::uuid[], $9::int8[], $10::text[], $11::bool[])
                    AS c(id, has_details, name, description, sku, image_url, category_id, shop_id,
                         price, currency, discontinued)
              WHERE p.id = c.id",
        )
        .bind(ids)
        .bind(has_details)
        .bind(details.names)
        .bind(details.descriptions)
        .bind(details.skus)
        .bind(details.image_urls)
        .bind(details.category_ids)
        .bind(details.shop_ids)
        .bind(new_prices)
        .bind(new_currencies)
        .bind(now_discontinued)
        .execute(conn)
        .await?;
    }
    Ok(())
}

async fn write_availability(
    conn: &mut PgConnection,
    availability: HashMap<Uuid, (i64, i64)>,
) -> Result<(), ApplyError> {
    if availability.is_empty() {
        return Ok(());
    }
    let mut ids = Vec::new();
    let mut on_hand = Vec::new();
    let mut held = Vec::new();
    for (id, (hand, hold)) in availability {
        ids.push(id);
        on_hand.push(hand);
        held.push(hold);
    }
    sqlx::query(
        "INSERT INTO rm_availability (product_id, on_hand, held)
         SELECT * FROM UNNEST($1::uuid[], $2::int8[], $3::int8[])
         ON CONFLICT (product_id) DO UPDATE SET on_hand = EXCLUDED.on_hand, held = EXCLUDED.held",
    )
    .bind(ids)
    .bind(on_hand)
    .bind(held)
    .execute(conn)
    .await?;
    Ok(())
}
