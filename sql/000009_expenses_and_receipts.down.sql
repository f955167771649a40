-- 000009 filing expenses, their receipts, and their review, reversed: the BEFORE UPDATE rule of 000007
-- comes back.
DROP FUNCTION IF EXISTS app.file_expense(uuid, uuid, numeric, text, text, uuid, text, text);
DROP TRIGGER IF EXISTS expenses_activity ON expenses;
DROP FUNCTION IF EXISTS app.expenses_activity();
DROP TRIGGER IF EXISTS expenses_before_insert ON expenses;
DROP FUNCTION IF EXISTS app.expenses_before_insert();
DROP VIEW IF EXISTS app.expense_rows;
ALTER TABLE expenses DROP COLUMN IF EXISTS idempotency_fingerprint;
DROP FUNCTION IF EXISTS app.attach_receipt(uuid, uuid, uuid, uuid);
DROP FUNCTION IF EXISTS app.receipt_upload(uuid, bigint, text, text, text, bigint, text);
DROP FUNCTION IF EXISTS app.create_receipt_upload(uuid, uuid, uuid, text, text, bigint);
DROP FUNCTION IF EXISTS app.receipt_signature(uuid, bigint);
DROP TABLE IF EXISTS app.receipt_signing_key;
DROP TABLE IF EXISTS receipts;
CREATE OR REPLACE FUNCTION app.expenses_before_update() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF NEW.organization_id <> OLD.organization_id OR NEW.employee_id <> OLD.employee_id
        OR NEW.amount <> OLD.amount OR NEW.description <> OLD.description
        OR NEW.submitted_at <> OLD.submitted_at THEN
        RAISE EXCEPTION 'A submitted expense cannot be changed.'
            USING ERRCODE = 'PT400', HINT = 'VALIDATION_ERROR';
    END IF;
    IF OLD.status <> 'PENDING' AND NEW.status IS DISTINCT FROM OLD.status THEN
        RAISE EXCEPTION 'Expense has already been %. Only PENDING expenses can be actioned.', lower(OLD.status)
            USING ERRCODE = 'PT400', HINT = 'VALIDATION_ERROR';
    END IF;
    NEW.updated_at := now();
    RETURN NEW;
END
$$;
