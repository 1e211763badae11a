"""A DNS record's publish status: whether we write it into the zone, and how that went.

```
manual    -> pending   a DNS connection now applies to the record's domain
pending   -> published the stack's DNS record resource wrote it (found it, kept the zone's own)
pending   -> conflict  the zone holds something we must not replace (a foreign MX)
pending   -> error     the DNS service refused or could not be reached (the detail says what)
pending   -> manual    the run found no zone of the connection for it (a PTR at the server provider)
published | conflict | error -> pending   the values changed, or the connection did: publish again
*         -> manual    the domain's connection was removed
```
"""

from enum import StrEnum

from kit.states import Machine


class PublishStatus(StrEnum):
    MANUAL = "manual"
    PENDING = "pending"
    PUBLISHED = "published"
    CONFLICT = "conflict"
    ERROR = "error"


_P = PublishStatus
PUBLISH = Machine(
    "dns record publish",
    PublishStatus,
    {
        _P.MANUAL: {_P.PENDING},
        _P.PENDING: {_P.PUBLISHED, _P.CONFLICT, _P.ERROR, _P.MANUAL},
        _P.PUBLISHED: {_P.PENDING, _P.MANUAL},
        _P.CONFLICT: {_P.PENDING, _P.MANUAL},
        _P.ERROR: {_P.PENDING, _P.MANUAL},
    },
    column="publish_status",
)
