"""The Kubernetes manifests (infra/k8s/), checked without a cluster and without network:
each overlay rendered by kustomize and validated by kubeconform (strict) against the
Kubernetes schemas of the kubernetes-validate package and the CRDs of KEDA and the
operators (infra/tools/install.sh puts the tools and CRDs in a cache outside the
checkout); then what a schema cannot say: the same commands and settings names as
docker-compose.yml, every URNE_* variable a field of the process's settings class (and
the production validators pass), the pods locked down, only the gateway reachable from
outside, and the scaling tied to the shard counts."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml

from tests.ops.tools import ROOT, TOOLS, tool, unavailable
from urne.messaging.ballot_stream import shard_queue
from urne.messaging.counting_stream import stream_name
from urne.messaging.permissions import ROLES
from urne.platform.settings import GatewaySettings, ServiceSettings, StoreSettings
from urne.runtime.registry import SERVICES

pytestmark = pytest.mark.unit

K8S = ROOT / "infra" / "k8s"
INSTALL = "infra/tools/install.sh"
OVERLAYS = ("dev", "prod")
KUBERNETES_VERSION = "1.32.0"  # the oldest minor KEDA 2.17 supports is 1.30; 1.32 its newest
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
# The Secrets an operator brings from elsewhere (README.md, "Secrets"); the five of the
# services come from infra/k8s/make-secrets.py, checked below.
EXTERNAL_SECRETS = {"urne-broker-admin": {"username", "password"},
                    "urne-cassandra-admin": {"username", "password"},
                    "urne-keda-rabbitmq": {"host"}}
# Whose key folder, Secret and Cassandra role a process uses (as docker-compose.yml).
OWNER = {**{s: s for s in SERVICES}, "gateway": "gateway", "vote-worker": "vote",
         "tally-worker": "tally"}
# The Kubernetes kinds the manifests use, as kubernetes-validate names their schemas.
K8S_SCHEMAS = ("deployment-apps-v1", "service-v1", "configmap-v1", "secret-v1",
               "job-batch-v1", "namespace-v1", "horizontalpodautoscaler-autoscaling-v2",
               "poddisruptionbudget-policy-v1", "networkpolicy-networking-v1")
METRICS_PORT = 9100


def _unavailable(message: str) -> None:
    unavailable(f"{message}; run {INSTALL}")


# --- tools and schemas ---------------------------------------------------------------

def _strict(node: Any) -> Any:
    """A CRD's OpenAPI schema made strict as kubeconform's own converter does: an object
    that lists its properties takes no others (unless it says it keeps unknown fields)."""
    if isinstance(node, dict):
        node = {k: _strict(v) for k, v in node.items()}
        if ("properties" in node and "additionalProperties" not in node
                and not node.get("x-kubernetes-preserve-unknown-fields")):
            node["additionalProperties"] = False
        return node
    if isinstance(node, list):
        return [_strict(v) for v in node]
    return node


DEFINITIONS = '"/api/_definitions.json#/'
REF = re.compile(r'"\$ref": "#/\$defs/([^"]+)"')
FAST_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the CRDs are large


def _reachable(schema: dict[str, Any], definitions: dict[str, Any]) -> dict[str, Any]:
    """The definitions ``schema`` refers to, directly or not (a schema with all 800 of
    them takes kubeconform seconds to compile)."""
    found: dict[str, Any] = {}
    todo = REF.findall(json.dumps(schema))
    while todo:
        name = todo.pop()
        if name not in found:
            found[name] = definitions[name]
            todo.extend(REF.findall(json.dumps(definitions[name])))
    return found


@pytest.fixture(scope="session")
def schemas(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Local JSON schemas for kubeconform, in a temporary folder: the Kubernetes ones of
    kubernetes-validate made standalone (they refer to a _definitions.json by an
    absolute URL, which kubeconform would try to download), and the CRDs' schemas."""
    try:
        import kubernetes_validate
    except ImportError:
        _unavailable("the kubernetes-validate package is missing (pip install -e '.[dev]')")
    root = tmp_path_factory.mktemp("k8s-schemas")
    source = (Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
              / f"v{KUBERNETES_VERSION}-local-strict")
    definitions = json.loads((source / "_definitions.json").read_text().replace(
        DEFINITIONS, '"#/'))["$defs"]
    folder = root / f"v{KUBERNETES_VERSION}-local-strict"
    folder.mkdir()
    for name in K8S_SCHEMAS:
        text = (source / f"{name}.json").read_text().replace(DEFINITIONS, '"#/')
        schema = json.loads(text)
        schema.pop("$id", None)
        schema["$defs"] = _reachable(schema, definitions)
        (folder / f"{name}.json").write_text(json.dumps(schema))
    crds = TOOLS / "crds"
    pinned = crds / "pinned"
    if not pinned.is_file():
        _unavailable(f"no CRDs in {crds}")
    for entry in pinned.read_text().split():
        for path in sorted((crds / entry).glob("*.yaml")):
            crd = yaml.load(path.read_text(), Loader=FAST_LOADER)
            group = crd["spec"]["group"]
            kind = crd["spec"]["names"]["kind"].lower()
            (root / group).mkdir(exist_ok=True)
            for version in crd["spec"]["versions"]:
                schema = _strict(version["schema"]["openAPIV3Schema"])
                (root / group / f"{kind}_{version['name']}.json").write_text(json.dumps(schema))
    return root


