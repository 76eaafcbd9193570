-- Sleutel server schema, version 3.

-- The account a completed enrollment created or renewed, so that a phone which lost the answer
-- to its completion can ask again and get the same answer. (Enrollments completed before this
-- version have none; repeating their completion is refused as before.)
ALTER TABLE enrollments ADD COLUMN account_id TEXT REFERENCES accounts (id);
