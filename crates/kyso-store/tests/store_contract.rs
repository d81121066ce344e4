//! The store contract: the same cases run against SQLite and against a throwaway PostgreSQL cluster.

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use kyso_clock::{ManualClock, SharedClock};
use kyso_store::audit::ChainBreakReason;
use kyso_store::postgres::PostgresStore;
use kyso_store::sqlite::SqliteStore;
use kyso_store::*;

const T0: i64 = 1_780_000_000;

/// Raw SQL access under the API, to tamper with rows as an attacker with database access would.
#[derive(Clone)]
enum Backdoor {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

impl Backdoor {
    async fn exec(&self, sql: &'static str) -> u64 {
        let done = match self {
            Backdoor::Sqlite(p) => sqlx::query(sql).execute(p).await.map(|r| r.rows_affected()),
            Backdoor::Postgres(p) => sqlx::query(sql).execute(p).await.map(|r| r.rows_affected()),
        };
        done.expect("tamper statement runs")
    }
}

struct Env {
    store: Arc<dyn Store>,
    backdoor: Backdoor,
    clock: ManualClock,
    /// Opens another handle on the same database (another node).
    url: String,
}

impl Env {
    async fn second_handle(&self) -> Arc<dyn Store> {
        open_with_clock(&self.url, self.clock.shared())
            .await
            .expect("second handle opens")
    }
}

async fn open_env(url: &str) -> Env {
    let clock = ManualClock::at_unix(T0);
    let shared: SharedClock = clock.shared();
    let (store, backdoor): (Arc<dyn Store>, Backdoor) = if url.starts_with("sqlite:") {
        let s = SqliteStore::open(url, shared).await.expect("sqlite opens");
        let b = Backdoor::Sqlite(s.pool().clone());
        (Arc::new(s), b)
    } else {
        let s = PostgresStore::open(url, shared)
            .await
            .expect("postgres opens");
        let b = Backdoor::Postgres(s.pool().clone());
        (Arc::new(s), b)
    };
    Env {
        store,
        backdoor,
        clock,
        url: url.to_owned(),
    }
}

type Case = fn(Env) -> Pin<Box<dyn Future<Output = ()> + Send>>;

macro_rules! cases {
    ($($name:ident),* $(,)?) => {
        const CASES: &[(&str, Case)] = &[$((stringify!($name), |env| Box::pin($name(env)))),*];

        mod sqlite_backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let dir = tempfile::tempdir().expect("temp dir");
                    let url = format!("sqlite://{}?mode=rwc", dir.path().join("kyso.db").display());
                    super::$name(super::open_env(&url).await).await;
                }
            )*
        }
    };
}

cases!(
    certificates_reserve_complete_get,
    certificates_duplicate_serial_rejected,
    certificates_concurrent_reservations_with_duplicates,
    certificates_revoke_hold_release_rules,
    certificates_renewal_link,
    crl_numbers_strictly_increasing,
    crl_numbers_unique_under_concurrency,
    staff_crud,
    api_clients_and_grants,
    signing_authorisation_in_one_read,
    signing_authorisation_epoch_guards_releases,
    audit_concurrent_appends_form_a_valid_chain,
    audit_tampering_is_detected,
    two_handles_share_one_database,
    ping_and_bad_input,
    certificates_complete_audited_both_or_neither,
    certificates_complete_audited_concurrent_chain,
    timestamps_ledger_record_get_count,
    timestamps_same_serial_concurrent_writers,
    verifications_insert_get,
);

/// Every case on PostgreSQL, each in a fresh database of one throwaway cluster.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_backend_contract() {
    let Some(cluster) = kyso_store::testing::postgres_or_skip() else {
        return;
    };
    for (i, (name, case)) in CASES.iter().enumerate() {
        let url = cluster
            .create_database(&format!("contract_{i}"))
            .expect("create database");
        eprintln!("postgres contract case: {name}");
        case(open_env(&url).await).await;
    }
}

#[tokio::test]
async fn sqlite_in_memory_works() {
    let store = open_with_clock("sqlite::memory:", ManualClock::at_unix(T0).shared())
        .await
        .expect("opens");
    seed_cas(&store).await;
    store
        .reserve_certificate(&reservation(&[1; 16], "kyso-issuing"))
        .await
        .expect("reserve");
    assert!(
        store
            .get_certificate(&[1; 16])
            .await
            .expect("get")
            .is_some()
    );
}

#[tokio::test]
async fn open_rejects_unknown_scheme() {
    let err = open("mysql://localhost/x").await.expect_err("unsupported");
    assert_eq!(err.code(), "store_bad_url");
}

// ---- helpers ----

async fn seed_cas(store: &Arc<dyn Store>) {
    store
        .insert_ca(&NewCa {
            name: "kyso-root".into(),
            role: CaRole::Root,
            key: KeyLocation {
                token: "kyso-ca".into(),
                label: "root".into(),
            },
            certificate_der: vec![0x30, 0x01, 0x00],
            parent: None,
        })
        .await
        .expect("root inserted");
    store
        .insert_ca(&NewCa {
            name: "kyso-issuing".into(),
            role: CaRole::Issuing,
            key: KeyLocation {
                token: "kyso-ca".into(),
                label: "issuing".into(),
            },
            certificate_der: vec![0x30, 0x01, 0x01],
            parent: Some("kyso-root".into()),
        })
        .await
        .expect("issuing inserted");
}

fn reservation(serial: &[u8], ca: &str) -> CertificateReservation {
    CertificateReservation {
        serial: serial.to_vec(),
        ca: ca.into(),
        profile: "staff-signing".into(),
        subject: "CN=Nguyễn Văn An".into(),
        staff_id: None,
        key_location: None,
        not_before: T0,
        not_after: T0 + 365 * 86400,
        replaces: None,
    }
}

fn serial(n: u32) -> Vec<u8> {
    let mut s = vec![0x5a; 16];
    s[12..].copy_from_slice(&n.to_be_bytes());
    s
}

async fn issue(store: &Arc<dyn Store>, n: u32, ca: &str) -> Vec<u8> {
    let s = serial(n);
    store
        .reserve_certificate(&reservation(&s, ca))
        .await
        .expect("reserve");
    store
        .complete_certificate(&s, &[0x30, 0x03, 0x02, 0x01, n as u8])
        .await
        .expect("complete");
    s
}

fn staff_fields(name: &str) -> StaffFields {
    StaffFields {
        full_name: name.into(),
        agency: "Sở Tư pháp Thành phố Hồ Chí Minh".into(),
        unit: Some("Phòng Hành chính".into()),
        title: Some("Chuyên viên".into()),
        email: Some("an@stp.hochiminhcity.gov.vn".into()),
        province: Some("Thành phố Hồ Chí Minh".into()),
        locality: None,
        identity_numbers: vec!["CCCD:079123456789".into()],
        token_label: None,
    }
}

fn event(actor: String, n: usize) -> NewAuditEvent {
    NewAuditEvent {
        actor,
        action: "certificate.issue".into(),
        target: format!("serial-{n}"),
        outcome: AuditOutcome::Success,
        details: serde_json::json!({ "n": n, "tên": "Nguyễn" }),
    }
}

// ---- cases ----

