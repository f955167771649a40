-- Built-in identity (as fieldtrack_issuer, outside request transactions): accounts, sessions, signing
-- keys. Request transactions only call app.check_caller (with the claims, see db.InTx).

-- name: AuthAccountByEmail :one
-- The account of an email, any case; every field NULL when there is none.
SELECT * FROM app.auth_account_by_email(@email);

-- name: AuthAccount :one
SELECT * FROM app.auth_account_of(@org_id, @user_id);

-- name: AuthOpenSession :one
-- Starts a session of a user whose password was checked: its id and first refresh token.
SELECT * FROM app.auth_open_session(@org_id, @user_id, @ttl_seconds::bigint, @user_agent);

-- name: AuthRefresh :one
-- Exchanges a refresh token for its child (see app.auth_refresh for the outcomes).
SELECT * FROM app.auth_refresh(@token, @ttl_seconds::bigint, @grace_seconds::bigint);

-- name: AuthSignOut :one
SELECT app.auth_sign_out(@org_id, @user_id, sqlc.narg(session_id)::uuid, @scope)::int AS revoked;

-- name: SigningKeys :many
-- Every signing key, the current one (not retired) first.
SELECT kid, private_key, created_at, retired_at
FROM app.signing_keys
ORDER BY retired_at DESC NULLS FIRST, created_at DESC;

-- name: SigningKeyCreateFirst :execrows
-- The first signing key, unless another process made one meanwhile.
INSERT INTO app.signing_keys (kid, private_key) VALUES (@kid, @private_key)
ON CONFLICT ((true)) WHERE retired_at IS NULL DO NOTHING;

-- name: SigningKeyRetire :exec
-- Retires the current signing key (a rotation makes the next one in the same transaction).
UPDATE app.signing_keys SET retired_at = now() WHERE retired_at IS NULL;

-- name: CallerActive :one
-- Nothing but the caller check that precedes every request statement (db.InTx): for routes that do not
-- otherwise reach the database in the caller's name.
SELECT 1::int AS active;
