"""dns-lexicon's providers (about 90: Cloudflare, Route 53, Hetzner, OVH, PowerDNS, ...): which
exist, which options each takes, and a `Backend` that writes through one of them.

Lexicon's own parsers mark no option required, so the required ones are its `auth_*` options
(every provider authenticates with them) plus the few this table names."""

from __future__ import annotations

import argparse
import functools
import importlib
from collections.abc import Sequence
from typing import Any

from dnspublish.backends import Changed, PublishError, Unreachable, txt_join

# Options a provider cannot work without beyond its `auth_*` ones; and providers whose auth
# options are alternatives (any one set works), where none is required up front.
EXTRA_REQUIRED = {"powerdns": ("pdns_server",)}
ALTERNATIVE_AUTH = {"route53", "cloudflare", "ovh", "azure", "gcloud", "namecheap", "aliyun"}
ANY_AUTH_ONE_OF = {"cloudflare": ("auth_token",)}


@functools.cache
def providers() -> tuple[str, ...]:
    from lexicon._private import discovery

    return tuple(sorted(n for n, ok in discovery.find_providers().items() if n != "auto"))


@functools.cache
def options(provider: str) -> dict[str, str]:
    """Option name -> help text."""
    module = importlib.import_module(f"lexicon._private.providers.{provider}")
    parser = argparse.ArgumentParser(add_help=False)
    module.Provider.configure_parser(parser)
    return {a.dest: a.help or "" for a in parser._actions}


def required(provider: str) -> tuple[str, ...]:
    if provider in ANY_AUTH_ONE_OF:
        return ANY_AUTH_ONE_OF[provider]
    auth = (
        ()
        if provider in ALTERNATIVE_AUTH
        else tuple(o for o in options(provider) if o.startswith("auth_"))
    )
    return auth + EXTRA_REQUIRED.get(provider, ())


class OptionProblem(ValueError):
    def __init__(self, option: str, message: str) -> None:
        super().__init__(message)
        self.option = option


def check(provider: str, given: dict[str, str]) -> None:
    """Raise OptionProblem naming the option at fault (`provider` for an unknown provider)."""
    if provider not in providers():
        raise OptionProblem("provider", f"{provider!r} is not a dns-lexicon provider")
    known = options(provider)
    for name in given:
        if name not in known:
            raise OptionProblem(
                name,
                f"{name!r} is not an option of lexicon's {provider} provider "
                f"(it takes {', '.join(sorted(known)) or 'none'})",
            )
    for name in required(provider):
        if not given.get(name):
            raise OptionProblem(name, f"lexicon's {provider} provider needs {name}: {known[name]}")


def _candidates(fqdn: str) -> list[str]:
    labels = fqdn.rstrip(".").lower().split(".")
    return [".".join(labels[i:]) for i in range(len(labels) - 1)]


class LexiconBackend:
    """Record by record through a dns-lexicon provider. Lexicon's own `Client` guesses the zone
    from the public suffix list (downloaded) or the machine's resolver; we build the provider
    for a zone we found ourselves instead: the longest suffix of the name the provider accepts
    (`authenticate()` fails for a zone the account does not host). HTTP APIs have no
    prerequisites: a conditional change re-reads the RRset just before writing and gives up
    with `Changed` when it moved, which narrows the race to the two calls of one change."""

    def __init__(self, provider: str, options: dict[str, str], *, timeout: float = 3.0) -> None:
        self.provider_name = provider
        self._options = dict(options)
        self.timeout = timeout
        where = next(
            (
                v
                for k, v in sorted(options.items())
                if any(w in k for w in ("server", "endpoint", "url"))
            ),
            "",
        )
        self.description = f"lexicon {provider}" + (f" at {where}" if where else "")
        self._providers: dict[str, Any] = {}

    def _provider(self, zone: str) -> Any:
        if zone in self._providers:
            return self._providers[zone]
        from lexicon.config import ConfigResolver

        module = importlib.import_module(f"lexicon._private.providers.{self.provider_name}")
        config = ConfigResolver().with_dict(  # type: ignore[no-untyped-call]
            {
                "provider_name": self.provider_name,
                "domain": zone,
                "ttl": 3600,
                self.provider_name: dict(self._options),
            }
        )
        provider = module.Provider(config)
        self._call(f"opening zone {zone}", provider.authenticate)
        self._providers[zone] = provider
        return provider

    def _call(self, what: str, fn: Any, *args: Any) -> Any:
        import requests

        try:
            return fn(*args)
        except requests.HTTPError as exc:
            response = exc.response
            body = (response.text or "")[:300] if response is not None else ""
            code = response.status_code if response is not None else "?"
            raise PublishError(f"{what}: {self.description} answered HTTP {code}: {body}") from None
        except requests.RequestException as exc:
            raise Unreachable(f"{what}: cannot reach {self.description}: {exc}") from None
        except Exception as exc:  # lexicon providers raise bare Exceptions for API errors
            raise PublishError(f"{what}: {self.description}: {exc}") from None

    def find_zone(self, fqdn: str) -> str:
        problems = []
        for candidate in _candidates(fqdn):
            try:
                self._provider(candidate)
                return candidate
            except Unreachable:
                raise
            except PublishError as exc:
                problems.append(str(exc))
        raise PublishError(
            f"{self.description} hosts no zone holding {fqdn}"
            + (f" (last answer: {problems[-1]})" if problems else "")
        )

    def read(self, zone: str, fqdn: str, rtype: str) -> list[str]:
        provider = self._provider(zone)
        provider._zone_data = None  # providers that cache the zone: read it afresh
        rows = self._call(f"reading {rtype} {fqdn}", provider.list_records, rtype, fqdn, None)
        out = []
        for row in rows:
            content = str(row.get("content", ""))
            if rtype == "TXT":
                content = txt_join(content)
            elif rtype in ("MX", "SRV", "CNAME", "PTR", "NS") and not content.endswith("."):
                content += "."
            out.append(content)
        return out

    def change(
        self,
        zone: str,
        fqdn: str,
        rtype: str,
        ttl: int,
        *,
        add: Sequence[str] = (),
        remove: Sequence[str] = (),
        expect: Sequence[str] | None = None,
    ) -> None:
        if expect is not None and sorted(self.read(zone, fqdn, rtype)) != sorted(expect):
            raise Changed(f"{rtype} {fqdn} changed while we wrote it")
        provider = self._provider(zone)
        for value in remove:
            provider._zone_data = None
            self._call(f"deleting {rtype} {fqdn}", provider.delete_record, None, rtype, fqdn, value)
        for value in add:
            provider._zone_data = None
            self._call(f"creating {rtype} {fqdn}", provider.create_record, rtype, fqdn, value)
