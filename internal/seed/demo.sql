-- Demo data for `fieldtrack seed`: one organization, an admin, three employees with a few closed sessions.
-- Fixed ids and ON CONFLICT DO NOTHING make it idempotent. Runs as the owner (outside any request), so it
-- needs a role that bypasses row-level security (the local cluster's superuser does).
INSERT INTO organizations (id, name, slug)
VALUES ('a0000000-0000-4000-8000-000000000001', 'Demo Field Services', 'demo')
ON CONFLICT DO NOTHING;

INSERT INTO users (organization_id, id, email, role) VALUES
    ('a0000000-0000-4000-8000-000000000001', 'a0000000-0000-4000-8000-0000000000a1', 'admin@demo.fieldtrack.test', 'ADMIN'),
    ('a0000000-0000-4000-8000-000000000001', 'a0000000-0000-4000-8000-0000000000e1', 'asha.rao@demo.fieldtrack.test', 'EMPLOYEE'),
    ('a0000000-0000-4000-8000-000000000001', 'a0000000-0000-4000-8000-0000000000e2', 'ben.okafor@demo.fieldtrack.test', 'EMPLOYEE'),
    ('a0000000-0000-4000-8000-000000000001', 'a0000000-0000-4000-8000-0000000000e3', 'chen.li@demo.fieldtrack.test', 'EMPLOYEE')
ON CONFLICT DO NOTHING;

INSERT INTO employees (organization_id, id, user_id, name, employee_code, phone) VALUES
    ('a0000000-0000-4000-8000-000000000001', 'b0000000-0000-4000-8000-000000000001', 'a0000000-0000-4000-8000-0000000000e1', 'Asha Rao', 'EMP0001', '+1 555 0101'),
    ('a0000000-0000-4000-8000-000000000001', 'b0000000-0000-4000-8000-000000000002', 'a0000000-0000-4000-8000-0000000000e2', 'Ben Okafor', 'EMP0002', '+1 555 0102'),
    ('a0000000-0000-4000-8000-000000000001', 'b0000000-0000-4000-8000-000000000003', 'a0000000-0000-4000-8000-0000000000e3', 'Chen Li', 'EMP0003', NULL)
ON CONFLICT DO NOTHING;

-- Closed sessions on the last three days (relative to the first seeding), 8 h each.
INSERT INTO attendance_sessions (organization_id, id, employee_id, checkin_at, checkout_at, total_duration_seconds)
SELECT 'a0000000-0000-4000-8000-000000000001',
       ('c0000000-0000-4000-8000-' || lpad((e.n * 10 + d.n)::text, 12, '0'))::uuid,
       ('b0000000-0000-4000-8000-00000000000' || e.n)::uuid,
       date_trunc('day', now()) - make_interval(days => d.n) + interval '8 hours',
       date_trunc('day', now()) - make_interval(days => d.n) + interval '16 hours',
       8 * 3600
FROM generate_series(1, 3) AS e(n), generate_series(1, 3) AS d(n)
ON CONFLICT DO NOTHING;
