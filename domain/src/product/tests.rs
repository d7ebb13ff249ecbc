use std::collections::HashSet;
use std::sync::Arc;

use async_trait::async_trait;
use cqrs_es::test::TestFramework;
use uuid::Uuid;

use super::*;
use crate::values::Currency;

/// An in-memory catalog with categories 1 and 2 and shops 1 and 2.
struct FakeCatalog {
    categories: HashSet<CategoryId>,
    shops: HashSet<ShopId>,
    down: bool,
}

#[async_trait]
impl CatalogLookup for FakeCatalog {
    async fn category_exists(&self, id: CategoryId) -> Result<bool, LookupError> {
        if self.down {
            return Err(LookupError("catalog down".into()));
        }
        Ok(self.categories.contains(&id))
    }

    async fn shop_exists(&self, id: ShopId) -> Result<bool, LookupError> {
        if self.down {
            return Err(LookupError("catalog down".into()));
        }
        Ok(self.shops.contains(&id))
    }
}

fn catalog(down: bool) -> ProductServices {
    ProductServices::new(Arc::new(FakeCatalog {
        categories: HashSet::from([category(1), category(2)]),
        shops: HashSet::from([shop(1), shop(2)]),
        down,
    }))
}

fn fw() -> TestFramework<Product> {
    TestFramework::with(catalog(false))
}

fn product_id() -> ProductId {
    ProductId(Uuid::from_u128(100))
}

fn category(n: u128) -> CategoryId {
    CategoryId(Uuid::from_u128(n))
}

fn shop(n: u128) -> ShopId {
    ShopId(Uuid::from_u128(n))
}

fn usd(minor: i64) -> Money {
    Money {
        minor,
        currency: Currency::usd(),
    }
}

fn sku(s: &str) -> Sku {
    Sku::parse(s).unwrap()
}

fn create() -> ProductCommand {
    ProductCommand::Create {
        product_id: product_id(),
        name: " Tea pot ".into(),
        description: "A pot for tea.".into(),
        price: usd(2500),
        sku: sku("tp-1"),
        image_url: Some("https://img.example.com/tp.png".into()),
        category_id: category(1),
        shop_id: Some(shop(1)),
    }
}

fn created() -> ProductEvent {
    ProductEvent::ProductCreated {
        product_id: product_id(),
        name: "Tea pot".into(),
        description: "A pot for tea.".into(),
        price: usd(2500),
        sku: sku("TP-1"),
        image_url: Some("https://img.example.com/tp.png".into()),
        category_id: category(1),
        shop_id: Some(shop(1)),
    }
}

fn discontinued() -> ProductEvent {
    ProductEvent::ProductDiscontinued {
        product_id: product_id(),
    }
}

fn no_changes() -> ProductCommand {
    ProductCommand::UpdateDetails {
        name: None,
        description: None,
        sku: None,
        image_url: None,
        category_id: None,
        shop_id: None,
    }
}

fn with_create(edit: impl FnOnce(&mut ProductCommand)) -> ProductCommand {
    let mut command = create();
    edit(&mut command);
    command
}

fn with_update(edit: impl FnOnce(&mut ProductCommand)) -> ProductCommand {
    let mut command = no_changes();
    edit(&mut command);
    command
}

#[test]
fn a_product_can_be_created_with_all_its_fields() {
    fw().given_no_previous_events()
        .when(create())
        .then_expect_events(vec![created()]);
}

#[test]
fn a_product_cannot_be_created_twice() {
    fw().given(vec![created()])
        .when(create())
        .then_expect_error(ProductError::AlreadyExists {
            product_id: product_id(),
        });
}

#[test]
fn a_product_needs_a_name() {
    fw().given_no_previous_events()
        .when(with_create(|c| {
            if let ProductCommand::Create { name, .. } = c {
                *name = "  ".into();
            }
        }))
        .then_expect_error(ProductError::InvalidName(ValueError::Empty {
            field: "name",
        }));
}

#[test]
fn a_product_description_is_at_most_5000_characters() {
    fw().given_no_previous_events()
        .when(with_create(|c| {
            if let ProductCommand::Create { description, .. } = c {
                *description = "d".repeat(5001);
            }
        }))
        .then_expect_error(ProductError::InvalidDescription(ValueError::TooLong {
            field: "description",
            max: 5000,
        }));
}

