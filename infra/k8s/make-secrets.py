#!/usr/bin/env python3
"""The five Secrets of urne on Kubernetes, one per service (and the gateway), printed as
a JSON list for `kubectl apply -f -`. Nothing is written to disk; nothing is kept in git.

    urne keys generate secrets/keys --per-service        # once (see docker-compose.yml)
    export URNE_BROKER_PASSWORD_IDENTITY=… (the same variables as docker-compose.yml)
    python3 infra/k8s/make-secrets.py secrets/keys --namespace urne | kubectl apply -f -

Each Secret ``urne-<service>`` holds that service's key folder (its private keys and
everyone's public keys: the files of ``<keys>/<service>/``, mounted read-only at /keys)
and its passwords, read by the Deployments through ``secretKeyRef``:

- ``broker-password``: its RabbitMQ user's (URNE_BROKER_PASSWORD_<SERVICE>); the vote
  and tally Secrets also hold ``broker-password-vote-worker`` /
  ``broker-password-tally-worker``, as their workers use their key folders;
- ``cassandra-password``: its Cassandra role's (URNE_CASSANDRA_PASSWORD_<SERVICE>), not
  for the gateway;
- identity only: ``pseudonym-secret`` (URNE_PSEUDONYM_SECRET), ``code-secret``
  (URNE_CODE_SECRET), and if set ``smtp-url`` (URNE_SMTP_URL), ``sms-token``
  (URNE_SMS_TOKEN).

The standard library only: it runs on an operator's machine without urne installed.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import sys
from pathlib import Path

SERVICES = ("identity", "proposal", "vote", "tally", "gateway")
WORKERS = {"vote": "vote-worker", "tally": "tally-worker"}  # service -> its worker role
STORES = ("identity", "proposal", "vote", "tally")
# A broker password goes into URNE_AMQP_URL as it is (the Deployments splice it in):
# only characters a URL's userinfo takes unescaped (`urne broker users` and
# secrets.token_urlsafe make such passwords).
URL_SAFE = re.compile(r"[A-Za-z0-9._~-]+")


class Missing(Exception):
    pass


def _env(name: str, *, url_safe: bool = False, required: bool = True) -> str | None:
    value = os.environ.get(name, "")
    if not value:
        if required:
            raise Missing(f"set {name}")
        return None
    if url_safe and not URL_SAFE.fullmatch(value):
        raise Missing(f"{name} must be URL-safe (letters, digits, . _ ~ -): it goes into "
                      "URNE_AMQP_URL unescaped")
    return value


def _broker(role: str) -> str:
    value = _env("URNE_BROKER_PASSWORD_" + role.upper().replace("-", "_"), url_safe=True)
    assert value is not None
    return value


def secret(service: str, keys: Path, namespace: str | None) -> dict:
    folder = keys / service
    files = sorted(folder.glob("*.pem"))
    if not files:
        raise Missing(f"no keys in {folder}: run `urne keys generate {keys} --per-service`")
    data: dict[str, str] = {p.name: base64.b64encode(p.read_bytes()).decode() for p in files}
    text: dict[str, str | None] = {"broker-password": _broker(service)}
    if service in WORKERS:
        text[f"broker-password-{WORKERS[service]}"] = _broker(WORKERS[service])
    if service in STORES:
        text["cassandra-password"] = _env(f"URNE_CASSANDRA_PASSWORD_{service.upper()}")
    if service == "identity":
        text["pseudonym-secret"] = _env("URNE_PSEUDONYM_SECRET")
        text["code-secret"] = _env("URNE_CODE_SECRET")
        text["smtp-url"] = _env("URNE_SMTP_URL", required=False)
        text["sms-token"] = _env("URNE_SMS_TOKEN", required=False)
    data.update({k: base64.b64encode(v.encode()).decode() for k, v in text.items() if v})
    metadata: dict[str, object] = {
        "name": f"urne-{service}",
        "labels": {"app.kubernetes.io/name": "urne", "app.kubernetes.io/part-of": "urne",
                   "app.kubernetes.io/component": service}}
    if namespace:
        metadata["namespace"] = namespace
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "metadata": metadata,
            "data": data}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("keys", type=Path, help="the root of `urne keys generate DIR "
                                                "--per-service`")
    parser.add_argument("--namespace", help="urne's namespace (urne, urne-dev)")
    args = parser.parse_args(argv)
    try:
        items = [secret(s, args.keys, args.namespace) for s in SERVICES]
    except Missing as exc:
        print(f"make-secrets.py: {exc}", file=sys.stderr)
        return 2
    json.dump({"apiVersion": "v1", "kind": "List", "items": items}, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
