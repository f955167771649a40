-- 000009 filing expenses, their receipts, and their review.
--
-- Why:
-- * Filing is one function, app.file_expense: the same idempotency key of an employee is one expense
--   (the same request again answers it; another request with that key is PT422), a receipt uploaded to
--   this server is attached in the same transaction, and a deactivated employee cannot file.
-- * A receipt is uploaded by the browser with no credentials, to a URL this server signed (HMAC-SHA256
--   with a key only the owner can read, over the receipt's id and expiry): the signature, the expiry
--   and the receipt's state (pending -> uploading -> uploaded -> attached) make it expiring and
--   single-use. Receipts never attached are removed by the server once their URL expired; the file
--   lives outside Postgres, so a deleted receipt leaves its key in app.receipt_files_gone and the
--   server's janitor removes the file.
-- * Nobody reviews their own expense (an admin who is also the employee included).
-- * app.expense_rows is an expense as the API shows it, with its employee's code and name.
-- Locks: adds a column to expenses (no rewrite, no default) and triggers on it.

-- receipts ------------------------------------------------------------------------------------------------

CREATE TABLE receipts (
    organization_id uuid        NOT NULL REFERENCES organizations ON DELETE CASCADE,
    id              uuid        NOT NULL,
    employee_id     uuid        NOT NULL,
    extension       text        NOT NULL CHECK (extension IN ('jpg', 'jpeg', 'png', 'webp', 'pdf')),
    content_type    text        NOT NULL
        CHECK (content_type IN ('image/jpeg', 'image/png', 'image/webp', 'application/pdf')),
    -- pending: URL handed out; uploading: a PUT is being stored; uploaded: stored, not yet filed with an
    -- expense; attached: part of an expense.
    status          text        NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'uploading', 'uploaded', 'attached')),
    storage_key     text        NOT NULL,
    size_bytes      bigint,
    sha256          text,
    expires_at      timestamptz NOT NULL,
    uploaded_at     timestamptz,
    expense_id      uuid,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (organization_id, id),
    -- The upload URL names the receipt by its id alone (it carries no organization).
    CONSTRAINT receipts_id_key UNIQUE (id),
    CONSTRAINT receipts_employee_fkey FOREIGN KEY (organization_id, employee_id)
        REFERENCES employees (organization_id, id) ON DELETE CASCADE,
    CONSTRAINT receipts_expense_fkey FOREIGN KEY (organization_id, expense_id)
        REFERENCES expenses (organization_id, id) ON DELETE CASCADE
);

-- The janitor's queue: receipts not attached, by expiry.
CREATE INDEX receipts_unattached ON receipts (expires_at) WHERE status <> 'attached';

