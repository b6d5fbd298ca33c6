"""Least privilege on the broker: one RabbitMQ user per process role (issue 10).

RabbitMQ grants each user, per virtual host, three regular expressions over the names
of exchanges and queues: *configure* (declare, delete), *write* (publish to an
exchange; bind a queue, which also needs *read* on the exchange) and *read* (consume
from a queue; bind to an exchange). The table below is every name each role touches,
from the code that touches it (``amqp_rpc``, ``ballot_stream``, ``counting_stream``,
``membership``, ``nameko_adapter``, and nameko's own naming), and nothing else:

- The gateway publishes RPC requests (``nameko-rpc``) and ballots (``urne.ballots``)
  and reads its own reply queue. It cannot publish to any ``<service>.events``
  exchange, nor to the counting streams or the dead letters.
- A service publishes only to its own ``<service>.events`` (and the vote service to
  the counting streams, where it sends recorded ballots again), answers RPC through
  ``nameko-rpc``, and reads the events exchanges it listens to. nameko declares the
  exchange of every event it listens to, so a service has *configure* on those too:
  that would let it delete one (a denial of service, seen at once), never publish to it.
- A vote worker is the vote service's ballot path: it publishes vote's events, its
  replies, and recorded ballots to the counting streams. A tally worker reads the
  counting streams, and parks there what it refuses (a message not signed by the vote
  service) in the dead letters.
- Membership queues (``urne.vote-workers``, ``urne.tally-workers``) are server-named
  (``amq.gen-…``) and exclusive: only the connection that made one can use it.

Every expression is anchored: RabbitMQ matches them unanchored otherwise.
"""

from __future__ import annotations

import base64
import json
import urllib.request
from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote

from urne.messaging.amqp_rpc import RPC_EXCHANGE
from urne.messaging.ballot_stream import BALLOTS_EXCHANGE, DEAD_LETTERS, WORKERS_EXCHANGE
from urne.messaging.counting_stream import BOOTSTRAPPED as COUNTING_BOOTSTRAPPED
from urne.messaging.counting_stream import COUNTING_EXCHANGE, TALLY_WORKERS_EXCHANGE

Role = Literal["gateway", "identity", "proposal", "vote", "tally", "vote-worker",
               "tally-worker"]
ROLES: tuple[Role, ...] = ("gateway", "identity", "proposal", "vote", "tally", "vote-worker",
                           "tally-worker")
SERVICES = ("identity", "proposal", "vote", "tally")


@dataclass(frozen=True)
class Permissions:
    configure: str
    write: str
    read: str


def _names(*patterns: str) -> str:
    return "^(" + "|".join(patterns) + ")$"


def _literal(name: str) -> str:
    return name.replace(".", r"\.").replace("-", r"\-")


RPC = _literal(RPC_EXCHANGE)
BALLOTS = _literal(BALLOTS_EXCHANGE)
BALLOT_SHARDS = _literal(BALLOTS_EXCHANGE) + r"\.shard\-[0-9]+"
COUNTING = _literal(COUNTING_EXCHANGE)
# A shard's stream of each generation (``urne.counting.shard-NNN`` then ``….gK``) and
# the mark that the first generation is bound (counting_stream.BOOTSTRAPPED).
COUNTING_STREAMS = _literal(COUNTING_EXCHANGE) + r"\.shard\-[0-9]+(\.g[0-9]+)?"
BOOTSTRAPPED = _literal(COUNTING_BOOTSTRAPPED)
DEAD = _literal(DEAD_LETTERS)
SERVER_NAMED = r"amq\.gen\-.+"
EVENTS = "(" + "|".join(SERVICES) + r")\.events"


def _events(service: str) -> str:
    return service + r"\.events"


def _nameko(service: str) -> list[str]:
    """A nameko service's own queues: its RPC queue, its event handlers' queues
    (``evt-<source>-<type>--<service>.<method>``) and RPC reply queues."""
    return [rf"rpc\-{service}", rf"evt\-[a-z]+\-[a-z0-9_.]+\-\-{service}\.[a-z0-9_]+",
            rf"rpc\.reply\-{service}\-[0-9a-f-]+"]


