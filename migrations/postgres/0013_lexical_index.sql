-- The lexical index beside the vectors (hybrid retrieval): an entry's
-- pre-tokenised terms (agent/src/text/lexical.rs) as a tsvector built from
-- the term list itself (array_to_tsvector: no text-search configuration has
-- to understand Korean), written when the entry's version is indexed, gone
-- with the entry, and confined to its family by row-level security.
CREATE TABLE entry_terms (
    entry_id   uuid PRIMARY KEY REFERENCES entries(id) ON DELETE CASCADE,
    family_id  uuid NOT NULL,
    terms      tsvector NOT NULL
);
CREATE INDEX entry_terms_search ON entry_terms USING gin (terms);
CREATE INDEX entry_terms_family ON entry_terms (family_id);
ALTER TABLE entry_terms ENABLE ROW LEVEL SECURITY;
ALTER TABLE entry_terms FORCE ROW LEVEL SECURITY;
CREATE POLICY entry_terms_own ON entry_terms USING (family_id = dadly_family()) WITH CHECK (family_id = dadly_family());
GRANT SELECT, INSERT, UPDATE, DELETE ON entry_terms TO dadly_runtime;
