-- Marking a batch of entries as indexed was one join of the batch (an
-- unnest of ids) with `entries`. Whenever the planner thought the family
-- small (a table without statistics yet, or a family larger than the
-- average), it scanned all of the family's entries once per batch row: at
-- 5,000 entries, 40 ms for each of the two statements, and the embedding lane
-- fell behind under load. Here every entry is reached by its primary key, one
-- at a time, so the cost is the batch's size whatever the estimates say.
--
-- Called inside the caller's family transaction (SECURITY INVOKER: row-level
-- security applies as to any query of the runtime role). Returns the entries
-- whose indexed version changed: the first marking of that version. Rows are
-- locked in the order given; callers pass ids sorted, so two markings cannot
-- deadlock.
CREATE FUNCTION dadly_mark_indexed(fid uuid, ids uuid[], versions bigint[], terms text[]) RETURNS SETOF uuid
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    prev bigint;
BEGIN
    FOR i IN 1 .. coalesce(array_length(ids, 1), 0) LOOP
        SELECT e.indexed_version INTO prev FROM entries e
            WHERE e.id = ids[i] AND e.family_id = fid AND e.version = versions[i] FOR UPDATE;
        CONTINUE WHEN NOT FOUND;
        IF prev IS DISTINCT FROM versions[i] THEN
            UPDATE entries SET indexed_version = versions[i] WHERE id = ids[i] AND family_id = fid;
            RETURN NEXT ids[i];
        END IF;
        INSERT INTO entry_terms (entry_id, family_id, terms)
            VALUES (ids[i], fid, array_to_tsvector(array_remove(string_to_array(terms[i], ' '), '')))
            ON CONFLICT (entry_id) DO UPDATE SET terms = excluded.terms;
    END LOOP;
END $$;

REVOKE ALL ON FUNCTION dadly_mark_indexed(uuid, uuid[], bigint[], text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION dadly_mark_indexed(uuid, uuid[], bigint[], text[]) TO dadly_runtime;
