use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum InvoiceNumberingError {
    #[error("the numbering of {numbering} cannot give numbers of {requested}")]
    YearMismatch { numbering: i32, requested: i32 },
    #[error("{0} is not a year invoices can be numbered in")]
    InvalidYear(i32),
}

crate::error_codes!(InvoiceNumberingError {
    Self::YearMismatch { .. } => Rule "invoice_year_mismatch",
    Self::InvalidYear(_) => Rule "invalid_invoice_year",
});
