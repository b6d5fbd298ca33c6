"""Abuse limits on sign-in that a stranger cannot turn against a voter. No I/O here.

Each limit counts events in fixed windows under a key that names what is limited (an
address, a client, or both) only through a keyed hash: the counters hold no address.
Who is limited, and why:

- codes sent to one address **from one client**: a stranger asking again and again for
  someone else's address runs out, the address's owner (on another client) does not;
- codes sent to one address from all clients together: a cap against mail (or SMS)
  bombing, high enough that one stranger's requests leave the owner room;
- wrong codes from one client, whatever the addresses: guessing spread over many
  addresses stops. Only failures count, so a town hall or a carrier's NAT, many honest
  people behind one address, is not stopped by its sign-ins. An agent's kiosk network
  can be exempted altogether (``URNE_KIOSK_NETWORKS``).

Wrong codes for one address burn its pending codes (``domain.MAX_ATTEMPTS``); the owner
asks for a new one, which the limits above leave them.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from urne.services.identity.keyed import keyed_hash


@dataclass(frozen=True)
class Limit:
    name: str  # the first part of its counters' keys
    most: int  # events allowed in one window
    window: timedelta


SENDS_TO_ADDRESS_FROM_CLIENT = Limit("send-pair", 5, timedelta(hours=1))
SENDS_TO_ADDRESS = Limit("send-address", 15, timedelta(hours=1))
FAILURES_FROM_CLIENT = Limit("fail-client", 30, timedelta(minutes=15))


# The longest window of any limit (the census claims', services/identity/census.py): a
# counter older than this counts nothing any more, whatever its limit.
LONGEST_WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class Counter:
    key: str
    window_started_at: datetime
    count: int
    version: int = 0  # each write adds one: writes are conditional on it


def counted(limit: Limit, previous: Counter | None, key: str,
            now: datetime) -> Counter | timedelta:
    """The counter after one more event, or, when the limit is reached, how long until
    its window ends."""
    if previous is None:
        return Counter(key, now, 1)
    if now - previous.window_started_at >= limit.window:
        return replace(previous, window_started_at=now, count=1, version=previous.version + 1)
    if previous.count >= limit.most:
        return wait(limit, previous, now)
    return replace(previous, count=previous.count + 1, version=previous.version + 1)


def reached(limit: Limit, counter: Counter | None, now: datetime) -> timedelta | None:
    """How long until ``limit`` allows one more event, None if it allows one now."""
    if counter is None or now - counter.window_started_at >= limit.window \
            or counter.count < limit.most:
        return None
    return wait(limit, counter, now)


def wait(limit: Limit, counter: Counter, now: datetime) -> timedelta:
    return max(counter.window_started_at + limit.window - now, timedelta(seconds=1))


def retry_after(wait: timedelta) -> int:
    """Whole seconds for ``Retry-After``, rounded up."""
    return max(1, -int(-wait.total_seconds() // 1))


def client_of(address: str | None) -> str | None:
    """The client a limit counts: an IPv4 address, or an IPv6 address's /64 (one home or
    phone gets a whole /64); None for anything else (a test client, a Unix socket)."""
    if not address:
        return None
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    if ip.version == 6:
        mapped = ip.ipv4_mapped
        if mapped is not None:
            return str(mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def exempt(client: str | None, networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network,
                                               ...]) -> bool:
    """Whether ``client`` is in one of the kiosk networks, which no client limit stops."""
    if client is None or not networks:
        return False
    ip = ipaddress.ip_network(client, strict=False)
    return any(ip.version == n.version and ip.subnet_of(n) for n in networks)  # type: ignore[arg-type]


def networks(text: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """A comma-separated list of networks (``192.0.2.0/24, 2001:db8::/48``)."""
    return tuple(ipaddress.ip_network(n.strip(), strict=False)
                 for n in text.split(",") if n.strip())


def key(secret: str, limit: Limit, *parts: str) -> str:
    """A counter's key: the limit's name and a keyed hash of what it counts, so that the
    counters name no address and no client to whoever reads the table."""
    return f"{limit.name}:{keyed_hash(secret, 'limit', limit.name, *parts)[:32]}"
