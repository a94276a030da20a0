"""``shipyard deploy --target kubernetes`` writes manifests valid against Kubernetes' schema."""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import yaml
from typer.testing import CliRunner

from shipyard.cli import app as cli

K8S_VERSION = "1.30.0"


def test_manifests_validate_offline(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli,
        [
            "deploy",
            "digits-cnn@champion",
            "--endpoint",
            "digits",
            "--project",
            "digits",
            "--target",
            "kubernetes",
            "--output",
            str(tmp_path),
            "--replicas",
            "2",
        ],
    )
    assert result.exit_code == 0, result.output
    kinds = {}
    for path in sorted(tmp_path.glob("*.yaml")):
        doc = yaml.safe_load(path.read_text())
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        kinds[doc["kind"]] = doc
    assert set(kinds) == {"Deployment", "Service", "HorizontalPodAutoscaler"}
    pod = kinds["Deployment"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["command"][:3] == ["shipyard", "serve", "/models/pkg"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert container["resources"]["requests"] == {"cpu": "1", "memory": "1Gi"}
    assert "models:/digits/digits-cnn@champion" in pod["initContainers"][0]["command"][2]
    hpa = kinds["HorizontalPodAutoscaler"]["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (2, 4)
    assert kinds["Service"]["spec"]["ports"][0]["targetPort"] == 8501


def test_broken_manifest_is_caught_by_the_validator() -> None:
    import pytest

    bad = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "x"},
        "spec": {"replicas": "two"},
    }
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, K8S_VERSION, strict=True)
