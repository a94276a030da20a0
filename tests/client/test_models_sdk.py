"""log_model and load_model through a real server, for each flavor, by every kind of URI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import shipyard
from shipyard.client._config import ClientSettings
from shipyard.errors import NotFound
from shipyard.packages import PackageError
from tests.packages.pymodel import BagOfWords
from tests.packages.test_packages import two_input_onnx


@pytest.fixture
def net() -> nn.Module:
    torch.manual_seed(1)
    return nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10)).eval()


def test_torch_model_logged_registered_and_loaded_by_alias(
    sdk: ClientSettings, net: nn.Module
) -> None:
    x = np.random.default_rng(0).random((8, 64), dtype=np.float32)
    want = net(torch.from_numpy(x)).detach().numpy()
    with shipyard.init(project="digits", settings=sdk, system_metrics=False) as run:
        run.log({"val/acc": 0.93})
        version = run.log_model(net, name="digits-cnn", input_example=x[:4], description="first")
    assert version["version"] == 1 and version["flavor"] == "torch"
    assert version["lineage"]["run"]["metrics"] == {"val/acc": 0.93}
    with shipyard.Client(settings=sdk) as client:
        client.http.json(
            "PUT", "/api/projects/digits/models/digits-cnn/aliases/champion", {"version": 1}
        )
    for uri in (
        "models:/digits-cnn@champion",
        "models:/digits-cnn/1",
        "models:/digits/digits-cnn@latest",
        f"runs:/{run.id}/model",
    ):
        model = shipyard.load_model(uri, settings=sdk)
        np.testing.assert_allclose(model.predict(x), want, rtol=1e-4, atol=1e-5)
        assert model.runtime == "onnxruntime"
    assert (
        shipyard.load_model("models:/digits-cnn/1", settings=sdk, runtime="torch").runtime
        == "torch"
    )


def test_onnx_and_python_flavors_round_trip(sdk: ClientSettings, tmp_path: Path) -> None:
    two_input_onnx(tmp_path / "add.onnx")
    (tmp_path / "vocab.json").write_text(json.dumps(["a", "b", "c"]))
    np.save(tmp_path / "w.npy", np.eye(3, dtype=np.float32))
    tokens = np.array([[0, 1, 1]], np.int64)
    with shipyard.init(project="p", settings=sdk, system_metrics=False) as run:
        run.log_model(str(tmp_path / "add.onnx"), name="adder", artifact_path="adder")
        run.log_model(
            BagOfWords(),
            name="bow",
            artifact_path="bow",
            input_example=tokens,
            artifacts={"vocab": tmp_path / "vocab.json", "weights": tmp_path / "w.npy"},
        )
    adder = shipyard.load_model("models:/adder/1", settings=sdk)
    a = np.ones((2, 3), np.float32)
    np.testing.assert_array_equal(adder.predict({"a": a, "b": a})["sum"], 2 * a)
    bow = shipyard.load_model("models:/bow/1", settings=sdk)
    np.testing.assert_array_equal(bow.predict(tokens)["scores"], [[1.0, 2.0, 0.0]])


def test_cached_package_that_was_tampered_with_is_refused(
    sdk: ClientSettings, net: nn.Module
) -> None:
    x = np.ones((2, 64), np.float32)
    with shipyard.init(project="p", settings=sdk, system_metrics=False) as run:
        run.log_model(net, name="m", input_example=x)
    model = shipyard.load_model("models:/m/1", settings=sdk)
    with open(model.path / "model.onnx", "ab") as f:
        f.write(b"!")
    with pytest.raises(PackageError, match="'model.onnx' is corrupted or was modified"):
        shipyard.load_model("models:/m/1", settings=sdk)


def test_unknown_models_are_not_found(sdk: ClientSettings) -> None:
    with pytest.raises(NotFound, match="model 'ghost' does not exist"):
        shipyard.load_model("models:/ghost@champion", settings=sdk)
    with pytest.raises(PackageError, match="is missing"):
        shipyard.load_model("/nonexistent/folder", settings=sdk)
