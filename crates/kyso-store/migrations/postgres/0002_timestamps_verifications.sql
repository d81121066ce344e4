-- Issue 3: the time-stamp ledger, verification reports, and the audit head advanced by a trigger.

-- Every issued time-stamp token, recorded before the response goes out. The primary key makes a
-- serial unique across every node sharing this database.
CREATE TABLE timestamps (
    serial          BYTEA PRIMARY KEY CHECK (length(serial) BETWEEN 1 AND 20),
    gen_time_micros BIGINT NOT NULL,
    policy          TEXT NOT NULL,
    hash_algorithm  TEXT NOT NULL,
    message_imprint BYTEA NOT NULL CHECK (length(message_imprint) BETWEEN 1 AND 64),
    nonce           BYTEA CHECK (nonce IS NULL OR length(nonce) BETWEEN 1 AND 64),
    token_sha256    BYTEA NOT NULL CHECK (length(token_sha256) = 32),
    tsa_key         TEXT NOT NULL,
    created_at      BIGINT NOT NULL
);

CREATE TABLE verifications (
    id          TEXT PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 64),
    created_at  BIGINT NOT NULL,
    client_id   BIGINT REFERENCES api_clients(id),
    indication  TEXT NOT NULL,
    report_json TEXT NOT NULL,
    receipt_der BYTEA NOT NULL
);

-- Statistics: counts per indication over a time range.
CREATE INDEX verifications_indication_created ON verifications (indication, created_at);

-- The head follows every appended record inside the appending statement, so an append holds the
-- head lock for one read and one insert (one round trip fewer) instead of three statements.
CREATE FUNCTION audit_log_advance_head() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE audit_head SET last_seq = NEW.seq, last_hash = NEW.hash WHERE id = 1;
    RETURN NULL;
END
$$;

CREATE TRIGGER audit_log_advance_head AFTER INSERT ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_advance_head();
