//! Route handlers, grouped by area.

pub mod audit;
pub mod certificates;
pub mod clients;
pub mod public;
pub mod sign;
pub mod staff;
pub mod tsa;
pub mod verify;

/// An instant as RFC 3339 text in UTC (what every JSON time field carries).
pub fn rfc3339(time: time::OffsetDateTime) -> String {
    time.to_offset(time::UtcOffset::UTC)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| time.unix_timestamp().to_string())
}
