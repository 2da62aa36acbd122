"""infra/k8s: the built-in kinds valid for Kubernetes 1.37 (kubernetes-validate, strict: an
unknown field is an error), the DaskCluster valid against the Dask operator's own CRD schema,
and every name one resource gives another (labels, ports, ConfigMaps, Secrets, volumes, the
image, the scheduler address) defined here."""

from __future__ import annotations

import copy
import shutil
import subprocess
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlparse

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.infra.deploy import (
    DATA,
    INFRA,
    K8S,
    command_problems,
    load_yaml_documents,
    read_env_file,
    settings_env_names,
)

K8S_VERSION = "1.37.0"
CRD = DATA / "k8s" / "dask-operator" / "daskcluster.yaml"
#: The name every coastlake container gives its image; kustomization.yaml's `images:` sets
#: the registry, name and tag in one place.
IMAGE = "coastlake"
#: Labels the Dask operator gives the pods it makes for a DaskCluster (its controller).
DASK_LABELS = "dask.org/cluster-name", "dask.org/component"

Doc = dict[str, Any]


def kustomization() -> Doc:
    doc: Doc = yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8"))
    return doc


def resources() -> list[Doc]:
    """Every resource the kustomization applies, in its order."""
    return [doc for f in kustomization()["resources"] for doc in load_yaml_documents(K8S / f)]


def named(kind: str) -> dict[str, Doc]:
    return {d["metadata"]["name"]: d for d in resources() if d["kind"] == kind}


def pod_specs(doc: Doc) -> Iterator[tuple[str, Doc, dict[str, str]]]:
    """(where, pod spec, pod labels) of every pod a resource makes."""
    kind, name = doc["kind"], doc["metadata"]["name"]
    spec = doc.get("spec", {})
    if kind in ("Deployment", "StatefulSet", "Job"):
        template = spec["template"]
        yield f"{kind}/{name}", template["spec"], template.get("metadata", {}).get("labels", {})
    elif kind == "CronJob":
        template = spec["jobTemplate"]["spec"]["template"]
        yield f"{kind}/{name}", template["spec"], template.get("metadata", {}).get("labels", {})
    elif kind == "DaskCluster":
        for part in ("scheduler", "worker"):
            labels = dict(zip(DASK_LABELS, (name, part), strict=True))
            yield f"{kind}/{name}/{part}", spec[part]["spec"], labels


def containers(pod: Doc) -> list[Doc]:
    return [*pod.get("initContainers", []), *pod["containers"]]


def all_pods() -> list[tuple[str, Doc, dict[str, str]]]:
    return [p for doc in resources() for p in pod_specs(doc)]


def strict_schema(node: Any) -> Any:
    """An OpenAPI v3 schema of a CRD with unknown fields refused (`additionalProperties:
    false` wherever fields are listed and not kept unknown), as `kubectl apply` refuses them
    with its default strict field validation."""
    if not isinstance(node, dict):
        return node
    out = dict(node)
    if "properties" in node:
        out["properties"] = {k: strict_schema(v) for k, v in node["properties"].items()}
        if "additionalProperties" not in node and not node.get(
            "x-kubernetes-preserve-unknown-fields"
        ):
            out["additionalProperties"] = False
    for key in ("items", "additionalProperties", "not"):
        if isinstance(node.get(key), dict):
            out[key] = strict_schema(node[key])
    for key in ("allOf", "anyOf", "oneOf"):
        if key in node:
            out[key] = [strict_schema(s) for s in node[key]]
    return out


def daskcluster_errors(doc: Doc) -> list[str]:
    crd = yaml.safe_load(CRD.read_text(encoding="utf-8"))
    group = crd["spec"]["group"]
    (version,) = [v for v in crd["spec"]["versions"] if f"{group}/{v['name']}" == doc["apiVersion"]]
    assert doc["kind"] == crd["spec"]["names"]["kind"]
    schema = strict_schema(version["schema"]["openAPIV3Schema"])
    # Every object has these; a CRD's schema leaves them to the API server.
    schema["properties"] |= {
        "apiVersion": {"type": "string"},
        "kind": {"type": "string"},
        "metadata": {"type": "object"},
    }
    return sorted(
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in jsonschema.Draft4Validator(schema).iter_errors(doc)
    )