async fn certificates_reserve_complete_get(env: Env) {
    let store = env.store;
    seed_cas(&store).await;
    let cas = store.list_cas().await.expect("list cas");
    assert_eq!(
        cas.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
        ["kyso-issuing", "kyso-root"]
    );
    assert_eq!(cas[0].parent.as_deref(), Some("kyso-root"));
    assert_eq!(
        store
            .get_ca("kyso-root")
            .await
            .expect("get ca")
            .map(|c| c.role),
        Some(CaRole::Root)
    );
    let dup = store
        .insert_ca(&NewCa {
            parent: None,
            ..store_ca_copy(&cas[1])
        })
        .await
        .expect_err("dup CA");
    assert_eq!(dup.code(), "already_exists");

    let staff = store
        .create_staff(&staff_fields("Nguyễn Văn An"))
        .await
        .expect("staff");
    let s = serial(1);
    let mut r = reservation(&s, "kyso-issuing");
    r.staff_id = Some(staff.id);
    r.key_location = Some(KeyLocation {
        token: "staff-an".into(),
        label: "signing".into(),
    });
    let reserved = store.reserve_certificate(&r).await.expect("reserve");
    assert_eq!(reserved.der, None);
    assert!(!reserved.is_issued());
    assert_eq!(reserved.status, CertStatus::Good);
    assert_eq!(reserved.created_at, T0);
    let status = store
        .certificate_status(&s)
        .await
        .expect("status")
        .expect("known");
    assert!(!status.issued);
    assert_eq!(status.ca, "kyso-issuing");

    let der = vec![0x30, 0x82, 0x01, 0x00, 0xaa];
    let done = store
        .complete_certificate(&s, &der)
        .await
        .expect("complete");
    assert_eq!(done.der.as_deref(), Some(der.as_slice()));
    let got = store
        .get_certificate(&s)
        .await
        .expect("get")
        .expect("present");
    assert_eq!(got, done);
    assert_eq!(got.key_location, r.key_location);
    assert_eq!(got.staff_id, Some(staff.id));
    assert_eq!(got.subject, "CN=Nguyễn Văn An");
    let status = store
        .certificate_status(&s)
        .await
        .expect("status")
        .expect("known");
    assert!(status.issued);
    assert_eq!(status.status, CertStatus::Good);
    assert_eq!(status.not_after, r.not_after);

    // Retrying the same completion is harmless; a different DER is refused.
    store
        .complete_certificate(&s, &der)
        .await
        .expect("idempotent completion");
    let err = store
        .complete_certificate(&s, &[0x30, 0x00])
        .await
        .expect_err("other DER");
    assert!(
        matches!(err, StoreError::AlreadyCompleted { .. }),
        "{err:?}"
    );
    let err = store
        .complete_certificate(&serial(999), &der)
        .await
        .expect_err("unknown serial");
    assert!(
        matches!(
            err,
            StoreError::NotFound {
                entity: "certificate",
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        store.get_certificate(&serial(999)).await.expect("get"),
        None
    );
    assert_eq!(
        store
            .certificate_status(&serial(999))
            .await
            .expect("status"),
        None
    );

    let err = store
        .reserve_certificate(&reservation(&serial(2), "no-such-ca"))
        .await
        .expect_err("unknown CA");
    assert_eq!(err.code(), "unknown_reference");
    let err = store
        .reserve_certificate(&reservation(&[], "kyso-issuing"))
        .await
        .expect_err("empty serial");
    assert_eq!(err.code(), "invalid_input");
    let err = store
        .reserve_certificate(&reservation(&[1; 21], "kyso-issuing"))
        .await
        .expect_err("long serial");
    assert_eq!(err.code(), "invalid_input");

    // Listing: by CA, by staff, paged in creation order.
    for n in 10..15 {
        env.clock.advance(std::time::Duration::from_secs(1));
        issue(&store, n, "kyso-issuing").await;
    }
    let all = store
        .list_certificates(&CertificateQuery {
            ca: Some("kyso-issuing".into()),
            limit: 100,
            ..Default::default()
        })
        .await
        .expect("list");
    assert_eq!(all.len(), 6);
    assert_eq!(all[0].serial, s);
    let page = store
        .list_certificates(&CertificateQuery {
            ca: Some("kyso-issuing".into()),
            offset: 2,
            limit: 2,
            ..Default::default()
        })
        .await
        .expect("page");
    assert_eq!(
        page.iter().map(|c| c.serial.clone()).collect::<Vec<_>>(),
        [serial(11), serial(12)]
    );
    let by_staff = store
        .list_certificates(&CertificateQuery {
            staff_id: Some(staff.id),
            limit: 100,
            ..Default::default()
        })
        .await
        .expect("by staff");
    assert_eq!(by_staff.len(), 1);
    let root_only = store
        .list_certificates(&CertificateQuery {
            ca: Some("kyso-root".into()),
            limit: 100,
            ..Default::default()
        })
        .await
        .expect("by other CA");
    assert!(root_only.is_empty());
}

fn store_ca_copy(ca: &CaRecord) -> NewCa {
    NewCa {
        name: ca.name.clone(),
        role: ca.role,
        key: ca.key.clone(),
        certificate_der: ca.certificate_der.clone(),
        parent: ca.parent.clone(),
    }
}

async fn certificates_duplicate_serial_rejected(env: Env) {
    let store = env.store;
    seed_cas(&store).await;
    let s = issue(&store, 7, "kyso-issuing").await;
    let err = store
        .reserve_certificate(&reservation(&s, "kyso-root"))
        .await
        .expect_err("duplicate");
    assert!(
        matches!(&err, StoreError::DuplicateSerial { serial } if *serial == hex::encode(&s)),
        "{err:?}"
    );
    assert_eq!(err.code(), "duplicate_serial");
    // The original is untouched.
    let got = store
        .get_certificate(&s)
        .await
        .expect("get")
        .expect("present");
    assert_eq!(got.ca, "kyso-issuing");
    assert!(got.is_issued());
}

async fn certificates_concurrent_reservations_with_duplicates(env: Env) {
    let store = env.store;
    seed_cas(&store).await;
    // Concurrent writes share transactions on SQLite (group commit): a refused one must not take
    // the others down with it.
    let tasks: Vec<_> = (0..40u32)
        .map(|i| {
            let store = store.clone();
            let s = if i < 20 { serial(100 + i) } else { serial(999) };
            tokio::spawn(async move {
                store
                    .reserve_certificate(&reservation(&s, "kyso-issuing"))
                    .await
            })
        })
        .collect();
    let (mut ok, mut duplicate) = (0, 0);
    for t in tasks {
        match t.await.expect("task") {
            Ok(_) => ok += 1,
            Err(StoreError::DuplicateSerial { .. }) => duplicate += 1,
            Err(e) => panic!("unexpected error {e:?}"),
        }
    }
    assert_eq!((ok, duplicate), (21, 19));
    let all = store
        .list_certificates(&CertificateQuery {
            limit: 100,
            ..Default::default()
        })
        .await
        .expect("list");
    assert_eq!(all.len(), 21);
}

async fn certificates_revoke_hold_release_rules(env: Env) {
    let store = env.store;
    seed_cas(&store).await;
    let a = issue(&store, 1, "kyso-issuing").await;
    let b = issue(&store, 2, "kyso-issuing").await;
    let c = issue(&store, 3, "kyso-issuing").await;
    let other_ca = issue(&store, 4, "kyso-root").await;
    store
        .revoke_certificate(&other_ca, RevocationReason::Superseded)
        .await
        .expect("revoke other");

    env.clock.advance(std::time::Duration::from_secs(60));
    let held = store.hold_certificate(&a).await.expect("hold");
    assert_eq!(held.status, CertStatus::Hold);
    assert_eq!(held.revoked_at, Some(T0 + 60));
    assert_eq!(
        held.revocation_reason,
        Some(RevocationReason::CertificateHold)
    );
    let err = store.hold_certificate(&a).await.expect_err("hold twice");
    assert_eq!(err.code(), "already_on_hold");

    let released = store.release_hold(&a).await.expect("release");
    assert_eq!(released.status, CertStatus::Good);
    assert_eq!(released.revoked_at, None);
    assert_eq!(released.revocation_reason, None);
    let err = store.release_hold(&a).await.expect_err("release good");
    assert!(
        matches!(
            err,
            StoreError::NotOnHold {
                status: CertStatus::Good,
                ..
            }
        ),
        "{err:?}"
    );

    // Revoking a held certificate is allowed.
    store.hold_certificate(&a).await.expect("hold again");
    env.clock.advance(std::time::Duration::from_secs(60));
    let revoked = store
        .revoke_certificate(&a, RevocationReason::KeyCompromise)
        .await
        .expect("revoke held");
    assert_eq!(revoked.status, CertStatus::Revoked);
    assert_eq!(revoked.revoked_at, Some(T0 + 120));
    assert_eq!(
        revoked.revocation_reason,
        Some(RevocationReason::KeyCompromise)
    );
    let err = store
        .revoke_certificate(&a, RevocationReason::Unspecified)
        .await
        .expect_err("revoke twice");
    assert!(matches!(err, StoreError::AlreadyRevoked { .. }), "{err:?}");
    let err = store.hold_certificate(&a).await.expect_err("hold revoked");
    assert_eq!(err.code(), "already_revoked");
    let err = store.release_hold(&a).await.expect_err("release revoked");
    assert!(
        matches!(
            err,
            StoreError::NotOnHold {
                status: CertStatus::Revoked,
                ..
            }
        ),
        "{err:?}"
    );
    let err = store
        .revoke_certificate(&serial(404), RevocationReason::Unspecified)
        .await
        .expect_err("unknown");
    assert_eq!(err.code(), "not_found");
    let err = store
        .hold_certificate(&serial(404))
        .await
        .expect_err("unknown");
    assert_eq!(err.code(), "not_found");
    let err = store
        .revoke_certificate(&b, RevocationReason::CertificateHold)
        .await
        .expect_err("hold reason");
    assert_eq!(err.code(), "invalid_input");

    let status = store
        .certificate_status(&a)
        .await
        .expect("status")
        .expect("known");
    assert_eq!(status.status, CertStatus::Revoked);
    assert_eq!(
        status.revocation_reason,
        Some(RevocationReason::KeyCompromise)
    );
    assert_eq!(status.revoked_at, Some(T0 + 120));

    store.hold_certificate(&b).await.expect("hold b");
    let revoked = store
        .list_revoked("kyso-issuing")
        .await
        .expect("revoked list");
    let entries: Vec<_> = revoked
        .iter()
        .map(|e| (e.serial.clone(), e.reason))
        .collect();
    assert_eq!(
        entries,
        [
            (a.clone(), RevocationReason::KeyCompromise),
            (b.clone(), RevocationReason::CertificateHold)
        ],
        "good {c:?} and the other CA's certificate are not listed"
    );
    let root_list = store.list_revoked("kyso-root").await.expect("root list");
    assert_eq!(root_list.len(), 1);
    assert_eq!(root_list[0].serial, other_ca);
}

async fn certificates_renewal_link(env: Env) {
    let store = env.store;
    seed_cas(&store).await;
    let old = issue(&store, 1, "kyso-issuing").await;
    let new = serial(2);
    let mut r = reservation(&new, "kyso-issuing");
    r.replaces = Some(old.clone());
    store
        .reserve_certificate(&r)
        .await
        .expect("reserve renewal");
    // Not linked until the new certificate exists.
    assert_eq!(
        store
            .get_certificate(&old)
            .await
            .expect("get")
            .and_then(|c| c.replaced_by),
        None
    );
    let done = store
        .complete_certificate(&new, &[0x30, 0x00])
        .await
        .expect("complete");
    assert_eq!(done.replaces, Some(old.clone()));
    assert_eq!(
        store
            .get_certificate(&old)
            .await
            .expect("get")
            .and_then(|c| c.replaced_by),
        Some(new)
    );
    let mut bad = reservation(&serial(3), "kyso-issuing");
    bad.replaces = Some(serial(404));
    let err = store
        .reserve_certificate(&bad)
        .await
        .expect_err("unknown replaced");
    assert_eq!(err.code(), "unknown_reference");
}

async fn crl_numbers_strictly_increasing(env: Env) {
    let store = env.store;
    seed_cas(&store).await;
    assert_eq!(
        store.latest_crl("kyso-issuing").await.expect("latest"),
        None
    );
    let n1 = store.allocate_crl_number("kyso-issuing").await.expect("n1");
    let n2 = store.allocate_crl_number("kyso-issuing").await.expect("n2");
    let r1 = store
        .allocate_crl_number("kyso-root")
        .await
        .expect("root n1");
    assert_eq!((n1, n2, r1), (1, 2, 1));
    let crl = |number| NewCrl {
        ca: "kyso-issuing".into(),
        number,
        this_update: T0,
        next_update: T0 + 86400,
        der: vec![0x30, 0x01, number as u8],
    };
    let stored = store.store_crl(&crl(n2)).await.expect("store n2");
    assert_eq!(stored.number, 2);
    let err = store.store_crl(&crl(n1)).await.expect_err("older number");
    assert!(
        matches!(
            err,
            StoreError::CrlNumberNotIncreasing {
                number: 1,
                latest: 2,
                ..
            }
        ),
        "{err:?}"
    );
    let err = store.store_crl(&crl(n2)).await.expect_err("same number");
    assert_eq!(err.code(), "crl_number_not_increasing");
    let err = store
        .store_crl(&crl(99))
        .await
        .expect_err("never allocated");
    assert_eq!(err.code(), "invalid_input");
    let n3 = store.allocate_crl_number("kyso-issuing").await.expect("n3");
    assert_eq!(n3, 3);
    store.store_crl(&crl(n3)).await.expect("store n3");
    let latest = store
        .latest_crl("kyso-issuing")
        .await
        .expect("latest")
        .expect("present");
    assert_eq!(latest.number, 3);
    assert_eq!(latest.der, vec![0x30, 0x01, 3]);
    assert_eq!(latest.next_update, T0 + 86400);
    assert_eq!(
        store.latest_crl("kyso-root").await.expect("latest root"),
        None
    );
    let err = store
        .allocate_crl_number("no-such-ca")
        .await
        .expect_err("unknown CA");
    assert_eq!(err.code(), "unknown_reference");
}

async fn crl_numbers_unique_under_concurrency(env: Env) {
    let store = env.store;
    seed_cas(&store).await;
    let second = env_second(&env.url, &env.clock).await;
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            // Half the tasks go through another handle: another node on the same database.
            let store = if i % 2 == 0 {
                store.clone()
            } else {
                second.clone()
            };
            tokio::spawn(async move { store.allocate_crl_number("kyso-issuing").await })
        })
        .collect();
    let mut numbers = BTreeSet::new();
    for t in tasks {
        let n = t.await.expect("task").expect("allocate");
        assert!(numbers.insert(n), "number {n} allocated twice");
    }
    assert_eq!(numbers, (1..=20).collect::<BTreeSet<i64>>());
    assert_eq!(
        store
            .allocate_crl_number("kyso-issuing")
            .await
            .expect("next"),
        21
    );
}

