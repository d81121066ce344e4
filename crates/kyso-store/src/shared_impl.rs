//! The [`Store`](crate::Store) implementation both backends share, as a macro: the SQL is the same on
//! SQLite and PostgreSQL (`$N` placeholders, `RETURNING`, `ON CONFLICT`), and what differs is supplied
//! by the backend type:
//!
//! - `fn reader(&self) -> &Pool<DB>` for reads, and `async fn hot_read(&self, operation, read)`
//!   for the reads of every request (authentication, the signing authorisation), which SQLite
//!   keeps off sqlx's pool (see `sqlite/readers.rs`);
//! - `async fn write(&self, operation, job) -> Result<R, StoreError>`, which runs `job` on a
//!   connection inside a transaction and returns once that transaction has committed (SQLite: queued
//!   to the group-commit writer; PostgreSQL: its own transaction on the pool);
//! - `async fn write_one(&self, operation, job)`: the same for a job that is ONE statement (SQLite:
//!   the group-commit writer again; PostgreSQL: the statement in autocommit mode, which is atomic
//!   on its own and saves the `BEGIN` and `COMMIT` round trips);
//! - `async fn write_audit(&self, event, details, authorised)` and
//!   `async fn write_timestamp(&self, ts, now)`: the two writes of the signing and timestamping
//!   hot paths, which a backend may batch its own way (SQLite: many of them in one multi-row
//!   INSERT per group commit; PostgreSQL: `write` and `write_one` with the shared
//!   `append_audit_on` and `insert_timestamp_on`). `authorised`, when set, is the authorisation
//!   epoch the record may be written at only (see `Store::append_audit_authorised`);
//! - `$lock`: the row-lock suffix for reads that must serialise writers (`" FOR UPDATE"` on
//!   PostgreSQL; empty on SQLite, where `BEGIN IMMEDIATE` already holds the database write lock);
//! - `$conn`: the backend's connection type, for the steps that several methods share
//!   (`complete_on`, `append_audit_on`).

use std::future::Future;
use std::pin::Pin;

/// A boxed, sendable future borrowing for `'a` (what a write job returns).
pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