def test_kustomization_applies_every_manifest_of_the_folder() -> None:
    listed = kustomization()["resources"]
    on_disk = sorted(p.name for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")
    assert sorted(listed) == on_disk
    kinds = {d["kind"] for d in resources()}
    assert {"Deployment", "Service", "Ingress", "CronJob", "DaskCluster", "StatefulSet"} <= kinds
    assert {"ConfigMap", "Secret", "Job", "Namespace"} <= kinds


def test_builtin_kinds_are_valid_for_kubernetes_strictly() -> None:
    checked = 0
    for doc in resources():
        if doc["kind"] == "DaskCluster":
            continue  # a custom resource: checked against the operator's CRD below
        # Raises (failing the test) on an invalid resource, and on a kind it does not know.
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        checked += 1
    assert checked == len(resources()) - 1


def test_kubernetes_validate_refuses_a_misspelt_field_and_a_wrong_type() -> None:
    server = copy.deepcopy(named("Deployment")["coastlake-server"])
    server["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(server, K8S_VERSION, strict=True)
    harvest = copy.deepcopy(named("CronJob")["coastlake-harvest"])
    harvest["spec"]["successfulJobsHistoryLimit"] = "three"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(harvest, K8S_VERSION, strict=True)


def test_daskcluster_is_valid_against_the_operators_crd() -> None:
    (cluster,) = named("DaskCluster").values()
    assert daskcluster_errors(cluster) == []
    # The check is not blind: a misspelt field and a wrong type are refused.
    broken = copy.deepcopy(cluster)
    broken["spec"]["worker"]["replica"] = 2
    broken["spec"]["worker"]["spec"]["containers"][0]["resources"]["requests"] = "2 cpu"
    errors = daskcluster_errors(broken)
    assert any("'replica' was unexpected" in e for e in errors), errors
    assert any(e.startswith("spec/worker/spec/containers/0/resources/requests") for e in errors)


def test_services_select_pods_and_name_their_ports() -> None:
    pods = all_pods()
    services: list[tuple[str, Doc]] = [
        (f"Service/{name}", s["spec"]) for name, s in named("Service").items()
    ]
    services += [
        (f"DaskCluster/{name}/service", c["spec"]["scheduler"]["service"])
        for name, c in named("DaskCluster").items()
    ]
    for where, spec in services:
        selector = spec["selector"]
        chosen = [p for p in pods if selector.items() <= p[2].items()]
        assert len(chosen) == 1, f"{where} selects {[p[0] for p in chosen]}"
        _, pod, _ = chosen[0]
        ports = [port for c in pod["containers"] for port in c.get("ports", [])]
        for port in spec["ports"]:
            target = port.get("targetPort", port["port"])
            key = "name" if isinstance(target, str) else "containerPort"
            assert any(p.get(key) == target for p in ports), f"{where}: no pod port {target}"


def test_ingress_routes_to_the_server_service_port() -> None:
    services = named("Service")
    (ingress,) = named("Ingress").values()
    backends = [
        path["backend"]["service"]
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    ]
    assert backends
    for backend in backends:
        service = services[backend["name"]]
        port = backend["port"]
        key = "name" if "name" in port else "port"
        assert any(
            p.get(key) == port.get(key, port.get("number")) for p in service["spec"]["ports"]
        )
    assert {b["name"] for b in backends} == {"coastlake-server"}


def test_every_config_map_secret_and_volume_named_is_defined() -> None:
    config_maps = {name: d.get("data", {}) for name, d in named("ConfigMap").items()}
    secrets = {
        name: {**d.get("stringData", {}), **d.get("data", {})}
        for name, d in named("Secret").items()
    }
    refs = 0
    for where, pod, _ in all_pods():
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        for container in containers(pod):
            for source in container.get("envFrom", []):
                if "configMapRef" in source:
                    assert source["configMapRef"]["name"] in config_maps, where
                if "secretRef" in source:
                    assert source["secretRef"]["name"] in secrets, where
                refs += 1
            for env in container.get("env", []):
                ref = env.get("valueFrom", {})
                for kind, known in (("configMapKeyRef", config_maps), ("secretKeyRef", secrets)):
                    if kind in ref:
                        assert ref[kind]["key"] in known[ref[kind]["name"]], f"{where}: {env}"
                        refs += 1
            for mount in container.get("volumeMounts", []):
                assert mount["name"] in volumes or where.startswith("StatefulSet/"), where
        for volume in volumes.values():
            if "configMap" in volume:
                assert volume["configMap"]["name"] in config_maps, where
            if "secret" in volume:
                assert volume["secret"]["secretName"] in secrets, where
    for statefulset in named("StatefulSet").values():
        claims = {c["metadata"]["name"] for c in statefulset["spec"]["volumeClaimTemplates"]}
        pod = statefulset["spec"]["template"]["spec"]
        pod_volumes = {v["name"] for v in pod.get("volumes", [])}
        for container in containers(pod):
            for mount in container.get("volumeMounts", []):
                assert mount["name"] in claims | pod_volumes
    assert refs > 10


def test_settings_are_those_the_code_reads_and_the_compose_example_names() -> None:
    (config,) = named("ConfigMap").values()
    (secret,) = named("Secret").values()
    names = set(config["data"]) | set(secret["stringData"])
    assert names <= settings_env_names()
    assert names == set(read_env_file(INFRA / "lake.env.example"))
    assert not {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "LAKE_ADMIN_TOKEN"} & set(
        config["data"]
    ), "a credential in the ConfigMap"
    # Every lake pod reads both (the DaskCluster scheduler needs neither).
    for where, pod, _ in all_pods():
        for container in containers(pod):
            if container["image"] != IMAGE or where.endswith("/scheduler"):
                continue
            sources = container.get("envFrom", [])
            assert {"configMapRef": {"name": config["metadata"]["name"]}} in sources, where
            assert {"secretRef": {"name": secret["metadata"]["name"]}} in sources, where


def test_settings_name_the_scheduler_store_and_host_defined_here() -> None:
    (config,) = named("ConfigMap").values()
    data = config["data"]
    # The operator names the scheduler's Service <DaskCluster name>-scheduler.
    (cluster,) = named("DaskCluster").values()
    scheduler = urlparse(data["LAKE_DASK_SCHEDULER"])
    assert scheduler.hostname == f"{cluster['metadata']['name']}-scheduler"
    comm = [p for p in cluster["spec"]["scheduler"]["service"]["ports"] if p["name"] == "tcp-comm"]
    assert comm and comm[0]["port"] == scheduler.port
    store = urlparse(data["AWS_ENDPOINT_URL"])
    minio = named("Service")[str(store.hostname)]
    assert store.port in [p["port"] for p in minio["spec"]["ports"]]
    assert data["LAKE_ROOT"].startswith("s3://")
    (ingress,) = named("Ingress").values()
    hosts = [rule["host"] for rule in ingress["spec"]["rules"]]
    assert urlparse(data["LAKE_PUBLIC_URL"]).hostname in hosts


def test_the_image_is_one_setting_pinned_and_never_pulled_needlessly() -> None:
    (entry,) = [i for i in kustomization()["images"] if i["name"] == IMAGE]
    assert entry["newName"] and entry["newTag"] and entry["newTag"] != "latest"
    ours = 0
    for where, pod, _ in all_pods():
        for container in containers(pod):
            image = container["image"]
            assert container["imagePullPolicy"] == "IfNotPresent", where
            if image.split(":")[0].split("/")[-1] == IMAGE:
                # Only the bare name: a tag here would escape the one setting.
                assert image == IMAGE, f"{where}: {image}"
                ours += 1
            else:
                tag = image.rsplit("/", 1)[-1].partition(":")[2]
                assert tag and tag != "latest", f"{where}: {image} floats"
    assert ours >= 8  # server, harvest and its init, retention, compact, vacuum, Dask (2)


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (kustomize) not installed")
def test_kustomize_gives_every_coastlake_container_the_image_set() -> None:
    rendered = subprocess.run(
        ["kubectl", "kustomize", str(K8S)], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    docs = [d for d in yaml.safe_load_all(rendered) if d]
    (entry,) = [i for i in kustomization()["images"] if i["name"] == IMAGE]
    wanted = f"{entry['newName']}:{entry['newTag']}"
    images = [c["image"] for d in docs for _, pod, _ in pod_specs(d) for c in containers(pod)]
    assert images.count(wanted) >= 8
    assert IMAGE not in images
    assert {d["metadata"].get("namespace") for d in docs if d["kind"] != "Namespace"} == {
        kustomization()["namespace"]
    }
    for doc in docs:
        if doc["kind"] != "DaskCluster":
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_server_probes_health_and_harvest_never_overlaps() -> None:
    server = named("Deployment")["coastlake-server"]
    (container,) = server["spec"]["template"]["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        get = container[probe]["httpGet"]
        assert get["path"] == "/healthz" and get["port"] in ports, probe
    command = container["command"]
    assert (
        str(ports[container["readinessProbe"]["httpGet"]["port"]])
        == (command[command.index("--port") + 1])
    )
    harvest = named("CronJob")["coastlake-harvest"]
    assert harvest["spec"]["concurrencyPolicy"] == "Forbid"
    (job,) = harvest["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    assert job["command"] == ["lake", "harvest"]  # once per run, never --watch
    assert named("CronJob")["coastlake-upkeep"]["spec"]["concurrencyPolicy"] == "Forbid"
    for where, pod, _ in all_pods():
        assert pod.get("securityContext", {}).get("runAsNonRoot") is True, where


@pytest.mark.slow
def test_every_container_runs_a_program_the_image_has() -> None:
    problems: list[str] = []
    for where, pod, _ in all_pods():
        for container in containers(pod):
            if container["image"] == IMAGE:
                problems += command_problems(
                    [*container["command"], *container.get("args", [])],
                    f"{where}/{container['name']}",
                )
    assert problems == []
