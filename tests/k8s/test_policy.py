"""Policy suite on the rendered Kubernetes manifests, and no drift between their settings and the services' code."""

from __future__ import annotations

import importlib
import os
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
