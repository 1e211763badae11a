from decimal import Decimal

import pytest

from stacks import catalog
from stacks.catalog import DEFAULT, CatalogError


def test_hetzner_sizes_are_current_types() -> None:
    types = {
        DEFAULT.offer("hetzner", size, region).type
        for size in catalog.SIZES
        for region in DEFAULT.regions("hetzner")
    }
    assert types
    retired = {"cx22", "cx32", "cx42", "cx52", "cpx11", "cpx21", "cpx31", "cpx41", "cpx51"}
    assert not types & retired


@pytest.mark.parametrize("size", catalog.SIZES)
def test_every_size_meets_the_documented_minimum(size: str) -> None:
    minimum = catalog.SIZE_MINIMUMS[size]
    for provider in catalog.PROVIDERS:
        for region in DEFAULT.regions(provider):
            offer = DEFAULT.offer(provider, size, region)
            assert offer.cpu >= minimum["cpu"] and offer.ram_gb >= minimum["ram_gb"], offer


def test_region_maps_to_provider_location() -> None:
    assert DEFAULT.offer("hetzner", "starter", "eu-central").location == "fsn1"
    assert DEFAULT.offer("hetzner", "starter", "eu-north").location == "hel1"


def test_specs_and_cost_for_the_queue() -> None:
    specs = catalog.specs("hetzner", "professional", "eu-central")
    assert specs["server_type"] == "cx33"
    assert specs["region"] == "eu-central" and specs["location"] == "fsn1"
    assert {"cpu", "ram_gb", "disk_gb"} <= set(specs)
    assert isinstance(catalog.monthly_cost("hetzner", "starter", "eu-central"), Decimal)
    assert catalog.monthly_cost("existing", "starter", "eu-central") is None


@pytest.mark.parametrize(
    ("args", "key"),
    [
        (("vultr", "starter", "eu-central"), "provider"),
        (("hetzner", "huge", "eu-central"), "size"),
        (("hetzner", "starter", "mars"), "region"),
        (("hostwinds", "starter", "eu-north"), "region"),
    ],
)
def test_unknown_choices_name_the_field(args: tuple[str, str, str], key: str) -> None:
    with pytest.raises(CatalogError) as err:
        catalog.validate(*args)
    assert err.value.key == key


def test_overrides_merge_without_touching_the_default() -> None:
    custom = DEFAULT.with_overrides(
        {"hetzner": {"sizes": {"starter": {"type": "cx33", "monthly_cost": "9.99"}}}}
    )
    assert custom.offer("hetzner", "starter", "eu-central").type == "cx33"
    assert custom.offer("hetzner", "starter", "eu-central").monthly_cost == Decimal("9.99")
    assert custom.offer("hetzner", "starter", "eu-central").ram_gb == 4
    assert DEFAULT.offer("hetzner", "starter", "eu-central").type == "cx23"
