"""Kubernetes manifests for an endpoint: a Deployment running ``shipyard serve`` on the package,
a Service in front of it, and a HorizontalPodAutoscaler (autoscaling/v2) on CPU."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

PORT = 8501


def manifests(
    name: str,
    package_uri: str,
    *,
    image: str = "shipyard:latest",
    min_replicas: int = 1,
    max_replicas: int = 4,
    cpu: str = "1",
    memory: str = "1Gi",
    max_batch_size: int = 32,
    max_delay_ms: float = 5.0,
    target_cpu_percent: int = 70,
) -> list[dict[str, Any]]:
    """Deployment, Service and HPA for endpoint ``name`` serving the package at ``package_uri``.

    The pod's init container fetches the package with ``shipyard``'s SDK (``load_model`` URIs,
    so ``models:/NAME@ALIAS`` works given ``SHIPYARD_URL``/``SHIPYARD_TOKEN`` from a Secret) into
    an emptyDir that the serving container reads.
    """
    labels = {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "shipyard"}
    probe = {
        "httpGet": {"path": "/v2/health/ready", "port": PORT},
        "periodSeconds": 5,
        "timeoutSeconds": 2,
        "failureThreshold": 3,
    }
    env_from = [{"secretRef": {"name": "shipyard-client", "optional": True}}]
    fetch = (
        "import shipyard,shutil;"
        f"m=shipyard.load_model({package_uri!r});"
        "shutil.copytree(m.path,'/models/pkg',dirs_exist_ok=True)"
    )
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": max(1, min_replicas),
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "initContainers": [
                        {
                            "name": "fetch-model",
                            "image": image,
                            "envFrom": env_from,
                            "command": ["python", "-c", fetch],
                            "volumeMounts": [{"name": "models", "mountPath": "/models"}],
                        }
                    ],
                    "containers": [
                        {
                            "name": "replica",
                            "image": image,
                            "command": [
                                "shipyard",
                                "serve",
                                "/models/pkg",
                                "--host",
                                "0.0.0.0",
                                "--port",
                                str(PORT),
                                "--name",
                                name,
                                "--max-batch-size",
                                str(max_batch_size),
                                "--max-delay-ms",
                                str(max_delay_ms),
                            ],
                            "ports": [{"name": "http", "containerPort": PORT}],
                            "readinessProbe": probe,
                            "livenessProbe": {
                                **probe,
                                "httpGet": {"path": "/v2/health/live", "port": PORT},
                                "initialDelaySeconds": 10,
                            },
                            "resources": {
                                "requests": {"cpu": cpu, "memory": memory},
                                "limits": {"memory": memory},
                            },
                            "volumeMounts": [
                                {"name": "models", "mountPath": "/models", "readOnly": True}
                            ],
                        }
                    ],
                    "volumes": [{"name": "models", "emptyDir": {}}],
                },
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "labels": labels},
        "spec": {"selector": labels, "ports": [{"name": "http", "port": 80, "targetPort": PORT}]},
    }
    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": max(1, min_replicas),
            "maxReplicas": max(1, max_replicas),
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": target_cpu_percent},
                    },
                }
            ],
        },
    }
    return [deployment, service, hpa]


def write(docs: list[dict[str, Any]], folder: Path) -> list[Path]:
    """One YAML file per manifest, named by kind."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for doc in docs:
        path = folder / f"{doc['metadata']['name']}-{doc['kind'].lower()}.yaml"
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        paths.append(path)
    return paths
