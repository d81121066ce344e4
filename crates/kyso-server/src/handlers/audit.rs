//! `GET /v1/audit`: the hash-chained audit log, page by page, for auditors.

use axum::Json;
use axum::extract::State;
use kyso_store::{AuditRecord, ClientRole};
use serde::{Deserialize, Serialize};

use crate::auth::Caller;
use crate::error::AppError;
use crate::extract::AppQuery;
use crate::state::AppState;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// First sequence number wanted (1 = the start of the chain).
    #[serde(default = "first_seq")]
    pub from_seq: i64,
    #[serde(default = "default_limit")]
    pub limit: u32,
}

fn first_seq() -> i64 {
    1
}

fn default_limit() -> u32 {
    100
}

#[derive(Debug, Serialize)]
pub struct AuditPage {
    pub records: Vec<AuditRecord>,
    /// Where the next page starts, absent at the end of the log.
    pub next_from_seq: Option<i64>,
}

pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    AppQuery(query): AppQuery<AuditQuery>,
) -> Result<Json<AuditPage>, AppError> {
    caller
        .require(
            &state,
            &[ClientRole::Auditor, ClientRole::Admin],
            "audit.list",
        )
        .await?;
    if query.from_seq < 1 {
        return Err(AppError::unprocessable(
            "bad_from_seq",
            "from_seq phải lớn hơn hoặc bằng 1.",
            "from_seq must be at least 1.",
        ));
    }
    let limit = query.limit.clamp(1, state.config().limits.max_audit_page);
    let records = state.store().list_audit(query.from_seq, limit).await?;
    let next_from_seq = if records.len() == limit as usize {
        records.last().map(|r| r.seq + 1)
    } else {
        None
    };
    Ok(Json(AuditPage {
        records,
        next_from_seq,
    }))
}
