-- A counter per family that changes whenever any of its stored vectors does
-- (insert, update, delete, including cascades from deleted entries), so an
-- in-process copy of the family's vectors can be reused until it moves.
-- (No OR IGNORE / upsert inside the triggers: the outer statement's conflict
-- handling would override it.)

CREATE TABLE vector_generations (
    family_id   TEXT PRIMARY KEY,
    generation  INTEGER NOT NULL
);

CREATE TRIGGER entry_vectors_insert_generation AFTER INSERT ON entry_vectors BEGIN
    INSERT INTO vector_generations (family_id, generation)
        SELECT NEW.family_id, 0 WHERE NOT EXISTS (SELECT 1 FROM vector_generations WHERE family_id = NEW.family_id);
    UPDATE vector_generations SET generation = generation + 1 WHERE family_id = NEW.family_id;
END;

CREATE TRIGGER entry_vectors_update_generation AFTER UPDATE ON entry_vectors BEGIN
    INSERT INTO vector_generations (family_id, generation)
        SELECT NEW.family_id, 0 WHERE NOT EXISTS (SELECT 1 FROM vector_generations WHERE family_id = NEW.family_id);
    UPDATE vector_generations SET generation = generation + 1 WHERE family_id = NEW.family_id;
END;

CREATE TRIGGER entry_vectors_delete_generation AFTER DELETE ON entry_vectors BEGIN
    INSERT INTO vector_generations (family_id, generation)
        SELECT OLD.family_id, 0 WHERE NOT EXISTS (SELECT 1 FROM vector_generations WHERE family_id = OLD.family_id);
    UPDATE vector_generations SET generation = generation + 1 WHERE family_id = OLD.family_id;
END;
