-- Issue 3: the time-stamp ledger, verification reports, and the audit head advanced by a trigger.

-- Every issued time-stamp token, recorded before the response goes out. The primary key makes a
-- serial unique even across processes sharing the file.
CREATE TABLE timestamps (
    serial          BLOB PRIMARY KEY NOT NULL CHECK (length(serial) BETWEEN 1 AND 20),
    gen_time_micros INTEGER NOT NULL,
    policy          TEXT NOT NULL,
    hash_algorithm  TEXT NOT NULL,
    message_imprint BLOB NOT NULL CHECK (length(message_imprint) BETWEEN 1 AND 64),
    nonce           BLOB CHECK (nonce IS NULL OR length(nonce) BETWEEN 1 AND 64),
    token_sha256    BLOB NOT NULL CHECK (length(token_sha256) = 32),
    tsa_key         TEXT NOT NULL,
    created_at      INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE verifications (
    id          TEXT PRIMARY KEY NOT NULL CHECK (length(id) BETWEEN 1 AND 64),
    created_at  INTEGER NOT NULL,
    client_id   INTEGER REFERENCES api_clients(id),
    indication  TEXT NOT NULL,
    report_json TEXT NOT NULL,
    receipt_der BLOB NOT NULL
);

-- Statistics: counts per indication over a time range.
CREATE INDEX verifications_indication_created ON verifications (indication, created_at);

-- The head follows every appended record inside the appending statement, so an append is one read
-- (the head) and one insert instead of three statements.
CREATE TRIGGER audit_log_advance_head AFTER INSERT ON audit_log
BEGIN
    UPDATE audit_head SET last_seq = NEW.seq, last_hash = NEW.hash WHERE id = 1;
END;
