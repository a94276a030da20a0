"""Packages round-trip for each flavor with the original predictions; tampering fails."""

from __future__ import annotations

import importlib.metadata
import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
import yaml
from onnx import TensorProto, helper
from torch import nn

from shipyard.packages import (
    MANIFEST,
    PackageError,
    SignatureError,
    load_package,
    save_model,
)
from tests.packages.pymodel import BagOfWords


@pytest.fixture(scope="module")
def mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10)).eval()


@pytest.fixture(scope="module")
def x() -> np.ndarray:
    return np.random.default_rng(0).random((16, 64), dtype=np.float32)


@pytest.fixture(scope="module")
def torch_package(mlp: nn.Module, x: np.ndarray, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pkg") / "torch"
    save_model(mlp, path, input_example=x[:4], metadata={"task": "digits"})
    return path


def test_torch_package_predicts_like_the_module(
    mlp: nn.Module, x: np.ndarray, torch_package: Path
) -> None:
    want = mlp(torch.from_numpy(x)).detach().numpy()
    manifest = yaml.safe_load((torch_package / MANIFEST).read_text())
    assert manifest["flavor"] == "torch" and manifest["metadata"] == {"task": "digits"}
    assert set(manifest["runtimes"]) == {"onnxruntime", "torch"}
    assert manifest["signature"]["inputs"] == [{"name": "x", "dtype": "float32", "shape": [-1, 64]}]
    assert manifest["frameworks"]["torch"] == importlib.metadata.version("torch")
    for runtime in ("onnxruntime", "torch"):
        model = load_package(torch_package, runtime=runtime)
        assert model.runtime == runtime
        np.testing.assert_allclose(model.predict(x), want, rtol=1e-4, atol=1e-5)
    assert load_package(torch_package).runtime == "onnxruntime"  # the faster one by default
    single = load_package(torch_package).predict(x[:1])
    np.testing.assert_allclose(single, want[:1], rtol=1e-4, atol=1e-5)


def test_batch_of_one_example_still_gives_a_dynamic_batch(
    mlp: nn.Module, x: np.ndarray, tmp_path: Path
) -> None:
    save_model(mlp, tmp_path / "p", input_example=x[:1])
    assert load_package(tmp_path / "p", runtime="torch").predict(x).shape == (16, 10)


def two_input_onnx(path: Path) -> None:
    a = helper.make_tensor_value_info("a", TensorProto.FLOAT, ["batch", 3])
    b = helper.make_tensor_value_info("b", TensorProto.FLOAT, ["batch", 3])
    s = helper.make_tensor_value_info("sum", TensorProto.FLOAT, ["batch", 3])
    p = helper.make_tensor_value_info("prod", TensorProto.FLOAT, ["batch", 3])
    graph = helper.make_graph(
        [
            helper.make_node("Add", ["a", "b"], ["sum"]),
            helper.make_node("Mul", ["a", "b"], ["prod"]),
        ],
        "g",
        [a, b],
        [s, p],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))


def test_onnx_package_with_two_inputs_and_outputs(tmp_path: Path) -> None:
    two_input_onnx(tmp_path / "m.onnx")
    save_model(str(tmp_path / "m.onnx"), tmp_path / "pkg")
    model = load_package(tmp_path / "pkg")
    assert [t.name for t in model.signature.inputs] == ["a", "b"]
    a = np.ones((2, 3), np.float32)
    out = model.predict({"a": a, "b": 2 * a})
    np.testing.assert_array_equal(out["sum"], 3 * a)
    np.testing.assert_array_equal(out["prod"], 2 * a)
    with pytest.raises(SignatureError, match="takes 2 inputs"):
        model.predict(a)
    with pytest.raises(SignatureError, match="input 'b' is missing"):
        model.predict({"a": a})
    proto = onnx.load(str(tmp_path / "m.onnx"))
    save_model(proto, tmp_path / "from-proto")
    assert load_package(tmp_path / "from-proto").signature.outputs[1].name == "prod"


def test_python_package_with_artifacts(tmp_path: Path) -> None:
    (tmp_path / "vocab.json").write_text(json.dumps(["a", "b", "c", "d"]))
    weights = np.arange(8, dtype=np.float32).reshape(4, 2)
    np.save(tmp_path / "w.npy", weights)
    tokens = np.array([[0, 1, 1], [3, 3, 2]], np.int64)
    original = BagOfWords()
    from shipyard.packages import Context

    original.setup(
        Context({"vocab": tmp_path / "vocab.json", "weights": tmp_path / "w.npy"}, tmp_path)
    )
    save_model(
        BagOfWords(),
        tmp_path / "pkg",
        input_example=tokens,
        artifacts={"vocab": tmp_path / "vocab.json", "weights": tmp_path / "w.npy"},
    )
    model = load_package(tmp_path / "pkg")
    got, want = model.predict(tokens), original.predict(tokens)
    np.testing.assert_array_equal(got["scores"], want["scores"])
    assert [t.name for t in model.signature.outputs] == ["scores", "length"]
    with pytest.raises(SignatureError, match=r"expected shape int64\[-1, 3\], got int64\[2, 4\]"):
        model.predict(np.zeros((2, 4), np.int64))


def test_class_in_main_is_refused(tmp_path: Path) -> None:
    cls = type("Local", (BagOfWords,), {"__module__": "__main__"})
    with pytest.raises(ValueError, match="defined in __main__"):
        save_model(cls(), tmp_path / "p")


def test_wrong_shape_and_dtype_name_the_input(torch_package: Path, x: np.ndarray) -> None:
    model = load_package(torch_package)
    with pytest.raises(SignatureError) as err:
        model.predict(x[:, :10])
    assert str(err.value) == "input 'x': expected shape float32[-1, 64], got float32[16, 10]"
    with pytest.raises(SignatureError, match=r"expected dtype float32\[-1, 64\], got complex64"):
        model.predict(x.astype(np.complex64))
    assert model.predict(x.astype(np.float64)).dtype == np.float32  # a same-kind cast
    with pytest.raises(SignatureError, match="unknown input"):
        model.predict({"y": x})


@pytest.mark.parametrize("damage", ["modify", "delete", "manifest"])
def test_tampered_package_names_the_file(torch_package: Path, tmp_path: Path, damage: str) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(torch_package, copy)
    if damage == "modify":
        with open(copy / "model.onnx", "ab") as f:
            f.write(b"\0")
        match = "package file 'model.onnx' is corrupted or was modified"
    elif damage == "delete":
        (copy / "model.pt2").unlink()
        match = "package file 'model.pt2' is missing"
    else:
        (copy / MANIFEST).write_text("format: nope\n")
        match = "is not a shipyard-model/1 manifest"
    with pytest.raises(PackageError, match=match):
        load_package(copy)


def test_not_a_package_and_unknown_model(tmp_path: Path) -> None:
    with pytest.raises(PackageError, match="shipyard-model.yaml is missing"):
        load_package(tmp_path)
    with pytest.raises(ValueError, match="cannot package a builtins.dict"):
        save_model({}, tmp_path / "x")
