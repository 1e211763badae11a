"""What can be ordered: providers, sizes and regions, and how each maps to a provider's own names.

Pure data, importable without Pulumi: the API validates provider/size/region against it and the
queue reads `specs()`/`monthly_cost()` for `vps_servers`. The stack program reads the same table,
merged with the stack's optional `penguinmails:catalog` override (see `with_overrides`), so prices
and type names can change without a release.

Hetzner: the CX gen2 types (cx22..cx52) were retired at the end of 2025; CX gen3 (cx23..cx53) is
sold in the EU locations only, so the US and Singapore locations use the CPX gen2 types.
Hostwinds: its location and product ids are not public. The table holds names that the Hostwinds
provider matches against `get_locations`/`get_price_list`; an all-digit override is used as the id.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

PROVIDERS = ("hetzner", "hostwinds", "existing")
SIZES = ("starter", "professional", "business")
REGIONS = ("eu-central", "eu-west", "eu-north", "us-east", "us-west", "us-central", "ap-southeast")

# The sizes the PenguinMails docs sell, and the sending volume each is meant for.
SIZE_MINIMUMS: dict[str, dict[str, int]] = {
    "starter": {"cpu": 1, "ram_gb": 2, "emails_per_day": 5_000},
    "professional": {"cpu": 2, "ram_gb": 4, "emails_per_day": 25_000},
    "business": {"cpu": 4, "ram_gb": 8, "emails_per_day": 100_000},
}

# provider -> {"regions": {region: location}, "sizes": {size: offer}, "region_sizes": {...}}
# An offer: {"type", "cpu", "ram_gb", "disk_gb", "monthly_cost" (str decimal or None), "currency"}.
# Prices: list prices at the time of writing, excluding VAT; override them per deployment.
DEFAULT_TABLE: dict[str, dict[str, Any]] = {
    "hetzner": {
        "image": "ubuntu-24.04",
        "regions": {
            "eu-central": "fsn1",
            "eu-west": "nbg1",
            "eu-north": "hel1",
            "us-east": "ash",
            "us-west": "hil",
            "ap-southeast": "sin",
        },
        "sizes": {
            "starter": {"type": "cx23", "cpu": 2, "ram_gb": 4, "disk_gb": 40,
                        "monthly_cost": "3.49", "currency": "EUR"},
            "professional": {"type": "cx33", "cpu": 4, "ram_gb": 8, "disk_gb": 80,
                             "monthly_cost": "5.49", "currency": "EUR"},
            "business": {"type": "cx43", "cpu": 8, "ram_gb": 16, "disk_gb": 160,
                         "monthly_cost": "9.49", "currency": "EUR"},
        },
        # CX is EU-only: the other locations sell the shared AMD line.
        "region_sizes": {
            region: {
                "starter": {"type": "cpx22", "cpu": 2, "ram_gb": 4, "disk_gb": 80,
                            "monthly_cost": None, "currency": "EUR"},
                "professional": {"type": "cpx32", "cpu": 4, "ram_gb": 8, "disk_gb": 160,
                                 "monthly_cost": None, "currency": "EUR"},
                "business": {"type": "cpx42", "cpu": 8, "ram_gb": 16, "disk_gb": 320,
                             "monthly_cost": None, "currency": "EUR"},
            }
            for region in ("us-east", "us-west", "ap-southeast")
        },
    },
    "hostwinds": {
        "image": "Ubuntu 24.04",
        "regions": {"us-west": "Seattle", "us-central": "Dallas", "eu-west": "Amsterdam"},
        "sizes": {
            "starter": {"type": "2GB", "cpu": 1, "ram_gb": 2, "disk_gb": 50,
                        "monthly_cost": None, "currency": "USD"},
            "professional": {"type": "4GB", "cpu": 2, "ram_gb": 4, "disk_gb": 75,
                             "monthly_cost": None, "currency": "USD"},
            "business": {"type": "8GB", "cpu": 4, "ram_gb": 8, "disk_gb": 150,
                         "monthly_cost": None, "currency": "USD"},
        },
        "region_sizes": {},
    },
    # A host the user already runs: nothing is ordered, any region label is accepted.
    "existing": {
        "image": None,
        "regions": {region: region for region in REGIONS},
        "sizes": {
            size: {"type": size, "cpu": m["cpu"], "ram_gb": m["ram_gb"], "disk_gb": None,
                   "monthly_cost": None, "currency": None}
            for size, m in SIZE_MINIMUMS.items()
        },
        "region_sizes": {},
    },
}  # fmt: skip


class CatalogError(ValueError):
    """An unknown provider, size or region; `key` names the field at fault."""

    def __init__(self, message: str, key: str) -> None:
        super().__init__(message)
        self.key = key


@dataclass(frozen=True)
class Offer:
    provider: str
    size: str
    region: str
    location: str
    type: str
    cpu: int
    ram_gb: int
    disk_gb: int | None
    monthly_cost: Decimal | None
    currency: str | None
    image: str | None


class Catalog:
    def __init__(self, table: dict[str, dict[str, Any]] | None = None) -> None:
        self.table = copy.deepcopy(DEFAULT_TABLE if table is None else table)

    def with_overrides(self, overrides: dict[str, Any] | None) -> Catalog:
        """A copy with `overrides` merged in key by key (dicts merge, other values replace);
        this one itself without overrides (nothing changes a catalog's table once built, and
        the deep copy was a tenth of the queue's CPU per operation)."""
        if not overrides:
            return self
        merged = copy.deepcopy(self.table)
        _merge(merged, overrides or {})
        return Catalog(merged)

    @property
    def providers(self) -> tuple[str, ...]:
        return tuple(self.table)

    def regions(self, provider: str) -> tuple[str, ...]:
        return tuple(self._provider(provider)["regions"])

    def sizes(self, provider: str) -> tuple[str, ...]:
        return tuple(self._provider(provider)["sizes"])

    def offer(self, provider: str, size: str, region: str) -> Offer:
        entry = self._provider(provider)
        regions: dict[str, str] = entry["regions"]
        if region not in regions:
            raise CatalogError(
                f"region {region!r} is not offered by {provider}; one of: {', '.join(regions)}",
                "region",
            )
        sizes = {**entry["sizes"], **entry.get("region_sizes", {}).get(region, {})}
        if size not in sizes:
            raise CatalogError(
                f"size {size!r} is not offered by {provider}; one of: {', '.join(sizes)}", "size"
            )
        o = sizes[size]
        cost = o.get("monthly_cost")
        return Offer(
            provider=provider,
            size=size,
            region=region,
            location=regions[region],
            type=str(o["type"]),
            cpu=int(o["cpu"]),
            ram_gb=int(o["ram_gb"]),
            disk_gb=None if o.get("disk_gb") is None else int(o["disk_gb"]),
            monthly_cost=None if cost is None else Decimal(str(cost)),
            currency=o.get("currency"),
            image=entry.get("image"),
        )

    def validate(self, provider: str, size: str, region: str) -> None:
        self.offer(provider, size, region)

    def _provider(self, provider: str) -> dict[str, Any]:
        if provider not in self.table:
            raise CatalogError(
                f"provider {provider!r} is not supported; one of: {', '.join(self.table)}",
                "provider",
            )
        return self.table[provider]


def _merge(into: dict[str, Any], overrides: dict[str, Any]) -> None:
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = copy.deepcopy(value)


DEFAULT = Catalog()


def validate(provider: str, size: str, region: str) -> None:
    """Raise `CatalogError` (with `.key` = provider|size|region) unless the triple is sold."""
    DEFAULT.validate(provider, size, region)


def specs(provider: str, size: str, region: str) -> dict[str, Any]:
    """What `vps_servers.specs` holds: {cpu, ram, disk, region} plus the provider's names."""
    o = DEFAULT.offer(provider, size, region)
    return {
        "cpu": o.cpu,
        "ram_gb": o.ram_gb,
        "disk_gb": o.disk_gb,
        "region": region,
        "location": o.location,
        "server_type": o.type,
    }


def monthly_cost(provider: str, size: str, region: str) -> Decimal | None:
    """List price per month where known (None for `existing` and unknown prices)."""
    return DEFAULT.offer(provider, size, region).monthly_cost
