"""Policy suite on the rendered Kubernetes manifests, and no drift between their settings and the services' code."""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import tomllib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import yaml

from alice.runtime.config import ConfigError, Env

ROOT = Path(__file__).resolve().parents[2]
VARIANTS = ("dev", "prod", "all-components")
SERVICES = ("router", "nlu", "cache", "llm")
HEADLESS = {"nlu": 50052, "cache": 50053, "llm": 50054}
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]

Obj = dict[str, Any]


@dataclass(frozen=True)
class Checked:
    """The output of scripts/check_k8s.sh and the objects of every variant it rendered."""

    returncode: int
    output: str
    objects: dict[str, list[Obj]]


@pytest.fixture(scope="module")
def checked(tmp_path_factory: pytest.TempPathFactory) -> Checked:
    out = tmp_path_factory.mktemp("k8s")
    result = subprocess.run(
        [str(ROOT / "scripts" / "check_k8s.sh")], cwd=ROOT, env={**os.environ, "OUT": str(out)},
        capture_output=True, text=True, timeout=600, check=False,
    )
    objects: dict[str, list[Obj]] = {}
    for variant in VARIANTS:
        rendered = out / f"{variant}.yaml"
        if rendered.is_file():
            objects[variant] = [o for o in yaml.safe_load_all(rendered.read_text(encoding="utf-8")) if o]
    return Checked(result.returncode, result.stdout + result.stderr, objects)


@pytest.fixture(params=VARIANTS)
def objects(request: pytest.FixtureRequest, checked: Checked) -> list[Obj]:
    variant: str = request.param
    if variant not in checked.objects:
        pytest.fail(f"{variant} was not rendered:\n{checked.output}")
    return checked.objects[variant]


def test_render_validate_and_checkov_pass(checked: Checked) -> None:
    """kubectl kustomize + kubernetes-validate --strict + checkov (skip list in .checkov.yaml), via the script."""
    assert checked.returncode == 0, checked.output


# --- helpers -------------------------------------------------------------------------------------------------


def of_kind(objects: list[Obj], kind: str) -> list[Obj]:
    return [o for o in objects if o["kind"] == kind]