async fn env_second(url: &str, clock: &ManualClock) -> Arc<dyn Store> {
    open_with_clock(url, clock.shared())
        .await
        .expect("second handle")
}

async fn staff_crud(env: Env) {
    let store = env.store;
    let an = store
        .create_staff(&staff_fields("Nguyễn Văn An"))
        .await
        .expect("create");
    let binh = store
        .create_staff(&staff_fields("Trần Thị Bình"))
        .await
        .expect("create");
    assert!(an.active);
    assert_eq!(an.created_at, T0);
    assert_eq!(an.updated_at, T0);
    assert_ne!(an.id, binh.id);
    let got = store.get_staff(an.id).await.expect("get").expect("present");
    assert_eq!(got, an);
    assert_eq!(got.fields.identity_numbers, ["CCCD:079123456789"]);

    env.clock.advance(std::time::Duration::from_secs(30));
    let mut fields = an.fields.clone();
    fields.title = Some("Phó Trưởng phòng".into());
    fields.identity_numbers.push("MST:0301234567".into());
    fields.token_label = Some("staff-an".into());
    let updated = store.update_staff(an.id, &fields).await.expect("update");
    assert_eq!(updated.fields, fields);
    assert_eq!(updated.created_at, T0);
    assert_eq!(updated.updated_at, T0 + 30);
    let inactive = store
        .set_staff_active(an.id, false)
        .await
        .expect("deactivate");
    assert!(!inactive.active);
    assert_eq!(
        store.get_staff(an.id).await.expect("get").map(|s| s.active),
        Some(false)
    );

    let all = store.list_staff(0, 100).await.expect("list");
    assert_eq!(
        all.iter().map(|s| s.id).collect::<Vec<_>>(),
        [an.id, binh.id]
    );
    let second_page = store.list_staff(1, 1).await.expect("page");
    assert_eq!(
        second_page.iter().map(|s| s.id).collect::<Vec<_>>(),
        [binh.id]
    );

    assert_eq!(store.get_staff(9999).await.expect("get"), None);
    let err = store
        .update_staff(9999, &fields)
        .await
        .expect_err("unknown");
    assert_eq!(err.code(), "not_found");
    let err = store
        .set_staff_active(9999, true)
        .await
        .expect_err("unknown");
    assert_eq!(err.code(), "not_found");
    let err = store
        .create_staff(&StaffFields {
            full_name: " ".into(),
            ..staff_fields("x")
        })
        .await
        .expect_err("empty");
    assert_eq!(err.code(), "invalid_input");
}

