-- Dadly's schema for Postgres: the same logical schema as SQLite, with uuid,
-- timestamptz, arrays and row-level security on every family-owned table.
-- The service sets `app.family_id` per transaction (set_config(..., true));
-- workers set `app.role = 'worker'` to claim jobs across families, and token
-- lookups set `app.user_id`. FORCE makes the policies apply to the table owner
-- too, so only superusers and BYPASSRLS roles (which the service must not use)
-- can see across families.

CREATE FUNCTION dadly_family() RETURNS uuid LANGUAGE sql STABLE AS
$$ SELECT NULLIF(current_setting('app.family_id', true), '')::uuid $$;
CREATE FUNCTION dadly_is_worker() RETURNS boolean LANGUAGE sql STABLE AS
$$ SELECT coalesce(current_setting('app.role', true), '') = 'worker' $$;

CREATE TABLE families (
    id          uuid PRIMARY KEY,
    name        text NOT NULL,
    created_at  timestamptz NOT NULL
);

CREATE TABLE users (
    id          uuid PRIMARY KEY,
    family_id   uuid NOT NULL REFERENCES families(id) ON DELETE CASCADE,
    name        text NOT NULL,
    created_at  timestamptz NOT NULL
);
CREATE INDEX users_family ON users(family_id);

CREATE TABLE members (
    id          uuid PRIMARY KEY,
    family_id   uuid NOT NULL REFERENCES families(id) ON DELETE CASCADE,
    name        text NOT NULL,
    aliases     text[] NOT NULL DEFAULT '{}',
    birth_date  date,
    created_at  timestamptz NOT NULL,
    UNIQUE (family_id, name)
);

CREATE TABLE entries (
    id               uuid PRIMARY KEY,
    family_id        uuid NOT NULL REFERENCES families(id) ON DELETE CASCADE,
    author_id        uuid NOT NULL REFERENCES users(id),
    source           text NOT NULL,
    raw_text         text NOT NULL,
    occurred_at      timestamptz NOT NULL,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    version          bigint NOT NULL DEFAULT 1,
    indexed_version  bigint
);
CREATE INDEX entries_family_occurred ON entries(family_id, occurred_at DESC, id DESC);

CREATE TABLE entry_members (
    entry_id   uuid NOT NULL REFERENCES entries(id) ON DELETE CASCADE,
    member_id  uuid NOT NULL REFERENCES members(id) ON DELETE CASCADE,
    family_id  uuid NOT NULL,
    PRIMARY KEY (entry_id, member_id)
);
CREATE INDEX entry_members_member ON entry_members(family_id, member_id);

CREATE TABLE entry_versions (
    entry_id     uuid NOT NULL REFERENCES entries(id) ON DELETE CASCADE,
    family_id    uuid NOT NULL,
    version      bigint NOT NULL,
    raw_text     text NOT NULL,
    replaced_at  timestamptz NOT NULL,
    PRIMARY KEY (entry_id, version)
);

CREATE TABLE entry_insights (
    entry_id        uuid PRIMARY KEY REFERENCES entries(id) ON DELETE CASCADE,
    family_id       uuid NOT NULL,
    entry_version   bigint NOT NULL,
    summary         text NOT NULL,
    topics          text[] NOT NULL DEFAULT '{}',
    emotions        text[] NOT NULL DEFAULT '{}',
    member_ids      uuid[] NOT NULL DEFAULT '{}',
    model           text NOT NULL,
    prompt_name     text NOT NULL,
    prompt_version  text NOT NULL,
    created_at      timestamptz NOT NULL
);
CREATE INDEX entry_insights_family ON entry_insights(family_id);

CREATE TABLE entry_vectors (
    entry_id       uuid PRIMARY KEY REFERENCES entries(id) ON DELETE CASCADE,
    family_id      uuid NOT NULL,
    entry_version  bigint NOT NULL,
    model          text NOT NULL,
    vector         real[] NOT NULL,
    member_ids     uuid[] NOT NULL DEFAULT '{}',
    topics         text[] NOT NULL DEFAULT '{}',
    emotions       text[] NOT NULL DEFAULT '{}',
    occurred_at    timestamptz NOT NULL
);
CREATE INDEX entry_vectors_family ON entry_vectors(family_id, occurred_at);

CREATE TABLE media (
    id            uuid PRIMARY KEY,
    family_id     uuid NOT NULL REFERENCES families(id) ON DELETE CASCADE,
    entry_id      uuid REFERENCES entries(id) ON DELETE SET NULL,
    blob_key      text NOT NULL,
    content_type  text NOT NULL,
    size_bytes    bigint NOT NULL,
    sha256        text NOT NULL,
    created_at    timestamptz NOT NULL
);
CREATE INDEX media_entry ON media(family_id, entry_id);

CREATE TABLE chat_turns (
    id          uuid PRIMARY KEY,
    family_id   uuid NOT NULL REFERENCES families(id) ON DELETE CASCADE,
    user_id     uuid NOT NULL,
    chat_id     text NOT NULL,
    role        text NOT NULL,
    content     text NOT NULL,
    created_at  timestamptz NOT NULL
);
CREATE INDEX chat_turns_chat ON chat_turns(family_id, chat_id, created_at);

CREATE TABLE jobs (
    id             uuid PRIMARY KEY,
    family_id      uuid NOT NULL,
    kind           text NOT NULL,
    entry_id       uuid NOT NULL,
    entry_version  bigint NOT NULL,
    dedupe_key     text NOT NULL UNIQUE,
    status         text NOT NULL DEFAULT 'queued',
    attempts       bigint NOT NULL DEFAULT 0,
    max_attempts   bigint NOT NULL,
    run_at         timestamptz NOT NULL,
    locked_until   timestamptz,
    last_error     text,
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL
);
CREATE INDEX jobs_due ON jobs(status, run_at);

CREATE TABLE model_usage (
    family_id      uuid NOT NULL,
    day            date NOT NULL,
    model          text NOT NULL,
    capability     text NOT NULL,
    calls          bigint NOT NULL DEFAULT 0,
    input_tokens   bigint NOT NULL DEFAULT 0,
    output_tokens  bigint NOT NULL DEFAULT 0,
    cost_usd       double precision NOT NULL DEFAULT 0,
    PRIMARY KEY (family_id, day, model, capability)
);

-- Row-level security.
ALTER TABLE families ENABLE ROW LEVEL SECURITY;
ALTER TABLE families FORCE ROW LEVEL SECURITY;
CREATE POLICY family_own ON families USING (id = dadly_family()) WITH CHECK (id = dadly_family());

ALTER TABLE users ENABLE ROW LEVEL SECURITY;
ALTER TABLE users FORCE ROW LEVEL SECURITY;
-- A token names a user; resolving it is the one lookup made before the family is known.
CREATE POLICY users_own ON users
    USING (family_id = dadly_family() OR id = NULLIF(current_setting('app.user_id', true), '')::uuid)
    WITH CHECK (family_id = dadly_family());

ALTER TABLE jobs ENABLE ROW LEVEL SECURITY;
ALTER TABLE jobs FORCE ROW LEVEL SECURITY;
CREATE POLICY jobs_own ON jobs USING (family_id = dadly_family() OR dadly_is_worker())
    WITH CHECK (family_id = dadly_family() OR dadly_is_worker());

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['members', 'entries', 'entry_members', 'entry_versions', 'entry_insights',
                             'entry_vectors', 'media', 'chat_turns', 'model_usage']
    LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY %I ON %I USING (family_id = dadly_family()) WITH CHECK (family_id = dadly_family())', t || '_own', t);
    END LOOP;
END $$;