def named(objects: list[Obj], kind: str, name: str) -> Obj:
    found = [o for o in of_kind(objects, kind) if o["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def workloads(objects: list[Obj]) -> list[Obj]:
    return [o for o in objects if o["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job")]


def containers(objects: list[Obj]) -> Iterator[tuple[Obj, Obj]]:
    for workload in workloads(objects):
        pod = workload["spec"]["template"]["spec"]
        for container in [*pod.get("initContainers", []), *pod["containers"]]:
            yield workload, container


def ident(workload: Obj, container: Obj | None = None) -> str:
    name = f"{workload['kind']}/{workload['metadata']['name']}"
    return f"{name}[{container['name']}]" if container else name


def selects(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """Kubernetes label-selector semantics (matchLabels and matchExpressions); {} selects everything."""
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator, values = expression["key"], expression["operator"], expression.get("values", [])
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def container_env(objects: list[Obj], workload: Obj, container: Obj, sandbox: Path) -> dict[str, str]:
    """The environment a container gets from its manifest: envFrom ConfigMaps, then env (later entries win).

    A setting that names a file inside a volume the pod mounts (a Secret with API keys, say) points at a stand-in
    file under `sandbox` instead, so that a config which checks that the file exists can load here too.
    """
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            config_map = named(objects, "ConfigMap", source["configMapRef"]["name"])
            env.update({source.get("prefix", "") + k: str(v) for k, v in config_map.get("data", {}).items()})
        else:
            pytest.fail(f"{container['name']}: envFrom {source} cannot be checked against the code; use env entries")
    for entry in container.get("env", []):
        # A value from a Secret is unknown here; a well-formed stand-in lets the config validate the rest.
        env[entry["name"]] = str(entry["value"]) if "value" in entry else "redis://secret.example:6379/0"
    mounts = [m["mountPath"].rstrip("/") + "/" for m in container.get("volumeMounts", [])]
    for key, value in env.items():
        if any(value.startswith(mount) for mount in mounts):
            stand_in = sandbox / workload["metadata"]["name"] / value.lstrip("/")
            stand_in.parent.mkdir(parents=True, exist_ok=True)
            stand_in.touch()
            env[key] = str(stand_in)
    return env


class _RecordingDict(dict[str, str]):
    """The mapping inside Env, recording every key the config asks for."""

    def __init__(self, data: Mapping[str, str], reads: set[str]) -> None:
        super().__init__(data)
        self.reads = reads

    def get(self, key: str, default: Any = None) -> Any:
        self.reads.add(key)
        return super().get(key, default)

    def __getitem__(self, key: str) -> str:
        self.reads.add(key)
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str):
            self.reads.add(key)
        return super().__contains__(key)


@contextmanager
def recording_reads() -> Iterator[set[str]]:
    """Every setting a `Config.from_env` call reads while inside, whatever the config code looks like today."""
    reads: set[str] = set()
    original = Env.__init__

    def init(self: Env, env: Mapping[str, str] | None = None) -> None:
        original(self, env)
        assert isinstance(getattr(self, "_env", None), dict), "Env no longer keeps its mapping in _env: update me"
        self._env = _RecordingDict(self._env, reads)

    with mock.patch.object(Env, "__init__", init):
        yield reads


def load_config(service: str, env: Mapping[str, str]) -> tuple[Any, set[str]]:
    """`<service>_svc.config.Config.from_env(env)` and the settings it read."""
    config_class = importlib.import_module(f"{service}_svc.config").Config
    with recording_reads() as reads:
        config = config_class.from_env(dict(env))
    assert reads, f"{service}: recorded no reads; the recording no longer sees the config's Env"
    return config, reads


def manifest_config(service: str, env: Mapping[str, str]) -> tuple[Any, set[str]]:
    """Like `load_config`, for the environment a manifest gives: a refusal to start is a policy failure."""
    try:
        return load_config(service, env)
    except ConfigError as error:
        pytest.fail(f"{service} would not start with its manifest's settings: {error}")


def required_settings(service: str, env: Mapping[str, str]) -> set[str]:
    """Settings whose absence makes the service refuse to start (ConfigError), given the rest of `env`."""
    _, reads = load_config(service, env)
    required = set()
    for key in reads:
        rest = {k: v for k, v in env.items() if k != key}
        try:
            load_config(service, rest)
        except ConfigError:
            required.add(key)
    return required


def service_containers(objects: list[Obj]) -> Iterator[tuple[str, Obj, Obj]]:
    for workload, container in containers(objects):
        name = workload["metadata"]["name"]
        if name in SERVICES and container["name"] == name:
            yield name, workload, container


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mounted-files")


# --- containers ----------------------------------------------------------------------------------------------


def test_every_container_has_probes_requests_and_limits(objects: list[Obj]) -> None:
    problems = []
    for workload, container in containers(objects):
        where = ident(workload, container)
        for probe in ("readinessProbe", "livenessProbe"):
            if probe not in container:
                problems.append(f"{where}: no {probe}")
        resources = container.get("resources", {})
        for kind in ("requests", "limits"):
            for resource in ("cpu", "memory"):
                if resource not in resources.get(kind, {}):
                    problems.append(f"{where}: no {kind}.{resource}")
    assert not problems, "\n".join(problems)


def test_alice_services_use_native_grpc_probes_with_room_to_start(objects: list[Obj], sandbox: Path) -> None:
    """On the service port, or on the plaintext health port when the service has one (its gRPC port speaks TLS)."""
    for name, workload, container in service_containers(objects):
        config, _ = manifest_config(name, container_env(objects, workload, container, sandbox))
        port = config.server.health_port or next(p["containerPort"] for p in container["ports"] if p["name"] == "grpc")
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert container[probe].get("grpc", {}).get("port") == port, f"{name}: {probe} is not a grpc probe"
        startup = container["startupProbe"]
        room_s = startup.get("periodSeconds", 10) * startup.get("failureThreshold", 3)
        assert room_s >= 60, f"{name}: startupProbe allows only {room_s} s for loading"


def test_images_are_pinned_and_ours_carry_the_project_version(objects: list[Obj]) -> None:
    for workload, container in containers(objects):
        image: str = container["image"]
        reference = image.rsplit("/", 1)[-1]
        assert "@sha256:" in image or ":" in reference, f"{ident(workload, container)}: {image} has no tag"
        assert not reference.endswith(":latest"), f"{ident(workload, container)}: {image} uses latest"
        if reference.startswith("alice-"):
            assert reference.endswith(f":{VERSION}"), f"{image}: expected tag {VERSION} (pyproject.toml)"


def test_pods_run_non_root_read_only_without_capabilities_or_token(objects: list[Obj]) -> None:
    problems = []
    for workload in workloads(objects):
        pod = workload["spec"]["template"]["spec"]
        pod_security = pod.get("securityContext", {})
        if pod.get("automountServiceAccountToken") is not False:
            problems.append(f"{ident(workload)}: automountServiceAccountToken is not false")
        if pod_security.get("seccompProfile", {}).get("type") != "RuntimeDefault":
            problems.append(f"{ident(workload)}: seccomp is not RuntimeDefault")
        for container in pod["containers"]:
            security = {**pod_security, **container.get("securityContext", {})}
            where = ident(workload, container)
            if security.get("runAsNonRoot") is not True or security.get("runAsUser", 1) == 0:
                problems.append(f"{where}: may run as root")
            if security.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{where}: root filesystem is writable")
            if security.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{where}: privilege escalation allowed")
            if security.get("capabilities", {}).get("drop") != ["ALL"]:
                problems.append(f"{where}: capabilities not all dropped")
    assert not problems, "\n".join(problems)


def test_termination_grace_covers_prestop_drain_and_grace(objects: list[Obj], sandbox: Path) -> None:
    for name, workload, container in service_containers(objects):
        config, _ = manifest_config(name, container_env(objects, workload, container, sandbox))
        pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
        needed = pre_stop + config.server.drain_delay_s + config.server.grace_s
        grace = workload["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        assert grace > needed, f"{name}: terminationGracePeriodSeconds {grace} <= {needed} s of preStop+drain+grace"


# --- services and network ------------------------------------------------------------------------------------


def test_every_service_port_is_named_and_ours_speak_grpc(objects: list[Obj]) -> None:
    for service in of_kind(objects, "Service"):
        for port in service["spec"]["ports"]:
            assert port.get("name"), f"Service/{service['metadata']['name']}: port {port['port']} has no name"
    for name in SERVICES:
        ports = named(objects, "Service", name)["spec"]["ports"]
        assert [(p["name"], p.get("appProtocol")) for p in ports] == [("grpc", "grpc")], name


def test_downstreams_are_dialled_through_headless_services(objects: list[Obj], sandbox: Path) -> None:
    """nlu, cache and llm get headless Services; the router resolves every pod and round-robins per call."""
    _, workload, router = next(found for found in service_containers(objects) if found[0] == "router")
    config, _ = manifest_config("router", container_env(objects, workload, router, sandbox))
    for name, port in HEADLESS.items():
        headless = named(objects, "Service", f"{name}-headless")
        assert headless["spec"]["clusterIP"] == "None"
        assert [p["port"] for p in headless["spec"]["ports"]] == [port]
        assert getattr(config, f"{name}_addr") == f"dns:///{name}-headless:{port}"


def test_every_pod_is_selected_by_an_allow_policy_under_default_deny(objects: list[Obj]) -> None:
    policies = of_kind(objects, "NetworkPolicy")
    default_deny = [p for p in policies if p["spec"]["podSelector"] == {}
                    and set(p["spec"]["policyTypes"]) == {"Ingress", "Egress"}
                    and not p["spec"].get("ingress") and not p["spec"].get("egress")]
    assert default_deny, "no default-deny NetworkPolicy"
    for workload in workloads(objects):
        labels = workload["spec"]["template"]["metadata"]["labels"]
        own = [p["metadata"]["name"] for p in policies
               if p["spec"]["podSelector"] and selects(p["spec"]["podSelector"], labels)]
        assert own, f"{ident(workload)}: no NetworkPolicy selects its pods (only the default deny)"


def test_only_the_router_accepts_traffic_from_other_namespaces(objects: list[Obj]) -> None:
    for policy in of_kind(objects, "NetworkPolicy"):
        for rule in policy["spec"].get("ingress", []):
            open_to_all = "from" not in rule
            from_namespaces = any("namespaceSelector" in peer or "ipBlock" in peer for peer in rule.get("from", []))
            if open_to_all or from_namespaces:
                assert policy["spec"]["podSelector"] == {"matchLabels": {"app.kubernetes.io/name": "router"}}, (
                    f"NetworkPolicy/{policy['metadata']['name']} opens a pod other than the router")


# --- settings: manifests vs code -----------------------------------------------------------------------------


def test_every_setting_a_manifest_sets_is_read_and_every_required_one_is_set(
    objects: list[Obj], sandbox: Path
) -> None:
    seen = set()
    for name, workload, container in service_containers(objects):
        seen.add(name)
        env = container_env(objects, workload, container, sandbox)
        _, reads = manifest_config(name, env)
        unread = sorted(set(env) - reads)
        assert not unread, f"{name}: the manifest sets {unread}, which {name}_svc/config.py never reads"
        missing = sorted(required_settings(name, env) - set(env))
        assert not missing, f"{name}: required settings {missing} are not set by the manifest"
    assert seen == set(SERVICES)


def test_config_maps_hold_only_settings_their_service_reads(objects: list[Obj], sandbox: Path) -> None:
    """Also for a key a Deployment overrides with an env entry: a stale key in the ConfigMap is drift too."""
    for name, workload, container in service_containers(objects):
        data = named(objects, "ConfigMap", f"{name}-config").get("data", {})
        _, reads = manifest_config(name, container_env(objects, workload, container, sandbox))
        assert set(data) <= reads, f"{name}-config: {sorted(set(data) - reads)} are not read by {name}_svc"


@pytest.mark.parametrize("service", SERVICES)
def test_drift_check_sees_an_unknown_key_and_a_missing_required_one(
    service: str, checked: Checked, sandbox: Path
) -> None:
    """The checks above cannot pass vacuously: an invented key is not among the reads, and a setting that becomes
    required (a TLS key once its certificate is set) is found by the absence probe."""
    objects = checked.objects["dev"]
    _, workload, container = next(found for found in service_containers(objects) if found[0] == service)
    env = container_env(objects, workload, container, sandbox)
    _, reads = manifest_config(service, {**env, "ALICE_NO_SUCH_SETTING": "1"})
    assert "ALICE_NO_SUCH_SETTING" not in reads
    assert {"GRPC_PORT", "GRACE_PERIOD_S", "DRAIN_DELAY_S"} <= reads
    with_tls = {**env, "TLS_CERT_FILE": "/c", "TLS_KEY_FILE": "/k"}
    assert required_settings(service, with_tls) >= {"TLS_CERT_FILE", "TLS_KEY_FILE"}


# --- production overlay --------------------------------------------------------------------------------------


def test_prod_autoscales_router_and_nlu_and_budgets_disruptions(checked: Checked) -> None:
    objects = checked.objects["prod"]
    targets = {h["spec"]["scaleTargetRef"]["name"] for h in of_kind(objects, "HorizontalPodAutoscaler")}
    assert targets == {"router", "nlu"}
    budgets = of_kind(objects, "PodDisruptionBudget")
    for name in SERVICES:
        deployment = named(objects, "Deployment", name)
        assert deployment["spec"]["replicas"] >= 2, name
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert any(selects(b["spec"]["selector"], labels) for b in budgets), f"{name}: no PodDisruptionBudget"
        spread = deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]
        assert {c["topologyKey"] for c in spread} == {"kubernetes.io/hostname", "topology.kubernetes.io/zone"}


# --- TLS (k8s/components/tls) --------------------------------------------------------------------------------

TLS_VARIANTS = {"dev": False, "prod": True, "all-components": True}
"""Which variants encrypt: prod and the all-components check use the tls component; dev stays plaintext."""
TLS_SECRETS = {"router": {"router-tls", "router-client-tls", "alice-ca"}, "nlu": {"nlu-tls", "alice-client-ca"},
               "cache": {"cache-tls", "alice-client-ca"}, "llm": {"llm-tls", "alice-client-ca"}}


def mounted_secret_file(workload: Obj, container: Obj, path: Path) -> tuple[str, str]:
    """(Secret name, key) that the file at `path` comes from, through a volumeMount of a secret/projected volume."""
    volumes = {v["name"]: v for v in workload["spec"]["template"]["spec"].get("volumes", [])}
    for mount in container.get("volumeMounts", []):
        folder = Path(mount["mountPath"])
        if folder not in path.parents or "subPath" in mount:  # subPath mounts never see Secret updates
            continue
        assert mount.get("readOnly") is True, f"{mount['mountPath']} is writable"
        volume = volumes[mount["name"]]
        relative = str(path.relative_to(folder))
        if "secret" in volume:
            sources = [{"secret": {"name": volume["secret"]["secretName"], "items": volume["secret"].get("items")}}]
        else:
            sources = volume.get("projected", {}).get("sources", [])
        for source in sources:
            secret = source.get("secret")
            if secret is None:
                continue
            for item in secret.get("items") or []:
                if item["path"] == relative:
                    return str(secret["name"]), str(item["key"])
    pytest.fail(f"{ident(workload, container)}: {path} is not a file from a mounted Secret")


@pytest.mark.parametrize("variant", TLS_VARIANTS)
def test_tls_component_serves_tls_from_secrets_and_probes_the_health_port(
        variant: str, checked: Checked, sandbox: Path) -> None:
    objects = checked.objects[variant]
    for name, workload, container in service_containers(objects):
        config, _ = manifest_config(name, container_env(objects, workload, container, sandbox))
        tls, health_port = config.server.tls, config.server.health_port
        if not TLS_VARIANTS[variant]:
            assert tls is None and health_port is None, f"{variant}/{name}: expected plaintext without a health port"
            continue
        assert tls is not None, f"{variant}/{name}: no TLS"
        grpc_port = next(p["containerPort"] for p in container["ports"] if p["name"] == "grpc")
        assert health_port is not None and health_port != grpc_port
        assert {"name": "health", "containerPort": health_port, "protocol": "TCP"} in container["ports"]
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert container[probe]["grpc"]["port"] == health_port, f"{variant}/{name}: {probe}"
        # Every certificate, key and CA file comes from a Secret, and the files pair up as the runtime expects.
        env = container_env(objects, workload, container, sandbox)
        data = named(objects, "ConfigMap", f"{name}-config")["data"]
        assert "ALLOW_PLAINTEXT" not in data and "ALLOW_PLAINTEXT" not in env, f"{name}: plaintext still allowed"
        files = {key: Path(data[key]) for key in data if key.startswith("TLS_")}
        sources = {key: mounted_secret_file(workload, container, path) for key, path in files.items()}
        server_secret = f"{name}-tls"
        expected = {"TLS_CERT_FILE": (server_secret, "tls.crt"), "TLS_KEY_FILE": (server_secret, "tls.key")}
        if name == "router":
            expected |= {"TLS_CA_FILE": ("alice-ca", "ca.crt"),
                         "TLS_CLIENT_CERT_FILE": ("router-client-tls", "tls.crt"),
                         "TLS_CLIENT_KEY_FILE": ("router-client-tls", "tls.key")}
            assert config.client.tls_ca_file is not None and tls.client_ca_file is None  # callers: tokens, not certs
        else:
            expected |= {"TLS_CLIENT_CA_FILE": ("alice-client-ca", "ca.crt")}
            assert tls.client_ca_file is not None, f"{name}: mutual TLS is off"
        assert sources == expected, name
        assert {secret for secret, _ in sources.values()} == TLS_SECRETS[name]


def test_health_port_is_for_the_kubelet_only(checked: Checked, sandbox: Path) -> None:
    """No Service and no NetworkPolicy exposes it: kubelet probes come from the node, which NetworkPolicies
    always allow (https://kubernetes.io/docs/concepts/services-networking/network-policies/)."""
    objects = checked.objects["all-components"]
    health_ports = set()
    for name, workload, container in service_containers(objects):
        config, _ = manifest_config(name, container_env(objects, workload, container, sandbox))
        health_ports.add(config.server.health_port)
    assert health_ports == {50060}
    for service in of_kind(objects, "Service"):
        for port in service["spec"]["ports"]:
            assert port.get("targetPort") != "health" and port["port"] not in health_ports, service["metadata"]
    for policy in of_kind(objects, "NetworkPolicy"):
        for rule in policy["spec"].get("ingress", []):
            assert not {p.get("port") for p in rule.get("ports", [])} & (health_ports | {"health"}), (
                f"NetworkPolicy/{policy['metadata']['name']} opens the plaintext health port")


# --- metrics (METRICS_PORT; k8s/components/prometheus, otel-jaeger, network-policies) --------------------------

PROMETHEUS_VARIANTS = ("prod", "all-components")
"""The variants with k8s/components/prometheus; dev sends traces and metrics to the collector only."""
PROMETHEUS_PEER = {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}}}


