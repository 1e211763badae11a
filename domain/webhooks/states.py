"""A webhook delivery's states. Every write of `webhook_deliveries.status` goes through
`DELIVERY`.

    pending -> delivered   a 2xx answer
    pending -> dead        out of attempts, or its endpoint was disabled
    delivered -> pending   redelivered by hand (POST .../deliveries/{id}/redeliver)
    dead -> pending        redelivered by hand
"""

from enum import StrEnum

from kit.states import Machine


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"


S = DeliveryStatus
DELIVERY = Machine(
    "webhook delivery",
    DeliveryStatus,
    {S.PENDING: {S.DELIVERED, S.DEAD}, S.DELIVERED: {S.PENDING}, S.DEAD: {S.PENDING}},
)
