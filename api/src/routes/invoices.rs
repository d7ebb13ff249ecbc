//! The invoice of an order: `GET /v1/orders/{id}/invoice`, as JSON or, for
//! `Accept: text/html` (or `?format=html`), as a printable page.
//!
//! Built from the order's own events (rebuilt from the event store, so it is
//! never behind): lines, prices, discount and totals as they were when the
//! order was placed, the number and date of its `InvoiceIssued`, never from
//! today's catalog. Seen by the order's owner, admins and auditors; anyone
//! else gets 404, as for the order.

use axum::extract::State;
use axum::http::header::{ACCEPT, CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use domain::order::{Order, OrderItemView, ShippingAddress};
use domain::values::{Currency, CustomerId, OrderId};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::app::orders::visible_order;
use crate::app::orders::LoadOrderError;
use crate::app::refusals::InvoiceNotIssued;
use crate::app::state::{AppState, Seller};
use crate::auth::AuthUser;
use crate::error::Answers;
use crate::error::Result;
use crate::extract::{AppPath, AppQuery};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_invoice))
}

/// Who issues the invoices (configured: `SHOP_SELLER_NAME`,
/// `SHOP_SELLER_ADDRESS`).
#[derive(Debug, Serialize, ToSchema)]
struct SellerView {
    name: String,
    address: String,
}

/// Who is billed: the customer and the name the order was placed for.
#[derive(Debug, Serialize, ToSchema)]
struct CustomerView {
    id: CustomerId,
    name: String,
}

/// An invoice; money in minor units of `currency`.
#[derive(Debug, Serialize, ToSchema)]
struct Invoice {
    invoice_number: String,
    /// When the invoice was issued.
    issued_at: DateTime<Utc>,
    order_id: OrderId,
    seller: SellerView,
    customer: CustomerView,
    shipping_address: ShippingAddress,
    lines: Vec<OrderItemView>,
    subtotal: i64,
    discount: i64,
    coupon_code: Option<String>,
    total: i64,
    currency: Currency,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct InvoiceQuery {
    /// `html` for the printable page, `json` for JSON; without it the
    /// `Accept` header decides (JSON unless it asks for `text/html`).
    #[serde(default)]
    #[param(inline)]
    format: Option<InvoiceFormat>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
enum InvoiceFormat {
    Json,
    Html,
}

/// The invoice of an order, once it is issued.
#[utoipa::path(
    get,
    path = "/v1/orders/{id}/invoice",
    tag = "orders",
    summary = "An order's invoice",
    description = "Role: the order's owner, admin or auditor (anyone else gets 404). JSON, or a printable HTML page for `Accept: text/html` or `?format=html`. Issued by the fulfilment workflow when the payment is captured, with a gapless number per year (`2026-000001`).",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The order."), InvoiceQuery),
    responses(
        (status = 200, description = "The invoice (JSON, or HTML for `Accept: text/html`).", body = Invoice),
        Answers::<(LoadOrderError, InvoiceNotIssued)>,
    ),
)]
async fn get_invoice(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    AppPath(id): AppPath<Uuid>,
    AppQuery(query): AppQuery<InvoiceQuery>,
) -> Result<Response> {
    let order = visible_order(&state, user.id, user.role, id).await?;
    let invoice = invoice_of(&order, &state.seller)?;
    let format = query.format.unwrap_or_else(|| {
        if wants_html(&headers) {
            InvoiceFormat::Html
        } else {
            InvoiceFormat::Json
        }
    });
    Ok(match format {
        InvoiceFormat::Json => Json(invoice).into_response(),
        InvoiceFormat::Html => {
            let mut response = render_html(&invoice).into_response();
            let headers = response.headers_mut();
            headers.insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(PAGE_CSP));
            headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
    })
}

/// What the printable page may do: its one inline stylesheet, nothing else
/// (no script, image, font, frame, form or base), framed by no one.
const PAGE_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; \
frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

fn invoice_of(order: &Order, seller: &Seller) -> Result<Invoice> {
    let (Some(order_id), Some(number), Some(issued_at)) = (
        order.order_id(),
        order.invoice_number(),
        order.invoiced_at(),
    ) else {
        return Err(InvoiceNotIssued::new(
            "No invoice has been issued for this order yet; it is issued once the payment is captured.",
        )
        .into());
    };
    Ok(Invoice {
        invoice_number: number.to_string(),
        issued_at,
        order_id,
        seller: SellerView {
            name: seller.name.clone(),
            address: seller.address.clone(),
        },
        customer: CustomerView {
            id: order.customer_id(),
            name: order.shipping_address().name.clone(),
        },
        shipping_address: order.shipping_address().clone(),
        lines: order
            .lines()
            .iter()
            .map(|l| OrderItemView {
                product_id: l.product_id,
                name: l.name.clone(),
                quantity: l.quantity.get(),
                unit_price: l.unit_price.minor,
                line_total: l.line_total.minor,
            })
            .collect(),
        subtotal: order.subtotal().minor,
        discount: order.discount().minor,
        coupon_code: order.coupon_code().map(str::to_string),
        total: order.total().minor,
        currency: order.currency().clone(),
    })
}

