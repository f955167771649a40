-- name: EmployeeCreate :one
-- Adds an employee to the organization; the database generates employee_code when it is NULL.
INSERT INTO employees (organization_id, name, employee_code, user_id, phone)
VALUES (@org_id, @name, sqlc.narg(employee_code), sqlc.narg(user_id), sqlc.narg(phone))
RETURNING *;

-- name: EmployeeGet :one
SELECT * FROM employees WHERE organization_id = @org_id AND id = @id;
