"""Static checks of everything under deploy/ and of the Dockerfile.

No cluster, engine or compose tool runs here, so the files are parsed and
checked against each other: probes are native gRPC on the gRPC port, the
Service and PDB select the pods, ports agree across Dockerfile, config,
workload, Service and compose, and the configuration shipped in the
ConfigMap is accepted by the real daemon (DOGPILED_BIN). The replicated
files (kubernetes-replicated/, compose-replicated.yaml) are checked the same
way, plus the group's shape: three members, one peers list, node ids 1..3.
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
K8S_REPLICATED = DEPLOY / "kubernetes-replicated"
GRPC_PORT, METRICS_PORT, RAFT_PORT = 7420, 9420, 7430


def load_all(path):
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def k8s_objects(folder=K8S):
    objects = {}
    for path in sorted(folder.glob("*.yaml")):
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


@pytest.mark.parametrize("folder", [K8S, K8S_REPLICATED], ids=lambda f: f.name)
def test_kustomization_lists_every_manifest(folder):
    listed = set(yaml.safe_load((folder / "kustomization.yaml").read_text())["resources"])
    present = {p.name for p in folder.glob("*.yaml")} - {"kustomization.yaml"}
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


def service_targets(service, workload, container):
    """The container ports the Service reaches, checked to select the pods."""
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
    return seen


def test_service_selects_the_pods_and_targets_their_ports(objects, workload, container):
    service = one(objects, "Service")
    assert service_targets(service, workload, container) == {GRPC_PORT, METRICS_PORT}
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


# --- replicated mode: kubernetes-replicated/ and compose-replicated.yaml ---

@pytest.fixture(scope="module")
def group():
    return k8s_objects(K8S_REPLICATED)


@pytest.fixture(scope="module")
def group_workload(group):
    return one(group, "StatefulSet")


@pytest.fixture(scope="module")
def group_container(group_workload):
    containers = group_workload["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def headless(service):
    return service["spec"].get("clusterIP") == "None"


def env_of(container):
    return {e["name"]: e for e in container.get("env", [])}


def parse_peers(text):
    """ID=HOST:PORT,... as dogpiled reads it: {id: (host, port)}."""
    peers = {}
    for item in text.split(","):
        ident, address = item.split("=", 1)
        host, port = address.rsplit(":", 1)
        assert int(ident) not in peers, f"id {ident} twice"
        peers[int(ident)] = (host, int(port))
    return peers


def run_group_command(container, ordinal, tmp_path):
    """Runs the container's command as pod <ordinal> would, with stand-ins
    for getent and dogpiled: (the name it waited for, dogpiled's arguments)."""
    command = container["command"]
    assert command[:2] == ["/bin/sh", "-c"] and len(command) == 3
    fake = tmp_path / f"bin{ordinal}"
    fake.mkdir()
    awaited = fake / "awaited"
    (fake / "getent").write_text(f'#!/bin/sh\nprintf "%s" "$2" > {awaited}\n')
    (fake / "dogpiled").write_text('#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a"; done\n')
    for tool in ("getent", "dogpiled"):
        (fake / tool).chmod(0o755)
    env = {"PATH": f"{fake}:/usr/bin:/bin", "HOSTNAME": f"dogpiled-{ordinal}",
           "POD_IP": f"10.0.0.{ordinal}"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=10)
    assert done.returncode == 0, done.stderr
    return awaited.read_text(), done.stdout.splitlines()


def test_group_is_three_members_started_together(group_workload):
    spec = group_workload["spec"]
    assert spec["replicas"] == 3  # a majority of two survives one lost member
    # OrderedReady would wait for dogpiled-0 to be ready, which it is not
    # before a majority runs.
    assert spec["podManagementPolicy"] == "Parallel"
    assert selects(spec["selector"]["matchLabels"], spec["template"]["metadata"]["labels"])


def test_peers_service_is_headless_and_publishes_unready_pods(group, group_workload,
                                                              group_container):
    peers = one({"Service": [s for s in group["Service"] if headless(s)]}, "Service")
    # Pods are named <pod>.<serviceName>: the names DOGPILED_PEERS uses.
    assert group_workload["spec"]["serviceName"] == peers["metadata"]["name"] == "dogpiled-peers"
    # Members must resolve each other before any is ready.
    assert peers["spec"]["publishNotReadyAddresses"] is True
    assert service_targets(peers, group_workload, group_container) == {RAFT_PORT}
    assert [p["name"] for p in peers["spec"]["ports"]] == ["raft"]


def test_group_client_service_targets_grpc_and_metrics(group, group_workload, group_container):
    assert container_ports(group_container) == {"grpc": GRPC_PORT, "metrics": METRICS_PORT,
                                                "raft": RAFT_PORT}
    client = one({"Service": [s for s in group["Service"] if not headless(s)]}, "Service")
    assert client["metadata"]["name"] == "dogpiled"
    assert service_targets(client, group_workload, group_container) == \
        {GRPC_PORT, METRICS_PORT}


def test_group_pdb_keeps_a_majority(group, group_workload):
    pdb = one(group, "PodDisruptionBudget")
    assert pdb["apiVersion"] == "policy/v1"
    spec = group_workload["spec"]
    assert pdb["spec"]["minAvailable"] == spec["replicas"] // 2 + 1 == 2
    assert "maxUnavailable" not in pdb["spec"]
    assert selects(pdb["spec"]["selector"]["matchLabels"],
                   spec["template"]["metadata"]["labels"])


def test_peers_name_every_pod_of_the_peers_service(group_workload, group_container):
    env = env_of(group_container)
    peers = parse_peers(env["DOGPILED_PEERS"]["value"])
    name, service = group_workload["metadata"]["name"], group_workload["spec"]["serviceName"]
    # Pod dogpiled-N is member N+1, reached on its raft containerPort.
    assert peers == {i + 1: (f"{name}-{i}.{service}", container_ports(group_container)["raft"])
                     for i in range(group_workload["spec"]["replicas"])}
    assert env["POD_IP"]["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP"


def test_command_maps_the_pod_ordinal_to_its_node_id(group_workload, group_container,
                                                     tmp_path):
    script = group_container["command"][-1]
    assert "--node-id" in script and "HOSTNAME" in script and "--advertise" in script
    # Kubernetes expands $(NAME) in commands; nothing here may look like one.
    assert not re.search(r"\$\([A-Za-z_][A-Za-z0-9_]*\)", script)
    peers = parse_peers(env_of(group_container)["DOGPILED_PEERS"]["value"])
    for ordinal in range(group_workload["spec"]["replicas"]):
        awaited, args = run_group_command(group_container, ordinal, tmp_path)
        assert args == ["--node-id", str(ordinal + 1),
                        "--advertise", f"10.0.0.{ordinal}:{GRPC_PORT}"], args
        # It waits for the very name its Raft port binds to.
        assert awaited == peers[ordinal + 1][0]


def test_group_members_keep_the_single_node_pod_setup(workload, container, group_workload,
                                                      group_container):
    pod, group_pod = workload["spec"]["template"]["spec"], group_workload["spec"]["template"]["spec"]
    for key in ("securityContext", "volumes", "terminationGracePeriodSeconds",
                "automountServiceAccountToken"):
        assert group_pod[key] == pod[key], key
    for key in ("image", "securityContext", "resources", "volumeMounts", "startupProbe",
                "readinessProbe", "livenessProbe"):
        assert group_container[key] == container[key], key
    assert group_workload["spec"]["volumeClaimTemplates"] == workload["spec"]["volumeClaimTemplates"]


def test_group_config_is_the_single_node_one_without_fsync(group, config_toml):
    single = tomllib.loads(config_toml)
    single.pop("fsync")  # for the value journal, which a member does not keep
    config = one(group, "ConfigMap")
    assert tomllib.loads(config["data"]["dogpiled.toml"]) == single
    assert config["metadata"]["name"] == "dogpiled-config"


def compose_group():
    return yaml.safe_load((DEPLOY / "compose-replicated.yaml").read_text())


def test_compose_group_members_agree():
    compose = compose_group()
    services = compose["services"]
    assert sorted(services) == ["dogpiled-1", "dogpiled-2", "dogpiled-3"]
    single = yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"]["dogpiled"]
    peers_lists, ids, host_ports, state_volumes = set(), {}, [], []
    for name, member in services.items():
        build = member["build"]
        assert (DEPLOY / build["context"] / build["dockerfile"]).is_file()
        for key in ("image", "restart", "read_only", "tmpfs", "cap_drop", "security_opt",
                    "mem_limit", "stop_grace_period"):
            assert member[key] == single[key], (name, key)
        env = member["environment"]
        for value in env.values():
            assert isinstance(value, str), (name, value)
        ids[name] = int(env["DOGPILED_NODE_ID"])
        peers_lists.add(env["DOGPILED_PEERS"])
        ports = {int(c): int(h) for h, c in (p.split(":")[-2:] for p in member["ports"])}
        assert set(ports) == {GRPC_PORT, METRICS_PORT}, name
        host_ports += ports.values()
        # Followers name the leader's advertised address: the host port.
        assert env["DOGPILED_ADVERTISE"] == f"localhost:{ports[GRPC_PORT]}", name
        volumes = dict(v.split(":", 1) for v in member["volumes"])
        assert list(volumes.values()) == ["/var/lib/dogpiled"], name
        state_volumes += volumes
    assert sorted(ids.values()) == [1, 2, 3]
    assert len(peers_lists) == 1, "every member needs the same DOGPILED_PEERS"
    assert parse_peers(peers_lists.pop()) == {i: (name, RAFT_PORT) for name, i in ids.items()}
    assert all(name.endswith(f"-{i}") for name, i in ids.items())
    assert len(set(host_ports)) == len(host_ports) == 6
    assert len(set(state_volumes)) == 3 and set(state_volumes) <= set(compose["volumes"])


def test_group_settings_are_accepted_by_the_daemon(group, group_container, tmp_path):
    binary = os.environ.get("DOGPILED_BIN")
    if not binary:
        pytest.skip("DOGPILED_BIN not set: run through ctest to check with the real daemon")
    conf = tmp_path / "dogpiled.toml"
    conf.write_text(one(group, "ConfigMap")["data"]["dogpiled.toml"])
    help_text = subprocess.run([binary, "--help"], capture_output=True, text=True,
                               timeout=15, check=True).stdout
    # Every DOGPILED_* variable the group files set is one the daemon reads.
    names = {n for n in env_of(group_container) if n.startswith("DOGPILED_")}
    for member in compose_group()["services"].values():
        names |= set(member["environment"])
    for name in names:
        assert f"(Env:{name})" in help_text, name
    # With --help the daemon only parses: the file's keys (an unknown one
    # fails) and each pod's flags (a node id that is not a number fails).
    # Starting a member for real would wait for a group.
    env = dict(os.environ, DOGPILED_PEERS=env_of(group_container)["DOGPILED_PEERS"]["value"])
    for ordinal in range(3):
        _, args = run_group_command(group_container, ordinal, tmp_path)
        for flag in args[::2]:
            assert re.search(rf"^\s*{flag}\b", help_text, re.MULTILINE), flag
        done = subprocess.run([binary, "--config", str(conf), *args, "--help"], env=env,
                              capture_output=True, text=True, timeout=15)
        assert done.returncode == 0, done.stderr
