-- name: EmployeeCreate :one
-- Adds an employee to the caller's organization; the database generates employee_code when it is NULL.
INSERT INTO employees (organization_id, name, employee_code, user_id, phone)
VALUES (app.org_id(), @name, sqlc.narg(employee_code), sqlc.narg(user_id), sqlc.narg(phone))
RETURNING *;

-- name: EmployeeGet :one
SELECT * FROM employees WHERE id = @id;
