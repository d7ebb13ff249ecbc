//! What every handler and use case can reach: the pool, the command buses,
//! the outside services and the server's settings. Built by
//! `crate::startup` (`AppState::new`).

use std::net::IpAddr;
use std::sync::Arc;

use domain::cart::Cart;
use domain::category::Category;
use domain::coupon::Coupon;
use domain::customer::Customer;
use domain::inventory::InventoryItem;
use domain::order::Order;
use domain::payment::PaymentGateway;
use domain::product::Product;
use domain::shipping::Carrier;
use domain::shop::Shop;
use domain::sku::SkuClaim;
use domain::values::Currency;
use domain::wallet::Wallet;
use governor::DefaultKeyedRateLimiter;
use projections::event_store::CommandBus;
use projections::projector::Projector;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::tokens::Tokens;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub tokens: Tokens,
    pub login_limiter: Arc<DefaultKeyedRateLimiter<IpAddr>>,
    pub currency: Currency,
    pub customers: CommandBus<Customer>,
    pub categories: CommandBus<Category>,
    pub shops: CommandBus<Shop>,
    pub products: CommandBus<Product>,
    pub skus: CommandBus<SkuClaim>,
    pub inventory: CommandBus<InventoryItem>,
    pub carts: CommandBus<Cart>,
    pub coupons: CommandBus<Coupon>,
    pub orders: CommandBus<Order>,
    /// Who issues the invoices.
    pub seller: Seller,
    /// Books shipments when an admin marks an order shipped.
    pub carrier: Arc<dyn Carrier>,
    pub wallets: CommandBus<Wallet>,
    /// The payment gateway (the simulated one by default).
    pub gateway: Arc<dyn PaymentGateway>,
    /// Verifies the gateway's callbacks (HMAC-SHA256).
    pub payment_webhook_secret: Arc<str>,
    /// The projectors this server knows (rebuilds look them up by name).
    pub projectors: Arc<[Arc<dyn Projector>]>,
    /// Cancelled at shutdown: background work (rebuilds) stops between
    /// batches and resumes at the next start.
    pub background: CancellationToken,
}

/// The seller named on invoices.
#[derive(Debug, Clone)]
pub struct Seller {
    pub name: String,
    pub address: String,
}

impl Default for Seller {
    fn default() -> Self {
        Self {
            name: "Shop".to_string(),
            address: String::new(),
        }
    }
}
