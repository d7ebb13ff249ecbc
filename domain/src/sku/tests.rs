use cqrs_es::test::TestFramework;

use super::*;

fn sku() -> Sku {
    Sku::parse("TSHIRT-M").unwrap()
}

fn product(n: u128) -> ProductId {
    ProductId(Uuid::from_u128(n))
}

type Given = TestFramework<SkuClaim>;

#[test]
fn a_free_sku_can_be_claimed() {
    Given::with(())
        .given_no_previous_events()
        .when(SkuCommand::Claim {
            sku: sku(),
            product_id: product(1),
        })
        .then_expect_events(vec![SkuEvent::SkuClaimed {
            sku: sku(),
            product_id: product(1),
        }]);
}

#[test]
fn a_sku_held_by_another_product_cannot_be_claimed() {
    Given::with(())
        .given(vec![SkuEvent::SkuClaimed {
            sku: sku(),
            product_id: product(1),
        }])
        .when(SkuCommand::Claim {
            sku: sku(),
            product_id: product(2),
        })
        .then_expect_error(SkuError::Taken { sku: sku() });
}

#[test]
fn claiming_again_for_the_same_product_changes_nothing() {
    Given::with(())
        .given(vec![SkuEvent::SkuClaimed {
            sku: sku(),
            product_id: product(1),
        }])
        .when(SkuCommand::Claim {
            sku: sku(),
            product_id: product(1),
        })
        .then_expect_events(vec![]);
}

#[test]
fn only_the_holder_releases_a_sku() {
    Given::with(())
        .given(vec![SkuEvent::SkuClaimed {
            sku: sku(),
            product_id: product(1),
        }])
        .when(SkuCommand::Release {
            sku: sku(),
            product_id: product(2),
        })
        .then_expect_events(vec![]);
}

#[test]
fn a_released_sku_can_be_claimed_by_another_product() {
    Given::with(())
        .given(vec![
            SkuEvent::SkuClaimed {
                sku: sku(),
                product_id: product(1),
            },
            SkuEvent::SkuReleased {
                sku: sku(),
                product_id: product(1),
            },
        ])
        .when(SkuCommand::Claim {
            sku: sku(),
            product_id: product(2),
        })
        .then_expect_events(vec![SkuEvent::SkuClaimed {
            sku: sku(),
            product_id: product(2),
        }]);
}
