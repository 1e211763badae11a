"""The provider plugins the program needs, pinned to the installed Python SDKs' versions (a
plugin of another version would be downloaded at run time). Stdlib only."""

from importlib.metadata import PackageNotFoundError, version

SDKS = (("hcloud", "pulumi_hcloud"), ("command", "pulumi_command"))


def default_plugins() -> dict[str, str]:
    pins = {}
    for plugin, dist in SDKS:
        try:
            pins[plugin] = "v" + version(dist)
        except PackageNotFoundError:  # pragma: no cover - both are dependencies
            continue
    return pins


def parse_plugins(value: str | None) -> dict[str, str] | None:
    """`name=version,...` (PENGUINMAILS_PULUMI_PLUGINS) as a dict; None when unset."""
    if not value:
        return None
    return dict(p.strip().split("=", 1) for p in value.split(",") if p.strip())