-- Files whose receipt is gone, for the janitor to remove: whatever deletes a receipt row (the janitor's
-- sweep of expired uploads, or a cascade from its organization, employee or expense), its file follows.
CREATE TABLE app.receipt_files_gone (
    storage_key text        PRIMARY KEY,
    deleted_at  timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION app.receipts_gone() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, public, app
    AS $$
BEGIN
    INSERT INTO app.receipt_files_gone (storage_key) SELECT g.storage_key FROM gone g ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;

CREATE TRIGGER receipts_gone AFTER DELETE ON receipts REFERENCING OLD TABLE AS gone
    FOR EACH STATEMENT EXECUTE FUNCTION app.receipts_gone();

CREATE TABLE app.receipt_signing_key (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    key       bytea   NOT NULL DEFAULT gen_random_bytes(32)
);
INSERT INTO app.receipt_signing_key DEFAULT VALUES;

-- The signature of an upload URL: hex HMAC-SHA256 of "<id>.<expiry in unix seconds>".
CREATE FUNCTION app.receipt_signature(p_id uuid, p_expires bigint) RETURNS text
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, public, app
    AS $$
        SELECT encode(hmac(convert_to(p_id::text || '.' || p_expires::text, 'UTF8'), k.key, 'sha256'), 'hex')
          FROM app.receipt_signing_key k
    $$;
REVOKE ALL ON FUNCTION app.receipt_signature(uuid, bigint) FROM PUBLIC;

-- app.acts_for_employee: whether the caller may act for employee p_employee of p_org — a session that
-- switched to a role (the API's) only for the employee of its claims; the owner, logged in as itself,
-- for any (always true or false).
CREATE FUNCTION app.acts_for_employee(p_org uuid, p_employee uuid) RETURNS boolean
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, public, app
    AS $$
        SELECT coalesce(current_setting('role', true), 'none') = 'none'
            OR (p_employee IS NOT NULL AND p_org IS NOT DISTINCT FROM app.org_id()
                AND p_employee IS NOT DISTINCT FROM app.employee_id())
    $$;

-- app.create_receipt_upload registers an upload of the calling employee and returns its URL's signature.
CREATE FUNCTION app.create_receipt_upload(p_org uuid, p_employee uuid, p_id uuid, p_extension text,
                                          p_content_type text, p_expires bigint) RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, public, app
    AS $$
BEGIN
    IF NOT app.acts_for_employee(p_org, p_employee) THEN
        RAISE EXCEPTION 'Employee context required. This endpoint is for employees only.'
            USING ERRCODE = 'PT403', HINT = 'FORBIDDEN';
    END IF;
    IF NOT EXISTS (SELECT FROM employees WHERE organization_id = p_org AND id = p_employee AND is_active) THEN
        RAISE EXCEPTION 'Cannot file expenses: this employee is deactivated.' USING ERRCODE = 'PT403', HINT = 'FORBIDDEN';
    END IF;
    INSERT INTO receipts (organization_id, id, employee_id, extension, content_type, storage_key, expires_at)
    VALUES (p_org, p_id, p_employee, p_extension, p_content_type,
            p_org || '/' || p_employee || '/' || p_id || '.' || p_extension, to_timestamp(p_expires));
    RETURN app.receipt_signature(p_id, p_expires);
END
$$;
REVOKE ALL ON FUNCTION app.create_receipt_upload(uuid, uuid, uuid, text, text, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.create_receipt_upload(uuid, uuid, uuid, text, text, bigint) TO fieldtrack_api;

-- app.receipt_upload is a step of an upload named by a URL: the receipt, once the URL's signature and
-- expiry are checked, moved from p_from to p_to (pending -> uploading when a PUT starts, uploading ->
-- uploaded when its file is stored, uploading -> pending when it was refused). The PUT that uses the URL
-- carries no credentials: the signature is its authority. PT403 for a wrong signature, PT410 for an
-- expired URL, PT409 for a receipt not in p_from (a URL already used, or an upload under way).
CREATE FUNCTION app.receipt_upload(p_id uuid, p_expires bigint, p_signature text, p_from text, p_to text,
                                   p_size bigint DEFAULT NULL, p_sha256 text DEFAULT NULL) RETURNS receipts
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, public, app
    AS $$
DECLARE
    r receipts;
BEGIN
    IF (p_from, p_to) NOT IN (('pending', 'uploading'), ('uploading', 'uploaded'), ('uploading', 'pending')) THEN
        RAISE EXCEPTION 'no upload step from % to %', p_from, p_to USING ERRCODE = '22023';
    END IF;
    -- Digests compared, not the signatures: the comparison takes the same time wherever they differ.
    IF digest(coalesce(p_signature, ''), 'sha256') IS DISTINCT FROM digest(app.receipt_signature(p_id, p_expires), 'sha256') THEN
        RAISE EXCEPTION 'The upload URL is not valid.' USING ERRCODE = 'PT403', HINT = 'INVALID_UPLOAD_URL';
    END IF;
    IF to_timestamp(p_expires) <= now() THEN
        RAISE EXCEPTION 'The upload URL has expired.' USING ERRCODE = 'PT410', HINT = 'UPLOAD_URL_EXPIRED';
    END IF;
    UPDATE receipts
       SET status = p_to,
           size_bytes = coalesce(p_size, size_bytes), sha256 = coalesce(p_sha256, sha256),
           uploaded_at = CASE WHEN p_to = 'uploaded' THEN now() ELSE uploaded_at END
     WHERE id = p_id AND status = p_from AND expires_at = to_timestamp(p_expires)
    RETURNING * INTO r;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'The upload URL has already been used.' USING ERRCODE = 'PT409', HINT = 'UPLOAD_URL_USED';
    END IF;
    RETURN r;
END
$$;
REVOKE ALL ON FUNCTION app.receipt_upload(uuid, bigint, text, text, text, bigint, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.receipt_upload(uuid, bigint, text, text, text, bigint, text) TO fieldtrack_api;

-- app.attach_receipt files an uploaded receipt of the employee with one of its expenses (PT400 unless the
-- receipt is the employee's, uploaded, unattached and unexpired).
CREATE FUNCTION app.attach_receipt(p_org uuid, p_employee uuid, p_receipt uuid, p_expense uuid) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, public, app
    AS $$
BEGIN
    IF NOT app.acts_for_employee(p_org, p_employee) THEN
        RAISE EXCEPTION 'receipt_url does not name a receipt you uploaded' USING ERRCODE = 'PT400', HINT = 'VALIDATION_ERROR';
    END IF;
    UPDATE receipts SET status = 'attached', expense_id = p_expense
     WHERE organization_id = p_org AND id = p_receipt AND employee_id = p_employee
       AND status = 'uploaded' AND expires_at > now()
       AND EXISTS (SELECT FROM expenses x WHERE x.organization_id = p_org AND x.id = p_expense
                      AND x.employee_id = p_employee AND x.status = 'PENDING');
    IF NOT FOUND THEN
        RAISE EXCEPTION 'receipt_url does not name a receipt you uploaded' USING ERRCODE = 'PT400', HINT = 'VALIDATION_ERROR';
    END IF;
END
$$;
REVOKE ALL ON FUNCTION app.attach_receipt(uuid, uuid, uuid, uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.attach_receipt(uuid, uuid, uuid, uuid) TO fieldtrack_api;

-- expenses ------------------------------------------------------------------------------------------------

-- What an idempotency key was first used with (a digest of amount, description and receipt).
ALTER TABLE expenses ADD COLUMN idempotency_fingerprint text;

-- An expense as the API shows it.
CREATE VIEW app.expense_rows WITH (security_invoker = true) AS
SELECT x.id, x.organization_id, x.employee_id, x.amount, x.description, x.status, x.receipt_url,
       x.rejection_comment, x.submitted_at, x.reviewed_at, x.reviewed_by, x.created_at, x.updated_at,
       e.employee_code, e.name AS employee_name
  FROM expenses x
  JOIN employees e ON e.organization_id = x.organization_id AND e.id = x.employee_id;

-- A deactivated employee files nothing; filing is an activity of the employee.
CREATE FUNCTION app.expenses_before_insert() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF EXISTS (SELECT FROM employees e
                WHERE e.organization_id = NEW.organization_id AND e.id = NEW.employee_id AND NOT e.is_active) THEN
        RAISE EXCEPTION 'Cannot file expenses: this employee is deactivated.' USING ERRCODE = 'PT403', HINT = 'FORBIDDEN';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER expenses_before_insert BEFORE INSERT ON expenses
    FOR EACH ROW EXECUTE FUNCTION app.expenses_before_insert();

CREATE FUNCTION app.expenses_activity() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, public, app
    AS $$
BEGIN
    PERFORM app.touch_employee(NEW.organization_id, NEW.employee_id, NEW.submitted_at);
    RETURN NULL;
END
$$;

CREATE TRIGGER expenses_activity AFTER INSERT ON expenses
    FOR EACH ROW EXECUTE FUNCTION app.expenses_activity();

-- Nobody reviews their own expense: not an admin who is also the expense's employee either, whether its
-- token names the employee or only the user linked to it. Its own trigger, after expenses_before_update
-- (000007; triggers fire in name order), which refuses a second review first.
CREATE FUNCTION app.expenses_review_not_own() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF NEW.status IS DISTINCT FROM OLD.status
        AND (OLD.employee_id = app.employee_id()
             OR EXISTS (SELECT FROM employees e
                         WHERE e.organization_id = OLD.organization_id AND e.id = OLD.employee_id
                           AND e.user_id = app.user_id())) THEN
        RAISE EXCEPTION 'You cannot review your own expense.' USING ERRCODE = 'PT403', HINT = 'FORBIDDEN';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER expenses_review_not_own BEFORE UPDATE OF status ON expenses
    FOR EACH ROW EXECUTE FUNCTION app.expenses_review_not_own();

-- app.file_expense files an expense of the calling employee and returns it as the API shows it. With
-- p_key, the employee's earlier expense of that key is returned instead when p_fingerprint matches what
-- it was filed with, and PT422 is raised when it does not (a concurrent request with the same key is
-- waited for by the unique index, then compared the same way). p_receipt is a receipt uploaded to this
-- server (attached in the same transaction); p_receipt_url is stored as given. Runs as the caller.
CREATE FUNCTION app.file_expense(p_org uuid, p_employee uuid, p_amount numeric, p_description text,
                                 p_receipt_url text, p_receipt uuid, p_key text, p_fingerprint text)
    RETURNS app.expense_rows
    LANGUAGE plpgsql
    SET search_path = pg_catalog, public, app
    AS $$
DECLARE
    new_id uuid;
    old    expenses;
    result app.expense_rows;
BEGIN
    INSERT INTO expenses (organization_id, employee_id, amount, description, receipt_url, idempotency_key,
                          idempotency_fingerprint)
    VALUES (p_org, p_employee, p_amount, p_description, p_receipt_url, p_key, CASE WHEN p_key IS NOT NULL THEN p_fingerprint END)
    ON CONFLICT (organization_id, employee_id, idempotency_key) DO NOTHING
    RETURNING expenses.id INTO new_id;
    IF new_id IS NULL THEN
        SELECT * INTO old FROM expenses
         WHERE organization_id = p_org AND employee_id = p_employee AND idempotency_key = p_key;
        IF old.idempotency_fingerprint IS DISTINCT FROM p_fingerprint THEN
            RAISE EXCEPTION 'This idempotency key was already used for a different expense.'
                USING ERRCODE = 'PT422', HINT = 'IDEMPOTENCY_KEY_REUSED';
        END IF;
        new_id := old.id;
    ELSIF p_receipt IS NOT NULL THEN
        PERFORM app.attach_receipt(p_org, p_employee, p_receipt, new_id);
    END IF;
    SELECT * INTO result FROM app.expense_rows r WHERE r.organization_id = p_org AND r.id = new_id;
    RETURN result;
END
$$;

-- Privileges and row-level security ------------------------------------------------------------------------

GRANT SELECT ON app.expense_rows TO fieldtrack_api;
GRANT INSERT (idempotency_fingerprint) ON expenses TO fieldtrack_api;
GRANT SELECT ON receipts TO fieldtrack_api;
GRANT SELECT, DELETE ON receipts TO fieldtrack_worker;
GRANT UPDATE (status) ON receipts TO fieldtrack_worker; -- what SELECT ... FOR UPDATE needs to lock rows
GRANT SELECT, UPDATE, DELETE ON app.receipt_files_gone TO fieldtrack_worker;

ALTER TABLE receipts ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;

-- A receipt is seen by its employee and the organization's admins; it is written only by the functions
-- above (as the owner).
CREATE POLICY receipts_select ON receipts FOR SELECT TO fieldtrack_api
    USING (organization_id = (SELECT app.org_id())
        AND ((SELECT app.role()) = 'ADMIN' OR employee_id = (SELECT app.employee_id())));
-- The janitor's: receipts of every organization.
CREATE POLICY receipts_worker ON receipts FOR ALL TO fieldtrack_worker USING (true) WITH CHECK (true);
