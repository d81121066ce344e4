-- The signing authorisation epoch: a counter every withdrawal of signing authority advances (a
-- client disabled, re-keyed or re-roled, or removed; a key grant withdrawn; a good certificate
-- revoked or put on hold). A server may keep a signing authorisation it read in memory; it
-- releases a signature only if its audit record is written while the epoch is still the one read
-- with that authorisation (in the same statement, or under the write lock), so a withdrawal made
-- by any process counts for every signature not yet released. Additions (a new client, grant or
-- certificate, a hold released) do not advance it: nothing remembered can be made wrong by them.
CREATE TABLE authorisation_epoch (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    value INTEGER NOT NULL
);
INSERT INTO authorisation_epoch (id, value) VALUES (1, 0);

CREATE TRIGGER api_clients_withdraw AFTER UPDATE OF disabled_at, key_hash, role ON api_clients
    WHEN OLD.disabled_at IS NOT NEW.disabled_at
      OR OLD.key_hash IS NOT NEW.key_hash
      OR OLD.role IS NOT NEW.role
BEGIN
    UPDATE authorisation_epoch SET value = value + 1 WHERE id = 1;
END;

CREATE TRIGGER api_clients_remove AFTER DELETE ON api_clients
BEGIN
    UPDATE authorisation_epoch SET value = value + 1 WHERE id = 1;
END;

CREATE TRIGGER api_key_grants_withdraw AFTER DELETE ON api_key_grants
BEGIN
    UPDATE authorisation_epoch SET value = value + 1 WHERE id = 1;
END;

CREATE TRIGGER api_key_grants_change AFTER UPDATE ON api_key_grants
BEGIN
    UPDATE authorisation_epoch SET value = value + 1 WHERE id = 1;
END;

CREATE TRIGGER certificates_withdraw AFTER UPDATE OF status ON certificates
    WHEN OLD.status = 'good' AND NEW.status <> 'good'
BEGIN
    UPDATE authorisation_epoch SET value = value + 1 WHERE id = 1;
END;

CREATE TRIGGER certificates_remove AFTER DELETE ON certificates
BEGIN
    UPDATE authorisation_epoch SET value = value + 1 WHERE id = 1;
END;
