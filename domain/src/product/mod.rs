//! A catalog product. The category and the shop it names must exist (asked of
//! [`CatalogLookup`]); SKU uniqueness is enforced outside this aggregate (the
//! HTTP layer reserves SKUs), so here the SKU is only a field.

mod commands;
mod error;
mod events;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use async_trait::async_trait;
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};

pub use commands::ProductCommand;
pub use error::ProductError;
pub use events::ProductEvent;

use crate::lookup::LookupError;
use crate::values::{required_text, CategoryId, Money, ProductId, ShopId, Sku, ValueError};

pub const NAME_MAX: usize = 200;
pub const DESCRIPTION_MAX: usize = 5000;
pub const IMAGE_URL_MAX: usize = 2048;
/// The highest price in minor units (100,000,000.00): a full order of 100
/// lines of 1,000,000 items each stays far inside an `i64`.
pub const PRICE_MAX: i64 = 10_000_000_000;

/// What the product rules need to know about the rest of the catalog.
#[async_trait]
pub trait CatalogLookup: Send + Sync {
    async fn category_exists(&self, id: CategoryId) -> Result<bool, LookupError>;
    async fn shop_exists(&self, id: ShopId) -> Result<bool, LookupError>;
}

#[derive(Clone)]
pub struct ProductServices {
    pub catalog: Arc<dyn CatalogLookup>,
}

impl ProductServices {
    pub fn new(catalog: Arc<dyn CatalogLookup>) -> Self {
        Self { catalog }
    }
}

/// A created product's fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Details {
    product_id: ProductId,
    name: String,
    description: String,
    price: Money,
    sku: Sku,
    image_url: Option<String>,
    category_id: CategoryId,
    shop_id: Option<ShopId>,
    discontinued: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    details: Option<Details>,
}

impl Product {
    pub fn is_created(&self) -> bool {
        self.details.is_some()
    }
    pub fn is_discontinued(&self) -> bool {
        self.details.as_ref().is_some_and(|d| d.discontinued)
    }
    pub fn product_id(&self) -> Option<ProductId> {
        self.details.as_ref().map(|d| d.product_id)
    }
    pub fn name(&self) -> Option<&str> {
        self.details.as_ref().map(|d| d.name.as_str())
    }
    pub fn description(&self) -> Option<&str> {
        self.details.as_ref().map(|d| d.description.as_str())
    }
    pub fn price(&self) -> Option<&Money> {
        self.details.as_ref().map(|d| &d.price)
    }
    pub fn sku(&self) -> Option<&Sku> {
        self.details.as_ref().map(|d| &d.sku)
    }
    pub fn image_url(&self) -> Option<&str> {
        self.details.as_ref().and_then(|d| d.image_url.as_deref())
    }
    pub fn category_id(&self) -> Option<CategoryId> {
        self.details.as_ref().map(|d| d.category_id)
    }
    pub fn shop_id(&self) -> Option<ShopId> {
        self.details.as_ref().and_then(|d| d.shop_id)
    }
}

/// A product name: trimmed, 1 to 200 characters.
pub fn parse_name(raw: &str) -> Result<String, ProductError> {
    required_text("name", raw, NAME_MAX).map_err(ProductError::InvalidName)
}

/// A product description: at most 5000 characters as sent, kept trimmed; may
/// be empty.
pub fn parse_description(raw: &str) -> Result<String, ProductError> {
    let s = raw.trim();
    if raw.chars().count() > DESCRIPTION_MAX {
        return Err(ProductError::InvalidDescription(ValueError::TooLong {
            field: "description",
            max: DESCRIPTION_MAX,
        }));
    }
    Ok(s.to_string())
}

/// An image URL: at most 2048 characters as sent; blank is none; otherwise
/// `http://` or `https://` followed by something, no whitespace.
pub fn parse_image_url(raw: &str) -> Result<Option<String>, ProductError> {
    let s = raw.trim();
    if s.is_empty() {
        return Ok(None);
    }
    let lower = s.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"));
    let ok = rest.is_some_and(|r| !r.is_empty())
        && raw.chars().count() <= IMAGE_URL_MAX
        && !s.chars().any(char::is_whitespace);
    if ok {
        Ok(Some(s.to_string()))
    } else {
        Err(ProductError::InvalidImageUrl(raw.to_string()))
    }
}

fn check_price(price: &Money) -> Result<(), ProductError> {
    if price.minor <= 0 {
        return Err(ProductError::NonPositivePrice { minor: price.minor });
    }
    if price.minor > PRICE_MAX {
        return Err(ProductError::PriceTooHigh { minor: price.minor });
    }
    Ok(())
}

async fn check_category(
    catalog: &dyn CatalogLookup,
    category_id: CategoryId,
) -> Result<(), ProductError> {
    if catalog.category_exists(category_id).await? {
        Ok(())
    } else {
        Err(ProductError::CategoryNotFound { category_id })
    }
}

async fn check_shop(catalog: &dyn CatalogLookup, shop_id: ShopId) -> Result<(), ProductError> {
    if catalog.shop_exists(shop_id).await? {
        Ok(())
    } else {
        Err(ProductError::ShopNotFound { shop_id })
    }
}

