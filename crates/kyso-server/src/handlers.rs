//! Route handlers, grouped by area.

pub mod audit;
pub mod certificates;
pub mod clients;
pub mod public;
pub mod staff;
