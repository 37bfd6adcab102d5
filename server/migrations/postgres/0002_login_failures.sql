-- Failed sign-ins, one counter row per throttle key, shared by every instance on this database
-- (src/throttle.rs). key: 'p:<ip>|<account>' (pair), 'a:<account>', 'i:<ip>'. A row's window
-- starts at its first failure; a failure after the window ends starts a new one. Times: Unix ms.
CREATE TABLE login_failures (
    key TEXT PRIMARY KEY,
    window_start BIGINT NOT NULL,
    failures BIGINT NOT NULL,
    last_failure_at BIGINT NOT NULL
);
CREATE INDEX login_failures_window ON login_failures(window_start);