def service_deployment(objects: list[Obj], name: str) -> tuple[Obj, Obj]:
    _, workload, container = next(found for found in service_containers(objects) if found[0] == name)
    return workload, container


def pod_labels(workload: Obj) -> dict[str, str]:
    return dict(workload["spec"]["template"]["metadata"]["labels"])


def prometheus_config(objects: list[Obj]) -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load(named(objects, "ConfigMap", "prometheus-config")["data"]["prometheus.yml"])
    return config


def srv_targets(objects: list[Obj], record: str) -> set[tuple[str, int]]:
    """(workload, port) pairs the cluster DNS answers for the SRV name `_<port>._<proto>.<service>[.<ns>…]`.

    A headless Service has one SRV record per endpoint, with the endpoint's port: the Service's targetPort as
    resolved in each selected pod (kubernetes/dns docs/specification.md, headless Services)."""
    labels = record.split(".")
    assert len(labels) >= 3 and labels[0].startswith("_") and labels[1].startswith("_"), f"{record}: not an SRV name"
    port_name, protocol, service_name = labels[0][1:], labels[1][1:].upper(), labels[2]
    service = named(objects, "Service", service_name)
    assert labels[3:4] in ([], [service["metadata"]["namespace"]]), f"{record}: another namespace"
    assert service["spec"].get("clusterIP") == "None", f"{record}: {service_name} is not headless, one record only"
    [port] = [p for p in service["spec"]["ports"]
              if p.get("name") == port_name and p.get("protocol", "TCP") == protocol]
    targets = set()
    for workload in workloads(objects):
        if not selects({"matchLabels": service["spec"]["selector"]}, pod_labels(workload)):
            continue
        target = port.get("targetPort", port["port"])
        if isinstance(target, str):
            [target] = [p["containerPort"] for c in workload["spec"]["template"]["spec"]["containers"]
                        for p in c.get("ports", []) if p["name"] == target]
        targets.add((workload["metadata"]["name"], int(target)))
    return targets


