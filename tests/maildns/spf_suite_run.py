"""Runs the RFC 7208 suite's cases through our evaluator, and through pyspf when it is installed,
against one nsd that serves each scenario in turn (`spf_suite.SuiteNsd`)."""

import asyncio
import importlib
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import ModuleType

import dns.resolver

from maildns.resolver import Resolver
from maildns.spf import check_host
from tests.maildns.spf_suite import APPROXIMATE, NOT_EXPRESSIBLE, Case, Scenario, SuiteNsd


@dataclass(frozen=True)
class Verdict:
    case: Case
    result: str
    explanation: str | None
    problem: str | None  # None: right

    @property
    def counted(self) -> bool:
        return self.case.name not in NOT_EXPRESSIBLE


@dataclass
class Tally:
    evaluator: str
    verdicts: list[Verdict] = field(default_factory=list)

    @property
    def counted(self) -> list[Verdict]:
        return [v for v in self.verdicts if v.counted]

    @property
    def passed(self) -> int:
        return sum(v.problem is None for v in self.counted)

    @property
    def failures(self) -> list[Verdict]:
        return [v for v in self.counted if v.problem is not None]

    def summary(self) -> str:
        total, counted = len(self.verdicts), len(self.counted)
        return (
            f"RFC 7208 suite ({self.evaluator}): {self.passed}/{counted} pass, "
            f"{total - counted} not expressible (of {total} cases)"
        )

    def report(self) -> str:
        lines = [self.summary()]
        lines += [f"  FAIL {v.case.name} ({v.case.spec}): {v.problem}" for v in self.failures]
        for v in self.verdicts:
            outcome = v.problem or f"{v.result}, right"
            if not v.counted:
                lines.append(f"  not expressible {v.case.name}: {outcome}")
            elif v.case.name in APPROXIMATE:
                lines.append(f"  approximate {v.case.name}: {outcome}")
        return "\n".join(lines)


def _verdict(case: Case, result: str, explanation: str | None) -> Verdict:
    return Verdict(case, result, explanation, case.judge(result, explanation))


async def _ours(nsd: SuiteNsd, case: Case) -> Verdict:
    # A resolver per case: check_host() is one message's evaluation, its cache that message's.
    async with Resolver([nsd.address], timeout=1.0, attempts=2) as resolver:
        outcome = await check_host(
            resolver, case.host, case.domain, sender=case.sender, helo=case.helo
        )
    return _verdict(case, outcome.result.value, outcome.explanation)


async def _ours_all(nsd: SuiteNsd, cases: list[Case]) -> list[Verdict]:
    return list(await asyncio.gather(*(_ours(nsd, case) for case in cases)))


def pyspf() -> ModuleType | str:
    """pyspf's module, or why it is not here (it is a dev dependency, for comparison only)."""
    try:
        return importlib.import_module("spf")
    except ImportError as exc:
        return f"pyspf is not installed ({exc}); pip install -e '.[dev]' brings it"


@contextmanager
def _dnspython_at(nsd: SuiteNsd) -> Iterator[None]:
    """pyspf asks dnspython's default resolver: point it at nsd, never the machine's."""
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [nsd.host]
    resolver.port = nsd.port
    resolver.timeout = resolver.lifetime = 2.0
    saved = dns.resolver.default_resolver
    dns.resolver.default_resolver = resolver
    try:
        yield
    finally:
        dns.resolver.default_resolver = saved


_OLD_RESULTS = {"unknown": "permerror", "error": "temperror"}


def _pyspf_one(spf: ModuleType, case: Case) -> Verdict:
    # As pyspf's own driver (test/testspf.py) runs a case, with the default explanation DEFAULT,
    # and each lookup's lifetime 2 s instead of 20 (dnspython retries an unparsable reply, the
    # null-text case's, until then).
    query = spf.query(i=case.host, s=case.mailfrom, h=case.helo, strict=case.strict, timeout=2)
    query.set_default_explanation("DEFAULT")
    with warnings.catch_warnings():
        # pyspf calls dns.resolver.query(), deprecated in dnspython 2 for resolve().
        warnings.simplefilter("ignore", DeprecationWarning)
        result, _code, explanation = query.check()
    return _verdict(case, _OLD_RESULTS.get(result, result), explanation)


def run_suite(nsd: SuiteNsd, scenarios: list[Scenario]) -> dict[str, Tally]:
    """Each scenario loaded once, then every case of it through each evaluator."""
    spf = pyspf()
    tallies = {"ours": Tally("maildns.spf")}
    if isinstance(spf, ModuleType):
        tallies["pyspf"] = Tally(f"pyspf {getattr(spf, '__version__', '')}".strip())
    for scenario in scenarios:
        nsd.load(scenario)
        tallies["ours"].verdicts += asyncio.run(_ours_all(nsd, scenario.cases))
        if isinstance(spf, ModuleType):
            with _dnspython_at(nsd):
                tallies["pyspf"].verdicts += [_pyspf_one(spf, c) for c in scenario.cases]
    return tallies
