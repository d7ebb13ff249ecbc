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
use projections::event_store::CommandBus;
use projections::projector::Projector;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::limits::{CustomerLimits, EdgeLimits, FailureLimiter, Limiter};
use crate::tokens::Tokens;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub tokens: Tokens,
    /// Accounts' current roles and token versions, remembered briefly, that
    /// every token is checked against.
    pub standings: Arc<crate::app::token_standing::StandingCache>,
    /// Derives new accounts' ids from usernames with the installation's key.
    pub account_ids: Arc<crate::app::account_ids::AccountIds>,
    /// Sign-in attempts per client address.
    pub login_limiter: Arc<Limiter<IpAddr>>,
    /// Failed sign-ins per account (its customer id), from any address.
    pub login_failures: Arc<FailureLimiter<uuid::Uuid>>,
    /// Sign-ups per client address.
    pub register_limiter: Arc<Limiter<IpAddr>>,
    /// The reverse proxies whose forwarding headers name the client.
    pub trusted_proxies: Arc<[ipnet::IpNet]>,
    /// The slots for password hashing (sign-ups and sign-ins).
    pub hashing: Arc<crate::app::passwords::PasswordHashing>,
    /// The bounds of the HTTP server.
    pub limits: EdgeLimits,
    /// Per-customer limits of coupons, payments and orders.
    pub customer_limits: Arc<CustomerLimits>,
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
            name: crate::config::DEFAULT_SELLER_NAME.to_string(),
            address: String::new(),
        }
    }
}
