-- 000007 expenses: what employees spend, and its review by admins.
--
-- Why: an employee files its own expense, always PENDING and unreviewed; only admins review, once
-- (PENDING -> APPROVED | REJECTED, a rejection with a comment), and what was submitted never changes. The
-- same idempotency key of an employee is one expense. Filing emits expense.created; a review
-- expense.approved or expense.rejected.
-- Locks: creates objects only.

CREATE TABLE expenses (
    organization_id   uuid          NOT NULL REFERENCES organizations ON DELETE CASCADE,
    id                uuid          NOT NULL DEFAULT gen_random_uuid(),
    employee_id       uuid          NOT NULL,
    amount            numeric(12,2) NOT NULL CHECK (amount > 0),
    description       text          NOT NULL CHECK (length(description) BETWEEN 3 AND 500),
    status            text          NOT NULL DEFAULT 'PENDING' CHECK (status IN ('PENDING', 'APPROVED', 'REJECTED')),
    receipt_url       text,
    rejection_comment text          CHECK (length(rejection_comment) <= 1000),
    idempotency_key   text          CHECK (length(idempotency_key) BETWEEN 1 AND 255),
    submitted_at      timestamptz   NOT NULL DEFAULT now(),
    reviewed_at       timestamptz,
    -- Who reviewed: a user id, or "api_key:<id>" when an integration approved it.
    reviewed_by       text,
    created_at        timestamptz   NOT NULL DEFAULT now(),
    updated_at        timestamptz   NOT NULL DEFAULT now(),
    PRIMARY KEY (organization_id, id),
    CONSTRAINT expenses_employee_fkey FOREIGN KEY (organization_id, employee_id)
        REFERENCES employees (organization_id, id) ON DELETE CASCADE,
    CONSTRAINT expenses_idempotency_key_key UNIQUE (organization_id, employee_id, idempotency_key),
    -- coalesce: a NULL comment must fail the check too (a CHECK that evaluates to NULL passes).
    CONSTRAINT expenses_rejection_needs_comment
        CHECK (status <> 'REJECTED' OR coalesce(length(btrim(rejection_comment)), 0) > 0)
);

CREATE INDEX expenses_employee_submitted ON expenses (organization_id, employee_id, submitted_at DESC);
CREATE INDEX expenses_status_submitted ON expenses (organization_id, status, submitted_at DESC);

-- Before an expense changes: what was submitted stays, a review happens once, and updated_at.
CREATE FUNCTION app.expenses_before_update() RETURNS trigger
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

CREATE TRIGGER expenses_before_update BEFORE UPDATE ON expenses
    FOR EACH ROW EXECUTE FUNCTION app.expenses_before_update();

CREATE FUNCTION app.expenses_events() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM app.emit(NEW.organization_id, 'expense.created',
                         jsonb_build_object('expense_id', NEW.id, 'employee_id', NEW.employee_id, 'amount', NEW.amount,
                                            'description', NEW.description, 'submitted_at', NEW.submitted_at),
                         'expense.created',
                         jsonb_build_object('expenseId', NEW.id, 'employeeId', NEW.employee_id, 'amount', NEW.amount));
    ELSIF NEW.status IN ('APPROVED', 'REJECTED') THEN
        PERFORM app.emit(NEW.organization_id, 'expense.' || lower(NEW.status),
                         jsonb_build_object('expense_id', NEW.id, 'employee_id', NEW.employee_id, 'amount', NEW.amount,
                                            'description', NEW.description,
                                            CASE WHEN NEW.status = 'APPROVED' THEN 'approved_by' ELSE 'rejected_by' END,
                                            NEW.reviewed_by, 'reviewed_at', NEW.reviewed_at)
                         || CASE WHEN NEW.status = 'REJECTED'
                                 THEN jsonb_build_object('rejection_comment', NEW.rejection_comment)
                                 ELSE '{}'::jsonb END,
                         'expense.status',
                         jsonb_build_object('expenseId', NEW.id, 'employeeId', NEW.employee_id, 'status', NEW.status));
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER expenses_created AFTER INSERT ON expenses
    FOR EACH ROW EXECUTE FUNCTION app.expenses_events();
CREATE TRIGGER expenses_reviewed AFTER UPDATE OF status ON expenses
    FOR EACH ROW WHEN (OLD.status = 'PENDING' AND NEW.status <> 'PENDING')
    EXECUTE FUNCTION app.expenses_events();

-- Privileges and row-level security ------------------------------------------------------------------------
-- Column lists keep each writer to its columns: an employee files (never status or review fields), an
-- admin reviews.

GRANT SELECT, INSERT (organization_id, employee_id, amount, description, receipt_url, idempotency_key),
    UPDATE (status, reviewed_at, reviewed_by, rejection_comment) ON expenses TO fieldtrack_api;

ALTER TABLE expenses ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;

CREATE POLICY expenses_select ON expenses FOR SELECT TO fieldtrack_api
    USING (organization_id = (SELECT app.org_id())
        AND ((SELECT app.role()) = 'ADMIN' OR employee_id = (SELECT app.employee_id())));
CREATE POLICY expenses_insert ON expenses FOR INSERT TO fieldtrack_api
    WITH CHECK (organization_id = (SELECT app.org_id()) AND employee_id = (SELECT app.employee_id())
        AND status = 'PENDING' AND reviewed_at IS NULL AND reviewed_by IS NULL);
CREATE POLICY expenses_update ON expenses FOR UPDATE TO fieldtrack_api
    USING (organization_id = (SELECT app.org_id()) AND (SELECT app.role()) = 'ADMIN')
    WITH CHECK (organization_id = (SELECT app.org_id()));
