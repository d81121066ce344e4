//! The router, the server loop and start-up.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{Method, Uri};
use axum::routing::{get, post};
use kyso_clock::SharedClock;
use kyso_hsm::Module;
use kyso_store::Store;

use crate::config::Config;
use crate::error::AppError;
use crate::handlers::{audit, certificates, clients, public, sign, staff, tsa, verify};
use crate::pki::{Pki, StartupError};
use crate::routes::*;
use crate::state::AppState;
use crate::trust_services::TrustServices;

#[cfg(test)]
mod tests;

/// Every route of the service (the table in [`crate::routes::ROUTES`] lists the same ones).
pub fn router(state: AppState) -> Router {
    let limits = &state.config().limits;
    let body_limit = limits
        .max_json_bytes
        .max(limits.max_ocsp_request_bytes)
        .max(limits.max_timestamp_query_bytes)
        .max(limits.max_document_request_bytes);
    Router::new()
        .route(HEALTHZ, get(public::healthz))
        .route(METRICS, get(public::metrics))
        .route(OPENAPI, get(public::openapi))
        .route(CA_CERT, get(public::ca_certificate))
        .route(CRL, get(public::crl))
        .route(OCSP_POST, post(public::ocsp_post))
        .route(OCSP_GET, get(public::ocsp_get))
        .route(STAFF, post(staff::create).get(staff::list))
        .route(STAFF_ONE, get(staff::get).patch(staff::update))
        .route(STAFF_ENROLL, post(certificates::enroll))
        .route(
            CERTIFICATES,
            post(certificates::issue).get(certificates::list),
        )
        .route(CERTIFICATE, get(certificates::get))
        .route(CERT_REVOKE, post(certificates::revoke))
        .route(CERT_SUSPEND, post(certificates::suspend))
        .route(CERT_RESUME, post(certificates::resume))
        .route(CERT_RENEW, post(certificates::renew))
        .route(CERT_REKEY, post(certificates::rekey))
        .route(CLIENTS, post(clients::create).get(clients::list))
        .route(CLIENT, get(clients::get))
        .route(CLIENT_DISABLE, post(clients::disable))
        .route(CLIENT_GRANTS, get(clients::list_grants))
        .route(
            CLIENT_GRANT,
            axum::routing::put(clients::put_grant).delete(clients::delete_grant),
        )
        .route(AUDIT, get(audit::list))
        .route(TSA, post(tsa::timestamp))
        .route(SIGN_CMS, post(sign::sign_cms))
        .route(VERIFY, post(verify::verify))
        .route(VERIFICATION, get(verify::get))
        .fallback(route_not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::metrics::track,
        ))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

async fn route_not_found(method: Method, uri: Uri) -> AppError {
    AppError::RouteNotFound {
        method: method.to_string(),
        path: truncated_path(&uri),
    }
}

async fn method_not_allowed(method: Method, uri: Uri) -> AppError {
    AppError::MethodNotAllowed {
        method: method.to_string(),
        path: truncated_path(&uri),
    }
}

fn truncated_path(uri: &Uri) -> String {
    uri.path().chars().take(200).collect()
}

/// Opens the store, the PKCS#11 module and the CA token named by `config`, and loads the CAs.
/// A CA key missing from the token stops here with an error naming the key and the token.
pub async fn load_state(config: Config, clock: SharedClock) -> Result<AppState, StartupError> {
    config.validate()?;
    let store = kyso_store::open_with_clock(&config.database_url(), clock.clone()).await?;
    let (module, token) = open_ca_token(&config).await?;
    state_from_parts(config, store, clock, module, token).await
}

/// Loads the state from already opened parts (tests pass a SoftHSM token here). The signing token
/// (`signing.token_label`, when it is not the CA token) is opened through `module`.
pub async fn state_from_parts(
    config: Config,
    store: Arc<dyn Store>,
    clock: SharedClock,
    module: Module,
    token: kyso_hsm::Token,
) -> Result<AppState, StartupError> {
    state_from_parts_with(config, store, clock, module, token, None).await
}

/// [`state_from_parts`] with the TSA's clock check replaced by `clock_trust` (tests).
pub async fn state_from_parts_with(
    config: Config,
    store: Arc<dyn Store>,
    clock: SharedClock,
    module: Module,
    token: kyso_hsm::Token,
    clock_trust: Option<Arc<dyn kyso_tsa::ClockTrust>>,
) -> Result<AppState, StartupError> {
    let pki = Pki::load(&config, store.as_ref(), token).await?;
    let signing_token = open_signing_token(&config, &module).await?;
    let trust = TrustServices::load(
        &config,
        store.clone(),
        clock.clone(),
        &pki,
        signing_token,
        clock_trust,
    )
    .await?;
    Ok(AppState::new(config, store, clock, module, pki, trust))
}

