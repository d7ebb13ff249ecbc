//! `shop users create`: bootstrapping staff accounts from the command line.
//! The use case is `crate::app::create_staff_user`; these names stay for
//! the callers that know them.

pub use crate::app::create_staff_user::{
    create_staff_user as create_staff, CreateStaffError, StaffAccount, StaffOutcome,
};