async fn api_clients_and_grants(env: Env) {
    let store = env.store;
    let hash_a = [0xa1; 32].to_vec();
    let hash_b = [0xb2; 32].to_vec();
    let a = store
        .create_api_client(&NewApiClient {
            name: "Hệ thống quản lý văn bản".into(),
            role: ClientRole::Client,
            key_hash: hash_a.clone(),
            key_prefix: "kyso_ab12".into(),
        })
        .await
        .expect("create a");
    let admin = store
        .create_api_client(&NewApiClient {
            name: "admin".into(),
            role: ClientRole::Admin,
            key_hash: hash_b.clone(),
            key_prefix: "kyso_cd34".into(),
        })
        .await
        .expect("create admin");
    assert_eq!(a.disabled_at, None);
    assert_eq!(a.created_at, T0);
    let err = store
        .create_api_client(&NewApiClient {
            name: "dup".into(),
            role: ClientRole::Auditor,
            key_hash: hash_a.clone(),
            key_prefix: "x".into(),
        })
        .await
        .expect_err("duplicate hash");
    assert_eq!(err.code(), "already_exists");
    assert!(
        !err.to_string().contains(&hex::encode(&hash_a)),
        "the hash is not echoed"
    );
    let err = store
        .create_api_client(&NewApiClient {
            name: "short".into(),
            role: ClientRole::Officer,
            key_hash: vec![1; 5],
            key_prefix: "x".into(),
        })
        .await
        .expect_err("short hash");
    assert_eq!(err.code(), "invalid_input");

    let found = store
        .find_active_api_client(&hash_a)
        .await
        .expect("find")
        .expect("active");
    assert_eq!(found.id, a.id);
    assert_eq!(found.role, ClientRole::Client);
    assert_eq!(
        store
            .find_active_api_client(&[0xcc; 32])
            .await
            .expect("find"),
        None
    );
    assert_eq!(
        store.find_active_api_client(b"short").await.expect("find"),
        None
    );

    env.clock.advance(std::time::Duration::from_secs(5));
    store.touch_api_client(a.id).await.expect("touch");
    assert_eq!(
        store
            .get_api_client(a.id)
            .await
            .expect("get")
            .and_then(|c| c.last_used_at),
        Some(T0 + 5)
    );
    assert_eq!(
        store
            .touch_api_client(9999)
            .await
            .expect_err("unknown")
            .code(),
        "not_found"
    );

    store.grant_key(a.id, "seal-stp").await.expect("grant");
    store
        .grant_key(a.id, "seal-stp")
        .await
        .expect("grant twice is fine");
    store.grant_key(a.id, "officer-an").await.expect("grant");
    assert_eq!(
        store.list_key_grants(a.id).await.expect("grants"),
        ["officer-an", "seal-stp"]
    );
    assert!(store.has_key_grant(a.id, "seal-stp").await.expect("has"));
    assert!(
        !store
            .has_key_grant(admin.id, "seal-stp")
            .await
            .expect("has")
    );
    assert!(
        store
            .revoke_key_grant(a.id, "seal-stp")
            .await
            .expect("revoke")
    );
    assert!(
        !store
            .revoke_key_grant(a.id, "seal-stp")
            .await
            .expect("revoke again")
    );
    assert!(!store.has_key_grant(a.id, "seal-stp").await.expect("has"));
    assert_eq!(
        store
            .grant_key(9999, "k")
            .await
            .expect_err("unknown client")
            .code(),
        "unknown_reference"
    );

    env.clock.advance(std::time::Duration::from_secs(5));
    let disabled = store.disable_api_client(a.id).await.expect("disable");
    assert_eq!(disabled.disabled_at, Some(T0 + 10));
    env.clock.advance(std::time::Duration::from_secs(5));
    let again = store.disable_api_client(a.id).await.expect("disable twice");
    assert_eq!(again.disabled_at, Some(T0 + 10), "first disable time kept");
    assert_eq!(
        store.find_active_api_client(&hash_a).await.expect("find"),
        None
    );
    assert!(
        store
            .find_active_api_client(&hash_b)
            .await
            .expect("find")
            .is_some()
    );
    let all = store.list_api_clients().await.expect("list");
    assert_eq!(
        all.iter().map(|c| c.id).collect::<Vec<_>>(),
        [a.id, admin.id]
    );
    assert_eq!(
        store
            .disable_api_client(9999)
            .await
            .expect_err("unknown")
            .code(),
        "not_found"
    );
}

