-- A counter per family that changes whenever any of its stored vectors does
-- (insert, update, delete, including cascades from deleted entries), so an
-- in-process copy of the family's vectors can be reused until it moves.

CREATE TABLE vector_generations (
    family_id   uuid PRIMARY KEY,
    generation  bigint NOT NULL
);

ALTER TABLE vector_generations ENABLE ROW LEVEL SECURITY;
ALTER TABLE vector_generations FORCE ROW LEVEL SECURITY;
CREATE POLICY vector_generations_own ON vector_generations USING (family_id = dadly_family()) WITH CHECK (family_id = dadly_family());

CREATE FUNCTION dadly_bump_vector_generation() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO vector_generations AS g (family_id, generation)
    VALUES (CASE WHEN TG_OP = 'DELETE' THEN OLD.family_id ELSE NEW.family_id END, 1)
    ON CONFLICT (family_id) DO UPDATE SET generation = g.generation + 1;
    RETURN NULL;
END $$;

CREATE TRIGGER entry_vectors_generation AFTER INSERT OR UPDATE OR DELETE ON entry_vectors
    FOR EACH ROW EXECUTE FUNCTION dadly_bump_vector_generation();
