"""Model packages: a folder with ``shipyard-model.yaml`` (flavor, signature, hashes) and weights.

    save_model(model, "pkg", input_example=x)      # torch module, ONNX model/path, or PythonModel
    save_model(model, "pkg", input_example=x, reference_data=x_train)   # + inputs for drift
    model = load_package("pkg")                    # verifies every file's sha256
    model.predict(x)                               # numpy in, numpy (or dict of arrays) out

Used by the SDK (``run.log_model``, ``shipyard.load_model``) and by serving; no HTTP, no store.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from shipyard.packages.flavors import (
    Context,
    PythonModel,
    runner_for,
    save_onnx,
    save_python,
    save_torch,
)
from shipyard.packages.manifest import MANIFEST, Manifest, PackageError, sha256_of
from shipyard.packages.reference import REFERENCE_FILE, load_reference, reference_sample
from shipyard.packages.signature import Signature, SignatureError, TensorSpec

__all__ = [
    "MANIFEST",
    "Context",
    "LoadedModel",
    "Manifest",
    "PackageError",
    "PythonModel",
    "REFERENCE_FILE",
    "Signature",
    "SignatureError",
    "TensorSpec",
    "detect_flavor",
    "load_package",
    "load_reference",
    "save_model",
    "sha256_of",
]


def detect_flavor(model: Any) -> str:
    """``torch``, ``onnx`` or ``python`` for a model object (or an .onnx path)."""
    if isinstance(model, PythonModel) or (
        isinstance(model, type) and issubclass(model, PythonModel)
    ):
        return "python"
    if isinstance(model, str | Path) and str(model).endswith(".onnx"):
        return "onnx"
    kind = f"{type(model).__module__}.{type(model).__name__}"
    if kind.startswith("onnx") and type(model).__name__ == "ModelProto":
        return "onnx"
    try:
        import torch

        if isinstance(model, torch.nn.Module):
            return "torch"
    except ImportError:
        pass
    raise ValueError(
        f"cannot package a {kind}: pass a torch.nn.Module, an ONNX model or path, "
        "or a shipyard.PythonModel"
    )


def save_model(
    model: Any,
    path: str | Path,
    *,
    input_example: Any | None = None,
    artifacts: dict[str, str | Path] | None = None,
    metadata: dict[str, Any] | None = None,
    run_id: str | None = None,
    reference_data: Any | None = None,
) -> Manifest:
    """Write ``model`` as a package at ``path`` (which must not exist or be empty).

    ``reference_data``: inputs as the model saw them in training (an array, or a dict by input
    name), checked against the signature; a sample of it is kept for input drift."""
    target = Path(path)
    if target.exists() and any(target.iterdir()):
        raise FileExistsError(f"{target} is not empty")
    flavor = detect_flavor(model)
    with tempfile.TemporaryDirectory(dir=target.parent if target.parent.exists() else None) as tmp:
        folder = Path(tmp)
        if flavor == "torch":
            manifest = save_torch(model, folder, input_example)
        elif flavor == "onnx":
            manifest = save_onnx(model, folder, input_example)
        else:
            manifest = save_python(model, folder, input_example, artifacts)
        if reference_data is not None:
            if not manifest.signature.inputs:
                raise ValueError("reference_data needs the model's signature: pass input_example")
            prepared = manifest.signature.prepare(reference_data)
            (folder / REFERENCE_FILE).write_bytes(reference_sample(prepared))
        manifest.metadata.update(metadata or {})
        manifest.run_id = run_id
        manifest.write(folder)
        target.mkdir(parents=True, exist_ok=True)
        for item in folder.iterdir():
            shutil.move(str(item), target / item.name)
    return manifest


class LoadedModel:
    """A package ready to predict; the same interface whatever the flavor and runtime."""

    def __init__(
        self, folder: Path, manifest: Manifest, runtime: str | None = None, threads: int = 0
    ) -> None:
        self.path = folder
        self.manifest = manifest
        self.runtime, self._run = runner_for(folder, manifest, runtime, threads)

    @property
    def signature(self) -> Signature:
        return self.manifest.signature

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run on inputs already checked by ``signature.prepare``; outputs by name (serving)."""
        if self.manifest.flavor != "python":
            return self._run(inputs)  # type: ignore[no-any-return]
        out = self._run(inputs if len(inputs) > 1 else next(iter(inputs.values())))
        if isinstance(out, dict):
            return {k: np.asarray(v) for k, v in out.items()}
        names = [t.name for t in self.signature.outputs] or ["output"]
        if isinstance(out, list | tuple) and len(names) == len(out) > 1:
            return {n: np.asarray(v) for n, v in zip(names, out, strict=True)}
        return {names[0]: np.asarray(out)}

    def predict(self, inputs: Any) -> Any:
        """numpy in (an array, or a dict by input name), numpy out (a dict for several outputs)."""
        if self.manifest.flavor == "python":
            if self.signature.inputs:
                prepared = self.signature.prepare(inputs)
                inputs = prepared if len(prepared) > 1 else next(iter(prepared.values()))
            return self._run(inputs)
        outputs = self._run(self.signature.prepare(inputs))
        if len(outputs) == 1:
            return next(iter(outputs.values()))
        return {k: np.asarray(v) for k, v in outputs.items()}

    def __repr__(self) -> str:
        return f"<LoadedModel {self.manifest.flavor} via {self.runtime} at {self.path}>"


def load_package(
    path: str | Path, *, runtime: str | None = None, threads: int = 0, verify: bool = True
) -> LoadedModel:
    """Load a package folder; every file is checked against the manifest's sha256 first."""
    folder = Path(path)
    return LoadedModel(folder, Manifest.read(folder, verify=verify), runtime, threads)
