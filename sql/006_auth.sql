-- Table step for access control: dashboard users (argon2 hashes only), server-side sessions,
-- revocable wall-display tokens and an append-only audit log. Privileges on these tables are
-- narrow and re-applied after every migration by ioc.db.migrate.grant_roles: ingest (ioc_writer)
-- has none; the dashboard (ioc_reader) reads users, manages sessions and appends to the log.

CREATE TABLE IF NOT EXISTS users (
    user_id             bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username            text        NOT NULL UNIQUE
                                    CHECK (username ~ '^[a-z0-9][a-z0-9._-]{0,63}$'),
    -- Only a PHC-format argon2 hash is accepted, so a clear password can never be stored here.
    password_hash       text        NOT NULL CHECK (password_hash LIKE '$argon2id$%'),
    role                text        NOT NULL CHECK (role IN ('operator', 'manager', 'admin')),
    -- Ward codes a manager may see; NULL means the whole city.
    wards               text[]      CHECK (wards IS NULL OR cardinality(wards) BETWEEN 1 AND 500),
    disabled            boolean     NOT NULL DEFAULT false,
    created_at          timestamptz NOT NULL DEFAULT now(),
    password_changed_at timestamptz NOT NULL DEFAULT now()
);

-- A screen that cannot type: the token is shown once, only its SHA-256 is kept.
CREATE TABLE IF NOT EXISTS display_tokens (
    token_id     bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name         text        NOT NULL UNIQUE CHECK (name ~ '^[a-z0-9][a-z0-9._-]{0,63}$'),
    token_hash   bytea       NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    revoked_at   timestamptz,
    last_used_at timestamptz
);

-- The cookie holds a random value; the table holds its SHA-256, so a leaked table row cannot be
-- replayed as a cookie. A session belongs to a user or to a display token, never both.
CREATE TABLE IF NOT EXISTS sessions (
    session_hash bytea       PRIMARY KEY CHECK (length(session_hash) = 32),
    user_id      bigint      REFERENCES users (user_id) ON DELETE CASCADE,
    token_id     bigint      REFERENCES display_tokens (token_id) ON DELETE CASCADE,
    csrf_token   text        NOT NULL CHECK (length(csrf_token) BETWEEN 32 AND 128),
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    ip           text        NOT NULL DEFAULT '' CHECK (length(ip) <= 64),
    CHECK ((user_id IS NULL) <> (token_id IS NULL))
);
CREATE INDEX IF NOT EXISTS sessions_user_idx ON sessions (user_id);
CREATE INDEX IF NOT EXISTS sessions_token_idx ON sessions (token_id);
CREATE INDEX IF NOT EXISTS sessions_expires_idx ON sessions (expires_at);

CREATE TABLE IF NOT EXISTS audit_log (
    audit_id bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at       timestamptz NOT NULL DEFAULT now(),
    actor    text        NOT NULL DEFAULT '' CHECK (length(actor) <= 100),
    action   text        NOT NULL CHECK (action ~ '^[a-z][a-z_.-]{0,39}$'),
    outcome  text        NOT NULL CHECK (outcome IN ('ok', 'refused', 'failed', 'limited')),
    ip       text        NOT NULL DEFAULT '' CHECK (length(ip) <= 64),
    detail   jsonb       NOT NULL DEFAULT '{}'::jsonb CHECK (length(detail::text) <= 2000)
);
CREATE INDEX IF NOT EXISTS audit_log_at_idx ON audit_log (at);
