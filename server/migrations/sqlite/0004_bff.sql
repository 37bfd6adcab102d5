-- Backend-for-frontend mode (issue 15, src/bff/). The upstream provider's tokens of each browser
-- session, shared by every instance on this database. Times: Unix ms.
--
-- bff_sessions: id_hash is the SHA-256 (hex) of the random value of the browser's __Host-bff
-- cookie (the value itself is never stored); sealed is the tokens' JSON under XChaCha20-Poly1305
-- with a key derived from --secret-file and 'bff_sessions:<id_hash>' as associated data; claims
-- is the user as the ID token described them (no token). version goes up at every refresh: the
-- refresh that holds the row lock compares it to decide whether someone refreshed first.
CREATE TABLE bff_sessions (
    id_hash TEXT PRIMARY KEY,
    sub TEXT NOT NULL,
    claims TEXT NOT NULL,
    sealed TEXT NOT NULL,
    version BIGINT NOT NULL,
    access_expires_at BIGINT NOT NULL,
    access_issued_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    refreshed_at BIGINT,
    refresh_count BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX bff_sessions_sub ON bff_sessions(sub);
CREATE INDEX bff_sessions_expiry ON bff_sessions(expires_at);

-- bff_logins: a sign-in under way, keyed by the SHA-256 of its state; binding_hash is the SHA-256
-- of the short-lived __Host-bff-login cookie of the browser that started it; sealed holds the PKCE
-- verifier and the nonce (associated data 'bff_logins:<state_hash>'). Taken (deleted) by the
-- callback; at most ten minutes.
CREATE TABLE bff_logins (
    state_hash TEXT PRIMARY KEY,
    binding_hash TEXT NOT NULL,
    sealed TEXT NOT NULL,
    return_to TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX bff_logins_expiry ON bff_logins(expires_at);