def ingress_peers(objects: list[Obj], labels: Mapping[str, str], port: int) -> list[Obj | None]:
    """Every peer that some NetworkPolicy lets reach `port` on a pod with `labels`; None: any peer at all."""
    peers: list[Obj | None] = []
    for policy in of_kind(objects, "NetworkPolicy"):
        if "Ingress" not in policy["spec"]["policyTypes"] or not selects(policy["spec"]["podSelector"], labels):
            continue
        for rule in policy["spec"].get("ingress", []):
            if rule.get("ports") and not any(p.get("port") == port for p in rule["ports"]):
                continue
            peers.extend(rule.get("from") or [None])
    return peers


def egress_allowed(objects: list[Obj], labels: Mapping[str, str], port: int, protocol: str,
                   to: Mapping[str, str] | None = None) -> bool:
    """Whether a pod with `labels` may open `port` on a pod of this namespace with labels `to` (None: any host)."""
    for policy in of_kind(objects, "NetworkPolicy"):
        if "Egress" not in policy["spec"]["policyTypes"] or not selects(policy["spec"]["podSelector"], labels):
            continue
        for rule in policy["spec"].get("egress", []):
            if rule.get("ports") and not any(p.get("port") == port and p.get("protocol", "TCP") == protocol
                                             for p in rule["ports"]):
                continue
            peers = rule.get("to")
            if not peers or to is None:
                return True
            if any(set(peer) == {"podSelector"} and selects(peer["podSelector"], to) for peer in peers):
                return True
    return False


