//! One module per `cargo xtask` command.

pub mod chaos;
pub mod new_service;
pub mod slo;
pub mod test;
pub mod up;
