-- Sleutel server schema, version 7: two factors for counter activations.

-- Counter activations need two factors: the code the official hands out (code_hash) and the
-- token of the e-mail's activation link, kept only as a keyed hash. The server finds the code's
-- row by the link and then checks the typed code against that row, so wrong codes count on it.
-- Codes issued before this version have no link and can no longer be used (their e-mail carried
-- the code itself): the person asks the counter again.
ALTER TABLE identity_codes ADD COLUMN link_hash BLOB;
CREATE UNIQUE INDEX identity_codes_link ON identity_codes (link_hash);
