//! kyso-tsa: an RFC 3161 timestamp authority whose key stays in the HSM.
//!
//! - [`TimestampAuthority`]: parses queries, refuses what it must (with the RFC's PKIStatusInfo),
//!   records every serial durably in a [`SerialLedger`] before answering, and signs TSTInfo as a
//!   CMS SignedData through `kyso_cades::sign` (signing-certificate-v2 over the TSA certificate).
//! - [`ClockTrust`]: whether the clock may be used for timestamps ([`SystemClockTrust`] asks the
//!   kernel through `kyso_clock::system_sync_status`).
//! - [`LocalTimestampSource`] and [`HttpTimestampSource`]: `kyso_cades::TimestampSource`s over
//!   this TSA or over an external RFC 3161 TSA reached by HTTP.

mod authority;
mod error;
mod http;
mod ledger;
mod local;
mod trust;

pub use authority::{IssuedTimestamp, TimestampAuthority, TimestampReply, TsaConfig};
pub use error::TsaError;
pub use http::{HttpTimestampSource, check_reply};
pub use ledger::{InMemoryLedger, LedgerError, SerialLedger, TimestampRecord};
pub use local::LocalTimestampSource;
pub use trust::{
    AlwaysTrusted, ClockTrust, ClockUntrusted, SwitchableClockTrust, SystemClockTrust,
};

/// Media type of a timestamp query (RFC 3161 3.4).
pub const QUERY_MEDIA_TYPE: &str = "application/timestamp-query";
/// Media type of a timestamp reply (RFC 3161 3.4).
pub const REPLY_MEDIA_TYPE: &str = "application/timestamp-reply";