impl Aggregate for Product {
    const TYPE: &'static str = "Product";
    type Command = ProductCommand;
    type Event = ProductEvent;
    type Error = ProductError;
    type Services = ProductServices;

    async fn handle(
        &mut self,
        command: Self::Command,
        services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let catalog = services.catalog.as_ref();
        match command {
            ProductCommand::Create {
                product_id,
                name,
                description,
                price,
                sku,
                image_url,
                category_id,
                shop_id,
            } => {
                if let Some(d) = &self.details {
                    return Err(ProductError::AlreadyExists {
                        product_id: d.product_id,
                    });
                }
                let name = parse_name(&name)?;
                let description = parse_description(&description)?;
                check_price(&price)?;
                let image_url = match image_url {
                    Some(raw) => parse_image_url(&raw)?,
                    None => None,
                };
                check_category(catalog, category_id).await?;
                if let Some(shop_id) = shop_id {
                    check_shop(catalog, shop_id).await?;
                }
                let event = ProductEvent::ProductCreated {
                    product_id,
                    name,
                    description,
                    price,
                    sku,
                    image_url,
                    category_id,
                    shop_id,
                };
                sink.write(event, self).await;
            }
            ProductCommand::UpdateDetails {
                name,
                description,
                sku,
                image_url,
                category_id,
                shop_id,
            } => {
                let current = self.on_sale()?;
                let name = match name {
                    Some(raw) => parse_name(&raw)?,
                    None => current.name.clone(),
                };
                let description = match description {
                    Some(raw) => parse_description(&raw)?,
                    None => current.description.clone(),
                };
                let sku = sku.unwrap_or_else(|| current.sku.clone());
                let image_url = match image_url {
                    Some(raw) => parse_image_url(&raw)?,
                    None => current.image_url.clone(),
                };
                let category_id = category_id.unwrap_or(current.category_id);
                let shop_id = shop_id.unwrap_or(current.shop_id);
                let unchanged = name == current.name
                    && description == current.description
                    && sku == current.sku
                    && image_url == current.image_url
                    && category_id == current.category_id
                    && shop_id == current.shop_id;
                if unchanged {
                    return Ok(());
                }
                let product_id = current.product_id;
                let category_changed = category_id != current.category_id;
                let shop_changed = shop_id != current.shop_id;
                if category_changed {
                    check_category(catalog, category_id).await?;
                }
                if let (true, Some(shop_id)) = (shop_changed, shop_id) {
                    check_shop(catalog, shop_id).await?;
                }
                let event = ProductEvent::ProductDetailsUpdated {
                    product_id,
                    name,
                    description,
                    sku,
                    image_url,
                    category_id,
                    shop_id,
                };
                sink.write(event, self).await;
            }
            ProductCommand::ChangePrice { price } => {
                let current = self.on_sale()?;
                check_price(&price)?;
                if price.currency != current.price.currency {
                    return Err(ProductError::CurrencyChange {
                        current: current.price.currency.clone(),
                        requested: price.currency,
                    });
                }
                if price == current.price {
                    return Ok(());
                }
                let event = ProductEvent::ProductPriceChanged {
                    product_id: current.product_id,
                    old_price: current.price.clone(),
                    new_price: price,
                };
                sink.write(event, self).await;
            }
            ProductCommand::Discontinue => {
                let current = self.details.as_ref().ok_or(ProductError::NotFound)?;
                if current.discontinued {
                    return Ok(());
                }
                let event = ProductEvent::ProductDiscontinued {
                    product_id: current.product_id,
                };
                sink.write(event, self).await;
            }
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
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
                self.details = Some(Details {
                    product_id,
                    name,
                    description,
                    price,
                    sku,
                    image_url,
                    category_id,
                    shop_id,
                    discontinued: false,
                });
            }
            ProductEvent::ProductDetailsUpdated {
                name,
                description,
                sku,
                image_url,
                category_id,
                shop_id,
                ..
            } => {
                if let Some(d) = self.details.as_mut() {
                    d.name = name;
                    d.description = description;
                    d.sku = sku;
                    d.image_url = image_url;
                    d.category_id = category_id;
                    d.shop_id = shop_id;
                }
            }
            ProductEvent::ProductPriceChanged { new_price, .. } => {
                if let Some(d) = self.details.as_mut() {
                    d.price = new_price;
                }
            }
            ProductEvent::ProductDiscontinued { .. } => {
                if let Some(d) = self.details.as_mut() {
                    d.discontinued = true;
                }
            }
        }
    }
}

impl Product {
    /// The product's details if it exists and is not discontinued.
    fn on_sale(&self) -> Result<&Details, ProductError> {
        let details = self.details.as_ref().ok_or(ProductError::NotFound)?;
        if details.discontinued {
            return Err(ProductError::Discontinued {
                product_id: details.product_id,
            });
        }
        Ok(details)
    }
}

/// Loaded from a snapshot plus its later events; nothing recalled by key.
impl crate::stored::StoredAggregate for Product {}
