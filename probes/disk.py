"""Disk space of the mail data volume, from `df -P -B1` over SSH."""

from probes.ssh import command
from probes.types import Check, CheckResult, Status, Thresholds


def df_command(path: str) -> str:
    return command("df", "-P", "-B1", "--", path)


def evaluate(stdout: str, exit_status: int, path: str, t: Thresholds) -> CheckResult:
    lines = [line for line in stdout.splitlines() if line.strip()]
    if exit_status != 0 or len(lines) < 2:
        return CheckResult(Check.DISK, Status.UNKNOWN, f"df {path} failed (exit {exit_status})")
    fields = lines[-1].split()
    try:
        size, used, available = int(fields[1]), int(fields[2]), int(fields[3])
    except (IndexError, ValueError):
        return CheckResult(Check.DISK, Status.UNKNOWN, f"unreadable df output: {lines[-1][:120]}")
    # df's own Capacity is used/(used+available): blocks reserved for root don't count as free.
    usable = used + available
    free = 100.0 * available / usable if usable else 0.0
    if free < t.disk_critical_free_percent:
        status = Status.CRITICAL
    elif free < t.disk_warning_free_percent:
        status = Status.WARNING
    else:
        status = Status.OK
    gib = 1024**3
    return CheckResult(
        Check.DISK,
        status,
        f"{free:.1f}% free on {fields[-1]} ({available / gib:.1f} of {usable / gib:.1f} GiB)",
        value=round(free, 2),
        data={"path": path, "size_bytes": size, "used_bytes": used, "available_bytes": available},
    )
