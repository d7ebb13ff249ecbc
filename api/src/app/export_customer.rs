//! A customer's personal data, exported (`GET /v1/me/export`, `GET
//! /v1/admin/customers/{id}/export`): everything the shop holds about them
//! and their orders, as JSON. The profile comes from the event store (so it
//! is current); orders and notifications from their read models.

use chrono::{DateTime, Utc};
use domain::customer::{CustomerError, Email, Fullname, Phone, Username};
use domain::metadata::Role;
use domain::order::OrderView;
use domain::values::CustomerId;
use projections::notifications::SentNotification;
use projections::read_models::orders::queries::{list_orders, OrderCursor, OrderFilter};
use serde::Serialize;
use uuid::Uuid;

use super::{load_error, use_case_error, StoreError};
use crate::app::state::AppState;

#[derive(Debug, thiserror::Error)]
pub enum ExportCustomerError {
    #[error("There is no customer with this id.")]
    UnknownCustomer(CustomerError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

use_case_error!(ExportCustomerError {
    Self::UnknownCustomer(e) => domain(e: CustomerError where NotFound),
    Self::Store(e) => nested(e: StoreError),
});

/// Everything held about one customer.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CustomerExport {
    pub exported_at: DateTime<Utc>,
    pub profile: Profile,
    /// Every order of theirs, newest first, with its shipping address.
    pub orders: Vec<OrderView>,
    /// Every message queued to them, newest first.
    pub notifications: Vec<SentNotification>,
}

/// The account as registered (`[erased]` fields once forgotten).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Profile {
    pub customer_id: Uuid,
    pub username: String,
    pub fullname: String,
    pub email: String,
    pub phone: String,
    pub role: Option<Role>,
    pub forgotten: bool,
}

/// The export of customer `id`.
pub async fn export_customer(
    state: &AppState,
    id: CustomerId,
) -> Result<CustomerExport, ExportCustomerError> {
    let customer = state
        .customers
        .load(&id.to_string())
        .await
        .map_err(load_error)?
        .filter(|c| c.is_registered() || c.is_forgotten())
        .ok_or(ExportCustomerError::UnknownCustomer(
            CustomerError::NotRegistered,
        ))?;
    let text = |v: Option<&str>| v.unwrap_or_default().to_string();
    let profile = Profile {
        customer_id: id.as_uuid(),
        username: text(customer.username().map(Username::as_str)),
        fullname: text(customer.fullname().map(Fullname::as_str)),
        email: text(customer.email().map(Email::as_str)),
        phone: text(customer.phone().map(Phone::as_str)),
        role: customer.role(),
        forgotten: customer.is_forgotten(),
    };
    let mut orders = Vec::new();
    let mut after: Option<OrderCursor> = None;
    loop {
        let page = list_orders(
            &state.pool,
            &OrderFilter {
                customer_id: Some(id.as_uuid()),
                status: None,
                after,
                limit: 100,
            },
        )
        .await
        .map_err(StoreError::from)?;
        orders.extend(page.orders.into_iter().map(|row| row.view));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    let notifications = projections::notifications::of_customer(&state.pool, id.as_uuid())
        .await
        .map_err(StoreError::from)?;
    Ok(CustomerExport {
        exported_at: Utc::now(),
        profile,
        orders,
        notifications,
    })
}