#[test]
fn a_product_price_must_be_above_zero() {
    fw().given_no_previous_events()
        .when(with_create(|c| {
            if let ProductCommand::Create { price, .. } = c {
                *price = usd(0);
            }
        }))
        .then_expect_error(ProductError::NonPositivePrice { minor: 0 });
}

#[test]
fn an_image_url_must_be_http_or_https() {
    fw().given_no_previous_events()
        .when(with_create(|c| {
            if let ProductCommand::Create { image_url, .. } = c {
                *image_url = Some("ftp://img.example.com/tp.png".into());
            }
        }))
        .then_expect_error(ProductError::InvalidImageUrl(
            "ftp://img.example.com/tp.png".into(),
        ));
}

#[test]
fn an_image_url_is_at_most_2048_characters() {
    let long = format!("https://img.example.com/{}", "a".repeat(2048 - 23));
    assert_eq!(long.len(), 2049);
    fw().given_no_previous_events()
        .when(with_create(|c| {
            if let ProductCommand::Create { image_url, .. } = c {
                *image_url = Some(long.clone());
            }
        }))
        .then_expect_error(ProductError::InvalidImageUrl(long.clone()));
    assert_eq!(
        parse_image_url(&long[..2048]),
        Ok(Some(long[..2048].to_string()))
    );
    assert!(parse_image_url("https://").is_err());
    assert!(parse_image_url("https://a b").is_err());
    assert_eq!(parse_image_url(" "), Ok(None));
}

#[test]
fn a_product_needs_an_existing_category() {
    fw().given_no_previous_events()
        .when(with_create(|c| {
            if let ProductCommand::Create { category_id, .. } = c {
                *category_id = category(9);
            }
        }))
        .then_expect_error(ProductError::CategoryNotFound {
            category_id: category(9),
        });
}

#[test]
fn a_product_shop_must_exist_when_given() {
    fw().given_no_previous_events()
        .when(with_create(|c| {
            if let ProductCommand::Create { shop_id, .. } = c {
                *shop_id = Some(shop(9));
            }
        }))
        .then_expect_error(ProductError::ShopNotFound { shop_id: shop(9) });
}

#[test]
fn a_product_without_a_shop_does_not_ask_for_one() {
    let mut event = created();
    if let ProductEvent::ProductCreated { shop_id, .. } = &mut event {
        *shop_id = None;
    }
    fw().given_no_previous_events()
        .when(with_create(|c| {
            if let ProductCommand::Create { shop_id, .. } = c {
                *shop_id = None;
            }
        }))
        .then_expect_events(vec![event]);
}

#[test]
fn a_failing_catalog_lookup_makes_the_command_unavailable() {
    use crate::error::{DomainError, ErrorKind};
    let err = TestFramework::<Product>::with(catalog(true))
        .given_no_previous_events()
        .when(create())
        .inspect_result()
        .unwrap_err();
    assert_eq!(err, ProductError::LookupFailed("catalog down".into()));
    assert_eq!(err.kind(), ErrorKind::Unavailable);
}

#[test]
fn details_updates_carry_the_full_new_details() {
    fw().given(vec![created()])
        .when(with_update(|c| {
            if let ProductCommand::UpdateDetails {
                name,
                sku: new_sku,
                image_url,
                category_id,
                shop_id,
                ..
            } = c
            {
                *name = Some("Big tea pot".into());
                *new_sku = Some(sku("TP-2"));
                *image_url = Some(String::new());
                *category_id = Some(category(2));
                *shop_id = Some(None);
            }
        }))
        .then_expect_events(vec![ProductEvent::ProductDetailsUpdated {
            product_id: product_id(),
            name: "Big tea pot".into(),
            description: "A pot for tea.".into(),
            sku: sku("TP-2"),
            image_url: None,
            category_id: category(2),
            shop_id: None,
        }]);
}

#[test]
fn details_updates_that_change_nothing_emit_nothing() {
    fw().given(vec![created()])
        .when(with_update(|c| {
            if let ProductCommand::UpdateDetails {
                name,
                sku: new_sku,
                category_id,
                ..
            } = c
            {
                *name = Some("Tea pot ".into());
                *new_sku = Some(sku("tp-1"));
                *category_id = Some(category(1));
            }
        }))
        .then_expect_events(vec![]);
}

#[test]
fn details_updates_need_an_existing_category() {
    fw().given(vec![created()])
        .when(with_update(|c| {
            if let ProductCommand::UpdateDetails { category_id, .. } = c {
                *category_id = Some(category(9));
            }
        }))
        .then_expect_error(ProductError::CategoryNotFound {
            category_id: category(9),
        });
}

