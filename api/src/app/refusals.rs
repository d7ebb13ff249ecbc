//! Refusals of their own: checks of a request's values that are not a
//! domain rule (a page size, a search's length, a signature), each a type
//! whose kind and code are written here once, and whose message is the text
//! it holds. Use cases, handlers and the API document all name them.

use super::{use_case_error, Kind};

/// A refusal type: `refusal!(Name => Kind "code";)`.
macro_rules! refusal {
    ($($(#[$doc:meta])* $name:ident => $kind:ident $code:expr;)+) => {
        $(
            $(#[$doc])*
            #[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
            #[error("{0}")]
            pub struct $name(pub String);

            impl $name {
                pub const CODE: &'static str = $code;
                pub const KIND: Kind = Kind::$kind;

                pub fn new(message: impl Into<String>) -> Self {
                    Self(message.into())
                }
            }

            use_case_error!($name {
                $name(_) => refused($kind, $code),
            });
        )+
    };
}

refusal! {
    /// A quantity that is not 1 to 1,000,000.
    InvalidQuantity => Rule "invalid_quantity";
    /// A hold's time to live out of range.
    InvalidTtl => Rule "invalid_ttl";
    /// An amount of money out of range.
    InvalidAmount => Rule "invalid_amount";
    /// Search words that are too long.
    InvalidSearch => BadInput "invalid_search";
    /// A `version` that is not 1 or more.
    InvalidVersion => BadInput "invalid_version";
    /// A `limit` that is not 1 to 100.
    InvalidLimit => BadInput "invalid_limit";
    /// An `X-Min-Position` header that is not an integer.
    InvalidMinPosition => BadInput "invalid_min_position";
    /// An `Idempotency-Key` that is not 1 to 255 visible ASCII characters.
    InvalidIdempotencyKey => BadInput "invalid_idempotency_key";
    /// A list cursor this server did not give out.
    CursorNotFound => NotFound "cursor_not_found";
    /// A feed position that names no event.
    PositionNotFound => NotFound "position_not_found";
    /// A feed position (`after`, `Last-Event-ID`) that is not 0 or more.
    InvalidFeedPosition => BadInput "invalid_feed_position";
    /// The thing named does not exist.
    NotFound => NotFound "not_found";
    /// A payment callback that is not one.
    InvalidCallback => Rule "invalid_callback";
    /// A payment callback without the gateway's signature.
    InvalidSignature => Unauthorized "invalid_signature";
    /// A wrong username or password.
    InvalidCredentials => Unauthorized "invalid_credentials";
    /// Too many sign-in attempts from one address.
    TooManyAttempts => TooManyRequests "too_many_attempts";
    /// Too many failed sign-ins for one account, from any address.
    TooManyFailedSignIns => TooManyRequests "too_many_failed_sign_ins";
    /// Too many sign-ups from one address.
    TooManySignUps => TooManyRequests "too_many_sign_ups";
    /// Too many coupon codes tried by one customer.
    TooManyCouponAttempts => TooManyRequests "too_many_coupon_attempts";
    /// Too many orders placed by one customer.
    TooManyOrders => TooManyRequests "too_many_orders";
    /// Too many card tokenizations and top-ups by one customer.
    TooManyPaymentAttempts => TooManyRequests "too_many_payment_attempts";
    /// Too many passwords wait to be checked at this moment.
    PasswordCheckBusy => Unavailable super::passwords::BUSY;
    /// The read model had not reached the position asked for in time.
    ReadModelBehind => Unavailable "read_model_behind";
    /// An order whose invoice is not issued yet.
    InvoiceNotIssued => NotFound "invoice_not_issued";
    /// A rebuild of the projector is running already.
    RebuildRunning => Conflict "rebuild_running";
    /// A projector that keeps no read model to rebuild.
    NotRebuildable => Conflict "not_rebuildable";
    /// A card token made for another customer.
    CardTokenNotOwned => Conflict domain::payment::TOKEN_NOT_OWNED;
    /// The payment gateway did not answer.
    PaymentGatewayUnavailable => Unavailable "payment_gateway_unavailable";
}
