"""The openspf RFC 7208 test suite (`data/rfc7208-tests.yml`) as DNS data a real nsd serves.

Every scenario's `zonedata` becomes one root zone (`.`): the suite's names live under several
TLDs (example.com, example.net, in-addr.arpa, xn--zckzah, ...), and a root zone also gives every
other name a real NXDOMAIN, as the internet would, instead of nsd's REFUSED outside its zones.
Scenarios reuse names with different data (e1.example.com is defined in 11 of the 16) and nsd
has no views, so `SuiteNsd.load` replaces one scenario's data with the next: one nsd for the whole
suite, each scenario's data loaded once, its cases run while it is served.

Records follow the suite's conventions (pyspf's `test/testspf.py`): an `SPF` entry is served as a
type SPF record and, when the name has no `TXT` entry, also as TXT (`TXT: NONE` only says "no
TXT"); strings are UTF-8, escaped byte by byte; a TXT with no strings is `\\# 0`.

`TIMEOUT` means that lookups of the name fail. nsd never leaves a query unanswered, and a name
delegated to a silent server gives our stub resolver (and pyspf's) a referral, which is NODATA,
not an error: there is no recursive resolver here to chase it. So a timed-out name becomes a zone
nsd is configured for whose zone file does not exist: nsd answers SERVFAIL for it and everything
below it, a real DNS error on the wire. Names with data below such a name get a zone each, so
they still answer. The suite's entries say more than that: the types listed before `TIMEOUT`
answer and the others time out. nsd cannot time out one type of a name, so a name whose TXT
answers before its `TIMEOUT` is served with its records and its other types answer NODATA; the
only such name, spftimeout.example.net, times out only for type SPF, which RFC 7208 no longer
asks (sections 3.1, 14.1).

The file holds 203 cases. `NOT_EXPRESSIBLE` lists those whose data DNS cannot carry, with the
reason; they run and are shown but not counted. `APPROXIMATE` lists those that run on data a little
different from what the suite writes (and why that does not change what they test).
"""

import itertools
import subprocess
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dns.exception
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import yaml

from tests.support.nsd import Nsd, require_nsd

SUITE = Path(__file__).parent / "data" / "rfc7208-tests.yml"
BROKEN = "broken"  # the nsd pattern of zones that never load: SERVFAIL

# Cases whose DNS data cannot be carried by real DNS as written. They still run and are shown,
# but they are not counted (RFC 7208 cases that DNS can express: the total less these).
NOT_EXPRESSIBLE = {
    "null-text": (
        "null.example.com holds a TXT record with no strings, which RFC 1035 3.3.14 forbids "
        "(TXT-DATA is one or more character-strings). nsd loads it (as \\# 0) and serves it "
        "beside the scenario's real record, but dnspython, which both our resolver and pyspf "
        "parse replies with, rejects the whole reply (FormError), so the one legal record the "
        "case is about never arrives: a DNS answer cannot carry what the case describes"
    ),
}


# Cases that run on DNS data a little different from what the suite writes, and pass there.
APPROXIMATE = {
    "multispf1": (
        "two identical TXT records: an RRset is a set (RFC 2181 5), nsd serves one, so the case "
        "runs on a single record; its fail is one of the results the suite accepts for live DNS"
    ),
    "spftimeout": (
        "only type SPF times out; its TXT answers and type SPF answers NODATA (nsd cannot time "
        "out one type of a name); RFC 7208 evaluators never ask type SPF"
    ),
    "ptr-limit": "PTR order decides; nsd serves the suite's order; both listed results accepted",
    "p-macro-multiple": "PTR order decides; nsd serves the suite's order; both results accepted",
}


@dataclass(frozen=True)
class Case:
    name: str
    scenario: str
    helo: str
    host: str
    mailfrom: str
    results: tuple[str, ...]
    explanation: str | None
    spec: str
    strict: Any = True

    @property
    def domain(self) -> str:
        """RFC 7208 2.4: the MAIL FROM domain, or the HELO name when MAIL FROM is empty."""
        return self.mailfrom.rpartition("@")[2] if self.mailfrom else self.helo

    @property
    def sender(self) -> str:
        """RFC 7208 4.3: postmaster when there is no local-part (or no MAIL FROM at all)."""
        if not self.mailfrom:
            return f"postmaster@{self.helo}"
        local, _, domain = self.mailfrom.rpartition("@")
        return f"{local or 'postmaster'}@{domain}"

    def judge(self, result: str, explanation: str | None) -> str | None:
        """None when `result` (and the explanation, where the case gives one) is right. The
        suite's drivers set the default explanation to "DEFAULT": no exp= text is "DEFAULT"."""
        if result not in self.results:
            return f"{result}, expected {'/'.join(self.results)}"
        got = explanation if explanation is not None else "DEFAULT"
        if self.explanation is not None and got != self.explanation:
            return f"explanation {got!r}, expected {self.explanation!r}"
        return None


