"""The probes across processes (`probes.shards`): every server's results come back to the
caller, the same as one process finds them, each server reported once."""

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from probes.runner import probe_many
from probes.shards import probe_sharded, shards
from probes.types import Check, CheckResult
from tests.probes.test_https import _fleet, _targets
from tests.support.loopback import Lab
from tests.support.pki import CertAuthority
from tests.support.probe_fleet import config_for


def test_two_processes_report_every_server_once_as_one_process_does(
    lab: Lab, ca: CertAuthority, keypair: tuple[str, str], tmp_path: Path
) -> None:
    sims = _fleet(lab, ca, keypair[0], tmp_path)
    config = config_for(sims[0].ports, ca, checks=frozenset(Check) - {Check.DNSBL})
    targets = _targets(sims, keypair[1])
    got: list[tuple[str, list[CheckResult]]] = []
    probe_sharded(
        targets,
        config,
        datetime.now(UTC),
        lambda key, results: got.append((key, results)),
        2,
        min_per_shard=1,
    )
    alone = asyncio.run(probe_many(targets, config))
    assert sorted(key for key, _ in got) == sorted(t.key for t in targets)
    for key, results in got:
        assert [(r.check, r.status) for r in results] == [
            (r.check, r.status) for r in alone[key]
        ], results
        assert all(r.status.value == "ok" for r in results), results


def test_few_servers_stay_in_one_process() -> None:
    assert shards(150, 2) == 1
    assert shards(1000, 2) == 2
    assert shards(1000, 1) == 1
