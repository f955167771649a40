-- 000009 filing expenses, their receipts, and their review, reversed.
DROP TRIGGER IF EXISTS expenses_review_not_own ON expenses;
DROP FUNCTION IF EXISTS app.expenses_review_not_own();
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
DROP FUNCTION IF EXISTS app.acts_for_employee(uuid, uuid);
DROP FUNCTION IF EXISTS app.receipt_signature(uuid, bigint);
DROP TABLE IF EXISTS app.receipt_signing_key;
DROP TABLE IF EXISTS receipts;
DROP FUNCTION IF EXISTS app.receipts_gone();
DROP TABLE IF EXISTS app.receipt_files_gone;
