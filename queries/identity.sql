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

-- Accounts, as the owner (`fieldtrack user`, `fieldtrack seed`).

-- name: UserCreate :one
INSERT INTO users (organization_id, email, role) VALUES (@org_id, @email, @role) RETURNING id;

-- name: UserSetPassword :execrows
-- Sets the password of the user with this email (any case).
INSERT INTO app.user_passwords (organization_id, user_id, password_hash)
SELECT u.organization_id, u.id, @password_hash FROM users u WHERE lower(u.email) = lower(@email)
ON CONFLICT (organization_id, user_id) DO UPDATE SET password_hash = excluded.password_hash,
                                                     updated_at = excluded.updated_at; -- (now(): Citus takes none here)

-- name: EmployeeLinkUser :execrows
-- Links an employee without a user to one.
UPDATE employees SET user_id = @user_id
WHERE organization_id = @org_id AND id = @employee_id AND user_id IS NULL;

-- name: UserSetDisabled :execrows
-- Disables (ending its sessions) or enables the user with this email (any case).
UPDATE users SET disabled_at = CASE WHEN @disabled::boolean THEN coalesce(disabled_at, now()) END
WHERE lower(email) = lower(@email);
