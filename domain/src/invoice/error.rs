use thiserror::Error;

use crate::error::{DomainError, ErrorKind};

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum InvoiceNumberingError {
    #[error("the numbering of {numbering} cannot give numbers of {requested}")]
    YearMismatch { numbering: i32, requested: i32 },
    #[error("{0} is not a year invoices can be numbered in")]
    InvalidYear(i32),
}

impl DomainError for InvoiceNumberingError {
    fn code(&self) -> String {
        match self {
            InvoiceNumberingError::YearMismatch { .. } => "invoice_year_mismatch",
            InvoiceNumberingError::InvalidYear(_) => "invalid_invoice_year",
        }
        .to_string()
    }

    fn kind(&self) -> ErrorKind {
        ErrorKind::Rule
    }
}
