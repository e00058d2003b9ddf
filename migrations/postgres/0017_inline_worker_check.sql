-- dadly_is_worker() looked up the owner of `jobs` in pg_class and pg_roles on
-- every call. A SQL function whose body holds a subquery is never inlined, and
-- row-level security calls it for each row a policy checks: Postgres ORs a
-- table's permissive policies with the last-created first, so the `*_find`
-- worker policies on users, members, entries and families ran it before the
-- family's own condition, on every row of every request. Under a burst of
-- recorded notes that was ~30% of Postgres's CPU.
--
-- The owner's name is now fixed into the function when this migration runs
-- (as the owner, who owns `jobs`): the body is two comparisons, which the
-- planner inlines into each policy. Renaming the owner role afterwards makes
-- the check false (workers then claim nothing, loudly) until this function is
-- created again; it never makes it true for anyone else.
DO $$
DECLARE owner_name name;
BEGIN
    SELECT r.rolname INTO STRICT owner_name FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner WHERE c.oid = 'jobs'::regclass;
    EXECUTE format(
        'CREATE OR REPLACE FUNCTION dadly_is_worker() RETURNS boolean LANGUAGE sql STABLE AS %L',
        format('SELECT current_user <> session_user AND current_user = %L::name', owner_name));
END $$;
