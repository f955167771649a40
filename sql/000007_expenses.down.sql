-- 000007 expenses, reversed.
DROP TABLE IF EXISTS expenses;
DROP FUNCTION IF EXISTS app.expenses_events();
DROP FUNCTION IF EXISTS app.expenses_before_update();