def test_every_service_exposes_its_metrics_port(objects: list[Obj], sandbox: Path) -> None:
    """METRICS_PORT, as the service reads it from its manifest, is the container port `metrics`, on every interface,
    apart from the gRPC and health ports, and the pod's prometheus.io annotations name it."""
    for name, workload, container in service_containers(objects):
        config, _ = manifest_config(name, container_env(objects, workload, container, sandbox))
        telemetry = config.telemetry
        assert telemetry.metrics_enabled and not telemetry.disabled, f"{name}: metrics are off"
        assert telemetry.metrics_port, f"{name}: no METRICS_PORT, nothing to scrape"
        assert telemetry.metrics_host == "0.0.0.0", f"{name}: METRICS_HOST {telemetry.metrics_host} is not reachable"
        metrics_ports = [p for p in container["ports"] if p["name"] == "metrics"]
        assert metrics_ports == [{"name": "metrics", "containerPort": telemetry.metrics_port, "protocol": "TCP"}], name
        others = {p["containerPort"] for p in container["ports"] if p["name"] != "metrics"}
        assert telemetry.metrics_port not in others | {config.server.port, config.server.health_port}, name
        annotations = workload["spec"]["template"]["metadata"].get("annotations", {})
        assert annotations.get("prometheus.io/scrape") == "true", name
        assert annotations.get("prometheus.io/port") == str(telemetry.metrics_port), name
        assert annotations.get("prometheus.io/path") == "/metrics", name


