"""A server's states. Every write of `vps_servers.status` goes through `SERVER`.

provisioning -> ready          a finished run reports it (only the pipeline does this)
provisioning -> failed         the run failed, or was cancelled
failed       -> provisioning   a retry
failed       -> ready          a later run reports it
ready        <-> unreachable   the health sweep, and only the health sweep
*            -> deleting       DELETE /vps/{id}; the row goes when a run drops the server
deleting     -> ready | failed the deleting run was cancelled
"""

from enum import StrEnum

from kit.states import Machine


class ServerStatus(StrEnum):
    PROVISIONING = "provisioning"
    READY = "ready"
    UNREACHABLE = "unreachable"
    FAILED = "failed"
    DELETING = "deleting"


S = ServerStatus
SERVER = Machine(
    "server",
    ServerStatus,
    {
        S.PROVISIONING: {S.READY, S.FAILED, S.DELETING},
        S.READY: {S.UNREACHABLE, S.DELETING},
        S.UNREACHABLE: {S.READY, S.DELETING},
        S.FAILED: {S.PROVISIONING, S.READY, S.DELETING},
        S.DELETING: {S.READY, S.FAILED},
    },
)
# The health sweep's servers: it alone moves them between ready and unreachable.
MONITORED = (S.READY, S.UNREACHABLE)
