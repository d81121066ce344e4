//! Signing authorisations kept from earlier reads, so that the usual signing call reads nothing
//! from the store before it signs.
//!
//! An entry is what [`Store::authorise_signing`](kyso_store::Store::authorise_signing) read for
//! an API key, a signing key and its certificate, once it had been judged to allow signing, with
//! the [`AuthorisationEpoch`] it was read at. A signature made on an entry leaves only through
//! [`Store::append_audit_authorised`](kyso_store::Store::append_audit_authorised) at that epoch,
//! which refuses once any withdrawal (a client disabled, a grant withdrawn, a certificate revoked
//! or put on hold, by any process or node) has committed: so an entry is never trusted beyond the
//! store's word, it only saves the read. Refusals are never kept (a later grant makes no
//! withdrawal to notice), and the time checks (the certificate's validity) are made again on
//! every call.

use std::collections::HashMap;
use std::sync::Mutex;

use kyso_store::{AuthorisationEpoch, SigningAuthorisation};

/// Most entries kept; past it the set starts again empty (a client per key is the usual load,
/// so this is only a bound against many keys).
pub const MAX_ENTRIES: usize = 4096;

/// One kept read of an API key's: for which signing key and certificate.
#[derive(Debug)]
struct Entry {
    signing_key: String,
    certificate_serial: Vec<u8>,
    authorisation: SigningAuthorisation,
}

#[derive(Debug, Default)]
struct Entries {
    /// The newest epoch seen; every entry was read at it.
    epoch: Option<AuthorisationEpoch>,
    /// By SHA-256 of the API key: a client uses few signing keys, so those are searched.
    by_api_key: HashMap<[u8; 32], Vec<Entry>>,
    count: usize,
}

/// The kept authorisations of one server.
#[derive(Debug, Default)]
pub struct SigningAuthorisations {
    entries: Mutex<Entries>,
}

impl SigningAuthorisations {
    /// The authorisation kept for this API key, signing key and certificate, if any.
    pub fn get(
        &self,
        api_key_hash: &[u8; 32],
        signing_key: &str,
        certificate_serial: &[u8],
    ) -> Option<SigningAuthorisation> {
        let entries = self.lock();
        entries
            .by_api_key
            .get(api_key_hash)?
            .iter()
            .find(|e| e.signing_key == signing_key && e.certificate_serial == certificate_serial)
            .map(|e| e.authorisation.clone())
    }

    /// Keeps `authorisation`, read for these keys and judged to allow signing. One read at an
    /// older epoch than the newest seen is not kept; one at a newer epoch drops all the others.
    pub fn keep(
        &self,
        api_key_hash: &[u8; 32],
        signing_key: &str,
        certificate_serial: &[u8],
        authorisation: SigningAuthorisation,
    ) {
        let mut entries = self.lock();
        if !entries.advance_to(authorisation.epoch) {
            return;
        }
        if entries.count >= MAX_ENTRIES {
            entries.clear();
        }
        let of_api_key = entries.by_api_key.entry(*api_key_hash).or_default();
        let entry = Entry {
            signing_key: signing_key.to_owned(),
            certificate_serial: certificate_serial.to_vec(),
            authorisation,
        };
        match of_api_key
            .iter_mut()
            .find(|e| e.signing_key == signing_key && e.certificate_serial == certificate_serial)
        {
            Some(kept) => *kept = entry,
            None => {
                of_api_key.push(entry);
                entries.count += 1;
            }
        }
    }

    /// Notes that the store is at `epoch` (a release was refused there): every entry read
    /// before it is dropped.
    pub fn saw_epoch(&self, epoch: AuthorisationEpoch) {
        self.lock().advance_to(epoch);
    }

    /// How many entries are kept.
    pub fn len(&self) -> usize {
        self.lock().count
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        // The map stays consistent whatever a panicking holder did: every change is one call.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Entries {
    fn clear(&mut self) {
        self.by_api_key.clear();
        self.count = 0;
    }

    /// Moves to `epoch` if it is the newest seen (dropping every entry of an older one); whether
    /// `epoch` is now the newest.
    fn advance_to(&mut self, epoch: AuthorisationEpoch) -> bool {
        match self.epoch {
            Some(newest) if epoch < newest => false,
            Some(newest) if epoch == newest => true,
            _ => {
                self.epoch = Some(epoch);
                self.clear();
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use kyso_store::{ApiClientRecord, ClientRole, KeyGrantAndStatus};

    use super::*;

    fn authorisation(client: i64, epoch: i64) -> SigningAuthorisation {
        SigningAuthorisation {
            client: ApiClientRecord {
                id: client,
                name: format!("client {client}"),
                role: ClientRole::Client,
                key_hash: vec![client as u8; 32],
                key_prefix: "kyso_abcdefgh".into(),
                created_at: 0,
                disabled_at: None,
                last_used_at: None,
            },
            grant: KeyGrantAndStatus {
                granted: true,
                certificate: None,
            },
            epoch: AuthorisationEpoch(epoch),
        }
    }

    #[test]
    fn an_entry_answers_only_its_own_keys() {
        let kept = SigningAuthorisations::default();
        kept.keep(&[1; 32], "seal", &[7], authorisation(1, 3));
        assert_eq!(kept.get(&[1; 32], "seal", &[7]), Some(authorisation(1, 3)));
        assert_eq!(kept.get(&[2; 32], "seal", &[7]), None);
        assert_eq!(kept.get(&[1; 32], "other", &[7]), None);
        assert_eq!(kept.get(&[1; 32], "seal", &[8]), None);
    }

    #[test]
    fn a_newer_epoch_drops_the_older_entries_and_an_older_read_is_not_kept() {
        let kept = SigningAuthorisations::default();
        kept.keep(&[1; 32], "seal", &[7], authorisation(1, 3));
        kept.keep(&[2; 32], "seal", &[7], authorisation(2, 3));
        assert_eq!(kept.len(), 2);
        kept.keep(&[2; 32], "seal", &[7], authorisation(2, 4));
        assert_eq!(kept.len(), 1);
        assert_eq!(kept.get(&[1; 32], "seal", &[7]), None);
        // A read made before the newest epoch (a slow request) is not kept.
        kept.keep(&[1; 32], "seal", &[7], authorisation(1, 3));
        assert_eq!(kept.get(&[1; 32], "seal", &[7]), None);
        // A refusal seen at a newer epoch drops everything.
        kept.saw_epoch(AuthorisationEpoch(5));
        assert!(kept.is_empty());
        kept.saw_epoch(AuthorisationEpoch(4));
        kept.keep(&[1; 32], "seal", &[7], authorisation(1, 4));
        assert!(kept.is_empty());
    }

    #[test]
    fn the_set_is_bounded() {
        let kept = SigningAuthorisations::default();
        for n in 0..=MAX_ENTRIES {
            let mut hash = [0u8; 32];
            hash[..8].copy_from_slice(&(n as u64).to_be_bytes());
            kept.keep(&hash, "seal", &[7], authorisation(1, 0));
            assert!(kept.len() <= MAX_ENTRIES);
        }
        assert_eq!(kept.len(), 1);
    }

    #[test]
    fn keeping_the_same_read_again_replaces_it() {
        let kept = SigningAuthorisations::default();
        kept.keep(&[1; 32], "seal", &[7], authorisation(1, 3));
        kept.keep(&[1; 32], "seal", &[7], authorisation(9, 3));
        kept.keep(&[1; 32], "seal", &[8], authorisation(1, 3));
        assert_eq!(kept.len(), 2);
        assert_eq!(kept.get(&[1; 32], "seal", &[7]), Some(authorisation(9, 3)));
    }
}
