//! Timestamps from an external RFC 3161 TSA over HTTP (RFC 3161 3.4), checked before use.

use std::time::Duration;

use async_trait::async_trait;
use der::Encode;
use der::asn1::ObjectIdentifier;
use kyso_asn1::rfc3161::{MAX_RESPONSE_LEN, TimeStampReq, TimeStampResp, parse_token};
use kyso_cades::{TimestampError, TimestampSource};

use crate::local::query_for;
use crate::{QUERY_MEDIA_TYPE, REPLY_MEDIA_TYPE};

/// An external TSA at `url` (plain HTTP: the workspace's reqwest is built without TLS; a token
/// is signed, so transport secrecy is not what makes it trustworthy).
#[derive(Clone, Debug)]
pub struct HttpTimestampSource {
    client: reqwest::Client,
    url: String,
    policy: Option<ObjectIdentifier>,
}

impl HttpTimestampSource {
    /// `policy`: ask for (and insist on) this TSA policy; `timeout` bounds the whole exchange.
    pub fn new(
        url: impl Into<String>,
        policy: Option<ObjectIdentifier>,
        timeout: Duration,
    ) -> Result<Self, TimestampError> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| TimestampError::Unavailable {
                reason: format!("HTTP client: {e}"),
            })?;
        Ok(Self {
            client,
            url: url.into(),
            policy,
        })
    }

    async fn exchange(&self, query: Vec<u8>) -> Result<Vec<u8>, TimestampError> {
        let unavailable = |reason: String| TimestampError::Unavailable { reason };
        let mut response = self
            .client
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, QUERY_MEDIA_TYPE)
            .header(reqwest::header::ACCEPT, REPLY_MEDIA_TYPE)
            .body(query)
            .send()
            .await
            .map_err(|e| unavailable(format!("{}: {e}", self.url)))?;
        if !response.status().is_success() {
            return Err(unavailable(format!(
                "{} answered HTTP {}",
                self.url,
                response.status()
            )));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| unavailable(format!("{}: {e}", self.url)))?
        {
            if body.len() + chunk.len() > MAX_RESPONSE_LEN {
                return Err(TimestampError::InvalidResponse {
                    reason: format!("reply larger than {MAX_RESPONSE_LEN} bytes"),
                });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

#[async_trait]
impl TimestampSource for HttpTimestampSource {
    async fn timestamp(
        &self,
        hash: kyso_hsm::HashAlgorithm,
        digest: &[u8],
    ) -> Result<Vec<u8>, TimestampError> {
        let req = query_for(hash, digest, self.policy)?;
        let query = req.to_der().map_err(|e| TimestampError::InvalidResponse {
            reason: format!("encoding the query: {e}"),
        })?;
        let reply = self.exchange(query).await?;
        check_reply(&req, &reply)
    }
}

/// Checks a TimeStampResp against the query it answers: granted, a token over id-ct-TSTInfo,
/// the same message imprint, the same nonce, and the requested policy if one was asked for.
/// Gives the token (ContentInfo DER). The token's signature and chain are checked by the
/// verifier (kyso-cades / kyso-validate), not here.
pub fn check_reply(req: &TimeStampReq, reply: &[u8]) -> Result<Vec<u8>, TimestampError> {
    let invalid = |reason: String| TimestampError::InvalidResponse { reason };
    let resp = TimeStampResp::from_der(reply).map_err(|e| invalid(e.to_string()))?;
    if !resp.status.status.is_granted() {
        let mut detail = resp.status.status_string.unwrap_or_default().join("; ");
        if let Some(info) = resp.status.fail_info {
            detail = format!("{detail} [{}]", info.names().join(","));
        }
        return Err(TimestampError::Rejected {
            status: format!("{:?}", resp.status.status),
            detail,
        });
    }
    let token = resp
        .time_stamp_token
        .ok_or_else(|| invalid("granted without a token".into()))?;
    let parsed = parse_token(&token).map_err(|e| invalid(e.to_string()))?;
    let tst = parsed.tst_info;
    if tst.message_imprint != req.message_imprint {
        return Err(invalid(
            "the token's message imprint is not the query's".into(),
        ));
    }
    if tst.nonce != req.nonce {
        return Err(invalid("the token's nonce is not the query's".into()));
    }
    if let Some(policy) = req.req_policy
        && tst.policy != policy
    {
        return Err(invalid(format!(
            "the token's policy {} is not the requested {policy}",
            tst.policy
        )));
    }
    token
        .to_der()
        .map_err(|e| invalid(format!("re-encoding the token: {e}")))
}