macro_rules! impl_store {
    ($store:ty, $backend:literal, $lock:literal, $conn:ty) => {
        #[async_trait::async_trait]
        impl $crate::Store for $store {
            fn backend(&self) -> &'static str {
                $backend
            }

            async fn ping(&self) -> Result<(), StoreError> {
                let one: i32 = sqlx::query_scalar("SELECT 1")
                    .fetch_one(self.reader())
                    .await
                    .map_err(StoreError::db("ping"))?;
                if one == 1 {
                    Ok(())
                } else {
                    Err(StoreError::Corrupt { what: "ping answer", detail: one.to_string() })
                }
            }

            // ---- CAs ----

            async fn insert_ca(&self, ca: &NewCa) -> Result<CaRecord, StoreError> {
                validate::ca(ca)?;
                let now = self.clock.now_unix();
                let ca = ca.clone();
                self.write("insert_ca", move |conn| Box::pin(async move {
                    let row: CaRow = sqlx::query_as(concat!(
                        "INSERT INTO cas (name, role, key_token, key_label, certificate_der, parent, created_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING ",
                        ca_columns!()
                    ))
                    .bind(&ca.name)
                    .bind(ca_role_str(ca.role))
                    .bind(&ca.key.token)
                    .bind(&ca.key.label)
                    .bind(&ca.certificate_der)
                    .bind(&ca.parent)
                    .bind(now)
                    .fetch_one(&mut *conn)
                    .await
                    .map_err(|e| {
                        if is_unique_violation(&e) {
                            StoreError::AlreadyExists { entity: "ca", key: ca.name.clone() }
                        } else if is_foreign_key_violation(&e) {
                            StoreError::UnknownReference { what: "ca.parent" }
                        } else {
                            StoreError::Database { operation: "insert_ca", source: e }
                        }
                    })?;
                    row.into_record()
                })).await
            }

            async fn get_ca(&self, name: &str) -> Result<Option<CaRecord>, StoreError> {
                let row: Option<CaRow> =
                    sqlx::query_as(concat!("SELECT ", ca_columns!(), " FROM cas WHERE name = $1"))
                        .bind(name)
                        .fetch_optional(self.reader())
                        .await
                        .map_err(StoreError::db("get_ca"))?;
                row.map(CaRow::into_record).transpose()
            }

            async fn list_cas(&self) -> Result<Vec<CaRecord>, StoreError> {
                let rows: Vec<CaRow> = sqlx::query_as(concat!("SELECT ", ca_columns!(), " FROM cas ORDER BY name"))
                    .fetch_all(self.reader())
                    .await
                    .map_err(StoreError::db("list_cas"))?;
                rows.into_iter().map(CaRow::into_record).collect()
            }

            // ---- Certificates ----

            async fn reserve_certificate(
                &self,
                r: &CertificateReservation,
            ) -> Result<CertificateRecord, StoreError> {
                validate::reservation(r)?;
                let now = self.clock.now_unix();
                let r = r.clone();
                // One INSERT; the record is built from what was inserted rather than read back.
                self.write_one("reserve_certificate", move |conn| Box::pin(async move {
                    sqlx::query(
                        "INSERT INTO certificates (serial, ca, profile, subject, staff_id, key_token, key_label, \
                         not_before, not_after, replaces, created_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                    )
                    .bind(&r.serial)
                    .bind(&r.ca)
                    .bind(&r.profile)
                    .bind(&r.subject)
                    .bind(r.staff_id)
                    .bind(r.key_location.as_ref().map(|k| k.token.as_str()))
                    .bind(r.key_location.as_ref().map(|k| k.label.as_str()))
                    .bind(r.not_before)
                    .bind(r.not_after)
                    .bind(&r.replaces)
                    .bind(now)
                    .execute(&mut *conn)
                    .await
                    .map_err(|e| {
                        if is_unique_violation(&e) {
                            StoreError::DuplicateSerial { serial: hex::encode(&r.serial) }
                        } else if is_foreign_key_violation(&e) {
                            StoreError::UnknownReference { what: "certificate (ca, staff_id or replaces)" }
                        } else {
                            StoreError::Database { operation: "reserve_certificate", source: e }
                        }
                    })?;
                    Ok(CertificateRecord {
                        serial: r.serial,
                        ca: r.ca,
                        profile: r.profile,
                        subject: r.subject,
                        staff_id: r.staff_id,
                        key_location: r.key_location,
                        not_before: r.not_before,
                        not_after: r.not_after,
                        der: None,
                        status: CertStatus::Good,
                        revoked_at: None,
                        revocation_reason: None,
                        replaces: r.replaces,
                        replaced_by: None,
                        created_at: now,
                    })
                })).await
            }

            async fn complete_certificate(&self, serial: &[u8], der: &[u8]) -> Result<CertificateRecord, StoreError> {
                validate::serial(serial)?;
                validate::der("certificate.der", der)?;
                let op = "complete_certificate";
                let (serial, der) = (serial.to_vec(), der.to_vec());
                self.write(op, move |conn| Box::pin(async move {
                    <$store>::complete_on(conn, &serial, der, op).await
                })).await
            }

            async fn complete_certificate_audited(
                &self,
                serial: &[u8],
                der: &[u8],
                event: &NewAuditEvent,
            ) -> Result<(CertificateRecord, AuditRecord), StoreError> {
                validate::serial(serial)?;
                validate::der("certificate.der", der)?;
                let details = validate::audit_event(event)?;
                let op = "complete_certificate_audited";
                let (serial, der, event) = (serial.to_vec(), der.to_vec(), event.clone());
                let clock = self.clock.clone();
                self.write(op, move |conn| Box::pin(async move {
                    // Completion first: a refusal there comes before any write (so, on SQLite, the
                    // rest of a group-commit batch is unaffected), and on PostgreSQL the audit head,
                    // which every node queues on, is locked only for the append and the commit.
                    // Any failure after the completion wrote is not a refusal, so the whole
                    // transaction is rolled back: both or neither.
                    let certificate = <$store>::complete_on(&mut *conn, &serial, der, op).await?;
                    let audit = <$store>::append_audit_on(conn, &clock, event, details, op).await?;
                    Ok((certificate, audit))
                })).await
            }

            async fn get_certificate(&self, serial: &[u8]) -> Result<Option<CertificateRecord>, StoreError> {
                validate::serial(serial)?;
                let row: Option<CertificateRow> =
                    sqlx::query_as(concat!("SELECT ", cert_columns!(), " FROM certificates WHERE serial = $1"))
                        .bind(serial)
                        .fetch_optional(self.reader())
                        .await
                        .map_err(StoreError::db("get_certificate"))?;
                row.map(CertificateRow::into_record).transpose()
            }

            async fn list_certificates(&self, q: &CertificateQuery) -> Result<Vec<CertificateRecord>, StoreError> {
                let rows: Vec<CertificateRow> = sqlx::query_as(concat!(
                    "SELECT ",
                    cert_columns!(),
                    " FROM certificates WHERE ($1 IS NULL OR ca = $1) AND ($2 IS NULL OR staff_id = $2) \
                     ORDER BY created_at, serial LIMIT $3 OFFSET $4"
                ))
                .bind(&q.ca)
                .bind(q.staff_id)
                .bind(validate::limit(q.limit))
                .bind(validate::offset(q.offset))
                .fetch_all(self.reader())
                .await
                .map_err(StoreError::db("list_certificates"))?;
                rows.into_iter().map(CertificateRow::into_record).collect()
            }

            async fn certificate_status(&self, serial: &[u8]) -> Result<Option<CertificateStatusRecord>, StoreError> {
                validate::serial(serial)?;
                let row: Option<StatusRow> = sqlx::query_as(SELECT_STATUS)
                    .bind(serial)
                    .fetch_optional(self.reader())
                    .await
                    .map_err(StoreError::db("certificate_status"))?;
                row.map(StatusRow::into_record).transpose()
            }

            async fn revoke_certificate(
                &self,
                serial: &[u8],
                reason: RevocationReason,
            ) -> Result<CertificateRecord, StoreError> {
                validate::serial(serial)?;
                if !reason.is_revocation() {
                    return Err(StoreError::InvalidInput {
                        field: "reason",
                        reason: format!("{reason:?} is not a revocation reason here"),
                    });
                }
                let now = self.clock.now_unix();
                let key = serial.to_vec();
                let row: Option<CertificateRow> = self.write("revoke_certificate", move |conn| Box::pin(async move {
                    sqlx::query_as(concat!(
                        "UPDATE certificates SET status = 'revoked', revoked_at = $2, revocation_reason = $3 \
                         WHERE serial = $1 AND status <> 'revoked' RETURNING ",
                        cert_columns!()
                    ))
                    .bind(&key)
                    .bind(now)
                    .bind(i32::from(reason.code()))
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(StoreError::db("revoke_certificate"))
                })).await?;
                match row {
                    Some(row) => row.into_record(),
                    None => Err(self.transition_refused(serial, "revoke_certificate").await),
                }
            }

            async fn hold_certificate(&self, serial: &[u8]) -> Result<CertificateRecord, StoreError> {
                validate::serial(serial)?;
                let now = self.clock.now_unix();
                let key = serial.to_vec();
                let row: Option<CertificateRow> = self.write("hold_certificate", move |conn| Box::pin(async move {
                    sqlx::query_as(concat!(
                        "UPDATE certificates SET status = 'hold', revoked_at = $2, revocation_reason = $3 \
                         WHERE serial = $1 AND status = 'good' RETURNING ",
                        cert_columns!()
                    ))
                    .bind(&key)
                    .bind(now)
                    .bind(i32::from(RevocationReason::CertificateHold.code()))
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(StoreError::db("hold_certificate"))
                })).await?;
                match row {
                    Some(row) => row.into_record(),
                    None => Err(self.transition_refused(serial, "hold_certificate").await),
                }
            }

            async fn release_hold(&self, serial: &[u8]) -> Result<CertificateRecord, StoreError> {
                validate::serial(serial)?;
                let key = serial.to_vec();
                let row: Option<CertificateRow> = self.write("release_hold", move |conn| Box::pin(async move {
                    sqlx::query_as(concat!(
                        "UPDATE certificates SET status = 'good', revoked_at = NULL, revocation_reason = NULL \
                         WHERE serial = $1 AND status = 'hold' RETURNING ",
                        cert_columns!()
                    ))
                    .bind(&key)
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(StoreError::db("release_hold"))
                })).await?;
                match row {
                    Some(row) => row.into_record(),
                    None => Err(self.transition_refused(serial, "release_hold").await),
                }
            }

            async fn list_revoked(&self, ca: &str) -> Result<Vec<RevokedEntry>, StoreError> {
                let rows: Vec<RevokedRow> = sqlx::query_as(SELECT_REVOKED)
                    .bind(ca)
                    .fetch_all(self.reader())
                    .await
                    .map_err(StoreError::db("list_revoked"))?;
                rows.into_iter().map(RevokedRow::into_entry).collect()
            }

            // ---- CRLs ----

            async fn allocate_crl_number(&self, ca: &str) -> Result<i64, StoreError> {
                // The upsert takes the counter row's lock, so concurrent allocations (any node) queue.
                let ca = ca.to_owned();
                self.write("allocate_crl_number", move |conn| Box::pin(async move {
                    sqlx::query_scalar(
                        "INSERT INTO crl_counters (ca, next_number) VALUES ($1, 2) \
                         ON CONFLICT (ca) DO UPDATE SET next_number = crl_counters.next_number + 1 \
                         RETURNING next_number - 1",
                    )
                    .bind(&ca)
                    .fetch_one(&mut *conn)
                    .await
                    .map_err(|e| {
                        if is_foreign_key_violation(&e) {
                            StoreError::UnknownReference { what: "crl.ca" }
                        } else {
                            StoreError::Database { operation: "allocate_crl_number", source: e }
                        }
                    })
                })).await
            }

            async fn store_crl(&self, crl: &NewCrl) -> Result<CrlRecord, StoreError> {
                validate::crl(crl)?;
                let op = "store_crl";
                let now = self.clock.now_unix();
                let crl = crl.clone();
                self.write(op, move |conn| Box::pin(async move {
                    // Locking the counter row serialises stores for this CA, so the check below holds.
                    let next: Option<i64> = sqlx::query_scalar(concat!(
                        "SELECT next_number FROM crl_counters WHERE ca = $1",
                        $lock
                    ))
                    .bind(&crl.ca)
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(StoreError::db(op))?;
                    if next.is_none_or(|next| crl.number >= next) {
                        return Err(StoreError::InvalidInput {
                            field: "crl.number",
                            reason: format!("{} was not allocated for CA {}", crl.number, crl.ca),
                        });
                    }
                    let latest: Option<i64> = sqlx::query_scalar("SELECT MAX(number) FROM crls WHERE ca = $1")
                        .bind(&crl.ca)
                        .fetch_one(&mut *conn)
                        .await
                        .map_err(StoreError::db(op))?;
                    if let Some(latest) = latest.filter(|latest| crl.number <= *latest) {
                        return Err(StoreError::CrlNumberNotIncreasing { ca: crl.ca.clone(), number: crl.number, latest });
                    }
                    let row: CrlRow = sqlx::query_as(concat!(
                        "INSERT INTO crls (ca, number, this_update, next_update, der, created_at) \
                         VALUES ($1, $2, $3, $4, $5, $6) RETURNING ",
                        crl_columns!()
                    ))
                    .bind(&crl.ca)
                    .bind(crl.number)
                    .bind(crl.this_update)
                    .bind(crl.next_update)
                    .bind(&crl.der)
                    .bind(now)
                    .fetch_one(&mut *conn)
                    .await
                    .map_err(StoreError::db(op))?;
                    Ok(row.into_record())
                })).await
            }

            async fn latest_crl(&self, ca: &str) -> Result<Option<CrlRecord>, StoreError> {
                let row: Option<CrlRow> = sqlx::query_as(concat!(
                    "SELECT ",
                    crl_columns!(),
                    " FROM crls WHERE ca = $1 ORDER BY number DESC LIMIT 1"
                ))
                .bind(ca)
                .fetch_optional(self.reader())
                .await
                .map_err(StoreError::db("latest_crl"))?;
                Ok(row.map(CrlRow::into_record))
            }

            // ---- Staff ----

            async fn create_staff(&self, f: &StaffFields) -> Result<StaffRecord, StoreError> {
                validate::staff(f)?;
                let now = self.clock.now_unix();
                let f = f.clone();
                self.write("create_staff", move |conn| Box::pin(async move {
                    let row: StaffRow = sqlx::query_as(concat!(
                        "INSERT INTO staff (full_name, agency, unit, title, email, province, locality, \
                         identity_numbers, token_label, active, created_at, updated_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11) RETURNING ",
                        staff_columns!()
                    ))
                    .bind(&f.full_name)
                    .bind(&f.agency)
                    .bind(&f.unit)
                    .bind(&f.title)
                    .bind(&f.email)
                    .bind(&f.province)
                    .bind(&f.locality)
                    .bind(identity_numbers_json(&f))
                    .bind(&f.token_label)
                    .bind(true)
                    .bind(now)
                    .fetch_one(&mut *conn)
                    .await
                    .map_err(StoreError::db("create_staff"))?;
                    row.into_record()
                })).await
            }

            async fn get_staff(&self, id: i64) -> Result<Option<StaffRecord>, StoreError> {
                let row: Option<StaffRow> =
                    sqlx::query_as(concat!("SELECT ", staff_columns!(), " FROM staff WHERE id = $1"))
                        .bind(id)
                        .fetch_optional(self.reader())
                        .await
                        .map_err(StoreError::db("get_staff"))?;
                row.map(StaffRow::into_record).transpose()
            }

            async fn list_staff(&self, offset: u64, limit: u32) -> Result<Vec<StaffRecord>, StoreError> {
                let rows: Vec<StaffRow> = sqlx::query_as(concat!(
                    "SELECT ",
                    staff_columns!(),
                    " FROM staff ORDER BY id LIMIT $1 OFFSET $2"
                ))
                .bind(validate::limit(limit))
                .bind(validate::offset(offset))
                .fetch_all(self.reader())
                .await
                .map_err(StoreError::db("list_staff"))?;
                rows.into_iter().map(StaffRow::into_record).collect()
            }

            async fn update_staff(&self, id: i64, f: &StaffFields) -> Result<StaffRecord, StoreError> {
                validate::staff(f)?;
                let now = self.clock.now_unix();
                let f = f.clone();
                let row: Option<StaffRow> = self.write("update_staff", move |conn| Box::pin(async move {
                    sqlx::query_as(concat!(
                        "UPDATE staff SET full_name = $2, agency = $3, unit = $4, title = $5, email = $6, \
                         province = $7, locality = $8, identity_numbers = $9, token_label = $10, updated_at = $11 \
                         WHERE id = $1 RETURNING ",
                        staff_columns!()
                    ))
                    .bind(id)
                    .bind(&f.full_name)
                    .bind(&f.agency)
                    .bind(&f.unit)
                    .bind(&f.title)
                    .bind(&f.email)
                    .bind(&f.province)
                    .bind(&f.locality)
                    .bind(identity_numbers_json(&f))
                    .bind(&f.token_label)
                    .bind(now)
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(StoreError::db("update_staff"))
                })).await?;
                row.ok_or_else(|| StoreError::NotFound { entity: "staff", key: id.to_string() })?
                    .into_record()
            }

            async fn set_staff_active(&self, id: i64, active: bool) -> Result<StaffRecord, StoreError> {
                let now = self.clock.now_unix();
                let row: Option<StaffRow> = self.write("set_staff_active", move |conn| Box::pin(async move {
                    sqlx::query_as(concat!(
                        "UPDATE staff SET active = $2, updated_at = $3 WHERE id = $1 RETURNING ",
                        staff_columns!()
                    ))
                    .bind(id)
                    .bind(active)
                    .bind(now)
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(StoreError::db("set_staff_active"))
                })).await?;
                row.ok_or_else(|| StoreError::NotFound { entity: "staff", key: id.to_string() })?
                    .into_record()
            }

            // ---- API clients ----

            async fn create_api_client(&self, c: &NewApiClient) -> Result<ApiClientRecord, StoreError> {
                validate::api_client(c)?;
                let now = self.clock.now_unix();
                let c = c.clone();
                self.write("create_api_client", move |conn| Box::pin(async move {
                    let row: ApiClientRow = sqlx::query_as(concat!(
                        "INSERT INTO api_clients (name, role, key_hash, key_prefix, created_at) \
                         VALUES ($1, $2, $3, $4, $5) RETURNING ",
                        client_columns!()
                    ))
                    .bind(&c.name)
                    .bind(c.role.as_str())
                    .bind(&c.key_hash)
                    .bind(&c.key_prefix)
                    .bind(now)
                    .fetch_one(&mut *conn)
                    .await
                    .map_err(|e| {
                        if is_unique_violation(&e) {
                            // Never echo the hash: name the prefix only.
                            StoreError::AlreadyExists { entity: "api_client", key: format!("key {}...", c.key_prefix) }
                        } else {
                            StoreError::Database { operation: "create_api_client", source: e }
                        }
                    })?;
                    row.into_record()
                })).await
            }

            async fn find_active_api_client(&self, key_hash: &[u8]) -> Result<Option<ApiClientRecord>, StoreError> {
                if validate::key_hash(key_hash).is_err() {
                    return Ok(None);
                }
                let op = "find_active_api_client";
                let key_hash = key_hash.to_vec();
                let row: Option<ApiClientRow> = self.hot_read(op, move |conn| Box::pin(async move {
                    sqlx::query_as(concat!(
                        "SELECT ",
                        client_columns!(),
                        " FROM api_clients WHERE key_hash = $1 AND disabled_at IS NULL"
                    ))
                    .bind(key_hash)
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(StoreError::db(op))
                })).await?;
                row.map(ApiClientRow::into_record).transpose()
            }

            async fn get_api_client(&self, id: i64) -> Result<Option<ApiClientRecord>, StoreError> {
                let row: Option<ApiClientRow> =
                    sqlx::query_as(concat!("SELECT ", client_columns!(), " FROM api_clients WHERE id = $1"))
                        .bind(id)
                        .fetch_optional(self.reader())
                        .await
                        .map_err(StoreError::db("get_api_client"))?;
                row.map(ApiClientRow::into_record).transpose()
            }

            async fn list_api_clients(&self) -> Result<Vec<ApiClientRecord>, StoreError> {
                let rows: Vec<ApiClientRow> =
                    sqlx::query_as(concat!("SELECT ", client_columns!(), " FROM api_clients ORDER BY id"))
                        .fetch_all(self.reader())
                        .await
                        .map_err(StoreError::db("list_api_clients"))?;
                rows.into_iter().map(ApiClientRow::into_record).collect()
            }

            async fn disable_api_client(&self, id: i64) -> Result<ApiClientRecord, StoreError> {
                let now = self.clock.now_unix();
                let row: Option<ApiClientRow> = self.write("disable_api_client", move |conn| Box::pin(async move {
                    sqlx::query_as(concat!(
                        "UPDATE api_clients SET disabled_at = COALESCE(disabled_at, $2) WHERE id = $1 RETURNING ",
                        client_columns!()
                    ))
                    .bind(id)
                    .bind(now)
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(StoreError::db("disable_api_client"))
                })).await?;
                row.ok_or_else(|| StoreError::NotFound { entity: "api_client", key: id.to_string() })?
                    .into_record()
            }

            async fn touch_api_client(&self, id: i64) -> Result<(), StoreError> {
                let now = self.clock.now_unix();
                let done = self.write("touch_api_client", move |conn| Box::pin(async move {
                    sqlx::query("UPDATE api_clients SET last_used_at = $2 WHERE id = $1")
                        .bind(id)
                        .bind(now)
                        .execute(&mut *conn)
                        .await
                        .map_err(StoreError::db("touch_api_client"))
                })).await?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::NotFound { entity: "api_client", key: id.to_string() });
                }
                Ok(())
            }

            async fn grant_key(&self, client_id: i64, key_name: &str) -> Result<(), StoreError> {
                validate::non_empty("key_name", key_name)?;
                let key_name = key_name.to_owned();
                self.write("grant_key", move |conn| Box::pin(async move {
                    sqlx::query(
                        "INSERT INTO api_key_grants (client_id, key_name) VALUES ($1, $2) \
                         ON CONFLICT (client_id, key_name) DO NOTHING",
                    )
                    .bind(client_id)
                    .bind(&key_name)
                    .execute(&mut *conn)
                    .await
                    .map_err(|e| {
                        if is_foreign_key_violation(&e) {
                            StoreError::UnknownReference { what: "grant.client_id" }
                        } else {
                            StoreError::Database { operation: "grant_key", source: e }
                        }
                    })?;
                    Ok(())
                })).await
            }

            async fn revoke_key_grant(&self, client_id: i64, key_name: &str) -> Result<bool, StoreError> {
                let key_name = key_name.to_owned();
                let done = self.write("revoke_key_grant", move |conn| Box::pin(async move {
                    sqlx::query("DELETE FROM api_key_grants WHERE client_id = $1 AND key_name = $2")
                        .bind(client_id)
                        .bind(&key_name)
                        .execute(&mut *conn)
                        .await
                        .map_err(StoreError::db("revoke_key_grant"))
                })).await?;
                Ok(done.rows_affected() > 0)
            }

            async fn list_key_grants(&self, client_id: i64) -> Result<Vec<String>, StoreError> {
                sqlx::query_scalar("SELECT key_name FROM api_key_grants WHERE client_id = $1 ORDER BY key_name")
                    .bind(client_id)
                    .fetch_all(self.reader())
                    .await
                    .map_err(StoreError::db("list_key_grants"))
            }

            async fn has_key_grant(&self, client_id: i64, key_name: &str) -> Result<bool, StoreError> {
                let found: Option<i32> =
                    sqlx::query_scalar("SELECT 1 FROM api_key_grants WHERE client_id = $1 AND key_name = $2")
                        .bind(client_id)
                        .bind(key_name)
                        .fetch_optional(self.reader())
                        .await
                        .map_err(StoreError::db("has_key_grant"))?;
                Ok(found.is_some())
            }

            async fn authorise_signing(
                &self,
                key_hash: &[u8],
                key_name: &str,
                serial: &[u8],
            ) -> Result<Option<SigningAuthorisation>, StoreError> {
                validate::serial(serial)?;
                if validate::key_hash(key_hash).is_err() {
                    return Ok(None);
                }
                let op = "authorise_signing";
                let (key_hash, key_name, serial) = (key_hash.to_vec(), key_name.to_owned(), serial.to_vec());
                let row: Option<SigningAuthorisationRow> = self.hot_read(op, move |conn| Box::pin(async move {
                    sqlx::query_as(SELECT_SIGNING_AUTHORISATION)
                        .bind(key_hash)
                        .bind(key_name)
                        .bind(serial)
                        .fetch_optional(&mut *conn)
                        .await
                        .map_err(StoreError::db(op))
                })).await?;
                row.map(SigningAuthorisationRow::into_record).transpose()
            }

            // ---- Time-stamp ledger ----

            async fn record_timestamp(&self, ts: &NewTimestamp) -> Result<TimestampRecord, StoreError> {
                validate::timestamp(ts)?;
                self.write_timestamp(ts.clone(), self.clock.now_unix()).await
            }

            async fn get_timestamp(&self, serial: &[u8]) -> Result<Option<TimestampRecord>, StoreError> {
                validate::serial(serial)?;
                let row: Option<TimestampRow> =
                    sqlx::query_as(concat!("SELECT ", timestamp_columns!(), " FROM timestamps WHERE serial = $1"))
                        .bind(serial)
                        .fetch_optional(self.reader())
                        .await
                        .map_err(StoreError::db("get_timestamp"))?;
                Ok(row.map(TimestampRow::into_record))
            }

            async fn count_timestamps(&self) -> Result<i64, StoreError> {
                sqlx::query_scalar("SELECT COUNT(*) FROM timestamps")
                    .fetch_one(self.reader())
                    .await
                    .map_err(StoreError::db("count_timestamps"))
            }

            // ---- Verification reports ----

            async fn insert_verification(&self, v: &NewVerification) -> Result<VerificationRecord, StoreError> {
                validate::verification(v)?;
                let v = v.clone();
                self.write_one("insert_verification", move |conn| Box::pin(async move {
                    sqlx::query(
                        "INSERT INTO verifications (id, created_at, client_id, indication, report_json, receipt_der) \
                         VALUES ($1, $2, $3, $4, $5, $6)",
                    )
                    .bind(&v.id)
                    .bind(v.created_at)
                    .bind(v.client_id)
                    .bind(&v.indication)
                    .bind(&v.report_json)
                    .bind(&v.receipt_der)
                    .execute(&mut *conn)
                    .await
                    .map_err(|e| {
                        if is_unique_violation(&e) {
                            StoreError::AlreadyExists { entity: "verification", key: v.id.clone() }
                        } else if is_foreign_key_violation(&e) {
                            StoreError::UnknownReference { what: "verification.client_id" }
                        } else {
                            StoreError::Database { operation: "insert_verification", source: e }
                        }
                    })?;
                    Ok(VerificationRecord {
                        id: v.id,
                        created_at: v.created_at,
                        client_id: v.client_id,
                        indication: v.indication,
                        report_json: v.report_json,
                        receipt_der: v.receipt_der,
                    })
                })).await
            }

            async fn get_verification(&self, id: &str) -> Result<Option<VerificationRecord>, StoreError> {
                validate::verification_id(id)?;
                let row: Option<VerificationRow> =
                    sqlx::query_as(concat!("SELECT ", verification_columns!(), " FROM verifications WHERE id = $1"))
                        .bind(id)
                        .fetch_optional(self.reader())
                        .await
                        .map_err(StoreError::db("get_verification"))?;
                Ok(row.map(VerificationRow::into_record))
            }

            // ---- Audit ----

            async fn append_audit(&self, event: &NewAuditEvent) -> Result<AuditRecord, StoreError> {
                let details = validate::audit_event(event)?;
                self.write_audit(event.clone(), details, None).await
            }

            async fn append_audit_authorised(
                &self,
                event: &NewAuditEvent,
                epoch: AuthorisationEpoch,
            ) -> Result<AuditRecord, StoreError> {
                let details = validate::audit_event(event)?;
                self.write_audit(event.clone(), details, Some(epoch)).await
            }

            async fn list_audit(&self, from_seq: i64, limit: u32) -> Result<Vec<AuditRecord>, StoreError> {
                let rows: Vec<AuditRow> = sqlx::query_as(concat!(
                    "SELECT ",
                    audit_columns!(),
                    " FROM audit_log WHERE seq >= $1 ORDER BY seq LIMIT $2"
                ))
                .bind(from_seq)
                .bind(validate::limit(limit))
                .fetch_all(self.reader())
                .await
                .map_err(StoreError::db("list_audit"))?;
                rows.into_iter().map(AuditRow::into_record).collect()
            }
        }

        impl $store {
            /// Completes a reserved certificate inside the caller's transaction. In the usual case this
            /// is one UPDATE (two with a renewal link); the DER is not read back, the caller has it.
            /// Refusals (`NotFound`, `AlreadyCompleted`) come before any write.
            async fn complete_on(
                conn: &mut $conn,
                serial: &[u8],
                der: Vec<u8>,
                op: &'static str,
            ) -> Result<CertificateRecord, StoreError> {
                // `der IS NULL` makes the completion happen once; on PostgreSQL the UPDATE takes the
                // row lock, so a concurrent completion waits and then finds the DER set.
                let completed: Option<CertificateRow> = sqlx::query_as(concat!(
                    "UPDATE certificates SET der = $2 WHERE serial = $1 AND der IS NULL RETURNING ",
                    cert_columns_without_der!()
                ))
                .bind(serial)
                .bind(&der)
                .fetch_optional(&mut *conn)
                .await
                .map_err(StoreError::db(op))?;
                let mut record = match completed {
                    Some(row) => {
                        let record = row.into_record()?;
                        if let Some(old) = &record.replaces {
                            sqlx::query("UPDATE certificates SET replaced_by = $2 WHERE serial = $1")
                                .bind(old)
                                .bind(serial)
                                .execute(&mut *conn)
                                .await
                                .map_err(StoreError::db(op))?;
                        }
                        record
                    }
                    None => {
                        // Unknown, or completed already: a retry with the same certificate is fine.
                        let row: Option<CertificateRow> = sqlx::query_as(concat!(
                            "SELECT ",
                            cert_columns!(),
                            " FROM certificates WHERE serial = $1"
                        ))
                        .bind(serial)
                        .fetch_optional(&mut *conn)
                        .await
                        .map_err(StoreError::db(op))?;
                        let Some(row) = row else {
                            return Err(StoreError::NotFound { entity: "certificate", key: hex::encode(serial) });
                        };
                        let record = row.into_record()?;
                        match &record.der {
                            Some(stored) if *stored == der => return Ok(record),
                            Some(_) => return Err(StoreError::AlreadyCompleted { serial: hex::encode(serial) }),
                            // The conditional UPDATE above would have matched this row.
                            None => {
                                return Err(StoreError::Corrupt {
                                    what: "certificate completion",
                                    detail: format!("{} still reserved after completing it", hex::encode(serial)),
                                });
                            }
                        }
                    }
                };
                record.der = Some(der);
                Ok(record)
            }

            /// Records a timestamp serial inside the caller's transaction (or alone, in autocommit):
            /// one INSERT; `DuplicateSerial` if the serial is taken.
            async fn insert_timestamp_on(
                conn: &mut $conn,
                ts: NewTimestamp,
                now: i64,
            ) -> Result<TimestampRecord, StoreError> {
                sqlx::query(
                    "INSERT INTO timestamps (serial, gen_time_micros, policy, hash_algorithm, message_imprint, \
                     nonce, token_sha256, tsa_key, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(&ts.serial)
                .bind(ts.gen_time_micros)
                .bind(&ts.policy)
                .bind(&ts.hash_algorithm)
                .bind(&ts.message_imprint)
                .bind(&ts.nonce)
                .bind(&ts.token_sha256)
                .bind(&ts.tsa_key)
                .bind(now)
                .execute(&mut *conn)
                .await
                .map_err(|e| {
                    if is_unique_violation(&e) {
                        StoreError::DuplicateSerial { serial: hex::encode(&ts.serial) }
                    } else {
                        StoreError::Database { operation: "record_timestamp", source: e }
                    }
                })?;
                Ok(ts.recorded(now))
            }

            /// Appends `event` (its compact JSON `details` already checked) to the hash chain inside
            /// the caller's transaction: one read of the chain head (row-locked on PostgreSQL) and one INSERT; a
            /// trigger on `audit_log` advances the head in that same statement.
            async fn append_audit_on(
                conn: &mut $conn,
                clock: &kyso_clock::SharedClock,
                event: NewAuditEvent,
                details: String,
                op: &'static str,
            ) -> Result<AuditRecord, StoreError> {
                // The head row is the chain's lock: every appender, on every node, queues on it.
                let (last_seq, last_hash): (i64, Vec<u8>) = sqlx::query_as(concat!(
                    "SELECT last_seq, last_hash FROM audit_head WHERE id = 1",
                    $lock
                ))
                .fetch_one(&mut *conn)
                .await
                .map_err(StoreError::db(op))?;
                let prev_hash: [u8; $crate::audit::HASH_LEN] = last_hash
                    .as_slice()
                    .try_into()
                    .map_err(|_| StoreError::Corrupt { what: "audit head hash", detail: hex::encode(&last_hash) })?;
                let seq = last_seq + 1;
                // Time is read under the lock so `at` never decreases along the chain.
                let at = clock.now_unix();
                let input = $crate::audit::AuditHashInput {
                    seq,
                    at,
                    actor: &event.actor,
                    action: &event.action,
                    target: &event.target,
                    outcome: event.outcome,
                    details: &details,
                    prev_hash: &prev_hash,
                };
                let hash = input.hash();
                sqlx::query(
                    "INSERT INTO audit_log (seq, at, actor, action, target, outcome, details, prev_hash, hash) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(seq)
                .bind(at)
                .bind(&event.actor)
                .bind(&event.action)
                .bind(&event.target)
                .bind(event.outcome.as_str())
                .bind(&details)
                .bind(prev_hash.as_slice())
                .bind(hash.as_slice())
                .execute(&mut *conn)
                .await
                .map_err(StoreError::db(op))?;
                Ok(AuditRecord {
                    seq,
                    at,
                    actor: event.actor,
                    action: event.action,
                    target: event.target,
                    outcome: event.outcome,
                    details,
                    prev_hash: prev_hash.to_vec(),
                    hash: hash.to_vec(),
                })
            }

            /// Why a conditional status update changed nothing: unknown serial or a forbidden transition.
            async fn transition_refused(&self, serial: &[u8], operation: &'static str) -> StoreError {
                let status: Result<Option<String>, sqlx::Error> =
                    sqlx::query_scalar("SELECT status FROM certificates WHERE serial = $1")
                        .bind(serial)
                        .fetch_optional(self.reader())
                        .await;
                let key = hex::encode(serial);
                match status {
                    Err(source) => StoreError::Database { operation, source },
                    Ok(None) => StoreError::NotFound { entity: "certificate", key },
                    Ok(Some(s)) => match (operation, s.parse::<CertStatus>()) {
                        (_, Err(e)) => e,
                        ("release_hold", Ok(status)) => StoreError::NotOnHold { serial: key, status },
                        (_, Ok(CertStatus::Hold)) => StoreError::AlreadyOnHold { serial: key },
                        // Revoked, or (after a concurrent change) good again: revocation is the refusal.
                        (_, Ok(_)) => StoreError::AlreadyRevoked { serial: key },
                    },
                }
            }
        }
    };
}

pub(crate) use impl_store;
