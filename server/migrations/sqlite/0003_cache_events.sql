-- Invalidations of the access-token cache (src/db/cache.rs), SQLite only: PostgreSQL carries
-- them as NOTIFY. Each write that ends a session or changes a user's password / roles / existence
-- adds the user's id in its own transaction; every instance on this file reads the rows after
-- the last seq it saw every 100 ms and drops those users from its cache. SQLite serialises
-- commits, so seq order is commit order. at: Unix seconds, for the purge (after 1 h).
CREATE TABLE cache_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id BIGINT NOT NULL,
    at BIGINT NOT NULL DEFAULT (CAST(strftime('%s', 'now') AS INTEGER))
);
