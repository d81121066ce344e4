-- The signing authorisation epoch: a counter every withdrawal of signing authority advances (a
-- client disabled, re-keyed or re-roled, or removed; a key grant withdrawn; a good certificate
-- revoked or put on hold). A node may keep a signing authorisation it read in memory; it releases
-- a signature only if its audit record commits in a transaction that read this row, under a share
-- lock, still at the epoch read with that authorisation. A withdrawal's trigger updates the row,
-- so it waits for such transactions and they for it: on every node, a signature is released
-- either before a withdrawal commits or not at all. Additions (a new client, grant or
-- certificate, a hold released) do not advance it: nothing remembered can be made wrong by them.
CREATE TABLE authorisation_epoch (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    value BIGINT NOT NULL
);
INSERT INTO authorisation_epoch (id, value) VALUES (1, 0);

CREATE FUNCTION authorisation_epoch_advance() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE authorisation_epoch SET value = value + 1 WHERE id = 1;
    RETURN NULL;
END;
$$;

CREATE TRIGGER api_clients_withdraw AFTER UPDATE OF disabled_at, key_hash, role ON api_clients
    FOR EACH ROW
    WHEN (OLD.disabled_at IS DISTINCT FROM NEW.disabled_at
       OR OLD.key_hash IS DISTINCT FROM NEW.key_hash
       OR OLD.role IS DISTINCT FROM NEW.role)
    EXECUTE FUNCTION authorisation_epoch_advance();

CREATE TRIGGER api_clients_remove AFTER DELETE ON api_clients
    FOR EACH ROW EXECUTE FUNCTION authorisation_epoch_advance();

CREATE TRIGGER api_key_grants_withdraw AFTER DELETE OR UPDATE ON api_key_grants
    FOR EACH ROW EXECUTE FUNCTION authorisation_epoch_advance();

CREATE TRIGGER certificates_withdraw AFTER UPDATE OF status ON certificates
    FOR EACH ROW
    WHEN (OLD.status = 'good' AND NEW.status <> 'good')
    EXECUTE FUNCTION authorisation_epoch_advance();

CREATE TRIGGER certificates_remove AFTER DELETE ON certificates
    FOR EACH ROW EXECUTE FUNCTION authorisation_epoch_advance();
