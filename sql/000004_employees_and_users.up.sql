-- 000004 users and employees: who logs in, and the people whose work is tracked.
--
-- Why: a user is the identity provider's account (id = JWT sub) with its role in one organization; an
-- employee is a person of the organization, optionally linked to a user. Employee codes are unique per
-- organization and generated when absent (EMP0001, EMP0002, ...); employee_number, the first run of
-- digits in the code, orders lists the way people count. A new employee emits employee.created.
-- Locks: creates objects only.

CREATE TABLE users (
    organization_id uuid        NOT NULL REFERENCES organizations ON DELETE CASCADE,
    id              uuid        NOT NULL DEFAULT gen_random_uuid(),
    email           text        NOT NULL,
    role            text        NOT NULL CHECK (role IN ('ADMIN', 'EMPLOYEE')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (organization_id, id),
    CONSTRAINT users_email_key UNIQUE (email)
);

CREATE TRIGGER users_updated_at BEFORE UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION app.set_updated_at();

CREATE TABLE employees (
    organization_id  uuid        NOT NULL REFERENCES organizations ON DELETE CASCADE,
    id               uuid        NOT NULL DEFAULT gen_random_uuid(),
    user_id          uuid,
    name             text        NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 200),
    employee_code    text        NOT NULL CHECK (length(btrim(employee_code)) BETWEEN 1 AND 64),
    employee_number  integer,
    phone            text        CHECK (length(phone) <= 40),
    is_active        boolean     NOT NULL DEFAULT true,
    last_activity_at timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (organization_id, id),
    CONSTRAINT employees_code_key UNIQUE (organization_id, employee_code),
    CONSTRAINT employees_user_key UNIQUE (organization_id, user_id),
    CONSTRAINT employees_user_fkey FOREIGN KEY (organization_id, user_id) REFERENCES users (organization_id, id)
);

CREATE INDEX employees_number_code ON employees (organization_id, employee_number, employee_code);

-- Per-organization counters behind generated employee codes. Not granted to the API role: only the
-- SECURITY DEFINER trigger below touches it.
CREATE TABLE app.employee_code_counters (
    organization_id uuid   PRIMARY KEY REFERENCES organizations ON DELETE CASCADE,
    last_value      bigint NOT NULL
);

-- Before an employee is written: the code when it is missing (the organization's next free EMPnnnn), the
-- number from the code, and updated_at.
CREATE FUNCTION app.employees_before_write() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, public, app
    AS $$
DECLARE
    n bigint;
BEGIN
    IF NEW.employee_code IS NULL OR btrim(NEW.employee_code) = '' THEN
        LOOP
            INSERT INTO app.employee_code_counters AS c (organization_id, last_value)
                VALUES (NEW.organization_id, 1)
                ON CONFLICT (organization_id) DO UPDATE SET last_value = c.last_value + 1
                RETURNING last_value INTO n;
            NEW.employee_code := 'EMP' || lpad(n::text, 4, '0');
            EXIT WHEN NOT EXISTS (
                SELECT FROM employees e
                WHERE e.organization_id = NEW.organization_id AND e.employee_code = NEW.employee_code);
        END LOOP;
    END IF;
    -- Nine digits always fit an integer; longer runs leave the number empty rather than fail the write.
    NEW.employee_number := substring(NEW.employee_code FROM '[0-9]{1,9}')::integer;
    IF TG_OP = 'UPDATE' THEN
        NEW.updated_at := now();
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER employees_before_write BEFORE INSERT OR UPDATE ON employees
    FOR EACH ROW EXECUTE FUNCTION app.employees_before_write();

-- A new employee is announced to integrators (not on the admin stream).
CREATE FUNCTION app.employees_events() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    PERFORM app.emit(NEW.organization_id, 'employee.created',
                     jsonb_build_object('employee_id', NEW.id, 'employee_code', NEW.employee_code,
                                        'name', NEW.name, 'created_at', NEW.created_at));
    RETURN NULL;
END
$$;

CREATE TRIGGER employees_events AFTER INSERT ON employees
    FOR EACH ROW EXECUTE FUNCTION app.employees_events();

-- Privileges and row-level security ------------------------------------------------------------------------

GRANT SELECT ON users TO fieldtrack_api;
GRANT SELECT, INSERT (organization_id, name, employee_code, user_id, phone, is_active),
    UPDATE (name, employee_code, user_id, phone, is_active, last_activity_at) ON employees TO fieldtrack_api;

ALTER TABLE users ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE employees ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;

CREATE POLICY users_select ON users FOR SELECT TO fieldtrack_api
    USING (organization_id = (SELECT app.org_id())
        AND ((SELECT app.role()) = 'ADMIN' OR id = (SELECT app.user_id())));

-- Employees: admins manage their organization's people; an employee sees only itself.
CREATE POLICY employees_select ON employees FOR SELECT TO fieldtrack_api
    USING (organization_id = (SELECT app.org_id())
        AND ((SELECT app.role()) = 'ADMIN' OR id = (SELECT app.employee_id())));
CREATE POLICY employees_insert ON employees FOR INSERT TO fieldtrack_api
    WITH CHECK (organization_id = (SELECT app.org_id()) AND (SELECT app.role()) = 'ADMIN');
CREATE POLICY employees_update ON employees FOR UPDATE TO fieldtrack_api
    USING (organization_id = (SELECT app.org_id()) AND (SELECT app.role()) = 'ADMIN')
    WITH CHECK (organization_id = (SELECT app.org_id()));