@dataclass
class Scenario:
    description: str
    root: list[str]  # zone-file lines of the root zone (absolute names)
    timeouts: list[str]  # names (and their subtrees) answered SERVFAIL
    islands: dict[str, list[str]]  # names with data below a timed-out name: a zone each
    cases: list[Case] = field(default_factory=list)


def _escape(raw: bytes, keep: bytes) -> str:
    return "".join(chr(b) if b in keep else f"\\{b:03d}" for b in raw)


_LABEL_CHARS = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"
_TEXT_CHARS = bytes(b for b in range(0x20, 0x7F) if b not in b'"\\;')


def fqdn(name: str) -> str:
    """A zone-file owner or target: every byte outside LDH/underscore escaped as \\DDD."""
    name = name.rstrip(".")
    if not name:
        return "."
    return ".".join(_escape(label.encode(), _LABEL_CHARS) for label in name.split(".")) + "."


def _strings(value: str | list[str]) -> str:
    strings = [value] if isinstance(value, str) else list(value)
    if not strings:
        return "\\# 0"
    out = []
    for s in strings:
        raw = s.encode()
        out += [f'"{_escape(raw[i : i + 255], _TEXT_CHARS)}"' for i in range(0, len(raw), 255)]
    return " ".join(out or ['""'])


def _rdata(rtype: str, value: Any) -> str:
    if rtype in ("TXT", "SPF"):
        return _strings(value)
    if rtype == "MX":
        preference, exchange = value
        return f"{int(preference)} {fqdn(str(exchange))}"
    if rtype in ("PTR", "CNAME"):
        return fqdn(str(value))
    return str(value)  # A, AAAA


def _pairs(entries: list[Any]) -> list[tuple[str, Any]]:
    return [(t, v) for e in entries if isinstance(e, dict) for t, v in e.items()]


def _records(raw: list[Any]) -> tuple[list[tuple[str, Any]], bool]:
    """A name's (type, value) records as the suite means them, and whether it times out."""
    cut = raw.index("TIMEOUT") if "TIMEOUT" in raw else len(raw)
    records = [(t, v) for t, v in _pairs(raw[:cut]) if v != "NONE"]
    if cut < len(raw):  # only the types listed before TIMEOUT answer
        return (records, False) if _has_txt(records) else ([], True)
    if not _has_txt(_pairs(raw)):
        records += [("TXT", v) for t, v in records if t == "SPF"]
    return records, False


def _has_txt(records: list[tuple[str, Any]]) -> bool:
    return any(t == "TXT" for t, _ in records)


def _lines(name: str, records: Iterable[tuple[str, Any]]) -> list[str]:
    # nsd refuses a type SPF record with no strings (it takes `\\# 0` only for TXT); only the
    # null-text case has one, and RFC 7208 evaluators ask for its TXT twin anyway.
    owner = fqdn(name)
    return [f"{owner} IN {t} {_rdata(t, v)}" for t, v in records if t != "SPF" or v != []]


def _below(name: str, parents: Iterable[str]) -> bool:
    return any(name.lower().endswith("." + p.lower()) for p in parents)


def _case(name: str, case: Mapping[str, Any], scenario: str) -> Case:
    results = case["result"]
    return Case(
        name=name,
        scenario=scenario,
        helo=str(case.get("helo", "")),
        host=str(case["host"]),
        mailfrom=str(case.get("mailfrom", "")),
        results=tuple(results) if isinstance(results, list) else (results,),
        explanation=case.get("explanation"),
        spec=str(case.get("spec", "")),
        strict=case.get("strict", True),
    )


def scenario(data: Mapping[str, Any]) -> Scenario:
    zonedata: dict[str, list[Any]] = data.get("zonedata") or {}
    parsed = {name: _records(raw) for name, raw in zonedata.items()}
    found = Scenario(str(data.get("description", "")), [], [], {})
    found.timeouts = [name for name, (_, out) in parsed.items() if out]
    for name, (records, _) in parsed.items():
        if records and _below(name, found.timeouts):
            assert all(t != "CNAME" for t, _ in records), f"a CNAME at a zone apex: {name}"
            found.islands[name.lower()] = _lines(name, records)
        else:
            found.root += _lines(name, records)
    found.cases = [_case(name, case, found.description) for name, case in data["tests"].items()]
    return found


