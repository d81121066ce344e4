-- kyso store, SQLite. Times are unix seconds; serials, hashes and DER are BLOBs.

CREATE TABLE cas (
    name            TEXT PRIMARY KEY NOT NULL,
    role            TEXT NOT NULL CHECK (role IN ('root', 'issuing')),
    key_token       TEXT NOT NULL,
    key_label       TEXT NOT NULL,
    certificate_der BLOB NOT NULL,
    parent          TEXT REFERENCES cas(name),
    created_at      INTEGER NOT NULL
);

CREATE TABLE staff (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    full_name        TEXT NOT NULL,
    agency           TEXT NOT NULL,
    unit             TEXT,
    title            TEXT,
    email            TEXT,
    province         TEXT,
    locality         TEXT,
    identity_numbers TEXT NOT NULL DEFAULT '[]', -- JSON array of strings
    token_label      TEXT,
    active           INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
);

CREATE TABLE certificates (
    serial            BLOB PRIMARY KEY NOT NULL CHECK (length(serial) BETWEEN 1 AND 20),
    ca                TEXT NOT NULL REFERENCES cas(name),
    profile           TEXT NOT NULL,
    subject           TEXT NOT NULL,
    staff_id          INTEGER REFERENCES staff(id),
    key_token         TEXT,
    key_label         TEXT,
    not_before        INTEGER NOT NULL,
    not_after         INTEGER NOT NULL,
    der               BLOB,
    status            TEXT NOT NULL DEFAULT 'good' CHECK (status IN ('good', 'revoked', 'hold')),
    revoked_at        INTEGER,
    revocation_reason INTEGER CHECK (revocation_reason BETWEEN 0 AND 10),
    replaces          BLOB REFERENCES certificates(serial),
    replaced_by       BLOB REFERENCES certificates(serial),
    created_at        INTEGER NOT NULL,
    CHECK ((status = 'good') = (revoked_at IS NULL)),
    CHECK ((status = 'good') = (revocation_reason IS NULL)),
    CHECK ((key_token IS NULL) = (key_label IS NULL))
) WITHOUT ROWID;

CREATE INDEX certificates_ca_created ON certificates (ca, created_at, serial);
CREATE INDEX certificates_staff_created ON certificates (staff_id, created_at, serial);
CREATE INDEX certificates_created ON certificates (created_at, serial);
CREATE INDEX certificates_ca_revoked ON certificates (ca, serial) WHERE status <> 'good';

CREATE TABLE crl_counters (
    ca          TEXT PRIMARY KEY NOT NULL REFERENCES cas(name),
    next_number INTEGER NOT NULL CHECK (next_number >= 1)
);

CREATE TABLE crls (
    ca          TEXT NOT NULL REFERENCES cas(name),
    number      INTEGER NOT NULL CHECK (number >= 1),
    this_update INTEGER NOT NULL,
    next_update INTEGER NOT NULL,
    der         BLOB NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (ca, number)
);

CREATE TABLE api_clients (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    name         TEXT NOT NULL,
    role         TEXT NOT NULL CHECK (role IN ('admin', 'officer', 'client', 'auditor')),
    key_hash     BLOB NOT NULL UNIQUE CHECK (length(key_hash) = 32),
    key_prefix   TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    disabled_at  INTEGER,
    last_used_at INTEGER
);

CREATE TABLE api_key_grants (
    client_id INTEGER NOT NULL REFERENCES api_clients(id),
    key_name  TEXT NOT NULL,
    PRIMARY KEY (client_id, key_name)
);

CREATE TABLE audit_log (
    seq       INTEGER PRIMARY KEY NOT NULL CHECK (seq >= 1),
    at        INTEGER NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    target    TEXT NOT NULL,
    outcome   TEXT NOT NULL CHECK (outcome IN ('success', 'failure')),
    details   TEXT NOT NULL,
    prev_hash BLOB NOT NULL CHECK (length(prev_hash) = 32),
    hash      BLOB NOT NULL CHECK (length(hash) = 32)
);

-- The chain head: one row, read and advanced inside each append transaction.
CREATE TABLE audit_head (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    last_seq INTEGER NOT NULL,
    last_hash BLOB NOT NULL CHECK (length(last_hash) = 32)
);
INSERT INTO audit_head (id, last_seq, last_hash) VALUES (1, 0, zeroblob(32));
