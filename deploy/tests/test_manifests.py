"""Static checks of everything under deploy/ and of the Dockerfile.

No cluster, engine or compose tool runs here, so the files are parsed and
checked against each other: probes are native gRPC on the gRPC port, the
Service and PDB select the pods, ports agree across Dockerfile, config,
workload, Service and compose, and the configuration shipped in the
ConfigMap is accepted by the real daemon (DOGPILED_BIN).
"""
import os
import pathlib
import re
import signal
import subprocess
import time
import tomllib

import pytest
import yaml

DEPLOY = pathlib.Path(__file__).resolve().parents[1]
ROOT = DEPLOY.parent
K8S = DEPLOY / "kubernetes"
GRPC_PORT, METRICS_PORT = 7420, 9420


def load_all(path):
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def k8s_objects():
    objects = {}
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in load_all(path):
            assert {"apiVersion", "kind", "metadata"} <= set(doc), path
            objects.setdefault(doc["kind"], []).append(doc)
    return objects


def one(objects, *kinds):
    found = [o for k in kinds for o in objects.get(k, [])]
    assert len(found) == 1, f"want exactly one of {kinds}, found {len(found)}"
    return found[0]


def selects(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


@pytest.fixture(scope="module")
def objects():
    return k8s_objects()


@pytest.fixture(scope="module")
def workload(objects):
    return one(objects, "StatefulSet", "Deployment")


@pytest.fixture(scope="module")
def container(workload):
    containers = workload["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


@pytest.fixture(scope="module")
def config_toml(objects):
    return one(objects, "ConfigMap")["data"]["dogpiled.toml"]


def container_ports(container):
    return {p["name"]: p["containerPort"] for p in container["ports"]}


def dockerfile():
    return (ROOT / "Dockerfile").read_text()


def test_every_yaml_file_parses():
    files = sorted(DEPLOY.rglob("*.yaml")) + sorted(DEPLOY.rglob("*.yml"))
    assert len(files) >= 6
    for path in files:
        assert load_all(path), f"{path} is empty"


def test_kustomization_lists_every_manifest():
    listed = set(yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"])
    present = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == present


def test_workload_is_one_replica_with_matching_selector(workload):
    spec = workload["spec"]
    assert spec["replicas"] == 1  # one coordinator; two would be two lock spaces
    assert selects(spec["selector"]["matchLabels"], spec["template"]["metadata"]["labels"])


def test_probes_are_native_grpc_on_the_grpc_port(container):
    assert container_ports(container) == {"grpc": GRPC_PORT, "metrics": METRICS_PORT}
    for probe in ("livenessProbe", "readinessProbe"):
        assert probe in container, probe
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        if probe in container:
            handler = {"grpc", "httpGet", "tcpSocket", "exec"} & set(container[probe])
            assert handler == {"grpc"}, probe
            assert container[probe]["grpc"]["port"] == GRPC_PORT, probe


def test_resources_have_requests_and_limits(container, config_toml):
    res = container["resources"]
    for part in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(res[part]), part
    limit = res["limits"]["memory"]
    assert limit.endswith("Mi")
    budget = tomllib.loads(config_toml)["memory-budget-bytes"]
    assert budget < int(limit[:-2]) * 2**20 * 0.75, "leave room above the value budget"


def test_security_context_non_root_read_only(workload, container):
    pod = workload["spec"]["template"]["spec"]["securityContext"]
    assert pod["runAsNonRoot"] is True
    assert pod["runAsUser"] != 0
    image_user = re.search(r"^USER (\d+)", dockerfile(), re.MULTILINE).group(1)
    assert pod["runAsUser"] == int(image_user)
    sc = container["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]


def test_mounts_resolve_and_match_the_config(objects, workload, container, config_toml):
    spec = workload["spec"]
    volumes = {v["name"]: v for v in spec["template"]["spec"].get("volumes", [])}
    claims = {c["metadata"]["name"] for c in spec.get("volumeClaimTemplates", [])}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    for name in mounts.values():
        assert name in volumes or name in claims, name
    config = tomllib.loads(config_toml)
    # State on the persistent volume; config where the image looks for it.
    assert mounts[config["state-dir"]] in claims
    config_dir = mounts["/etc/dogpiled"]
    assert volumes[config_dir]["configMap"]["name"] == one(objects, "ConfigMap")["metadata"]["name"]
    assert "DOGPILED_CONFIG=/etc/dogpiled/dogpiled.toml" in dockerfile()
    # The read-only root needs a writable place for the port file.
    port_file = re.search(r"DOGPILED_PORT_FILE=(\S+)", dockerfile()).group(1)
    assert str(pathlib.PurePath(port_file).parent) in mounts
    assert config["listen"].endswith(f":{GRPC_PORT}")
    assert config["metrics-listen"].endswith(f":{METRICS_PORT}")
    assert config["listen"].startswith("0.0.0.0:")  # reachable by probes and the Service


def test_service_selects_the_pods_and_targets_their_ports(objects, workload, container):
    service = one(objects, "Service")
    labels = workload["spec"]["template"]["metadata"]["labels"]
    assert selects(service["spec"]["selector"], labels)
    ports = container_ports(container)
    seen = set()
    for port in service["spec"]["ports"]:
        target = port.get("targetPort", port["port"])
        number = ports[target] if isinstance(target, str) else target
        assert number in ports.values(), port
        assert port["port"] == number, port
        seen.add(number)
    assert seen == {GRPC_PORT, METRICS_PORT}
    assert workload["spec"].get("serviceName", service["metadata"]["name"]) == \
        service["metadata"]["name"]


def test_pdb_selects_the_pods(objects, workload):
    pdb = one(objects, "PodDisruptionBudget")
    assert pdb["apiVersion"] == "policy/v1"
    assert selects(pdb["spec"]["selector"]["matchLabels"],
                   workload["spec"]["template"]["metadata"]["labels"])
    assert {"minAvailable", "maxUnavailable"} & set(pdb["spec"])


def test_compose_has_the_daemon_and_an_example_client():
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    daemon = services["dogpiled"]
    assert (DEPLOY / daemon["build"]["context"] / daemon["build"]["dockerfile"]).is_file()
    published = {int(p.split(":")[-1]) for p in daemon["ports"]}
    assert published == {GRPC_PORT, METRICS_PORT}
    volumes = dict(v.split(":", 1) for v in daemon["volumes"])
    assert volumes == {"dogpiled-state": "/var/lib/dogpiled"}
    assert "dogpiled-state" in compose["volumes"]
    clients = [s for name, s in services.items() if name != "dogpiled"]
    assert len(clients) == 1
    client = clients[0]
    assert client["depends_on"]["dogpiled"]["condition"] == "service_healthy"
    assert client["image"] == daemon["image"]  # dogpilectl ships in the image
    assert client["environment"]["DOGPILED_TARGET"] == f"dogpiled:{GRPC_PORT}"
    assert "dogpilectl" in " ".join(client["command"])
    for value in daemon.get("environment", {}).values():
        assert isinstance(value, str)


def test_dockerfile_shape():
    text = dockerfile()
    assert re.findall(r"^FROM (\S+)", text, re.MULTILINE) == ["debian:bookworm",
                                                             "debian:bookworm-slim"]
    assert "scripts/install-deps.sh" in text
    expose = re.search(r"^EXPOSE (.+)$", text, re.MULTILINE).group(1).split()
    assert sorted(expose) == [str(GRPC_PORT), str(METRICS_PORT)]
    assert re.search(r'^VOLUME \["/var/lib/dogpiled"\]', text, re.MULTILINE)
    assert re.search(r"^HEALTHCHECK .*\n?.*dogpilectl .*health", text, re.MULTILINE)
    assert "listen = \"0.0.0.0:" in (DEPLOY / "dogpiled.toml").read_text()
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert "**/build*" in ignored and ".git" in ignored


def test_configmap_config_is_accepted_by_the_daemon(config_toml, tmp_path):
    binary = os.environ.get("DOGPILED_BIN")
    if not binary:
        pytest.skip("DOGPILED_BIN not set: run through ctest to start the real daemon")
    conf = tmp_path / "dogpiled.toml"
    conf.write_text(config_toml)
    port_file = tmp_path / "port"
    # Addresses and paths are the cluster's; everything else is the file's.
    proc = subprocess.Popen([binary, "--config", str(conf), "--listen", "127.0.0.1:0",
                             "--metrics-listen", "127.0.0.1:0", "--port-file", str(port_file),
                             "--state-dir", str(tmp_path / "state")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 15
        while not (port_file.exists() and port_file.read_text().strip()):
            assert proc.poll() is None, proc.stdout.read()
            assert time.monotonic() < deadline, "no port in 15 s"
            time.sleep(0.02)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=15)
    assert proc.returncode == 0, out
    start = next(line for line in out.splitlines() if "dogpiled starting" in line)
    assert "log_format=json" in start
