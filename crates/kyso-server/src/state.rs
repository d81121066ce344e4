//! What every handler shares: configuration, store, clock, metrics, the CA token and keys.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use kyso_clock::SharedClock;
use kyso_hsm::Module;
use kyso_store::{NewAuditEvent, Store};

use crate::auth::TouchTracker;
use crate::config::Config;
use crate::error::AppError;
use crate::metrics::Metrics;
use crate::ocsp_cache::OcspCache;
use crate::pki::Pki;
use crate::signing::SigningAuthorisations;
use crate::trust_services::TrustServices;

/// The application state. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    config: Config,
    store: Arc<dyn Store>,
    clock: SharedClock,
    module: Module,
    pki: Pki,
    trust: TrustServices,
    metrics: Metrics,
    touch: TouchTracker,
    signing_authorisations: SigningAuthorisations,
    ocsp_cache: OcspCache,
    /// CAs whose CRL must be re-signed because a status change could not regenerate it.
    stale_crls: Mutex<BTreeSet<String>>,
}

impl AppState {
    /// Assembles the state from opened parts (see [`crate::app::load_state`] to open them from a
    /// configuration).
    pub fn new(
        config: Config,
        store: Arc<dyn Store>,
        clock: SharedClock,
        module: Module,
        pki: Pki,
        trust: TrustServices,
    ) -> AppState {
        let ocsp_cache = OcspCache::new(config.ocsp.cache_entries);
        AppState(Arc::new(Inner {
            config,
            store,
            clock,
            module,
            pki,
            trust,
            metrics: Metrics::new(),
            touch: TouchTracker::default(),
            signing_authorisations: SigningAuthorisations::default(),
            ocsp_cache,
            stale_crls: Mutex::new(BTreeSet::new()),
        }))
    }

    pub fn config(&self) -> &Config {
        &self.0.config
    }

    pub fn store(&self) -> &dyn Store {
        self.0.store.as_ref()
    }

    pub fn clock(&self) -> &SharedClock {
        &self.0.clock
    }

    /// The PKCS#11 module (staff tokens are opened through it).
    pub fn module(&self) -> &Module {
        &self.0.module
    }

    /// The CA token, the service's keys and certificates.
    pub fn pki(&self) -> &Pki {
        &self.0.pki
    }

    /// The timestamp authority, signing keys, trust store and receipt signer.
    pub fn trust(&self) -> &TrustServices {
        &self.0.trust
    }

    /// The store as a shared handle (for services that keep it).
    pub fn store_handle(&self) -> Arc<dyn Store> {
        self.0.store.clone()
    }

    pub fn metrics(&self) -> &Metrics {
        &self.0.metrics
    }

    pub(crate) fn touch_tracker(&self) -> &TouchTracker {
        &self.0.touch
    }

    /// Signing authorisations kept from earlier reads (see [`SigningAuthorisations`]).
    pub fn signing_authorisations(&self) -> &SigningAuthorisations {
        &self.0.signing_authorisations
    }

    pub(crate) fn ocsp_cache(&self) -> &OcspCache {
        &self.0.ocsp_cache
    }

    /// Notes that `ca`'s CRL misses a status change (the periodic task re-signs it).
    pub fn mark_crl_stale(&self, ca: &str) {
        self.0
            .stale_crls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(ca.to_owned());
    }

    /// Takes the CAs whose CRL is stale.
    pub(crate) fn take_stale_crls(&self) -> BTreeSet<String> {
        std::mem::take(&mut *self.0.stale_crls.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Appends to the audit log. A failure is an error for the request: an action whose audit record
    /// cannot be written must not be reported as done.
    pub async fn audit(&self, event: NewAuditEvent) -> Result<(), AppError> {
        self.store().append_audit(&event).await.map(|_| ()).map_err(|e| {
            tracing::error!(action = %event.action, target = %event.target, error = %e, "audit append failed");
            AppError::from(e)
        })
    }
}
