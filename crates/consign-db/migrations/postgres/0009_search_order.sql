-- The SQLite twin keys its full-text index by message rowid. PostgreSQL
-- searches its GIN index and orders by id; nothing changes here.
SELECT 1;
