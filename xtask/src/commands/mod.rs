//! One module per `cargo xtask` command.

pub mod test;
pub mod up;
