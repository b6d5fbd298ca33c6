"""The load test's plan and its CPU accounting (the benchmark itself runs in
test_loadtest.py): what it sends must be what it claims to send."""

from __future__ import annotations

import random

import pytest

from loadtests.cpu import TICKS, machine, meanwhile, role_of
from loadtests.run import in_requests
from loadtests.schedule import ANSWERS, Mix, arrival_times, plan

pytestmark = pytest.mark.unit


def test_arrivals_follow_the_rate_and_the_surge() -> None:
    steady = arrival_times(100, 60, 0, 0, random.Random(1))
    assert 5400 < len(steady) < 6600  # Poisson around rate x duration
    assert steady == sorted(steady) and steady[0] > 0 and steady[-1] < 60
    surge = arrival_times(100, 60, 900, 6, random.Random(1))
    last_tenth = [t for t in surge if t >= 54]
    # "Half the ballots in the last tenth": 900/s for 6 s against 100/s for 54 s.
    assert 0.4 < len(last_tenth) / len(surge) < 0.6


def test_the_mix_is_first_ballots_revotes_invalid_and_true_duplicates() -> None:
    times = arrival_times(200, 30, 0, 0, random.Random(2))
    sends = plan(10_000, times, Mix(revotes=0.1, invalid=0.02, duplicates=0.02), seed=3)
    assert [s.at for s in sends] == times[:len(sends)]
    kinds = {k: sum(s.kind == k for s in sends) / len(sends)
             for k in ("first", "revote", "invalid", "duplicate")}
    assert 0.07 < kinds["revote"] < 0.13 and 0.01 < kinds["invalid"] < 0.04
    assert 0.01 < kinds["duplicate"] < 0.04 and kinds["first"] > 0.8
    firsts = [s.voter for s in sends if s.kind == "first"]
    assert len(firsts) == len(set(firsts)) and all(0 <= v < 10_000 for v in firsts)
    voted_at = {s.voter: s.at for s in sends if s.kind == "first"}
    for i, s in enumerate(sends):
        if s.kind == "revote":
            assert voted_at[s.voter] < s.at and s.answer in ANSWERS
        elif s.kind == "invalid":
            assert s.answer not in ANSWERS
        elif s.kind == "duplicate":
            original = sends[s.replay_of]  # type: ignore[index]
            assert s.replay_of < i and original.kind in ("first", "revote")
            assert (s.voter, s.answer, s.key) == (original.voter, original.answer, original.key)
    assert len({s.key for s in sends if s.kind != "duplicate"}) == sum(
        s.kind != "duplicate" for s in sends)


def test_when_everyone_has_voted_the_rest_are_revotes() -> None:
    sends = plan(10, arrival_times(100, 2, 0, 0, random.Random(4)), Mix(0, 0, 0))
    assert sum(s.kind == "first" for s in sends) == 10
    assert all(s.kind == "revote" for s in sends[10:])


def test_answers_are_zipf_distributed() -> None:
    sends = plan(50_000, arrival_times(1000, 40, 0, 0, random.Random(5)), Mix(0, 0, 0))
    share = {a: sum(s.answer == a for s in sends) / len(sends) for a in ANSWERS}
    # Weights 1, 1/2, 1/3: about 55 %, 27 %, 18 %.
    assert 0.52 < share["yes"] < 0.58 and 0.25 < share["no"] < 0.30


@pytest.mark.parametrize(("cmdline", "role"), [
    (["/usr/lib/erlang/erts-12/bin/beam.smp", "-W", "w", "--", "-s", "rabbit", "boot"],
     "rabbitmq"),
    (["java", "-Xmx768m", "org.apache.cassandra.service.CassandraDaemon"], "cassandra"),
    (["/w/.venv/bin/python", "-m", "urne", "service", "vote"], "service:vote"),
    (["/w/.venv/bin/python3", "/w/.venv/bin/urne", "vote-worker"], "vote-worker"),
    (["/w/.venv/bin/python", "-m", "urne", "up", "--port", "1"], "up"),
    (["/w/.venv/bin/python", "-m", "pytest"], None),
    (["bash", "-c", "echo urne"], None),
])
def test_server_processes_are_recognised(cmdline: list[str], role: str | None) -> None:
    assert role_of(cmdline) == role


# Two readings of /proc/stat's first line (user nice system idle iowait irq softirq
# steal, in ticks), 10 s apart.
STAT_BEFORE = "cpu  1000 0 500 8000 100 0 50 10 0 0\ncpu0 ...\n"
STAT_AFTER = "cpu  1900 0 700 8500 200 0 150 110 0 0\ncpu0 ...\n"


def test_what_the_cores_did_meanwhile() -> None:
    before = machine(STAT_BEFORE, at=0.0)
    after = machine(STAT_AFTER, at=10.0)
    assert before.busy == pytest.approx(1550 / TICKS)
    # 1,200 ticks busy (user 900, system 200, softirq 100), 600 idle (500 + 100 I/O
    # wait), 100 stolen; of the busy time, the processes measured spent 9 s.
    done = meanwhile(before, after, measured_s=900 / TICKS)
    assert done["busy_pct"] == pytest.approx(100 * 1200 / 1900, abs=0.1)
    assert done["steal_pct"] == pytest.approx(100 * 100 / 1900, abs=0.1)
    assert done["cores"] == pytest.approx(1900 / TICKS / 10, abs=0.01)
    assert done["unmeasured_cores"] == pytest.approx(300 / TICKS / 10, abs=0.01)


def test_the_live_counters_read_and_grow() -> None:
    first = machine()
    sum(range(2_000_000))  # some CPU between the readings
    second = machine()
    assert first.busy > 0 and first.idle > 0
    assert second.busy >= first.busy and second.at > first.at


def test_cpu_counted_in_the_generators_requests() -> None:
    # 400 ballots; the generator spent 0.1 s on 500 requests (0.2 ms each); the gateway
    # 0.4 s (1 ms a ballot = 5 requests' worth) and Cassandra 0.2 s (2.5).
    ratios = in_requests({"gateway": 0.4, "cassandra": 0.2}, 400, 0.1, 500)
    assert ratios == {"intake": 7.5, "cassandra": 2.5, "gateway": 5.0}
    # Twice as slow a machine, everyone's seconds doubled: the same ratios.
    assert in_requests({"gateway": 0.8, "cassandra": 0.4}, 400, 0.2, 500) == ratios
    assert in_requests({"gateway": 0.4}, 400, 0.0, 500) is None
    assert in_requests({"gateway": 0.4}, 0, 0.1, 500) is None
