-- The lexical index beside the vectors (hybrid retrieval). Rows hold an
-- entry's pre-tokenised terms (agent/src/text/lexical.rs: English stems,
-- Korean stems and syllable bigrams), written when the entry's version is
-- indexed and gone with the entry. `family` is a token ('f' + the family id's
-- hex) so a search matches within one family inside the FTS index itself.
CREATE TABLE entry_lexicon (
    rowid     INTEGER PRIMARY KEY,
    entry_id  TEXT NOT NULL UNIQUE REFERENCES entries(id) ON DELETE CASCADE,
    family    TEXT NOT NULL,
    terms     TEXT NOT NULL
);
CREATE VIRTUAL TABLE entry_terms USING fts5(family, terms, content = 'entry_lexicon', content_rowid = 'rowid', tokenize = 'unicode61 remove_diacritics 0');
CREATE TRIGGER entry_lexicon_insert AFTER INSERT ON entry_lexicon BEGIN
    INSERT INTO entry_terms (rowid, family, terms) VALUES (NEW.rowid, NEW.family, NEW.terms);
END;
CREATE TRIGGER entry_lexicon_delete AFTER DELETE ON entry_lexicon BEGIN
    INSERT INTO entry_terms (entry_terms, rowid, family, terms) VALUES ('delete', OLD.rowid, OLD.family, OLD.terms);
END;
CREATE TRIGGER entry_lexicon_update AFTER UPDATE ON entry_lexicon BEGIN
    INSERT INTO entry_terms (entry_terms, rowid, family, terms) VALUES ('delete', OLD.rowid, OLD.family, OLD.terms);
    INSERT INTO entry_terms (rowid, family, terms) VALUES (NEW.rowid, NEW.family, NEW.terms);
END;
