//! One module per subcommand: clap argument structs (what was typed) and a `run` that does it.

pub mod agent;
pub mod alert_args;
pub mod capture;
pub mod convert;
pub mod eval;
pub mod learn;
pub mod model;
pub mod model_args;
pub mod net;
pub mod numbers;
pub mod score;
pub mod ship;
pub mod things;
pub mod trace;
pub mod train;
