-- Users, refresh-token families and refresh tokens (PostgreSQL). Times are Unix milliseconds.
CREATE TABLE users (
    id BIGSERIAL PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    email TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    roles TEXT NOT NULL,
    password_changed_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE refresh_families (
    id TEXT PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    transport TEXT NOT NULL,
    device TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT,
    revoked_reason TEXT
);
CREATE INDEX refresh_families_user ON refresh_families(user_id);

-- token_hash is the hex SHA-256 of the opaque token; the primary key is its index.
CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    family_id TEXT NOT NULL REFERENCES refresh_families(id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    used_at BIGINT,
    successor_hash TEXT
);
CREATE INDEX refresh_tokens_family ON refresh_tokens(family_id);