#[test]
fn details_updates_need_an_existing_shop() {
    fw().given(vec![created()])
        .when(with_update(|c| {
            if let ProductCommand::UpdateDetails { shop_id, .. } = c {
                *shop_id = Some(Some(shop(9)));
            }
        }))
        .then_expect_error(ProductError::ShopNotFound { shop_id: shop(9) });
}

#[test]
fn a_missing_product_cannot_be_updated() {
    fw().given_no_previous_events()
        .when(no_changes())
        .then_expect_error(ProductError::NotFound);
}

#[test]
fn a_price_can_change() {
    fw().given(vec![created()])
        .when(ProductCommand::ChangePrice { price: usd(1999) })
        .then_expect_events(vec![ProductEvent::ProductPriceChanged {
            product_id: product_id(),
            old_price: usd(2500),
            new_price: usd(1999),
        }]);
}

#[test]
fn changing_to_the_same_price_emits_nothing() {
    fw().given(vec![created()])
        .when(ProductCommand::ChangePrice { price: usd(2500) })
        .then_expect_events(vec![]);
}

#[test]
fn a_new_price_must_be_above_zero() {
    fw().given(vec![created()])
        .when(ProductCommand::ChangePrice { price: usd(0) })
        .then_expect_error(ProductError::NonPositivePrice { minor: 0 });
}

#[test]
fn a_price_cannot_change_currency() {
    let eur = Currency::parse("EUR").unwrap();
    fw().given(vec![created()])
        .when(ProductCommand::ChangePrice {
            price: Money {
                minor: 2500,
                currency: eur.clone(),
            },
        })
        .then_expect_error(ProductError::CurrencyChange {
            current: Currency::usd(),
            requested: eur,
        });
}

#[test]
fn a_product_can_be_discontinued() {
    fw().given(vec![created()])
        .when(ProductCommand::Discontinue)
        .then_expect_events(vec![discontinued()]);
}

#[test]
fn discontinuing_again_emits_nothing() {
    fw().given(vec![created(), discontinued()])
        .when(ProductCommand::Discontinue)
        .then_expect_events(vec![]);
}

#[test]
fn a_missing_product_cannot_be_discontinued() {
    fw().given_no_previous_events()
        .when(ProductCommand::Discontinue)
        .then_expect_error(ProductError::NotFound);
}

#[test]
fn a_discontinued_product_price_cannot_change() {
    fw().given(vec![created(), discontinued()])
        .when(ProductCommand::ChangePrice { price: usd(100) })
        .then_expect_error(ProductError::Discontinued {
            product_id: product_id(),
        });
}

#[test]
fn a_discontinued_product_details_cannot_change() {
    fw().given(vec![created(), discontinued()])
        .when(with_update(|c| {
            if let ProductCommand::UpdateDetails { name, .. } = c {
                *name = Some("Other".into());
            }
        }))
        .then_expect_error(ProductError::Discontinued {
            product_id: product_id(),
        });
}

#[test]
fn the_aggregate_exposes_the_current_product() {
    use cqrs_es::Aggregate;
    let mut product = Product::default();
    assert!(!product.is_created());
    product.apply(created());
    product.apply(ProductEvent::ProductPriceChanged {
        product_id: product_id(),
        old_price: usd(2500),
        new_price: usd(1999),
    });
    product.apply(discontinued());
    assert!(product.is_created());
    assert!(product.is_discontinued());
    assert_eq!(product.product_id(), Some(product_id()));
    assert_eq!(product.price(), Some(&usd(1999)));
    assert_eq!(product.sku(), Some(&sku("TP-1")));
    assert_eq!(product.name(), Some("Tea pot"));
    assert_eq!(product.shop_id(), Some(shop(1)));
    assert_eq!(product.category_id(), Some(category(1)));
}

#[test]
fn product_events_are_named_by_their_variant() {
    use cqrs_es::DomainEvent;
    assert_eq!(created().event_type(), "ProductCreated");
    assert_eq!(created().event_version(), "1.0");
    let json = serde_json::to_value(created()).unwrap();
    assert_eq!(json["ProductCreated"]["sku"], "TP-1");
    assert_eq!(json["ProductCreated"]["price"]["minor"], 2500);
    assert_eq!(json["ProductCreated"]["price"]["currency"], "USD");
    assert_eq!(
        serde_json::from_value::<ProductEvent>(json).unwrap(),
        created()
    );
}
