//! The ceiling of any signing service built like kyso's on this machine: an axum server that does
//! only what every signing request cannot avoid, and nothing kyso adds.
//!
//!     http-floor --listen 127.0.0.1:PORT [--inline-budget-us N]
//!
//! `POST /sign/p256` and `POST /sign/rsa2048` take the JSON body `POST /v1/sign/cms` takes (a key
//! name, a level, a packaging and base64 documents), decode each document, sign it with
//! `HsmKey::sign` on a fresh SoftHSM token (the server's own signing call: software hash, pool,
//! in-place placement) and answer a JSON list of base64 signatures. There is no authentication,
//! no grant or certificate-status check, no CMS structure, no audit record and no durable write.
//! `POST /echo` reads the same body and answers a fixed JSON object: HTTP and the body alone.
//!
//! `scripts/bench-trust` loads it with the same wrk script and bodies as kyso's signing route, in
//! the same run, so kyso's rate can be read against both the raw HSM rate and this floor. Runtime
//! as `kyso serve` builds it (tokio's multi-thread default, one worker per core).

use std::process::ExitCode;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use kyso_hsm::{HsmKey, KeyAlgorithm};
use serde::{Deserialize, Serialize};

/// The allocator the kyso binary runs with, so that the floor is the same stack.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const USAGE: &str = "usage: http-floor --listen ADDRESS:PORT [--inline-budget-us N]";

struct Keys {
    p256: HsmKey,
    rsa2048: HsmKey,
    // Keeps the token (and its SoftHSM directory) alive while the keys are used; its placement
    // counts are served at GET /placement.
    fixture: kyso_benches::Fixture,
}

#[derive(Deserialize)]
struct SignRequest {
    #[allow(dead_code)] // read as kyso reads it, not used
    key: String,
    #[serde(default)]
    #[allow(dead_code)]
    level: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    packaging: Option<String>,
    documents: Vec<DocumentInput>,
}

#[derive(Deserialize)]
struct DocumentInput {
    #[serde(default)]
    id: Option<String>,
    content: String,
}

#[derive(Serialize)]
struct SignResponse {
    results: Vec<DocumentResult>,
}

#[derive(Serialize)]
struct DocumentResult {
    id: Option<String>,
    signature: String,
}

type Failure = (StatusCode, String);

async fn sign(key: &HsmKey, body: &[u8]) -> Result<Json<SignResponse>, Failure> {
    let request: SignRequest = serde_json::from_slice(body)
        .map_err(|e| (StatusCode::UNPROCESSABLE_ENTITY, format!("body: {e}")))?;
    let mut results = Vec::with_capacity(request.documents.len());
    for document in request.documents {
        let content = B64
            .decode(&document.content)
            .map_err(|e| (StatusCode::UNPROCESSABLE_ENTITY, format!("content: {e}")))?;
        let signature = key
            .sign(&content)
            .await
            .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, format!("HSM: {e}")))?;
        results.push(DocumentResult {
            id: document.id,
            signature: B64.encode(signature),
        });
    }
    Ok(Json(SignResponse { results }))
}

async fn sign_p256(
    State(keys): State<Arc<Keys>>,
    body: Bytes,
) -> Result<Json<SignResponse>, Failure> {
    sign(&keys.p256, &body).await
}

async fn sign_rsa2048(
    State(keys): State<Arc<Keys>>,
    body: Bytes,
) -> Result<Json<SignResponse>, Failure> {
    sign(&keys.rsa2048, &body).await
}

/// `GET /placement`: how many signing calls ran in place on a worker and how many off it.
async fn placement(State(keys): State<Arc<Keys>>) -> Json<serde_json::Value> {
    let (inline, offloaded) = keys.fixture.token.signing_placement_counts();
    Json(serde_json::json!({ "inline": inline, "offloaded": offloaded }))
}

async fn echo(body: Bytes) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "received": body.len() }))
}

async fn serve(listen: String, inline_budget: Option<std::time::Duration>) -> Result<(), String> {
    let fixture = kyso_benches::Fixture::new()
        .await
        .map_err(|e| format!("SoftHSM fixture: {e}"))?;
    if let Some(budget) = inline_budget {
        fixture.token.set_inline_budget(budget);
    }
    let key = |algorithm| {
        fixture
            .key(algorithm)
            .cloned()
            .map_err(|e| format!("key: {e}"))
    };
    let keys = Arc::new(Keys {
        p256: key(KeyAlgorithm::EcP256)?,
        rsa2048: key(KeyAlgorithm::Rsa2048)?,
        fixture,
    });
    let app = Router::new()
        .route("/sign/p256", post(sign_p256))
        .route("/sign/rsa2048", post(sign_rsa2048))
        .route("/echo", post(echo))
        .route("/placement", axum::routing::get(placement))
        .with_state(keys);
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    println!("http-floor listening on {listen}");
    axum::serve(listener, app)
        .await
        .map_err(|e| format!("serve: {e}"))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (listen, inline_budget) = match args.as_slice() {
        ["--listen", address] => (address.to_string(), None),
        ["--listen", address, "--inline-budget-us", us] => match us.parse::<u64>() {
            Ok(us) => (
                address.to_string(),
                Some(std::time::Duration::from_micros(us)),
            ),
            Err(_) => {
                eprintln!("{USAGE}");
                return ExitCode::from(2);
            }
        },
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("http-floor: runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(listen, inline_budget)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("http-floor: {e}");
            ExitCode::FAILURE
        }
    }
}