/// Whether the client asks for HTML (and not JSON first).
fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get_all(ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|part| part.split(';').next().unwrap_or("").trim())
        .find(|media| matches!(*media, "text/html" | "application/json"))
        == Some("text/html")
}

/// Escapes text for HTML content and quoted attribute values.
fn escape(text: &str) -> String {
    html_escape::encode_quoted_attribute(text).into_owned()
}

/// Minor units shown with two decimals and the currency code, e.g.
/// `25.20 USD`. (Every currency the shop is set up with has two decimals.)
fn amount(minor: i64, currency: &Currency) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    let abs = minor.unsigned_abs();
    format!(
        "{sign}{}.{:02} {}",
        abs / 100,
        abs % 100,
        escape(currency.as_str())
    )
}

fn render_html(invoice: &Invoice) -> String {
    let currency = &invoice.currency;
    let address = &invoice.shipping_address;
    let mut address_lines = vec![escape(&address.name), escape(&address.line1)];
    if let Some(line2) = &address.line2 {
        address_lines.push(escape(line2));
    }
    address_lines.push(format!(
        "{} {}",
        escape(&address.postal_code),
        escape(&address.city)
    ));
    address_lines.push(escape(&address.country));
    let lines: String = invoice
        .lines
        .iter()
        .map(|l| {
            format!(
                "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>\n",
                escape(&l.name),
                l.quantity,
                amount(l.unit_price, currency),
                amount(l.line_total, currency),
            )
        })
        .collect();
    let discount = if invoice.discount > 0 {
        let code = invoice
            .coupon_code
            .as_deref()
            .map(|c| format!(" ({})", escape(c)))
            .unwrap_or_default();
        format!(
            "<tr><td colspan=\"3\">Discount{code}</td><td class=\"n\">-{}</td></tr>\n",
            amount(invoice.discount, currency)
        )
    } else {
        String::new()
    };
    let number = escape(&invoice.invoice_number);
    format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Invoice {number}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; }}
table {{ border-collapse: collapse; width: 100%; }}
th, td {{ border-bottom: 1px solid #ccc; padding: 0.3em; text-align: left; }}
.n {{ text-align: right; }}
@media print {{ body {{ margin: 0; }} }}
</style>
</head>
<body>
<h1>Invoice {number}</h1>
<p>Issued {issued}<br>Order {order_id}</p>
<h2>Seller</h2>
<p>{seller_name}<br>{seller_address}</p>
<h2>Billed to</h2>
<p>{customer_name}<br>Customer {customer_id}</p>
<h2>Shipping address</h2>
<p>{address}</p>
<table>
<thead><tr><th>Item</th><th class="n">Quantity</th><th class="n">Unit price</th><th class="n">Total</th></tr></thead>
<tbody>
{lines}</tbody>
<tfoot>
<tr><td colspan="3">Subtotal</td><td class="n">{subtotal}</td></tr>
{discount}<tr><th colspan="3">Total</th><th class="n">{total}</th></tr>
</tfoot>
</table>
</body>
</html>
"#,
        issued = invoice.issued_at.format("%Y-%m-%d"),
        order_id = invoice.order_id,
        seller_name = escape(&invoice.seller.name),
        seller_address = escape(&invoice.seller.address),
        customer_name = escape(&invoice.customer.name),
        customer_id = invoice.customer.id,
        address = address_lines.join("<br>"),
        subtotal = amount(invoice.subtotal, currency),
        total = amount(invoice.total, currency),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_text_is_escaped() {
        assert_eq!(
            escape("<script>alert('x') & \"y\"</script>"),
            "&lt;script&gt;alert(&#x27;x&#x27;) &amp; &quot;y&quot;&lt;/script&gt;"
        );
    }

    #[test]
    fn amounts_show_two_decimals() {
        assert_eq!(amount(2520, &Currency::usd()), "25.20 USD");
        assert_eq!(amount(5, &Currency::usd()), "0.05 USD");
    }

    #[test]
    fn html_is_chosen_only_when_asked_for_before_json() {
        let mut headers = HeaderMap::new();
        assert!(!wants_html(&headers));
        headers.insert(
            ACCEPT,
            HeaderValue::from_static("text/html,application/xhtml+xml"),
        );
        assert!(wants_html(&headers));
        headers.insert(
            ACCEPT,
            HeaderValue::from_static("application/json, text/html"),
        );
        assert!(!wants_html(&headers));
    }
}
