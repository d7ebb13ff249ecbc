//! The catalog projector: categories, shops, product listings, availability.

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
        let position = event.global_position;
        match event.aggregate_type.as_str() {
            t if t == Category::TYPE => category(conn, decode(event)?, position).await,
            t if t == Shop::TYPE => shop(conn, decode(event)?, position).await,
            t if t == Product::TYPE => product(conn, decode(event)?, position).await,
            t if t == InventoryItem::TYPE => availability(conn, decode(event)?).await,
            _ => Ok(()),
        }
    }
}

async fn path_of(conn: &mut PgConnection, id: Uuid) -> Result<Vec<Uuid>, ApplyError> {
    let row: Option<(Vec<Uuid>,)> = sqlx::query_as("SELECT path FROM rm_categories WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    row.map(|(path,)| path)
        .ok_or_else(|| ApplyError::Poison(format!("parent category {id} is not in the read model")))
}

async fn category(
    conn: &mut PgConnection,
    event: CategoryEvent,
    position: i64,
) -> Result<(), ApplyError> {
    match event {
        CategoryEvent::CategoryCreated {
            category_id,
            name,
            parent,
        } => {
            let mut path = match parent {
                Some(parent) => path_of(conn, parent.as_uuid()).await?,
                None => Vec::new(),
            };
            path.push(category_id.as_uuid());
            sqlx::query(
                "INSERT INTO rm_categories (id, name, parent_id, path, position) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(category_id.as_uuid())
            .bind(name)
            .bind(parent.map(|p| p.as_uuid()))
            .bind(path)
            .bind(position)
            .execute(conn)
            .await?;
        }
        CategoryEvent::CategoryRenamed { category_id, name } => {
            sqlx::query("UPDATE rm_categories SET name = $2 WHERE id = $1")
                .bind(category_id.as_uuid())
                .bind(name)
                .execute(conn)
                .await?;
        }
        CategoryEvent::CategoryMoved {
            category_id,
            new_parent,
            ..
        } => {
            let id = category_id.as_uuid();
            let mut prefix = match new_parent {
                Some(parent) => path_of(conn, parent.as_uuid()).await?,
                None => Vec::new(),
            };
            prefix.push(id);
            sqlx::query("UPDATE rm_categories SET parent_id = $2 WHERE id = $1")
                .bind(id)
                .bind(new_parent.map(|p| p.as_uuid()))
                .execute(&mut *conn)
                .await?;
            // The moved category and its whole subtree take the new prefix.
            sqlx::query(
                "UPDATE rm_categories
                    SET path = $2 || path[array_position(path, $1) + 1 :]
                  WHERE $1 = ANY(path)",
            )
            .bind(id)
            .bind(prefix)
            .execute(conn)
            .await?;
        }
    }
    Ok(())
}

async fn shop(conn: &mut PgConnection, event: ShopEvent, position: i64) -> Result<(), ApplyError> {
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
    sqlx::query(
        "INSERT INTO rm_shops (id, name, description, address, position) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (id) DO UPDATE
            SET name = EXCLUDED.name, description = EXCLUDED.description, address = EXCLUDED.address",
    )
    .bind(shop_id.as_uuid())
    .bind(name)
    .bind(description)
    .bind(address)
    .bind(position)
    .execute(conn)
    .await?;
    Ok(())
}

async fn product(
    conn: &mut PgConnection,
    event: ProductEvent,
    position: i64,
) -> Result<(), ApplyError> {
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
            sqlx::query(
                "INSERT INTO rm_products
                    (id, name, description, price, currency, sku, image_url, category_id, shop_id, created_position)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(product_id.as_uuid())
            .bind(name)
            .bind(description)
            .bind(price.minor)
            .bind(price.currency.as_str())
            .bind(sku.as_str())
            .bind(image_url)
            .bind(category_id.as_uuid())
            .bind(shop_id.map(|s| s.as_uuid()))
            .bind(position)
            .execute(conn)
            .await?;
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
            sqlx::query(
                "UPDATE rm_products
                    SET name = $2, description = $3, sku = $4, image_url = $5, category_id = $6, shop_id = $7
                  WHERE id = $1",
            )
            .bind(product_id.as_uuid())
            .bind(name)
            .bind(description)
            .bind(sku.as_str())
            .bind(image_url)
            .bind(category_id.as_uuid())
            .bind(shop_id.map(|s| s.as_uuid()))
            .execute(conn)
            .await?;
        }
        ProductEvent::ProductPriceChanged {
            product_id,
            new_price,
            ..
        } => {
            sqlx::query("UPDATE rm_products SET price = $2, currency = $3 WHERE id = $1")
                .bind(product_id.as_uuid())
                .bind(new_price.minor)
                .bind(new_price.currency.as_str())
                .execute(conn)
                .await?;
        }
        ProductEvent::ProductDiscontinued { product_id } => {
            sqlx::query("UPDATE rm_products SET discontinued = true WHERE id = $1")
                .bind(product_id.as_uuid())
                .execute(conn)
                .await?;
        }
    }
    Ok(())
}

async fn availability(conn: &mut PgConnection, event: InventoryEvent) -> Result<(), ApplyError> {
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
    sqlx::query(
        "INSERT INTO rm_availability (product_id, on_hand, held) VALUES ($1, $2, $3)
         ON CONFLICT (product_id) DO UPDATE SET on_hand = EXCLUDED.on_hand, held = EXCLUDED.held",
    )
    .bind(product_id.as_uuid())
    .bind(on_hand)
    .bind(held)
    .execute(conn)
    .await?;
    Ok(())
}
