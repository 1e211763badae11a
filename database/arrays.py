"""Arrays as one parameter. psycopg writes a Python list bound to an array element by element in
Python (quoting and escaping each one); for the thousands of ids of a sweep's batch that cost
more than the statement. A uuid's text never needs quoting, so the array's literal is built
here and bound as one string (`CAST(:ids AS uuid[])`)."""

import uuid
from collections.abc import Iterable


def uuid_array(ids: Iterable[uuid.UUID]) -> str:
    """`{id,id,...}`, the Postgres text form of a uuid[]."""
    return "{" + ",".join(str(uuid.UUID(str(i))) for i in ids) + "}"