def kustomize(path: Path) -> str:
    done = subprocess.run([tool("kustomize", INSTALL), "build", str(path)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def kubeconform(text: str, schemas: Path) -> dict[str, Any]:
    """kubeconform -strict on ``text``, with local schemas only (no URL: it would try
    the network); every resource must have a schema (no -ignore-missing-schemas)."""
    done = subprocess.run(
        [tool("kubeconform", INSTALL), "-strict", "-summary", "-output", "json",
         "-kubernetes-version", KUBERNETES_VERSION,
         "-schema-location", str(schemas) + "/{{ .NormalizedKubernetesVersion }}-local"
                                            "{{ .StrictSuffix }}/{{ .ResourceKind }}"
                                            "{{ .KindSuffix }}.json",
         "-schema-location", str(schemas) + "/{{ .Group }}/{{ .ResourceKind }}_"
                                            "{{ .ResourceAPIVersion }}.json", "-"],
        input=text, capture_output=True, text=True, check=False)
    report: dict[str, Any] = json.loads(done.stdout) if done.stdout.strip() else {}
    problems = [r for r in report.get("resources", []) if r.get("status") != "statusValid"]
    assert done.returncode == 0 and not problems, (problems, done.stderr)
    return report


# --- the rendered overlays -------------------------------------------------------------

@pytest.fixture(scope="session")
def rendered() -> dict[str, str]:
    return {overlay: kustomize(K8S / "overlays" / overlay) for overlay in OVERLAYS}


def objects(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d]


def by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def workloads(docs: list[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(object, its pod spec) of every Deployment and Job."""
    for d in docs:
        if d["kind"] in ("Deployment", "Job"):
            yield d, d["spec"]["template"]["spec"]


def role_of(deployment: dict[str, Any]) -> str:
    return str(deployment["metadata"]["labels"]["app.kubernetes.io/component"])


def environment(container: dict[str, Any], docs: list[dict[str, Any]]
                ) -> tuple[dict[str, str], dict[str, tuple[str, str]]]:
    """The variables the container gets, as Kubernetes makes them (envFrom first, then
    env with $(NAME) expanded), a Secret's value standing as ``<secret/key>``; and where
    each secret variable comes from (name -> (Secret, key))."""
    configmaps = by_kind(docs, "ConfigMap")
    env: dict[str, str] = {}
    secrets: dict[str, tuple[str, str]] = {}
    for source in container.get("envFrom", []):
        assert set(source) == {"configMapRef"}, source  # secrets by name only, below
        env.update(configmaps[source["configMapRef"]["name"]]["data"])
    for var in container.get("env", []):
        if "value" in var:
            env[var["name"]] = re.sub(r"\$\((\w+)\)", lambda m: env[m.group(1)], var["value"])
            continue
        ref = var["valueFrom"]
        if "configMapKeyRef" in ref:
            env[var["name"]] = configmaps[ref["configMapKeyRef"]["name"]]["data"][
                ref["configMapKeyRef"]["key"]]
        else:
            key = ref["secretKeyRef"]
            secrets[var["name"]] = (key["name"], key["key"])
            env[var["name"]] = f"secret-{key['name']}-{key['key']}"
    return env, secrets


def fields(cls: type[Any]) -> set[str]:
    return {f"URNE_{name.upper()}" for name in cls.model_fields}


# --- validity ----------------------------------------------------------------------------

@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_is_valid(overlay: str, rendered: dict[str, str], schemas: Path) -> None:
    report = kubeconform(rendered[overlay], schemas)
    summary = report["summary"]
    assert summary["valid"] == len(objects(rendered[overlay])), summary
    assert summary["skipped"] == 0, summary


def test_operator_examples_are_valid(schemas: Path) -> None:
    text = kustomize(K8S / "operators")
    kinds = {d["kind"] for d in objects(text)}
    assert {"RabbitmqCluster", "K8ssandraCluster"} <= kinds
    assert kubeconform(text, schemas)["summary"]["valid"] == len(objects(text))


def test_the_cassandra_cluster_acknowledges_a_write_once_its_commit_log_is_synced() -> None:
    """As infra/cassandra/ and docker-compose.yml: Cassandra's default (periodic) would
    acknowledge a ballot up to 10 s before its commit log reaches the disk. batch refuses
    any sync period but 0, whatever the image's file says."""
    (cluster,) = [d for d in objects(kustomize(K8S / "operators"))
                  if d["kind"] == "K8ssandraCluster"]
    for datacenter in cluster["spec"]["cassandra"]["datacenters"]:
        settings = datacenter["config"]["cassandraYaml"]
        assert settings["commitlog_sync"] == "batch"
        assert settings["commitlog_sync_period"] == "0ms"


def test_secrets_script_gives_every_secret_referenced(
        rendered: dict[str, str], schemas: Path, tmp_path: Path) -> None:
    from urne.crypto.keys import generate_per_service

    keys = tmp_path / "keys"
    generate_per_service(keys)
    env = {**os.environ,
           **{"URNE_BROKER_PASSWORD_" + r.upper().replace("-", "_"): f"b-{r}" for r in ROLES},
           **{f"URNE_CASSANDRA_PASSWORD_{s.upper()}": f"c-{s}" for s in SERVICES},
           "URNE_PSEUDONYM_SECRET": "p", "URNE_CODE_SECRET": "c"}
    done = subprocess.run([sys.executable, str(K8S / "make-secrets.py"), str(keys)], env=env,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    kubeconform(done.stdout, schemas)
    made = {s["metadata"]["name"]: set(s["data"]) for s in json.loads(done.stdout)["items"]}
    assert set(made) == {f"urne-{s}" for s in (*SERVICES, "gateway")}
    available = {**made, **EXTERNAL_SECRETS}
    for overlay, text in rendered.items():
        docs = objects(text)
        for obj, pod in workloads(docs):
            for volume in pod.get("volumes", []):
                if "secret" in volume:
                    # A key folder: the service's own, with its private keys.
                    name = volume["secret"]["secretName"]
                    owner = name.removeprefix("urne-")
                    assert any(k.endswith(".pem") and not k.endswith(".pub.pem")
                               for k in made[name]), (overlay, name)
                    assert OWNER[role_of(obj)] == owner, (overlay, obj["metadata"]["name"])
            for container in pod["containers"]:
                for var in container.get("env", []):
                    ref = var.get("valueFrom", {}).get("secretKeyRef")
                    if ref and not ref.get("optional"):
                        assert ref["key"] in available.get(ref["name"], set()), (overlay, ref)
    # A broker password that is not URL-safe is refused (it is spliced into a URL).
    bad = {**env, "URNE_BROKER_PASSWORD_GATEWAY": "a/b@c"}
    done = subprocess.run([sys.executable, str(K8S / "make-secrets.py"), str(keys)], env=bad,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 2 and "URL-safe" in done.stderr


# --- what a schema cannot say ------------------------------------------------------------

@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pods_are_locked_down(overlay: str, rendered: dict[str, str]) -> None:
    docs = objects(rendered[overlay])
    assert len(by_kind(docs, "Deployment")) == len(ROLES)
    for obj, pod in workloads(docs):
        name = obj["metadata"]["name"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] == 10001, name  # the Dockerfile's user
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", name
        assert pod["automountServiceAccountToken"] is False, name
        for c in pod["containers"]:
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True, name
            assert sc["allowPrivilegeEscalation"] is False, name
            assert sc["capabilities"]["drop"] == ["ALL"], name
            assert not sc["capabilities"].get("add"), name
            for bound in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(c["resources"][bound]), (name, bound)
            mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
            assert "/tmp" in mounts, name  # the root file system is read-only
            if "/keys" in mounts:
                assert mounts["/keys"]["readOnly"] is True, name
            if obj["kind"] == "Deployment":
                assert {"livenessProbe", "readinessProbe", "startupProbe"} <= set(c), name
        for meta in (obj["metadata"], obj["spec"]["template"]["metadata"]):
            labels = meta["labels"]
            for label in ("name", "component", "part-of", "instance", "version",
                          "managed-by"):
                assert labels.get(f"app.kubernetes.io/{label}"), (name, label)
        if obj["kind"] == "Deployment":
            selector = obj["spec"]["selector"]["matchLabels"]
            assert selector.items() <= obj["spec"]["template"]["metadata"]["labels"].items()


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_probes_are_honest(overlay: str, rendered: dict[str, str]) -> None:
    """The gateway: /healthz for liveness (its own process only), /readyz for readiness
    (the services behind it). The others have no HTTP server: their metrics port."""
    for name, d in by_kind(objects(rendered[overlay]), "Deployment").items():
        c = d["spec"]["template"]["spec"]["containers"][0]
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        assert ports["metrics"] == METRICS_PORT, name
        paths = {probe: c[probe]["httpGet"]["path"]
                 for probe in ("startupProbe", "livenessProbe", "readinessProbe")}
        if role_of(d) == "gateway":
            assert paths == {"startupProbe": "/healthz", "livenessProbe": "/healthz",
                             "readinessProbe": "/readyz"}
            assert ports["http"] == 8000
            assert all(c[p]["httpGet"]["port"] == "http" for p in paths)
        else:
            assert set(paths.values()) == {"/metrics"}, name
            assert all(c[p]["httpGet"]["port"] == "metrics" for p in paths)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_commands_and_keys_are_docker_compose_ones(overlay: str, rendered: dict[str, str]
                                                   ) -> None:
    """The image's entrypoint is `urne`: a container's args are the compose command."""
    docs = objects(rendered[overlay])
    services = COMPOSE["services"]
    for d in by_kind(docs, "Deployment").values():
        role = role_of(d)
        pod = d["spec"]["template"]["spec"]
        c = pod["containers"][0]
        assert "command" not in c, role
        assert c["args"] == services[role]["command"], role
        assert c["image"].rsplit(":", 1)[1] == services[role]["image"].rsplit(":", 1)[1]
        (compose_keys,) = [v.split(":")[0] for v in services[role]["volumes"]
                           if v.split(":")[1] == "/keys"]
        (volume,) = [v for v in pod["volumes"] if v["name"] == "keys"]
        assert volume["secret"]["secretName"] == "urne-" + Path(compose_keys).name, role
    jobs = {role_of(j) and j["metadata"]["name"]: j for j in by_kind(docs, "Job").values()}
    args = {name.removeprefix("urne-"): j["spec"]["template"]["spec"]["containers"][0]["args"]
            for name, j in jobs.items()}
    assert args["broker-users"][:2] == services["broker-users"]["command"][:2]
    assert args["store-roles"] == services["store-roles"]["command"]
    assert args["migrate"] == ["migrate"]


def _compose_fixed(role: str) -> set[str]:
    """The URNE_* names docker-compose.yml sets for ``role`` to a fixed value or demands
    (``${NAME:?…}``): what the manifests must set too. Names with a default there are
    tunables, left to the settings classes' own defaults here."""
    names = set()
    for name, value in COMPOSE["services"][role]["environment"].items():
        text = str(value)
        if name.startswith("URNE_") and not re.search(r"\$\{\w+:?-", text):
            names.add(name)
    return names


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_settings_names_are_the_settings_classes(overlay: str, rendered: dict[str, str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    docs = objects(rendered[overlay])
    for d in by_kind(docs, "Deployment").values():
        role = role_of(d)
        owner = OWNER[role]
        cls = GatewaySettings if role == "gateway" else ServiceSettings
        c = d["spec"]["template"]["spec"]["containers"][0]
        env, secrets = environment(c, docs)
        urne = {k for k in env if k.startswith("URNE_")}
        # Every variable set is a field of the class (no typo is silently ignored) …
        assert urne <= fields(cls), (role, urne - fields(cls))
        # … the others only feed $(NAME) expansions …
        assert set(env) - urne <= {"BROKER_PASSWORD", "BROKER_ADDRESS"}, role
        # … and what docker-compose.yml fixes for this role is set here too (the outbox
        # only where something writes to it: identity's sign-in codes).
        fixed = _compose_fixed(role) & fields(cls)
        if role != "identity":
            fixed.discard("URNE_OUTBOX_DIR")
        assert fixed <= urne, (role, fixed - urne)
        # The broker user of the role, its password from its service's Secret.
        url = urlparse(env["URNE_AMQP_URL"])
        assert url.username == f"urne-{role}", role
        key = "broker-password" if role == owner else f"broker-password-{role}"
        assert secrets["BROKER_PASSWORD"] == (f"urne-{owner}", key), role
        assert env["URNE_KEYS_DIR"] == "/keys"
        assert env["URNE_METRICS_PORT"] == str(METRICS_PORT)
        assert env["URNE_METRICS_HOST"] == "0.0.0.0"
        if role == "gateway":
            assert not any(k.startswith("URNE_CASSANDRA") for k in urne)
        else:
            assert env["URNE_CASSANDRA_USERNAME"] == f"urne_{owner}", role
            assert secrets["URNE_CASSANDRA_PASSWORD"] == (f"urne-{owner}",
                                                          "cassandra-password"), role
        identity_only = {"URNE_PSEUDONYM_SECRET", "URNE_CODE_SECRET"}
        assert (identity_only <= urne) == (role == "identity"), role
        assert not identity_only & urne or role == "identity", role
        # The settings load, validators and all (production refuses guest and the
        # cassandra superuser), from exactly these variables.
        for name in list(os.environ):
            if name.startswith("URNE_"):
                monkeypatch.delenv(name)
        for name in urne:
            monkeypatch.setenv(name, env[name])
        settings = cls()
        assert settings.environment == ("production" if overlay == "prod" else
                                        "development"), role


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_setup_jobs_settings(overlay: str, rendered: dict[str, str]) -> None:
    docs = objects(rendered[overlay])
    jobs = by_kind(docs, "Job")
    broker, _ = environment(jobs["urne-broker-users"]["spec"]["template"]["spec"]
                            ["containers"][0], docs)
    assert {k for k in broker if k.startswith("URNE_")} == {
        "URNE_BROKER_PASSWORD_" + r.upper().replace("-", "_") for r in ROLES}
    for name in ("urne-store-roles", "urne-migrate"):
        env, secrets = environment(jobs[name]["spec"]["template"]["spec"]["containers"][0],
                                   docs)
        passwords = {f"URNE_CASSANDRA_PASSWORD_{s.upper()}" for s in SERVICES}
        urne = {k for k in env if k.startswith("URNE_")}
        assert urne <= fields(StoreSettings) | passwords, name
        assert secrets["URNE_CASSANDRA_USERNAME"][0] == "urne-cassandra-admin"
        if name == "urne-store-roles":
            assert passwords <= urne


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_only_the_gateway_is_reachable_from_outside(overlay: str, rendered: dict[str, str]
                                                    ) -> None:
    docs = objects(rendered[overlay])
    policies = by_kind(docs, "NetworkPolicy").values()
    # Everything denied unless allowed: ingress and egress, every pod.
    assert any(p["spec"]["podSelector"] == {}
               and set(p["spec"]["policyTypes"]) == {"Ingress", "Egress"}
               and not p["spec"].get("ingress") and not p["spec"].get("egress")
               for p in policies)
    for p in policies:
        if "Ingress" not in p["spec"]["policyTypes"]:
            continue
        selected = p["spec"]["podSelector"].get("matchLabels", {})
        for rule in p["spec"].get("ingress", []):
            peers = rule.get("from") or [{"anywhere": True}]
            inside = all(set(peer) == {"podSelector"} for peer in peers)
            if inside:
                continue
            if selected.get("app.kubernetes.io/component") == "gateway":
                assert [port["port"] for port in rule["ports"]] == [8000]
                continue
            # Else only Prometheus, from the monitoring namespace, on the metrics port.
            assert [port["port"] for port in rule["ports"]] == [METRICS_PORT], p
            for peer in peers:
                assert set(peer) == {"namespaceSelector"}, p
                assert peer["namespaceSelector"] == {
                    "matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}, p


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_scaling_follows_the_shards(overlay: str, rendered: dict[str, str]) -> None:
    docs = objects(rendered[overlay])
    common = by_kind(docs, "ConfigMap")["urne-common"]["data"]
    ballot_shards, counting_shards = (int(common["URNE_BALLOT_SHARDS"]),
                                      int(common["URNE_COUNTING_SHARDS"]))
    deployments = by_kind(docs, "Deployment")
    # Vote workers: KEDA, up to one per ballot shard (one active consumer per shard).
    (scaled,) = by_kind(docs, "ScaledObject").values()
    assert scaled["spec"]["scaleTargetRef"]["name"] == "urne-vote-worker"
    assert scaled["spec"]["maxReplicaCount"] == ballot_shards
    assert 1 <= scaled["spec"]["minReplicaCount"] <= ballot_shards
    assert "replicas" not in deployments["urne-vote-worker"]["spec"]  # KEDA's to set
    (trigger,) = scaled["spec"]["triggers"]
    meta = trigger["metadata"]
    assert (trigger["type"], meta["protocol"], meta["useRegex"], meta["operation"]) == (
        "rabbitmq", "http", "true", "sum")
    pattern = re.compile(meta["queueName"])
    assert all(pattern.fullmatch(shard_queue(s)) for s in range(ballot_shards))
    assert not pattern.fullmatch(stream_name(0))
    assert not pattern.fullmatch("urne.ballots")
    # Tally workers: one per counting shard (more would own none and idle).
    assert deployments["urne-tally-worker"]["spec"]["replicas"] == counting_shards
    # The gateway: its HPA, not the Deployment, sets the replicas.
    assert "replicas" not in deployments["urne-gateway"]["spec"]
    (hpa,) = by_kind(docs, "HorizontalPodAutoscaler").values()
    assert hpa["spec"]["scaleTargetRef"]["name"] == "urne-gateway"
    # A disruption budget for every Deployment.
    budgets = [b["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"]
               for b in by_kind(docs, "PodDisruptionBudget").values()]
    assert sorted(budgets) == sorted(role_of(d) for d in deployments.values())


def test_prod_is_production(rendered: dict[str, str]) -> None:
    docs = objects(rendered["prod"])
    assert by_kind(docs, "ConfigMap")["urne-common"]["data"]["URNE_ENVIRONMENT"] == \
        "production"
    (namespace,) = by_kind(docs, "Namespace").values()
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == \
        "restricted"