def load(path: Path = SUITE) -> list[Scenario]:
    with path.open("rb") as f:
        return [scenario(doc) for doc in yaml.safe_load_all(f)]


class SuiteNsd(Nsd):
    """The tests' nsd with a root zone and a pattern for zones that never load."""

    def __init__(self, workdir: Path, binaries: tuple[str, str]) -> None:
        super().__init__(workdir, binaries)
        self._root_serial = itertools.count(1)
        self._extra: list[str] = []  # the current scenario's zones besides the root

    def _write_conf(self) -> None:
        super()._write_conf()
        self._write_root([], next(self._root_serial))
        with self.conf.open("a") as conf:
            conf.write(
                f'pattern:\n  name: "{BROKEN}"\n  zonefile: "%s.never"\n'
                'zone:\n  name: "."\n  zonefile: "root.zone"\n'
            )

    def _write_root(self, lines: list[str], serial: int) -> None:
        soa = f". IN SOA ns.invalid. hostmaster.invalid. {serial} 3600 600 86400 60"
        body = "\n".join(["$TTL 60", soa, ". IN NS ns.invalid.", *lines, ""])
        path = self.zones_dir / "root.zone"
        path.write_text(body)
        checker = Path(self.nsd).with_name("nsd-checkzone")
        if checker.exists():
            done = subprocess.run([checker, ".", path], capture_output=True, check=False)
            if done.returncode != 0:
                raise ValueError(f"root zone does not load: {done.stderr.decode().strip()}")

    def load(self, scenario: Scenario) -> None:
        """Serve `scenario` (and nothing of the one before it). Every change makes nsd fork a new
        server process, and the old one answers a few more queries with the old data: wait
        until a server started after the change is the only one, then for the new data."""
        before = self._servers()
        gone = self._extra
        for zone in gone:
            self._ctl("delzone", zone)
            self._serials.pop(zone, None)
        self.publish({zone: "\n".join(lines) for zone, lines in scenario.islands.items()})
        for zone in scenario.timeouts:
            self._ctl("addzone", zone, BROKEN)
        serial = next(self._root_serial)
        self._write_root(scenario.root, serial)
        self._ctl("reload", ".")
        self._extra = [*scenario.islands, *scenario.timeouts]
        self._wait(lambda: self._soa_serial(".") >= serial)
        if Path("/proc/self/stat").exists():
            self._wait(lambda: len(now := self._servers()) == 1 and not now & before)
        for zone in set(gone) - set(self._extra):
            self._wait(lambda zone=zone: self._rcode(zone) != "SERVFAIL" and not self._apex(zone))
        for zone in scenario.timeouts:
            self._wait(lambda zone=zone: self._rcode(zone) == "SERVFAIL")

    def _servers(self) -> set[int]:
        """nsd's live serving processes: the leaves of its process tree (Linux /proc)."""
        assert self.process is not None
        procs = _processes()
        tree = {self.process.pid}
        while grown := {p for p, (ppid, _) in procs.items() if ppid in tree} - tree:
            tree |= grown
        parents = {procs[p][0] for p in tree if p in procs}
        return {p for p in tree - parents if p in procs and procs[p][1] != "Z"}

    def _ask(self, name: str) -> dns.message.Message | None:
        try:
            query = dns.message.make_query(fqdn(name), dns.rdatatype.SOA)
            return dns.query.udp(query, self.host, port=self.port, timeout=0.2)
        except (TimeoutError, OSError, dns.exception.DNSException):
            return None

    def _soa_serial(self, name: str) -> int:
        reply = self._ask(name)
        return int(next(iter(reply.answer[0])).serial) if reply and reply.answer else -1

    def _rcode(self, name: str) -> str:
        reply = self._ask(name)
        return dns.rcode.to_text(reply.rcode()) if reply else "timeout"

    def _apex(self, name: str) -> bool:
        """Whether `name` is still a zone of its own (answers its SOA)."""
        reply = self._ask(name)
        return bool(reply and reply.answer)

    def _wait(self, ready: Any) -> None:
        deadline = time.monotonic() + 20
        while not ready():
            if time.monotonic() > deadline:
                raise RuntimeError("nsd did not serve the scenario in time")
            time.sleep(0.01)


def _processes() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, state) of every process, from /proc/PID/stat."""
    procs: dict[int, tuple[int, str]] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            state, ppid = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:2]
        except (OSError, ValueError):
            continue
        procs[int(entry.name)] = (int(ppid), state)
    return procs


@contextmanager
def running_suite_nsd(workdir: Path) -> Iterator[SuiteNsd]:
    server = SuiteNsd(workdir, require_nsd())
    server.start()
    try:
        yield server
    finally:
        server.stop()