def _service(service: str, *, configure: tuple[str, ...] = (), write: tuple[str, ...] = (),
             read: tuple[str, ...] = ()) -> Permissions:
    own = _nameko(service)
    return Permissions(
        configure=_names(RPC, EVENTS, DEAD, *own, *configure),
        write=_names(RPC, _events(service), DEAD, *own, *write),
        read=_names(RPC, EVENTS, DEAD, *own, *read))


GATEWAY_REPLIES = r"rpc\.reply\-gateway\-[0-9a-f]+"

PERMISSIONS: dict[Role, Permissions] = {
    "gateway": Permissions(configure=_names(RPC, BALLOTS, GATEWAY_REPLIES),
                           write=_names(RPC, BALLOTS, GATEWAY_REPLIES),
                           read=_names(RPC, GATEWAY_REPLIES)),
    "identity": _service("identity"),
    "proposal": _service("proposal"),
    # The vote service declares the ballot topology when it starts (the shard queues,
    # bound to urne.ballots and to vote.events for the close markers) and sends recorded
    # ballots again to the counting streams.
    "vote": _service("vote", configure=(BALLOTS, BALLOT_SHARDS, COUNTING, COUNTING_STREAMS,
                                        BOOTSTRAPPED),
                     write=(BALLOT_SHARDS, COUNTING, COUNTING_STREAMS),
                     read=(BALLOTS, COUNTING)),
    "tally": _service("tally"),
    "vote-worker": Permissions(
        configure=_names(BALLOTS, BALLOT_SHARDS, _events("vote"), DEAD, COUNTING,
                         COUNTING_STREAMS, BOOTSTRAPPED, _literal(WORKERS_EXCHANGE),
                         SERVER_NAMED),
        write=_names(_events("vote"), RPC, DEAD, COUNTING, BALLOT_SHARDS, COUNTING_STREAMS,
                     _literal(WORKERS_EXCHANGE), SERVER_NAMED),
        read=_names(BALLOT_SHARDS, BALLOTS, _events("vote"), DEAD, COUNTING,
                    _literal(WORKERS_EXCHANGE), SERVER_NAMED)),
    "tally-worker": Permissions(
        # The tally workers rotate the counting streams (counting_rotation.py): they
        # declare, bind, unbind and delete them, and publish each generation's markers.
        configure=_names(COUNTING, COUNTING_STREAMS, BOOTSTRAPPED,
                         _literal(TALLY_WORKERS_EXCHANGE), DEAD, SERVER_NAMED),
        write=_names(COUNTING, COUNTING_STREAMS, _literal(TALLY_WORKERS_EXCHANGE), DEAD,
                     SERVER_NAMED),
        read=_names(COUNTING_STREAMS, COUNTING, _literal(TALLY_WORKERS_EXCHANGE),
                    SERVER_NAMED)),
}


def grant(management_url: str, vhost: str, role: Role, user: str, password: str,
          auth: tuple[str, str]) -> None:
    """Create (or update) ``user`` with ``password`` and the permissions of ``role`` on
    ``vhost``, through the management API (``auth``: an administrator's). The standard
    library's HTTP client: the command runs in the production image."""
    perms = PERMISSIONS[role]
    api = management_url.rstrip("/") + "/api"
    _put(f"{api}/users/{quote(user, safe='')}", {"password": password, "tags": ""}, auth)
    _put(f"{api}/permissions/{quote(vhost, safe='')}/{quote(user, safe='')}",
         {"configure": perms.configure, "write": perms.write, "read": perms.read}, auth)


def _put(url: str, body: dict[str, str], auth: tuple[str, str]) -> None:
    token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="PUT",
                                     headers={"Content-Type": "application/json",
                                              "Authorization": f"Basic {token}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        if response.status not in (200, 201, 204):
            raise RuntimeError(f"PUT {url}: {response.status}")