async fn signing_authorisation_in_one_read(env: Env) {
    let store = env.store;
    seed_cas(&store).await;
    let client = store
        .create_api_client(&NewApiClient {
            name: "Hệ thống một cửa".into(),
            role: ClientRole::Client,
            key_hash: [0xc3; 32].to_vec(),
            key_prefix: "kyso_ef56".into(),
        })
        .await
        .expect("client");
    let other = store
        .create_api_client(&NewApiClient {
            name: "other".into(),
            role: ClientRole::Client,
            key_hash: [0xd4; 32].to_vec(),
            key_prefix: "kyso_gh78".into(),
        })
        .await
        .expect("other client");
    let issued = issue(&store, 1, "kyso-issuing").await;
    let reserved = serial(2);
    store
        .reserve_certificate(&reservation(&reserved, "kyso-issuing"))
        .await
        .expect("reserve");
    let unknown = serial(3);
    let hash_of = |client_id: i64| {
        if client_id == client.id {
            vec![0xc3; 32]
        } else {
            vec![0xd4; 32]
        }
    };
    let authorise = |key_hash: Vec<u8>, key: &'static str, serial: Vec<u8>| {
        let store = store.clone();
        async move {
            store
                .authorise_signing(&key_hash, key, &serial)
                .await
                .expect("read")
        }
    };
    let read = |client_id: i64, key: &'static str, serial: Vec<u8>| {
        let authorised = authorise(hash_of(client_id), key, serial);
        async move { authorised.await.expect("an active client").grant }
    };
    // Each part answers what its own method answers: the client, granted or not, known serial
    // or not.
    let epoch = authorise(hash_of(client.id), "seal-stp", issued.clone())
        .await
        .expect("an active client")
        .epoch;
    for (client_id, key) in [(client.id, "seal-stp"), (other.id, "seal-stp")] {
        for serial in [&issued, &reserved, &unknown] {
            assert_eq!(
                authorise(hash_of(client_id), key, serial.clone()).await,
                Some(SigningAuthorisation {
                    epoch,
                    client: store
                        .find_active_api_client(&hash_of(client_id))
                        .await
                        .expect("find")
                        .expect("active"),
                    grant: KeyGrantAndStatus {
                        granted: store.has_key_grant(client_id, key).await.expect("has"),
                        certificate: store.certificate_status(serial).await.expect("status"),
                    },
                })
            );
        }
    }
    // No active client with that key: an unknown or malformed hash.
    assert_eq!(
        authorise(vec![0xee; 32], "seal-stp", issued.clone()).await,
        None
    );
    assert_eq!(
        authorise(vec![0xc3; 5], "seal-stp", issued.clone()).await,
        None
    );
    store.grant_key(client.id, "seal-stp").await.expect("grant");
    let both = read(client.id, "seal-stp", issued.clone()).await;
    assert!(both.granted);
    let status = both.certificate.expect("known serial");
    assert_eq!(status.status, CertStatus::Good);
    assert!(status.issued);
    assert_eq!(status.ca, "kyso-issuing");
    assert_eq!(status.not_after, T0 + 365 * 86400);
    assert!(
        !read(client.id, "seal-stp", reserved.clone())
            .await
            .certificate
            .expect("reserved serial")
            .issued
    );
    assert_eq!(
        read(client.id, "seal-stp", unknown.clone()).await,
        KeyGrantAndStatus {
            granted: true,
            certificate: None
        }
    );
    assert!(!read(other.id, "seal-stp", issued.clone()).await.granted);
    assert!(!read(client.id, "officer-an", issued.clone()).await.granted);

    // A revocation and a withdrawn grant count at the very next read.
    env.clock.advance(std::time::Duration::from_secs(7));
    store
        .revoke_certificate(&issued, RevocationReason::KeyCompromise)
        .await
        .expect("revoke");
    let revoked = read(client.id, "seal-stp", issued.clone())
        .await
        .certificate
        .expect("known");
    assert_eq!(revoked.status, CertStatus::Revoked);
    assert_eq!(revoked.revoked_at, Some(T0 + 7));
    assert_eq!(
        revoked.revocation_reason,
        Some(RevocationReason::KeyCompromise)
    );
    assert_eq!(
        Some(revoked),
        store.certificate_status(&issued).await.expect("status")
    );
    assert!(
        store
            .revoke_key_grant(client.id, "seal-stp")
            .await
            .expect("withdraw")
    );
    assert!(!read(client.id, "seal-stp", issued.clone()).await.granted);
    // So does a disabled client.
    store.disable_api_client(other.id).await.expect("disable");
    assert_eq!(
        authorise(hash_of(other.id), "seal-stp", issued.clone()).await,
        None
    );
    assert!(
        authorise(hash_of(client.id), "seal-stp", issued.clone())
            .await
            .is_some()
    );

    // A malformed serial is refused as certificate_status refuses it.
    assert_eq!(
        store
            .authorise_signing(&hash_of(client.id), "seal-stp", &[])
            .await
            .expect_err("empty serial")
            .code(),
        store
            .certificate_status(&[])
            .await
            .expect_err("empty serial")
            .code()
    );
}

