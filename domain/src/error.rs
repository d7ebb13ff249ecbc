//! How a domain error is told to the outside world.
//!
//! Each aggregate has its own `thiserror` enum; implementing [`DomainError`]
//! gives every variant a stable snake_case code and a kind, so the HTTP edge
//! maps any of them to the right status without knowing the aggregate.

/// The class of a rejected command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Well-formed but breaks a rule (HTTP 422).
    Rule,
    /// Conflicts with the current state, e.g. an illegal transition (HTTP 409).
    Conflict,
    /// Names something that does not exist (HTTP 404).
    NotFound,
    /// An outside service the rule needed did not answer (HTTP 503).
    Unavailable,
}

pub trait DomainError: std::error::Error {
    /// A stable snake_case code clients can match on.
    fn code(&self) -> String;
    fn kind(&self) -> ErrorKind;
}

/// One answer an error type can give: its kind and its code (a code with
/// parts that vary, such as `illegal_transition_<from>_to_<to>`, names them
/// in angle brackets).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorCode {
    pub kind: ErrorKind,
    pub code: &'static str,
}

/// Every code an error type gives, e.g. for an API document.
pub trait ErrorCodes {
    const CODES: &'static [ErrorCode];
}

/// Implements [`DomainError`] and [`ErrorCodes`] for an error enum from one
/// table, so that each variant's kind and code are written once:
///
/// ```ignore
/// error_codes!(OrderError {
///     Self::NotFound => NotFound "order_not_found",
///     Self::IllegalTransition { from, to } => Conflict
///         "illegal_transition_<from>_to_<to>" as format!("illegal_transition_{from}_to_{to}"),
/// });
/// ```
#[macro_export]
macro_rules! error_codes {
    ($error:ty { $($pattern:pat => $kind:ident $code:literal $(as $dynamic:expr)?),+ $(,)? }) => {
        impl $crate::error::DomainError for $error {
            #[allow(unused_variables)]
            fn code(&self) -> String {
                match self {
                    $($pattern => $crate::error_codes!(@code $code $(, $dynamic)?),)+
                }
            }

            #[allow(unused_variables)]
            fn kind(&self) -> $crate::error::ErrorKind {
                match self {
                    $($pattern => $crate::error::ErrorKind::$kind,)+
                }
            }
        }

        impl $crate::error::ErrorCodes for $error {
            const CODES: &'static [$crate::error::ErrorCode] = &[
                $($crate::error::ErrorCode {
                    kind: $crate::error::ErrorKind::$kind,
                    code: $code,
                },)+
            ];
        }
    };
    (@code $code:literal) => {
        $code.to_string()
    };
    (@code $code:literal, $dynamic:expr) => {
        $dynamic
    };
}
