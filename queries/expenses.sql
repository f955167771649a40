-- Expenses, their receipts and their review. Every query names the caller's organization (@org_id) beside
-- the policies, but the receipt janitor's (Worker:), which span organizations.

-- name: ExpenseFile :one
-- Files an expense of the calling employee (or answers the one filed earlier with the same key and
-- request: created is false then); see app.file_expense.
SELECT r.*, (r.created_at = now())::bool AS created
FROM app.file_expense(@org_id, @employee_id, @amount::numeric, @description, sqlc.narg(receipt_url)::text,
                      sqlc.narg(receipt_id)::uuid, sqlc.narg(idempotency_key)::text, @fingerprint) AS r;

-- name: ExpenseList :many
-- The organization's expenses (or one employee's), newest first, of one status, 'all' or 'processed'
-- (reviewed: approved or rejected).
SELECT r.*, count(*) OVER ()::app.list_total AS total
FROM app.expense_rows r
WHERE r.organization_id = @org_id
  AND (sqlc.narg(employee_id)::uuid IS NULL OR r.employee_id = sqlc.narg(employee_id)::uuid)
  AND (@status::text = 'all' OR r.status = @status::text OR (@status::text = 'processed' AND r.status <> 'PENDING'))
ORDER BY r.submitted_at DESC, r.id
LIMIT @row_limit OFFSET @row_offset;

-- name: ExpenseReview :one
-- Approves or rejects a pending expense (the comment is kept for a rejection only) and answers it as the
-- API shows it; no row when the organization has no such expense.
UPDATE expenses x
SET status            = @status::text,
    reviewed_at       = now(),
    reviewed_by       = @reviewed_by::text,
    rejection_comment = CASE WHEN @status::text = 'REJECTED' THEN sqlc.narg(rejection_comment)::text END
FROM employees e
WHERE x.organization_id = @org_id AND x.id = @id
  AND e.organization_id = x.organization_id AND e.id = x.employee_id
RETURNING x.id, x.organization_id, x.employee_id, x.amount, x.description, x.status, x.receipt_url,
          x.rejection_comment, x.submitted_at, x.reviewed_at, x.reviewed_by, x.created_at, x.updated_at,
          e.employee_code, e.name AS employee_name;

-- name: ExpenseSummaryByEmployee :many
-- Per employee with expenses: pending and all counts and amounts and the latest filing, those with the
-- most pending first.
SELECT x.employee_id AS "employeeId", e.name AS "employeeName", e.employee_code AS "employeeCode",
       count(*) FILTER (WHERE x.status = 'PENDING')::int AS "pendingCount",
       coalesce(sum(x.amount) FILTER (WHERE x.status = 'PENDING'), 0)::numeric AS "pendingAmount",
       count(*)::int AS "totalCount",
       sum(x.amount)::numeric AS "totalAmount",
       max(x.submitted_at)::timestamptz AS "latestExpenseDate",
       count(*) OVER ()::app.list_total AS total
FROM expenses x
JOIN employees e ON e.organization_id = x.organization_id AND e.id = x.employee_id
WHERE x.organization_id = @org_id
GROUP BY x.employee_id, e.name, e.employee_code
ORDER BY 4 DESC, 8 DESC, 1
LIMIT @row_limit OFFSET @row_offset;

-- name: ExpenseExport :many
-- Every expense of the export (the organization's, or one employee's), newest first. Read through a
-- cursor (db.Queries.ExpenseExportEach), never as one slice.
SELECT id, employee_code, employee_name, amount, description, status, rejection_comment, submitted_at, reviewed_at
FROM app.expense_rows
WHERE organization_id = @org_id
  AND (sqlc.narg(employee_id)::uuid IS NULL OR employee_id = sqlc.narg(employee_id)::uuid)
ORDER BY submitted_at DESC, id;

-- name: ReceiptCreateUpload :one
-- Registers an upload of the calling employee and answers its URL's signature.
SELECT app.create_receipt_upload(@org_id, @employee_id, @id, @extension, @content_type, @expires::bigint)::text
    AS signature;

-- name: ReceiptUploadStep :one
-- A step of the upload a signed URL names (pending -> uploading -> uploaded, or back to pending).
SELECT * FROM app.receipt_upload(@id, @expires::bigint, @signature, @from_status, @to_status,
                                 sqlc.narg(size_bytes)::bigint, sqlc.narg(sha256)::text);

-- name: ReceiptGet :one
-- A stored receipt the caller may see (its employee, the organization's admins).
SELECT * FROM receipts WHERE organization_id = @org_id AND id = @id AND status IN ('uploaded', 'attached');

-- name: ReceiptExpire :execrows
-- Worker: deletes receipts never attached whose URL expired, a batch at a time, skipping those another
-- janitor holds; their files are queued in app.receipt_files_gone by the delete.
DELETE FROM receipts r
USING (SELECT organization_id, id FROM receipts
        WHERE status <> 'attached' AND expires_at < now()
        ORDER BY expires_at
        LIMIT @max_rows
        FOR UPDATE SKIP LOCKED) x
WHERE r.organization_id = x.organization_id AND r.id = x.id;

-- name: ReceiptFilesGone :many
-- Worker: files of deleted receipts, oldest first, locked for this janitor.
SELECT storage_key FROM app.receipt_files_gone ORDER BY deleted_at LIMIT @max_rows FOR UPDATE SKIP LOCKED;

-- name: ReceiptFilesRemoved :exec
-- Worker: forgets files the janitor removed.
DELETE FROM app.receipt_files_gone WHERE storage_key = ANY (@storage_keys::text[]);
