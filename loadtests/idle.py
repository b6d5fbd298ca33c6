"""What urne costs at rest: the CPU each server process spends a second with nothing to
do, either profile, started as ``urne loadtest`` starts it but with two vote workers
(``start_distributed``'s default; ``urne loadtest`` starts one per two cores). Prints
JSON.

    python -m loadtests.idle --profile embedded|distributed [--seconds 30]

A town hall laptop runs urne for days between two votes, and a city's cluster for
weeks: what a process burns waiting is paid all that time. RabbitMQ and Cassandra are
reported beside urne's own processes; on a machine they share with other work (this
benchmark's own virtual host and keyspaces aside), their figures include it.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from loadtests import cpu
from loadtests.system import start_distributed, start_embedded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", choices=("embedded", "distributed"), default="embedded")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--settle", type=float, default=10.0,
                        help="seconds left out after ready: first timers and connections")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="urne-idle-") as tmp:
        workdir = Path(tmp)
        system = (start_distributed(workdir) if args.profile == "distributed"
                  else start_embedded(workdir))
        try:
            time.sleep(args.settle)
            ours = system.pids
            processes = [p for p in cpu.servers()
                         if p.pid in ours or p.role in ("rabbitmq", "cassandra")]
            before = cpu.snapshot(processes)
            time.sleep(args.seconds)
            spent = cpu.spent(before, cpu.snapshot(processes))
        finally:
            system.stop()
    per_second = {role: round(1000 * s / args.seconds, 1) for role, s in spent.items()}
    urne_only = sum(v for role, v in per_second.items()
                    if role not in ("rabbitmq", "cassandra"))
    print(json.dumps({
        "benchmark": "idle", "profile": args.profile, "seconds": args.seconds,
        "cpu_ms_per_s_by_process": per_second,
        "cpu_ms_per_s_urne": round(urne_only, 1),
    }, indent=2))


if __name__ == "__main__":
    main()