/// The token API clients' keys live on, when it is not the CA token.
async fn open_signing_token(
    config: &Config,
    module: &Module,
) -> Result<Option<kyso_hsm::Token>, StartupError> {
    let Some(label) = config
        .signing
        .token_label
        .clone()
        .filter(|l| *l != config.hsm.token_label)
    else {
        return Ok(None);
    };
    let pin_source = config
        .signing
        .pin
        .clone()
        .unwrap_or_else(|| config.hsm.pin.clone());
    let module = module.clone();
    let pool = config.hsm.session_pool;
    tokio::task::spawn_blocking(move || {
        let pin = pin_source.read().map_err(StartupError::Hsm)?;
        module
            .open_token(&label, pin, pool)
            .map_err(StartupError::Hsm)
            .map(Some)
    })
    .await
    .map_err(|e| StartupError::Io {
        what: "opening the signing token".to_owned(),
        source: std::io::Error::other(e.to_string()),
    })?
}

/// Loads the configured PKCS#11 module and logs in to the CA token with the configured PIN.
pub async fn open_ca_token(config: &Config) -> Result<(Module, kyso_hsm::Token), StartupError> {
    let hsm = config.hsm.clone();
    tokio::task::spawn_blocking(move || {
        let module = Module::load(&hsm.module).map_err(StartupError::Hsm)?;
        let pin = hsm.pin.read().map_err(StartupError::Hsm)?;
        let token = module
            .open_token(&hsm.token_label, pin, hsm.session_pool)
            .map_err(StartupError::Hsm)?;
        Ok((module, token))
    })
    .await
    .map_err(|e| StartupError::Io {
        what: "opening the CA token".to_owned(),
        source: std::io::Error::other(e.to_string()),
    })?
}

/// `kyso serve`: loads everything, binds the configured address and serves until Ctrl-C or
/// SIGTERM.
pub async fn serve(config: Config, clock: SharedClock) -> Result<(), StartupError> {
    let listen = config.listen;
    let state = load_state(config, clock).await?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| StartupError::Io {
            what: format!("cannot listen on {listen}"),
            source,
        })?;
    tracing::info!(address = %listen, "kyso listening");
    serve_on(listener, state, shutdown_signal())
        .await
        .map_err(|source| StartupError::Io {
            what: "server".to_owned(),
            source,
        })
}

/// Serves `state` on `listener` until `shutdown` resolves (for tests: a oneshot receiver), with the
/// periodic CRL task running alongside. In-flight requests finish before it returns.
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let crl_task = tokio::spawn(crl_task(state.clone()));
    let result = axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await;
    crl_task.abort();
    result
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}

/// Re-signs each CA's CRL when the latest stored one is older than the regeneration interval (by the
/// injected clock, so every node agrees through the store), and whenever a status change could not.
async fn crl_task(state: AppState) {
    let every = state.config().crl.regenerate_every_secs;
    // Check often enough that a CRL is never much older than the interval, but not busily.
    let mut ticker = tokio::time::interval(Duration::from_secs(every.clamp(1, 60)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        regenerate_due_crls(&state).await;
    }
}

/// One pass of the CRL task: returns the CAs whose CRL was re-signed.
pub async fn regenerate_due_crls(state: &AppState) -> Vec<String> {
    let config = state.config();
    let every = i64::try_from(config.crl.regenerate_every_secs).unwrap_or(i64::MAX);
    let stale = state.take_stale_crls();
    let mut done = Vec::new();
    for issuer in [state.pki().root(), state.pki().issuing()] {
        let now = state.clock().now_unix();
        let due = match state.store().latest_crl(issuer.name()).await {
            Ok(Some(crl)) => {
                stale.contains(issuer.name())
                    || now.saturating_sub(crl.this_update) >= every
                    || crl.next_update <= now
            }
            Ok(None) => true,
            Err(e) => {
                tracing::error!(ca = issuer.name(), error = %e, "CRL task: store unavailable");
                state.mark_crl_stale(issuer.name());
                continue;
            }
        };
        if !due {
            continue;
        }
        match crate::pki::regenerate_crl(
            issuer,
            state.store(),
            state.clock().as_ref(),
            config.crl.next_update_secs,
            state.metrics(),
        )
        .await
        {
            Ok(()) => done.push(issuer.name().to_owned()),
            Err(e) => {
                tracing::error!(ca = issuer.name(), code = e.code(), error = %e, "CRL task failed");
                state.mark_crl_stale(issuer.name());
            }
        }
    }
    done
}