async fn signing_authorisation_epoch_guards_releases(env: Env) {
    let store = env.store.clone();
    let other_node = env.second_handle().await;
    seed_cas(&store).await;
    let client = store
        .create_api_client(&NewApiClient {
            name: "Cổng dịch vụ công".into(),
            role: ClientRole::Client,
            key_hash: [0xe5; 32].to_vec(),
            key_prefix: "kyso_ij90".into(),
        })
        .await
        .expect("client");
    let issued = issue(&store, 1, "kyso-issuing").await;
    let epoch = || {
        let store = store.clone();
        let serial = issued.clone();
        async move {
            store
                .authorise_signing(&[0xe5; 32], "seal-stp", &serial)
                .await
                .expect("read")
                .expect("an active client")
                .epoch
        }
    };
    let release = |n: usize| event(format!("client:{}", client.id), n);
    let start = epoch().await;

    // Additions, a use and a hold released leave the epoch alone.
    store.grant_key(client.id, "seal-stp").await.expect("grant");
    store.touch_api_client(client.id).await.expect("touch");
    let second = issue(&store, 2, "kyso-issuing").await;
    assert_eq!(epoch().await, start);
    // A release at the epoch it was read at is written as any record is.
    let written = store
        .append_audit_authorised(&release(1), start)
        .await
        .expect("released");
    assert_eq!(written.seq, 1);

    // Every withdrawal advances it, from any node.
    store.hold_certificate(&second).await.expect("hold");
    let after_hold = epoch().await;
    assert!(after_hold > start);
    store.release_hold(&second).await.expect("release");
    assert_eq!(epoch().await, after_hold);
    other_node
        .revoke_certificate(&second, RevocationReason::Superseded)
        .await
        .expect("revoke on the other node");
    let after_revoke = epoch().await;
    assert!(after_revoke > after_hold);
    let other = store
        .create_api_client(&NewApiClient {
            name: "other".into(),
            role: ClientRole::Client,
            key_hash: [0xf6; 32].to_vec(),
            key_prefix: "kyso_kl12".into(),
        })
        .await
        .expect("other client");
    store.grant_key(other.id, "seal-stp").await.expect("grant");
    assert_eq!(epoch().await, after_revoke);
    other_node
        .revoke_key_grant(other.id, "seal-stp")
        .await
        .expect("withdraw");
    let after_withdrawal = epoch().await;
    assert!(after_withdrawal > after_revoke);
    other_node
        .disable_api_client(other.id)
        .await
        .expect("disable");
    let now = epoch().await;
    assert!(now > after_withdrawal);

    // A release read before a withdrawal is refused, on either node, and writes nothing.
    for node in [&store, &other_node] {
        let refused = node
            .append_audit_authorised(&release(2), start)
            .await
            .expect_err("stale");
        assert_eq!(refused.code(), "authorisation_changed");
        assert!(refused.is_refusal());
        match refused {
            StoreError::AuthorisationChanged { expected, current } => {
                assert_eq!((expected, current), (start.0, now.0));
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(store.list_audit(1, 100).await.expect("list").len(), 1);
    // Read again, it is released, and the chain holds.
    let written = other_node
        .append_audit_authorised(&release(3), now)
        .await
        .expect("released");
    assert_eq!(written.seq, 2);
    let records = store.list_audit(1, 100).await.expect("list");
    assert_eq!(verify_chain(&records), Ok(()));
}

async fn audit_concurrent_appends_form_a_valid_chain(env: Env) {
    let store = env.store;
    let second = env_second(&env.url, &env.clock).await;
    let tasks: Vec<_> = (0..4)
        .map(|t| {
            let store = if t % 2 == 0 {
                store.clone()
            } else {
                second.clone()
            };
            tokio::spawn(async move {
                for n in 0..25 {
                    store
                        .append_audit(&event(format!("task-{t}"), n))
                        .await
                        .expect("append");
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("task");
    }
    let mut records = store.list_audit(1, 60).await.expect("first page");
    records.extend(store.list_audit(61, 1000).await.expect("second page"));
    assert_eq!(
        records.iter().map(|r| r.seq).collect::<Vec<_>>(),
        (1..=100).collect::<Vec<i64>>()
    );
    assert_eq!(records[0].prev_hash, vec![0; 32]);
    assert_eq!(verify_chain(&records), Ok(()));
    for t in 0..4 {
        assert_eq!(
            records
                .iter()
                .filter(|r| r.actor == format!("task-{t}"))
                .count(),
            25
        );
    }
    // Page-wise verification agrees.
    let mut v = ChainVerifier::new();
    for page_start in [1, 41, 81] {
        for r in store.list_audit(page_start, 40).await.expect("page") {
            v.push(&r).expect("page verifies");
        }
    }
    assert_eq!(v.expected_seq(), 101);
}

async fn audit_tampering_is_detected(env: Env) {
    let store = env.store;
    for n in 0..10 {
        let r = store
            .append_audit(&event("officer:1".into(), n))
            .await
            .expect("append");
        assert_eq!(r.seq, n as i64 + 1);
        assert_eq!(r.at, T0);
    }
    let first = store.list_audit(1, 1).await.expect("list");
    assert_eq!(first[0].details, r#"{"n":0,"tên":"Nguyễn"}"#);
    assert_eq!(
        verify_chain(&store.list_audit(1, 100).await.expect("list")),
        Ok(())
    );

    assert_eq!(
        env.backdoor
            .exec("UPDATE audit_log SET target = 'forged' WHERE seq = 4")
            .await,
        1
    );
    assert_eq!(
        env.backdoor
            .exec("UPDATE audit_log SET actor = 'forged' WHERE seq = 7")
            .await,
        1
    );
    let records = store.list_audit(1, 100).await.expect("list");
    let err = verify_chain(&records).expect_err("tampered");
    assert_eq!(err.seq, 4, "first broken record reported");
    assert_eq!(err.reason, ChainBreakReason::BadHash);

    // A deleted record shows as a gap.
    assert_eq!(
        env.backdoor
            .exec("DELETE FROM audit_log WHERE seq = 2")
            .await,
        1
    );
    let records = store.list_audit(1, 100).await.expect("list");
    let err = verify_chain(&records).expect_err("gap");
    assert_eq!(
        (err.seq, err.reason),
        (3, ChainBreakReason::SeqGap { expected: 2 })
    );
}

async fn two_handles_share_one_database(env: Env) {
    let node_a = env.store.clone();
    let node_b = env.second_handle().await;
    seed_cas(&node_a).await;
    // Issue on one node, revoke on the other, status via either.
    let s = issue(&node_a, 1, "kyso-issuing").await;
    assert_eq!(
        node_b
            .certificate_status(&s)
            .await
            .expect("status")
            .map(|st| st.status),
        Some(CertStatus::Good)
    );
    node_b
        .revoke_certificate(&s, RevocationReason::AffiliationChanged)
        .await
        .expect("revoke on b");
    for node in [&node_a, &node_b] {
        let st = node
            .certificate_status(&s)
            .await
            .expect("status")
            .expect("known");
        assert_eq!(st.status, CertStatus::Revoked);
        assert_eq!(
            st.revocation_reason,
            Some(RevocationReason::AffiliationChanged)
        );
    }
    let err = node_a
        .revoke_certificate(&s, RevocationReason::Unspecified)
        .await
        .expect_err("already");
    assert_eq!(err.code(), "already_revoked");
    // Audit appends from both nodes form one chain.
    node_a
        .append_audit(&event("node-a".into(), 1))
        .await
        .expect("append a");
    let r = node_b
        .append_audit(&event("node-b".into(), 2))
        .await
        .expect("append b");
    assert_eq!(r.seq, 2);
    assert_eq!(
        verify_chain(&node_a.list_audit(1, 10).await.expect("list")),
        Ok(())
    );
    // Staff written on one node is read on the other.
    let staff = node_b
        .create_staff(&staff_fields("Lê Văn Cường"))
        .await
        .expect("staff");
    assert_eq!(
        node_a.get_staff(staff.id).await.expect("get").map(|s| s.id),
        Some(staff.id)
    );
}

async fn ping_and_bad_input(env: Env) {
    let store = env.store;
    store.ping().await.expect("ping");
    assert!(matches!(store.backend(), "sqlite" | "postgres"));
    seed_cas(&store).await;
    let long = "x".repeat(MAX_TEXT_LEN + 1);
    let mut r = reservation(&serial(1), "kyso-issuing");
    r.subject = long.clone();
    assert_eq!(
        store
            .reserve_certificate(&r)
            .await
            .expect_err("long subject")
            .code(),
        "invalid_input"
    );
    let mut r = reservation(&serial(1), "kyso-issuing");
    r.not_after = r.not_before - 1;
    assert_eq!(
        store
            .reserve_certificate(&r)
            .await
            .expect_err("inverted validity")
            .code(),
        "invalid_input"
    );
    let big = NewAuditEvent {
        details: serde_json::Value::String("y".repeat(MAX_AUDIT_DETAILS_LEN + 1)),
        ..event("a".into(), 0)
    };
    assert_eq!(
        store
            .append_audit(&big)
            .await
            .expect_err("big details")
            .code(),
        "invalid_input"
    );
    // Nothing was appended by the refused call.
    assert!(store.list_audit(1, 10).await.expect("list").is_empty());
    // Clamped limits.
    assert!(
        store
            .list_staff(0, 0)
            .await
            .expect("limit 0 clamps to 1")
            .is_empty()
    );
}

// ---- issue 3: audited completion, time-stamp ledger, verification reports ----

fn issue_event(serial: &[u8]) -> NewAuditEvent {
    NewAuditEvent {
        actor: "client:1".into(),
        action: "certificate.issue".into(),
        target: hex::encode(serial),
        outcome: AuditOutcome::Success,
        details: serde_json::json!({ "profile": "staff-signing" }),
    }
}

async fn certificates_complete_audited_both_or_neither(env: Env) {
    let store = env.store.clone();
    seed_cas(&store).await;
    let s = serial(1);
    let der = vec![0x30, 0x03, 0x02, 0x01, 0x01];
    let reserved = store
        .reserve_certificate(&reservation(&s, "kyso-issuing"))
        .await
        .expect("reserve");
    assert_eq!(
        store.get_certificate(&s).await.expect("get"),
        Some(reserved.clone()),
        "the reservation record is what was stored"
    );
    let (cert, audit) = store
        .complete_certificate_audited(&s, &der, &issue_event(&s))
        .await
        .expect("complete audited");
    assert_eq!(cert.der.as_deref(), Some(der.as_slice()));
    assert_eq!(
        store.get_certificate(&s).await.expect("get"),
        Some(cert.clone())
    );
    assert_eq!((audit.seq, audit.at), (1, T0));
    assert_eq!(audit.target, hex::encode(&s));
    assert_eq!(store.list_audit(1, 10).await.expect("list"), vec![audit]);

    // Refused completions add no audit record.
    let err = store
        .complete_certificate_audited(&serial(404), &der, &issue_event(&serial(404)))
        .await
        .expect_err("unknown serial");
    assert_eq!(err.code(), "not_found");
    let err = store
        .complete_certificate_audited(&s, &[0x30, 0x00], &issue_event(&s))
        .await
        .expect_err("other DER");
    assert_eq!(err.code(), "already_completed");
    assert_eq!(store.list_audit(1, 10).await.expect("list").len(), 1);

    // An invalid event is refused before the completion runs.
    let s2 = serial(2);
    store
        .reserve_certificate(&reservation(&s2, "kyso-issuing"))
        .await
        .expect("reserve 2");
    let big = NewAuditEvent {
        details: serde_json::Value::String("y".repeat(MAX_AUDIT_DETAILS_LEN + 1)),
        ..issue_event(&s2)
    };
    let err = store
        .complete_certificate_audited(&s2, &der, &big)
        .await
        .expect_err("big details");
    assert_eq!(err.code(), "invalid_input");
    assert!(
        !store
            .get_certificate(&s2)
            .await
            .expect("get")
            .expect("present")
            .is_issued()
    );

    // A failing audit append (the head is made to point at an existing seq, so the INSERT collides)
    // takes the completion down with it.
    assert_eq!(
        env.backdoor
            .exec("UPDATE audit_head SET last_seq = 0")
            .await,
        1
    );
    let err = store
        .complete_certificate_audited(&s2, &der, &issue_event(&s2))
        .await
        .expect_err("audit insert collides");
    assert!(!err.is_refusal(), "{err:?}");
    assert!(
        !store
            .get_certificate(&s2)
            .await
            .expect("get")
            .expect("present")
            .is_issued(),
        "completion rolled back with the failed audit append"
    );
    assert_eq!(store.list_audit(1, 10).await.expect("list").len(), 1);
    assert_eq!(
        env.backdoor
            .exec(
                "UPDATE audit_head SET last_seq = 1, \
                 last_hash = (SELECT hash FROM audit_log WHERE seq = 1)"
            )
            .await,
        1
    );

    // Renewal link, then an idempotent retry (same DER), which is audited again.
    let s3 = serial(3);
    let mut r = reservation(&s3, "kyso-issuing");
    r.replaces = Some(s2.clone());
    store.reserve_certificate(&r).await.expect("reserve 3");
    store
        .complete_certificate(&s2, &der)
        .await
        .expect("complete 2");
    let (renewed, _) = store
        .complete_certificate_audited(&s3, &der, &issue_event(&s3))
        .await
        .expect("complete 3");
    assert_eq!(renewed.replaces, Some(s2.clone()));
    assert_eq!(
        store
            .get_certificate(&s2)
            .await
            .expect("get")
            .and_then(|c| c.replaced_by),
        Some(s3.clone())
    );
    let (again, audit) = store
        .complete_certificate_audited(&s3, &der, &issue_event(&s3))
        .await
        .expect("retry with the same DER");
    assert_eq!(again, renewed);
    assert_eq!(audit.seq, 3);
    let records = store.list_audit(1, 10).await.expect("list");
    assert_eq!(records.len(), 3);
    assert_eq!(verify_chain(&records), Ok(()));
}

async fn certificates_complete_audited_concurrent_chain(env: Env) {
    let store = env.store.clone();
    let second = env.second_handle().await;
    seed_cas(&store).await;
    // Issuances (some refused: unknown serials) on two handles, interleaved with plain appends, all
    // sharing group-commit batches on SQLite.
    let tasks: Vec<_> = (0..60u32)
        .map(|i| {
            let node = if i % 2 == 0 {
                store.clone()
            } else {
                second.clone()
            };
            tokio::spawn(async move {
                let s = serial(1000 + i);
                match i % 3 {
                    0 => node
                        .append_audit(&event(format!("plain-{i}"), i as usize))
                        .await
                        .map(|_| "plain"),
                    1 => node
                        .complete_certificate_audited(&s, &[0x30, 0x00], &issue_event(&s))
                        .await
                        .map(|_| "unexpected"),
                    _ => {
                        node.reserve_certificate(&reservation(&s, "kyso-issuing"))
                            .await?;
                        node.complete_certificate_audited(&s, &[0x30, 0x01, 0x05], &issue_event(&s))
                            .await
                            .map(|_| "issued")
                    }
                }
            })
        })
        .collect();
    let (mut plain, mut issued, mut not_found) = (0, 0, 0);
    for t in tasks {
        match t.await.expect("task") {
            Ok("plain") => plain += 1,
            Ok("issued") => issued += 1,
            Err(StoreError::NotFound { .. }) => not_found += 1,
            other => panic!("unexpected outcome {other:?}"),
        }
    }
    assert_eq!((plain, issued, not_found), (20, 20, 20));
    let records = store.list_audit(1, 1000).await.expect("list");
    assert_eq!(records.len(), 40);
    assert_eq!(verify_chain(&records), Ok(()));
    let issued_targets: BTreeSet<String> = records
        .iter()
        .filter(|r| r.actor == "client:1")
        .map(|r| r.target.clone())
        .collect();
    assert_eq!(issued_targets.len(), 20);
    for target in issued_targets {
        let s = hex::decode(&target).expect("hex target");
        assert!(
            store
                .get_certificate(&s)
                .await
                .expect("get")
                .expect("present")
                .is_issued()
        );
    }
}

fn timestamp(serial: &[u8]) -> NewTimestamp {
    NewTimestamp {
        serial: serial.to_vec(),
        gen_time_micros: T0 * 1_000_000 + 123_456,
        policy: "1.3.6.1.4.1.99999.1.1".into(),
        hash_algorithm: "sha256".into(),
        message_imprint: vec![0xab; 32],
        nonce: Some(vec![0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08]),
        token_sha256: vec![0xcd; 32],
        tsa_key: "kyso-tsa".into(),
    }
}

async fn timestamps_ledger_record_get_count(env: Env) {
    let store = env.store;
    assert_eq!(store.count_timestamps().await.expect("count"), 0);
    let first = timestamp(&[0x7f; 16]);
    let recorded = store.record_timestamp(&first).await.expect("record");
    assert_eq!(recorded.created_at, T0);
    assert_eq!(recorded.gen_time_micros, first.gen_time_micros);
    assert_eq!(
        store.get_timestamp(&first.serial).await.expect("get"),
        Some(recorded.clone())
    );
    // A certificate with the same serial is another namespace.
    seed_cas(&store).await;
    store
        .reserve_certificate(&reservation(&first.serial, "kyso-issuing"))
        .await
        .expect("certificate serials are separate");
    let mut second = timestamp(&[0x01; 17]);
    second.nonce = None;
    second.hash_algorithm = "2.16.840.1.101.3.4.2.3".into();
    second.message_imprint = vec![0x11; 64];
    let recorded_second = store.record_timestamp(&second).await.expect("record 2");
    assert_eq!(
        store.get_timestamp(&second.serial).await.expect("get"),
        Some(recorded_second)
    );
    assert_eq!(store.count_timestamps().await.expect("count"), 2);

    let err = store
        .record_timestamp(&NewTimestamp {
            token_sha256: vec![0xee; 32],
            ..first.clone()
        })
        .await
        .expect_err("duplicate");
    assert!(
        matches!(&err, StoreError::DuplicateSerial { serial } if *serial == hex::encode(&first.serial)),
        "{err:?}"
    );
    assert_eq!(
        store.get_timestamp(&first.serial).await.expect("get"),
        Some(recorded),
        "the original is untouched"
    );
    assert_eq!(store.get_timestamp(&[0x02; 16]).await.expect("get"), None);

    let bad: [(&str, NewTimestamp); 7] = [
        (
            "empty serial",
            NewTimestamp {
                serial: vec![],
                ..first.clone()
            },
        ),
        (
            "long serial",
            NewTimestamp {
                serial: vec![1; MAX_SERIAL_LEN + 1],
                ..first.clone()
            },
        ),
        (
            "policy",
            NewTimestamp {
                policy: "1..2".into(),
                ..first.clone()
            },
        ),
        (
            "hash algorithm",
            NewTimestamp {
                hash_algorithm: " ".into(),
                ..first.clone()
            },
        ),
        (
            "imprint",
            NewTimestamp {
                message_imprint: vec![0; MAX_IMPRINT_LEN + 1],
                ..first.clone()
            },
        ),
        (
            "nonce",
            NewTimestamp {
                nonce: Some(vec![]),
                ..first.clone()
            },
        ),
        (
            "token hash",
            NewTimestamp {
                token_sha256: vec![0; 31],
                ..first.clone()
            },
        ),
    ];
    for (what, ts) in bad {
        let err = store.record_timestamp(&ts).await.expect_err(what);
        assert_eq!(err.code(), "invalid_input", "{what}: {err:?}");
    }
    assert_eq!(store.count_timestamps().await.expect("count"), 2);
}

async fn timestamps_same_serial_concurrent_writers(env: Env) {
    let node_a = env.store.clone();
    let node_b = env.second_handle().await;
    // 30 serials, each written by two nodes at once (and once more by a third task on node a).
    let tasks: Vec<_> = (0..90u32)
        .map(|i| {
            let node = if i % 2 == 0 {
                node_a.clone()
            } else {
                node_b.clone()
            };
            let s = serial(i % 30);
            tokio::spawn(async move {
                let mut ts = timestamp(&s);
                ts.token_sha256 = vec![i as u8; 32];
                node.record_timestamp(&ts).await
            })
        })
        .collect();
    let mut winners = BTreeSet::new();
    let mut duplicates = 0;
    for t in tasks {
        match t.await.expect("task") {
            Ok(r) => assert!(winners.insert(r.serial), "two successes for one serial"),
            Err(StoreError::DuplicateSerial { .. }) => duplicates += 1,
            Err(e) => panic!("unexpected error {e:?}"),
        }
    }
    assert_eq!((winners.len(), duplicates), (30, 60));
    assert_eq!(node_b.count_timestamps().await.expect("count"), 30);
}

async fn verifications_insert_get(env: Env) {
    let store = env.store;
    let client = store
        .create_api_client(&NewApiClient {
            name: "Cổng dịch vụ công".into(),
            role: ClientRole::Client,
            key_hash: vec![0x3c; 32],
            key_prefix: "kyso_vf01".into(),
        })
        .await
        .expect("client");
    let report = NewVerification {
        id: "01J9ZQ4X7K3M5N8P2R6T0V1W3Y".into(),
        created_at: T0 + 5,
        client_id: Some(client.id),
        indication: "TOTAL-PASSED".into(),
        report_json: r#"{"indication":"TOTAL-PASSED","chữ ký":1}"#.into(),
        receipt_der: vec![0x30, 0x82, 0x01, 0x00],
    };
    let stored = store.insert_verification(&report).await.expect("insert");
    assert_eq!(
        (stored.id.as_str(), stored.created_at, stored.client_id),
        (report.id.as_str(), T0 + 5, Some(client.id))
    );
    assert_eq!(
        store.get_verification(&report.id).await.expect("get"),
        Some(stored)
    );
    let anonymous = NewVerification {
        id: "5f0c1d2e-3a4b-4c5d-8e9f-0a1b2c3d4e5f".into(),
        client_id: None,
        indication: "INDETERMINATE".into(),
        ..report.clone()
    };
    store
        .insert_verification(&anonymous)
        .await
        .expect("anonymous");
    assert_eq!(
        store
            .get_verification(&anonymous.id)
            .await
            .expect("get")
            .map(|v| v.indication),
        Some("INDETERMINATE".into())
    );
    assert_eq!(
        store.get_verification("unknown-id").await.expect("get"),
        None
    );

    let err = store
        .insert_verification(&NewVerification {
            indication: "TOTAL-FAILED".into(),
            ..report.clone()
        })
        .await
        .expect_err("duplicate id");
    assert!(
        matches!(&err, StoreError::AlreadyExists { entity: "verification", key } if *key == report.id),
        "{err:?}"
    );
    let err = store
        .insert_verification(&NewVerification {
            id: "other-id".into(),
            client_id: Some(client.id + 1000),
            ..report.clone()
        })
        .await
        .expect_err("unknown client");
    assert_eq!(err.code(), "unknown_reference");

    let long_id = "a".repeat(MAX_VERIFICATION_ID_LEN + 1);
    for (what, v) in [
        (
            "empty id",
            NewVerification {
                id: String::new(),
                ..report.clone()
            },
        ),
        (
            "long id",
            NewVerification {
                id: long_id.clone(),
                ..report.clone()
            },
        ),
        (
            "id charset",
            NewVerification {
                id: "../etc/passwd".into(),
                ..report.clone()
            },
        ),
        (
            "not JSON",
            NewVerification {
                id: "x1".into(),
                report_json: "{".into(),
                ..report.clone()
            },
        ),
        (
            "no receipt",
            NewVerification {
                id: "x2".into(),
                receipt_der: vec![],
                ..report.clone()
            },
        ),
        (
            "no indication",
            NewVerification {
                id: "x3".into(),
                indication: String::new(),
                ..report.clone()
            },
        ),
    ] {
        let err = store.insert_verification(&v).await.expect_err(what);
        assert_eq!(err.code(), "invalid_input", "{what}: {err:?}");
    }
    assert_eq!(
        store
            .get_verification(&long_id)
            .await
            .expect_err("long id")
            .code(),
        "invalid_input"
    );
}
