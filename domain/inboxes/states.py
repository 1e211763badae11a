"""An inbox's states. Every write of `inboxes.status` goes through `INBOX`.

pending_setup -> dns_pending   a finished run reports its mailbox (records generated)
pending_setup -> failed        the run that was to create it failed, or was cancelled
dns_pending   -> ready         every required DNS record verified (the sweep, verify-now)
ready         -> dns_pending   a required record regressed, or the records changed
failed        -> pending_setup a retry (or a later run that reports its mailbox)
*             -> deleting      DELETE /inboxes/{id}; the row goes when a run drops the mailbox
deleting      -> dns_pending   the deleting run was cancelled: the mailbox is still there
deleting      -> failed        ... and it never existed
"""

from enum import StrEnum

from kit.states import Machine


class InboxStatus(StrEnum):
    PENDING_SETUP = "pending_setup"
    DNS_PENDING = "dns_pending"
    READY = "ready"
    FAILED = "failed"
    DELETING = "deleting"


S = InboxStatus
INBOX = Machine(
    "inbox",
    InboxStatus,
    {
        S.PENDING_SETUP: {S.DNS_PENDING, S.FAILED, S.DELETING},
        S.DNS_PENDING: {S.READY, S.DELETING},
        S.READY: {S.DNS_PENDING, S.DELETING},
        S.FAILED: {S.PENDING_SETUP, S.DELETING},
        S.DELETING: {S.DNS_PENDING, S.FAILED},
    },
)
