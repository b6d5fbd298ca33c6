"""CPU time of the server processes on this machine, from /proc (Linux).

A benchmark snapshots it before and after a run; the difference, divided by the
ballots accepted, is the CPU each ballot cost across every server process: urne's own
processes, RabbitMQ (``beam.smp``) and Cassandra (``CassandraDaemon``). Unlike a
throughput figure it barely moves when the shared machine is busy with something else.

    python -m loadtests.cpu            # the processes it finds, and their CPU so far

The machine's own counters (``/proc/stat``) say what else the cores did meanwhile: how
busy they were, how much the hypervisor gave another tenant (steal), and how much CPU
went to neither the servers nor the load generator (other processes, and the kernel's
interrupt work no process is charged for). A run's latencies are read beside them:
on two shared cores, a p99 moves with what the neighbours take.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Process:
    pid: int
    role: str


def role_of(cmdline: list[str]) -> str | None:
    """What a server process is, from its command line; None for anything else."""
    joined = " ".join(cmdline)
    if "beam.smp" in joined and "rabbit" in joined:
        return "rabbitmq"
    if "CassandraDaemon" in joined:
        return "cassandra"
    args = _urne_arguments(cmdline)
    if not args:
        return None
    if args[0] == "service" and len(args) > 1:
        return f"service:{args[1]}"
    return args[0]


def _urne_arguments(cmdline: list[str]) -> list[str] | None:
    """What follows ``urne`` (the console script, or ``python -m urne``), if it is urne."""
    for i, arg in enumerate(cmdline):
        if arg == "urne" or arg.endswith("/urne"):
            return cmdline[i + 1:]
        if arg == "-m" and cmdline[i + 1:i + 2] == ["urne"]:
            return cmdline[i + 2:]
    return None


def servers(only: set[int] | None = None) -> list[Process]:
    """The server processes running now (or among ``only``, when given)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or (only is not None and int(entry.name) not in only):
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue  # gone meanwhile
        role = role_of([c.decode(errors="replace") for c in cmdline if c])
        if role:
            found.append(Process(int(entry.name), role))
    return found


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process (and its reaped children), in seconds."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # utime, stime, cutime, cstime: fields 14-17 of proc(5), 11-14 after the ")".
    return sum(int(v) for v in fields[11:15]) / TICKS


def snapshot(processes: list[Process]) -> dict[str, float]:
    """CPU seconds by role (several processes of one role are summed)."""
    by_role: dict[str, float] = {}
    for p in processes:
        by_role[p.role] = by_role.get(p.role, 0.0) + cpu_seconds(p.pid)
    return by_role


@dataclass(frozen=True)
class Machine:
    """The machine's CPU counters (``/proc/stat``, all cores), in seconds."""

    busy: float  # user, nice, system, irq, softirq
    idle: float  # idle and waiting for I/O
    steal: float  # taken by the hypervisor for another guest
    at: float  # wall clock (monotonic)


def machine(stat: str | None = None, at: float | None = None) -> Machine:
    """The counters now (or as ``stat`` reads, at ``at``)."""
    text = stat if stat is not None else Path("/proc/stat").read_text()
    user, nice, system, idle, iowait, irq, softirq, steal = (
        int(v) for v in text.split("\n", 1)[0].split()[1:9])
    return Machine((user + nice + system + irq + softirq) / TICKS, (idle + iowait) / TICKS,
                   steal / TICKS, time.monotonic() if at is None else at)


def meanwhile(before: Machine, after: Machine, measured_s: float) -> dict[str, float]:
    """What the cores did between two readings, as shares of their capacity (percent),
    and the CPU not in ``measured_s`` (the seconds measured per process), in cores."""
    wall = max(after.at - before.at, 1e-9)
    total = (after.busy - before.busy) + (after.idle - before.idle) + \
        (after.steal - before.steal)
    share = 100 / total if total > 0 else 0.0
    return {"cores": round(total / wall, 2),
            "busy_pct": round((after.busy - before.busy) * share, 1),
            "steal_pct": round((after.steal - before.steal) * share, 1),
            "unmeasured_cores": round(max(0.0, after.busy - before.busy - measured_s) / wall,
                                      2)}


def spent(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {role: round(after.get(role, 0.0) - before.get(role, 0.0), 3)
            for role in sorted(set(before) | set(after))}


if __name__ == "__main__":
    procs = servers()
    print(json.dumps({"processes": [p.__dict__ for p in procs], "cpu_s": snapshot(procs)},
                     indent=2))
