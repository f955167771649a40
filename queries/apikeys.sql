-- API keys. Managing them needs a user's JWT (the policies refuse writes without a user); the lookup by
-- hash and the usage flush are functions of the owner.

-- name: APIKeyCreate :one
INSERT INTO api_keys (organization_id, name, key_hash, key_prefix, key_last4, scopes, created_by)
VALUES (@org_id, @name, @key_hash, @key_prefix, @key_last4, @scopes::text[], @created_by)
RETURNING *;

-- name: APIKeyList :many
-- The organization's keys, newest first.
SELECT * FROM api_keys WHERE organization_id = @org_id ORDER BY created_at DESC, id;

-- name: APIKeyUpdate :one
-- Changes what was given; deactivating revokes the key, activating brings it back. ((SELECT now()):
-- Citus takes no stable function inside a CASE of an UPDATE, but a subquery.)
UPDATE api_keys
SET name       = coalesce(sqlc.narg(name)::text, name),
    scopes     = coalesce(sqlc.narg(scopes)::text[], scopes),
    active     = coalesce(sqlc.narg(active)::boolean, active),
    revoked_at = CASE WHEN sqlc.narg(active)::boolean IS NULL THEN revoked_at
                      WHEN sqlc.narg(active)::boolean THEN NULL
                      ELSE coalesce(revoked_at, (SELECT now())) END
WHERE organization_id = @org_id AND id = @id
RETURNING *;

-- name: APIKeyDelete :execrows
DELETE FROM api_keys WHERE organization_id = @org_id AND id = @id;

-- name: APIKeyLookup :one
-- The active key with this hash, whatever its organization (authentication).
SELECT k.id::uuid AS id, k.organization_id::uuid AS organization_id, k.scopes::text[] AS scopes
FROM app.api_key_lookup(@key_hash) k;

-- name: APIKeyUsage :exec
-- Adds the counts a process gathered since its last flush.
SELECT app.api_key_usage(@orgs::uuid[], @ids::uuid[], @requests::bigint[], @errors::bigint[], @last_used::timestamptz[]);
