"""The queue benchmark's baseline: the smallest durable queue worker, one connection in
autocommit, claiming and loading in one `UPDATE ... RETURNING` (`FOR UPDATE SKIP LOCKED`) and
finishing in one `UPDATE`; no desired state, no engine.

    python -m benchmarks._minimal_worker WORKER_ID   (PENGUINMAILS_DATABASE_URL)
"""

import os
import sys
import time

import psycopg

CLAIM = """
UPDATE operations SET status = 'running', lease_owner = %(me)s, attempts = attempts + 1,
       started_at = now(), heartbeat_at = now(), lease_expires_at = now() + interval '60 s'
WHERE id = (SELECT id FROM operations WHERE status = 'queued' AND run_after <= now()
            ORDER BY run_after, created_at LIMIT 1 FOR UPDATE SKIP LOCKED)
RETURNING id, kind, workspace_id
"""
FINISH = """
UPDATE operations SET status = 'succeeded', finished_at = clock_timestamp(), lease_owner = NULL,
       lease_expires_at = NULL
WHERE id = %(id)s AND lease_owner = %(me)s
"""


def main() -> None:
    url = os.environ["PENGUINMAILS_DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://")
    me = sys.argv[1]
    with psycopg.connect(url, autocommit=True) as conn:
        while True:
            row = conn.execute(CLAIM, {"me": me}).fetchone()
            if row is None:
                time.sleep(0.01)
                continue
            conn.execute(FINISH, {"id": row[0], "me": me})


if __name__ == "__main__":
    main()
