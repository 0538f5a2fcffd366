//! A throwaway Kafka-protocol broker ([tansu](https://crates.io/crates/tansu)) for tests and `cargo
//! xtask up`.
//!
//! - [`Broker`]: tansu on a free 127.0.0.1 port with SQLite storage; stop and start again with its
//!   data, pause.
//! - [`tansu_binary`]: where the binary is (`$TASKWATCH_TANSU_BIN`, the xtask cache, `PATH`).
//!
//! `cargo xtask test` installs tansu when missing and exports [`TANSU_BIN_ENV`].

mod binary;
mod broker;

pub use binary::{
    INSTALL_ROOT_NAME, TANSU_BIN_ENV, TANSU_FEATURES, TANSU_VERSION, install_root, is_installed, tansu_binary,
};
pub use broker::Broker;
