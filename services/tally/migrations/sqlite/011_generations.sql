-- The counting streams' generations (urne/messaging/counting_rotation.py): one row per
-- generation whose streams may still be on the broker, forgotten once they are deleted.
CREATE TABLE counting_generations (
    stream     TEXT NOT NULL,
    generation INTEGER NOT NULL,
    opened_at  TEXT NOT NULL,
    bound      INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (stream, generation)
);
