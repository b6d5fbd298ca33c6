"""The slice against the distributed profile: a gateway and the four services as
separate processes, talking over a real RabbitMQ and storing in a real Cassandra.

Each test run gets its own RabbitMQ virtual host and its own Cassandra keyspaces,
so runs never see each other's queues or rows. Every process connects to RabbitMQ as
the user of its role, with that role's permissions only (urne/messaging/permissions.py):
the whole suite runs under least privilege.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.e2e.account import run_account_deletion
from tests.e2e.admin import run_admin
from tests.e2e.bad_input import run_bad_input
from tests.e2e.census import run_census
from tests.e2e.consultations import run_consultations
from tests.e2e.cross_channel import run_cross_channel
from tests.e2e.demo import run_demo
from tests.e2e.desk import run_desk
from tests.e2e.methods import METHODS
from tests.e2e.proposals import run_proposals
from tests.e2e.scenario import TEST_ENV, close_and_verify, open_poll, run_slice, vote
from tests.e2e.schedule import run_schedule
from tests.e2e.sign_in_limits import run_sign_in_limits
from tests.e2e.signed_messages import System, run_signed_messages
from tests.e2e.sms import run_sms
from tests.e2e.visibility import run_visibility
from tests.support.processes import Proc, command_of, free_port, start, wait_http
from tests.support.servers import (
    cassandra_address,
    drop_keyspaces,
    require_cassandra,
    require_rabbitmq,
    store_roles,
)
from urne.contracts import wrap
from urne.contracts.commands import IssueVotingToken, IssueVotingTokenV2
from urne.crypto.keys import generate_keys
from urne.messaging.amqp_rpc import AmqpRpcClient
from urne.messaging.permissions import ROLES, Role, grant
from urne.messaging.signatures import load_signer, load_verifier
from urne.runtime.registry import SERVICES

pytestmark = [pytest.mark.e2e, pytest.mark.distributed]

MANAGEMENT = "http://127.0.0.1:15672/api"
VOTE_WORKERS = ("vote-worker-1", "vote-worker-2")
AUTH = ("guest", "guest")


@dataclass
class Distributed:
    base: str
    outbox: Path
    env: dict[str, str]
    procs: dict[str, Proc]
    log_dir: Path
    metrics_ports: dict[str, int]
    amqp_urls: dict[Role, str]  # each role's own user
    keys: Path
    store_logins: dict[str, tuple[str, str]]  # service -> its Cassandra role, password

    def env_of(self, name: str) -> dict[str, str]:
        """The settings of process ``name``: its role's broker user, its service's
        Cassandra role, its metrics port."""
        role = role_of(name)
        login = self.store_logins.get(role.removesuffix("-worker"))
        store = {"URNE_CASSANDRA_USERNAME": login[0],
                 "URNE_CASSANDRA_PASSWORD": login[1]} if login else {}
        return {**self.env, "URNE_AMQP_URL": self.amqp_urls[role], **store,
                "URNE_METRICS_PORT": str(self.metrics_ports.get(name, 0))}

    def restart(self, name: str) -> None:
        self.procs[name].kill()
        self.procs[name] = start(name, command_of(name), self.env_of(name), self.log_dir)


def role_of(name: str) -> Role:
    for role in ROLES:
        if name == role or (name.startswith(f"{role}-") and role.endswith("worker")):
            return role
    raise ValueError(name)


@pytest.fixture(scope="module")
def distributed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Distributed]:
    require_rabbitmq()
    require_cassandra()
    root = tmp_path_factory.mktemp("distributed")
    run = uuid.uuid4().hex[:10]
    vhost = f"urne-e2e-{run}"
    with httpx.Client(auth=AUTH, timeout=10) as admin:
        admin.put(f"{MANAGEMENT}/vhosts/{vhost}").raise_for_status()
        # guest: the tests' own administration (bindings, the dead letters)
        admin.put(f"{MANAGEMENT}/permissions/{vhost}/guest",
                  json={"configure": ".*", "write": ".*", "read": ".*"}).raise_for_status()
    amqp_urls: dict[Role, str] = {}
    for role in ROLES:
        user, password = f"urne-{run}-{role}", secrets.token_urlsafe(16)
        grant(MANAGEMENT.removesuffix("/api"), vhost, role, user, password, AUTH)
        amqp_urls[role] = f"amqp://{user}:{password}@127.0.0.1:5672/{vhost}"
    keys = root / "keys"
    generate_keys(keys)
    host, port = cassandra_address()
    gateway_port = free_port()
    env = {
        "URNE_ENVIRONMENT": "test",
        "URNE_AMQP_URL": f"amqp://guest:guest@127.0.0.1:5672/{vhost}",
        "URNE_CASSANDRA_HOSTS": host,
        "URNE_CASSANDRA_PORT": str(port),
        "URNE_CASSANDRA_KEYSPACE_PREFIX": f"e2e_{run}_",
        "URNE_KEYS_DIR": str(keys),
        "URNE_OUTBOX_DIR": str(root / "outbox"),
        "URNE_PORT": str(gateway_port),
        "URNE_BALLOT_SHARDS": "8",
        "URNE_COUNTING_SHARDS": "4",
        **TEST_ENV,
    }
    log_dir = root / "logs"
    metrics_ports = {name: free_port()
                     for name in (*SERVICES, *VOTE_WORKERS, "tally-worker", "gateway")}
    procs: dict[str, Proc] = {}
    system = Distributed(f"http://127.0.0.1:{gateway_port}", root / "outbox" / "email.jsonl",
                         env, procs, log_dir, metrics_ports, amqp_urls, keys,
                         store_roles(env["URNE_CASSANDRA_KEYSPACE_PREFIX"]))
    for name in (*SERVICES, *VOTE_WORKERS, "tally-worker", "gateway"):
        procs[name] = start(name, command_of(name), system.env_of(name), log_dir)
    try:
        wait_http(f"{system.base}/readyz", list(procs.values()), timeout=180)
        yield system
    finally:
        for p in system.procs.values():
            p.stop()
        drop_keyspaces(env["URNE_CASSANDRA_KEYSPACE_PREFIX"])
        with httpx.Client(auth=AUTH, timeout=10) as admin:
            admin.delete(f"{MANAGEMENT}/vhosts/{vhost}")
            for role in ROLES:
                admin.delete(f"{MANAGEMENT}/users/urne-{run}-{role}")


def test_every_process_connects_as_the_user_of_its_role(distributed: Distributed) -> None:
    """The suite runs under least privilege: the broker sees each role's user, and no
    process of urne connected as guest (the tests' own administration aside)."""
    vhost = distributed.env["URNE_AMQP_URL"].rsplit("/", 1)[-1]
    expected = {urlsplit(url).username for url in distributed.amqp_urls.values()}
    deadline = time.monotonic() + 15
    while True:  # the management API's view lags a few seconds behind the broker
        with httpx.Client(auth=AUTH, timeout=10) as admin:
            users = {c["user"] for c in admin.get(
                f"{MANAGEMENT}/vhosts/{vhost}/connections").raise_for_status().json()}
        if users >= expected or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert users - {"guest"} == expected, users


def test_every_service_logs_in_to_cassandra_as_its_own_role(distributed: Distributed) -> None:
    """Each service's processes (the vote and tally workers too) hold a connection as
    their service's role (Cassandra's own list of its clients), which may use its own
    keyspace only (tests/integration/test_store_roles.py)."""
    from urne.platform.settings import StoreSettings
    from urne.storage.cassandra import connect

    host, port = cassandra_address()
    session = connect(StoreSettings(cassandra_hosts=host, cassandra_port=port))
    try:
        users = {r.username for r in session.execute(
            "SELECT username FROM system_views.clients")}
    finally:
        session.cluster.shutdown()
    assert {role for role, _ in distributed.store_logins.values()} <= users, users


def test_broker_access_does_not_buy_a_voting_token(distributed: Distributed) -> None:
    """With the gateway's own broker credentials and envelope key, straight over RPC: the
    retired request that named a person is refused, and so is one with a forged access
    token; only the person's own access token (as signed in) gets a voting token."""
    with httpx.Client(base_url=distributed.base, timeout=15) as http:
        state = open_poll(http, distributed.outbox)
    forged = jwt.encode({"sub": "someone", "role": "participant", "aud": "urne-api",
                         "iss": "urne-identity", "iat": int(time.time()),
                         "exp": int(time.time()) + 600}, Ed25519PrivateKey.generate(),
                         algorithm="EdDSA")

    async def ask() -> list[dict]:
        client = AmqpRpcClient(distributed.amqp_urls["gateway"],
                               load_verifier(distributed.keys, "gateway"),
                               load_signer(distributed.keys, "gateway").sign)
        await client.connect()
        try:
            return [await client.call("identity", wrap(command, "gateway"), 15) for command in (
                IssueVotingToken(person_id="someone", poll_id=state.poll_id),
                IssueVotingTokenV2(poll_id=state.poll_id, access_token=forged),
                IssueVotingTokenV2(poll_id=state.poll_id,
                                   access_token=state.organiser["Authorization"][7:]))]
        finally:
            await client.close()

    named, forged_reply, own = asyncio.run(ask())
    assert (named["ok"], named["error"]["code"]) == (False, "access_token_required"), named
    assert (forged_reply["ok"], forged_reply["error"]["code"]) == (False, "invalid_token")
    assert own["ok"] and own["data"]["poll_id"] == state.poll_id, own


def test_forged_unsigned_and_replayed_envelopes(distributed: Distributed) -> None:
    vhost = distributed.env["URNE_AMQP_URL"].rsplit("/", 1)[-1]

    def metrics(service: str) -> str:
        port = distributed.metrics_ports[service]
        return httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text

    def dead_letters() -> list[dict]:
        with httpx.Client(auth=AUTH, timeout=10) as admin:
            r = admin.post(f"{MANAGEMENT}/queues/{vhost}/urne.dead-letters/get",
                           json={"count": 100, "ackmode": "ack_requeue_false",
                                 "encoding": "auto"})
            return [json.loads(m["payload"]) for m in r.raise_for_status().json()]

    run_signed_messages(System(
        distributed.base, distributed.outbox, distributed.keys,
        admin_url=distributed.env["URNE_AMQP_URL"],
        proposal_url=distributed.amqp_urls["proposal"],
        gateway_url=distributed.amqp_urls["gateway"], metrics=metrics,
        dead_letters=dead_letters))


def test_slice_over_rabbitmq_and_cassandra(distributed: Distributed) -> None:
    with httpx.Client(base_url=distributed.base, timeout=15) as http:
        summary = run_slice(http, distributed.outbox)
    assert summary["tally"]["outcome"] == "adopted"
    # Every hop went over the broker: each service process counted its own messages.
    for name in SERVICES:
        assert distributed.procs[name].popen.poll() is None, distributed.procs[name].tail()
        metrics = httpx.get(f"http://127.0.0.1:{distributed.metrics_ports[name]}/metrics").text
        handled = [line for line in metrics.splitlines()
                   if line.startswith(("urne_commands_total{", "urne_events_handled_total{"))
                   and 'outcome="ok"' in line and not line.endswith(" 0.0")]
        assert handled, f"{name} handled nothing:\n{metrics[:2000]}"
    # The result reached the vote service too: its ballots' retention has started.
    metrics = httpx.get(f"http://127.0.0.1:{distributed.metrics_ports['vote']}/metrics").text
    assert any(line.startswith("urne_events_handled_total{") and "result.published.v1" in line
               and 'outcome="ok"' in line and not line.endswith(" 0.0")
               for line in metrics.splitlines()), metrics[:2000]


@pytest.mark.parametrize("method", METHODS)
def test_every_voting_method(distributed: Distributed, method: str) -> None:
    with httpx.Client(base_url=distributed.base, timeout=15) as http:
        METHODS[method](http, distributed.outbox)


def test_urne_demo_then_every_poll_verifies(distributed: Distributed) -> None:
    with httpx.Client(base_url=distributed.base, timeout=15) as http:
        run_demo(http, distributed.outbox)


def test_sign_in_limits_stop_strangers_not_owners(distributed: Distributed) -> None:
    with httpx.Client(base_url=distributed.base, timeout=15) as http:
        run_sign_in_limits(http, distributed.outbox)


def test_a_census_poll_admits_claimed_eligible_entries_only(distributed: Distributed) -> None:
    with httpx.Client(base_url=distributed.base, timeout=15) as http:
        run_census(http, distributed.outbox)


def test_a_deleted_account_comes_back_as_the_same_voter(distributed: Distributed) -> None:
    with httpx.Client(base_url=distributed.base, timeout=15) as http:
        run_account_deletion(http, distributed.outbox)


def test_people_without_e_mail_sign_in_by_sms_and_vote(distributed: Distributed) -> None:
    with httpx.Client(base_url=distributed.base, timeout=15) as http:
        run_sms(http, distributed.outbox)


def test_an_agent_at_a_desk_registers_someone_who_votes(distributed: Distributed) -> None:
    with httpx.Client(base_url=distributed.base, timeout=15) as http:
        run_desk(http, distributed.outbox)


def test_a_ballot_cast_at_a_desk_is_final_or_replaced_as_the_poll_says(
        distributed: Distributed) -> None:
    with httpx.Client(base_url=distributed.base, timeout=15) as http:
        run_cross_channel(http, distributed.outbox)


def test_admins_grant_roles_and_read_what_staff_did(distributed: Distributed) -> None:
    with httpx.Client(base_url=distributed.base, timeout=15) as http:
        run_admin(http, distributed.outbox)


def test_consultations_belong_to_their_organisers(distributed: Distributed) -> None:
    with httpx.Client(base_url=distributed.base, timeout=15) as http:
        run_consultations(http, distributed.outbox)


def test_proposals_as_cities_run_them(distributed: Distributed) -> None:
    with httpx.Client(base_url=distributed.base, timeout=15) as http:
        run_proposals(http, distributed.outbox)


def test_bad_input(distributed: Distributed) -> None:
    with httpx.Client(base_url=distributed.base, timeout=15) as http:
        run_bad_input(http, distributed.outbox)


def test_results_visibility(distributed: Distributed) -> None:
    with httpx.Client(base_url=distributed.base, timeout=15) as http:
        run_visibility(http, distributed.outbox)


def test_polls_open_and_close_on_schedule(distributed: Distributed) -> None:
    with httpx.Client(base_url=distributed.base, timeout=15) as http:
        run_schedule(http, distributed.outbox)


def test_tally_down_loses_nothing(distributed: Distributed) -> None:
    """Ballots recorded while the tally and its worker are stopped wait in the counting
    streams; the worker, started again, counts them from its checkpoints."""
    with httpx.Client(base_url=distributed.base, timeout=15) as http:
        state = open_poll(http, distributed.outbox)
        distributed.procs["tally"].kill()
        distributed.procs["tally-worker"].kill()
        vote(http, distributed.outbox, state, "eve@example.org", "no")
        vote(http, distributed.outbox, state, "finn@example.org", "no")
        vote(http, distributed.outbox, state, "eve@example.org", "yes")
        distributed.restart("tally-worker")
        distributed.restart("tally")
        wait_http(f"{distributed.base}/readyz", list(distributed.procs.values()), timeout=120)
        close_and_verify(http, state, {"yes": 1, "no": 1, "abstain": 0})


def test_a_lost_ballot_event_heals(distributed: Distributed) -> None:
    """Two ``ballots.recorded`` events vanish (the counting streams are unbound while
    they are published, so the broker drops them): after the close the tally, short of
    two ballots and counting no further, asks the vote service for the poll's ballots
    again, and publishes a result with every ballot that got a receipt (close_and_verify
    checks the record against the receipts, tracker by tracker)."""
    vhost = distributed.env["URNE_AMQP_URL"].rsplit("/", 1)[-1]
    shards = [f"{s:03d}" for s in range(int(distributed.env["URNE_COUNTING_SHARDS"]))]
    binding = f"{MANAGEMENT}/bindings/{vhost}/e/urne.counting/q/urne.counting.shard-"
    with httpx.Client(base_url=distributed.base, timeout=15) as http, \
            httpx.Client(auth=AUTH, timeout=10) as admin:
        state = open_poll(http, distributed.outbox)
        vote(http, distributed.outbox, state, "hugo@example.org", "yes")
        for shard in shards:
            admin.delete(f"{binding}{shard}/{shard}").raise_for_status()
        try:
            vote(http, distributed.outbox, state, "iris@example.org", "no")
            vote(http, distributed.outbox, state, "hugo@example.org", "no")  # a revote, lost
        finally:
            for shard in shards:
                admin.post(f"{binding}{shard}", json={"routing_key": shard}
                           ).raise_for_status()
        vote(http, distributed.outbox, state, "jade@example.org", "abstain")
        close_and_verify(http, state, {"yes": 0, "no": 2, "abstain": 1})
    log = (distributed.log_dir / "tally.log").read_text(errors="replace")
    assert "ballots missing; asked the vote service for them again" in log
    # Only the shards, and the voter cells, the tally was short of were sent again: at
    # most the two voters'.
    resent = [entry for line in (distributed.log_dir / "vote.log").read_text(
        errors="replace").splitlines() if line.startswith("{")
        and (entry := json.loads(line))["msg"] == "ballots sent again to the tally"
        and entry["poll_id"] == state.poll_id]
    assert resent and all(isinstance(e["shards"], list) and 1 <= len(e["shards"]) <= 2
                          and 1 <= e["cells"] <= 2 for e in resent), resent


def test_service_down_is_503_not_500(distributed: Distributed) -> None:
    with httpx.Client(base_url=distributed.base, timeout=30) as http:
        distributed.procs["proposal"].kill()
        try:
            r = http.get(f"/v1/polls/{'0' * 32}")
            assert r.status_code == 503, r.text
            assert r.json()["code"] == "service_unavailable"
            r = http.get("/readyz")
            assert r.status_code == 503 and r.json()["services"]["proposal"]["ready"] is False
            assert r.json()["services"]["proposal"]["missing"] == "service"
        finally:
            distributed.restart("proposal")
            wait_http(f"{distributed.base}/readyz", list(distributed.procs.values()), timeout=120)


def test_poison_event_is_dead_lettered(distributed: Distributed) -> None:
    """An event no handler can ever process (signed by its producer, so it is tried) is
    parked, with its error, after a bounded number of attempts; it is neither dropped
    nor retried forever."""
    import pika

    poison = load_signer(distributed.keys, "proposal").sign(
        {"id": str(uuid.uuid4()), "type": "poll.opened.v1", "producer": "proposal",
         "payload": {"not": "a poll"}})

    vhost = distributed.env["URNE_AMQP_URL"].rsplit("/", 1)[-1]
    connection = pika.BlockingConnection(pika.URLParameters(distributed.env["URNE_AMQP_URL"]))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        channel.basic_publish("proposal.events", "poll.opened.v1", json.dumps(poison).encode(),
                              pika.BasicProperties(content_type="application/json",
                                                   delivery_mode=2))
    finally:
        connection.close()

    parked: list[dict] = []
    deadline = time.monotonic() + 60
    with httpx.Client(auth=AUTH, timeout=10) as admin:
        while len(parked) < 3 and time.monotonic() < deadline:
            r = admin.post(f"{MANAGEMENT}/queues/{vhost}/urne.dead-letters/get",
                           json={"count": 10, "ackmode": "ack_requeue_false", "encoding": "auto"})
            r.raise_for_status()
            parked += [json.loads(m["payload"]) for m in r.json()]
            time.sleep(0.5)
    # identity, vote and tally each subscribe to poll.opened.v1: each parks its copy.
    assert sorted(p["service"] for p in parked) == ["identity", "tally", "vote"], parked
    assert all(p["envelope"] == poison and p["error_type"] == "ValidationError"
               and p["attempts"] == 5 for p in parked), parked
    assert httpx.get(f"{distributed.base}/readyz", timeout=15).status_code == 200


def test_concurrent_revotes_count_once(distributed: Distributed) -> None:
    """Racing casts from one voter (several gateway requests at once) land in one shard,
    where one worker sequences them: every one is accepted, in a dense sequence with no
    duplicate, and only the last one counts."""
    from concurrent.futures import ThreadPoolExecutor

    with httpx.Client(base_url=distributed.base, timeout=30) as http:
        state = open_poll(http, distributed.outbox)
        vote(http, distributed.outbox, state, "gina@example.org", "no")
        token = state.tokens["gina@example.org"]

        def cast(answer: str) -> httpx.Response:
            return http.post(f"/v1/polls/{state.poll_id}/ballots",
                             headers={"Authorization": f"Bearer {token}"},
                             json={"choice": {"method": "yes_no_abstain", "answer": answer}})

        answers = ["yes", "abstain"] * 8
        with ThreadPoolExecutor(8) as pool:
            replies = list(pool.map(cast, answers))
        assert [r.status_code for r in replies] == [201] * len(answers), [r.text for r in replies]
        accepted = [r.json() for r in replies]
        sequences = sorted(r["sequence"] for r in accepted)
        assert sequences == list(range(2, 2 + len(answers))), sequences  # dense, no duplicate
        last = max(accepted, key=lambda r: r["sequence"])
        state.receipts["gina@example.org"] += sorted(accepted, key=lambda r: r["sequence"])
        answer = next(a for a, r in zip(answers, replies, strict=True)
                      if r.status_code == 201 and r.json()["ballot_id"] == last["ballot_id"])
        expected = {"yes": 0, "no": 0, "abstain": 0, answer: 1}
        close_and_verify(http, state, expected)


def test_the_dashboard_s_series_exist_on_the_running_system(distributed: Distributed) -> None:
    """Every urne series the Grafana dashboard (infra/grafana/dashboards/urne.json) and
    the alerts query, with the labels they select, is served by some process of this
    system once a poll ran: no panel waits for a series that never comes."""
    import re

    from prometheus_client.parser import text_string_to_metric_families

    from tests.ops.tools import alert_rules, dashboard_queries

    with httpx.Client(base_url=distributed.base, timeout=15) as http:
        run_slice(http, distributed.outbox)  # ballots cast, counted, a result published
    queries = dashboard_queries() + [rule["expr"] for rule in alert_rules()]
    families = [family for port in distributed.metrics_ports.values()
                for family in text_string_to_metric_families(
                    httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text)]
    samples = [sample for family in families for sample in family.samples]
    # Counted only when a consumer refuses a message: served (declared) by the consumers
    # from their start, with samples only after a refusal (run alone, this test sees none).
    declared_only = {"urne_messages_refused_total"}
    served = {family.name + "_total" if family.type == "counter" else family.name
              for family in families}
    assert declared_only <= served
    selectors = {(name, labels) for query in queries
                 for name, labels in re.findall(
                     r'\b(urne_[a-z0-9_]+)(\{(?:[^{}"]|"[^"]*")*\})?', query)}
    assert len(selectors) >= 15
    assert ("urne_http_request_duration_seconds_bucket",
            '{route="/v1/polls/{poll_id}/ballots",method="POST"}') in selectors
    missing = []
    for name, labels in sorted(selectors):
        if name in declared_only:
            continue
        wanted = dict(re.findall(r'(\w+)="([^"]*)"', labels))
        if not any(s.name == name and all(s.labels.get(k) == v for k, v in wanted.items())
                   for s in samples):
            missing.append(f"{name}{labels}")
    assert not missing, missing
