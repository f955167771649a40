-- 000004 users and employees, reversed.
DROP TABLE IF EXISTS employees, users;
DROP TABLE IF EXISTS app.employee_code_counters;
DROP FUNCTION IF EXISTS app.employees_events();
DROP FUNCTION IF EXISTS app.employees_before_write();
