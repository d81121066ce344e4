//! Timestamps from this process's own TSA, for CAdES B-T signing.

use std::sync::Arc;

use async_trait::async_trait;
use der::asn1::Int;
use kyso_asn1::rfc3161::{MessageImprint, TimeStampReq};
use kyso_cades::{TimestampError, TimestampSource};

use crate::authority::TimestampAuthority;
use crate::error::TsaError;

/// A [`TimestampSource`] that asks a [`TimestampAuthority`] directly (no HTTP round trip).
#[derive(Clone, Debug)]
pub struct LocalTimestampSource {
    authority: Arc<TimestampAuthority>,
}

impl LocalTimestampSource {
    pub fn new(authority: Arc<TimestampAuthority>) -> Self {
        Self { authority }
    }
}

/// A TimeStampReq for `digest`, with a random 8-byte nonce and certReq set.
pub(crate) fn query_for(
    hash: kyso_hsm::HashAlgorithm,
    digest: &[u8],
    policy: Option<der::asn1::ObjectIdentifier>,
) -> Result<TimeStampReq, TimestampError> {
    let invalid = |reason: String| TimestampError::InvalidResponse { reason };
    let hash = kyso_asn1::HashAlgorithm::from_name(hash.name())
        .ok_or_else(|| invalid(format!("hash {hash} has no RFC 3161 mapping")))?;
    let mut nonce = [0u8; 8];
    getrandom::fill(&mut nonce).map_err(|e| TimestampError::Unavailable {
        reason: format!("no random nonce: {e}"),
    })?;
    nonce[0] = (nonce[0] & 0x7f) | 0x40; // positive, minimal
    Ok(TimeStampReq {
        version: 1,
        message_imprint: MessageImprint::new(hash, digest)
            .map_err(|e| invalid(format!("message imprint: {e}")))?,
        req_policy: policy,
        nonce: Some(Int::new(&nonce).map_err(|e| invalid(format!("nonce: {e}")))?),
        cert_req: true,
        extensions: None,
    })
}

#[async_trait]
impl TimestampSource for LocalTimestampSource {
    async fn timestamp(
        &self,
        hash: kyso_hsm::HashAlgorithm,
        digest: &[u8],
    ) -> Result<Vec<u8>, TimestampError> {
        let req = query_for(hash, digest, None)?;
        match self.authority.issue(&req).await {
            Ok(issued) => Ok(issued.token_der),
            Err(error) if error.is_server_side() => Err(TimestampError::Unavailable {
                reason: format!("{} ({})", error, error.code()),
            }),
            Err(error) => Err(rejected(&error)),
        }
    }
}

fn rejected(error: &TsaError) -> TimestampError {
    TimestampError::Rejected {
        status: "rejection".into(),
        detail: format!("{} ({})", error, error.fail_info().names().join(",")),
    }
}