@pytest.mark.parametrize("variant", PROMETHEUS_VARIANTS)
def test_prometheus_scrapes_every_service_pod_on_its_metrics_port(variant: str, checked: Checked) -> None:
    """One job per service whose DNS discovery yields that service's pods at their `metrics` port and nothing else,
    over plain HTTP (TLS covers gRPC only); the static targets are Services of the variant."""
    objects = checked.objects[variant]
    jobs = prometheus_config(objects)["scrape_configs"]
    discovered: dict[str, set[tuple[str, int]]] = {}
    for job in jobs:
        assert "relabel_configs" not in job, f"{job['job_name']}: relabelling is not simulated here; extend the test"
        assert job.get("scheme", "http") == "http" and job.get("metrics_path", "/metrics") == "/metrics"
        targets = discovered.setdefault(job["job_name"], set())
        for sd in job.get("dns_sd_configs", []):
            assert sd.get("type") == "SRV", f"{job['job_name']}: only SRV records carry the port"
            for record in sd["names"]:
                targets |= srv_targets(objects, record)
        for static in job.get("static_configs", []):
            for target in static["targets"]:
                host, port = target.rsplit(":", 1)
                assert int(port) in {p["port"] for p in named(objects, "Service", host)["spec"]["ports"]}, target
    for name in SERVICES:
        _, container = service_deployment(objects, name)
        [metrics_port] = [p["containerPort"] for p in container["ports"] if p["name"] == "metrics"]
        scraping = {job: targets for job, targets in discovered.items() if any(w == name for w, _ in targets)}
        assert scraping == {f"alice-{name}": {(name, metrics_port)}}, f"{variant}/{name}: {scraping}"
        service = next(s for s in of_kind(objects, "Service") if s["metadata"]["name"] == f"{name}-metrics")
        assert service["spec"].get("publishNotReadyAddresses") is True, f"{name}: a loading pod would not be scraped"


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian's prometheus package) is not installed")
def test_prometheus_config_passes_promtool(checked: Checked, tmp_path: Path) -> None:
    """Debian's promtool (2.x) against the configuration the prometheus:v3 image runs; the keys used are in both."""
    config = tmp_path / "prometheus.yml"
    config.write_text(named(checked.objects["all-components"], "ConfigMap", "prometheus-config")["data"]
                      ["prometheus.yml"], encoding="utf-8")
    result = subprocess.run(["promtool", "check", "config", str(config)], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_metrics_port_is_open_to_prometheus_only(objects: list[Obj]) -> None:
    """Under the default deny, the metrics port opens to the Prometheus pod and nothing else; Prometheus may reach
    it and the cluster DNS it discovers the pods with."""
    prometheus = [w for w in workloads(objects) if w["metadata"]["name"] == "prometheus"]
    for name in SERVICES:
        workload, container = service_deployment(objects, name)
        [port] = [p["containerPort"] for p in container["ports"] if p["name"] == "metrics"]
        peers = ingress_peers(objects, pod_labels(workload), port)
        assert peers == [PROMETHEUS_PEER], f"{name}: metrics port {port} is open to {peers}"
        for server in prometheus:
            assert selects(PROMETHEUS_PEER["podSelector"], pod_labels(server))
            assert egress_allowed(objects, pod_labels(server), port, "TCP", to=pod_labels(workload)), name
    for server in prometheus:
        assert egress_allowed(objects, pod_labels(server), 53, "UDP"), "Prometheus cannot resolve its targets"


@pytest.mark.parametrize("variant", VARIANTS)
def test_collector_takes_otlp_metrics_without_a_second_copy_for_prometheus(variant: str, checked: Checked) -> None:
    """The services push their metrics over OTLP wherever the collector is: a metrics pipeline must receive them
    (else the collector refuses them), and it must not re-export them on a port Prometheus scrapes, where every
    series would arrive a second time next to the pods' own scrape."""
    objects = checked.objects[variant]
    config = yaml.safe_load(named(objects, "ConfigMap", "otel-collector-config")["data"]["config.yaml"])
    connectors = config.get("connectors", {})
    for pipeline_id, pipeline in config["service"]["pipelines"].items():
        for receiver in pipeline["receivers"]:
            assert receiver in config["receivers"] or receiver in connectors, f"{pipeline_id}: {receiver}"
        for processor in pipeline.get("processors", []):
            assert processor in config["processors"], f"{pipeline_id}: {processor}"
        for exporter in pipeline["exporters"]:
            assert exporter in config["exporters"] or exporter in connectors, f"{pipeline_id}: {exporter}"
    metrics = {pid: p for pid, p in config["service"]["pipelines"].items() if pid.split("/")[0] == "metrics"}
    from_services = [p for p in metrics.values() if "otlp" in p["receivers"]]
    assert from_services, f"{variant}: no metrics pipeline receives OTLP; the services' metric exports are refused"
    # Scraped: what the Prometheus component scrapes on the collector, and what its annotations offer to others.
    annotations = named(objects, "Deployment", "otel-collector")["spec"]["template"]["metadata"].get("annotations", {})
    scraped = {int(annotations["prometheus.io/port"])} if annotations.get("prometheus.io/scrape") == "true" else set()
    if variant in PROMETHEUS_VARIANTS:
        scraped |= {int(target.rsplit(":", 1)[1]) for job in prometheus_config(objects)["scrape_configs"]
                    for static in job.get("static_configs", []) for target in static["targets"]
                    if target.startswith("otel-collector:")}
    assert scraped, "nothing scrapes the collector's spanmetrics"
    for pipeline in from_services:
        for exporter in pipeline["exporters"]:
            endpoint = str((config["exporters"].get(exporter) or {}).get("endpoint", ""))
            port = endpoint.rsplit(":", 1)[-1]
            assert not (port.isdigit() and int(port) in scraped), (
                f"{variant}: OTLP metrics go to {exporter} ({endpoint}), which Prometheus scrapes as well")
