//! One module per `cargo xtask` command.

pub mod slo;
pub mod test;
pub mod up;
