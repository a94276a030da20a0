"""Saving and loading each flavor: ``onnx`` (onnxruntime), ``torch`` (torch.export, plus an ONNX
export when it succeeds) and ``python`` (a user class with ``setup`` and ``predict``).

torch and onnxruntime are imported only when a package needs them.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import inspect
import os
import shutil
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from shipyard.packages.manifest import Manifest, PackageError
from shipyard.packages.signature import Signature, TensorSpec, infer


class PythonModel:
    """Base class for the ``python`` flavor, like Cog's predictor.

    ``setup(context)`` runs once at load (``context.artifacts`` maps names to files in the
    package); ``predict(batch)`` takes an array (or a dict of arrays for several inputs) and
    returns an array or a dict of arrays. The class must live in a module file, not ``__main__``.
    """

    def setup(self, context: Context) -> None:
        """Load what ``predict`` needs (weights, tokenizer...)."""

    def predict(self, batch: Any) -> Any:
        raise NotImplementedError


@dataclass
class Context:
    """What ``PythonModel.setup`` receives."""

    artifacts: dict[str, Path]
    package: Path


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _frameworks(*dists: str) -> dict[str, str]:
    return {d: v for d in ("numpy", *dists) if (v := _version(d))}


# -- save ---------------------------------------------------------------------------------------


def save_onnx(model: Any, folder: Path, input_example: Any | None) -> Manifest:
    """An ONNX model (a path or an ``onnx.ModelProto``); the signature comes from the graph."""
    import onnx

    target = folder / "model.onnx"
    if isinstance(model, str | os.PathLike):
        shutil.copyfile(model, target)
    else:
        onnx.save(model, str(target))
    signature = onnx_signature(target)
    manifest = Manifest(
        "onnx",
        signature,
        runtimes={"onnxruntime": "model.onnx"},
        frameworks=_frameworks("onnx", "onnxruntime"),
    )
    if input_example is not None:  # check the example runs, so a bad package fails now
        OnnxRunner(target).run(signature.prepare(input_example))
    return manifest


_ONNX_TYPES = {
    1: "float32",
    2: "uint8",
    3: "int8",
    5: "int16",
    6: "int32",
    7: "int64",
    9: "bool",
    10: "float16",
    11: "float64",
    12: "uint32",
    13: "uint64",
}


def onnx_signature(path: Path) -> Signature:
    """Inputs and outputs of an ONNX graph (symbolic dimensions become -1)."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    initializers = {i.name for i in graph.initializer}

    def spec(value: Any) -> TensorSpec:
        t = value.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else -1 for d in t.shape.dim]
        return TensorSpec(value.name, _ONNX_TYPES.get(t.elem_type, "float32"), dims)

    return Signature(
        [spec(v) for v in graph.input if v.name not in initializers],
        [spec(v) for v in graph.output],
    )


def save_torch(model: Any, folder: Path, input_example: Any) -> Manifest:
    """A ``torch.nn.Module``: torch.export program, plus ONNX when the export succeeds."""
    import torch

    if input_example is None:
        raise ValueError("log_model(torch module) needs input_example to trace the model")
    model = model.eval()
    example = np.asarray(input_example)
    if example.shape[0] == 1:  # a batch of one would fix the batch size at export
        example = np.concatenate([example, example])
    x = torch.from_numpy(np.ascontiguousarray(example))
    with torch.no_grad():
        output = model(x)
    outputs = output.numpy() if isinstance(output, torch.Tensor) else output
    signature = infer(example, outputs, input_names=["x"])
    batch = torch.export.Dim("batch")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.export.export(model, (x,), dynamic_shapes=({0: batch},))
        torch.export.save(program, str(folder / "model.pt2"))
    runtimes = {"torch": "model.pt2"}
    if _export_onnx(model, x, folder / "model.onnx", signature):
        runtimes = {"onnxruntime": "model.onnx", **runtimes}
    return Manifest(
        "torch",
        signature,
        runtimes=runtimes,
        frameworks=_frameworks("torch", "onnx", "onnxruntime"),
    )


def _export_onnx(model: Any, x: Any, target: Path, signature: Signature) -> bool:
    """Best effort: an ONNX twin that gives the same outputs, or nothing."""
    import torch

    names = [t.name for t in signature.outputs]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # The TorchScript-based exporter: deprecated, but fast and dependable for the
            # feed-forward networks it handles; the torch.export one takes seconds per model.
            torch.onnx.export(
                model,
                (x,),
                str(target),
                input_names=["x"],
                output_names=names,
                dynamic_axes={"x": {0: "batch"}, **{n: {0: "batch"} for n in names}},
                dynamo=False,
            )
        got = OnnxRunner(target).run({"x": x.numpy()})
        with torch.no_grad():
            want = model(x)
        wants = [want] if isinstance(want, torch.Tensor) else list(want)
        if all(
            np.allclose(g, w.numpy(), rtol=1e-4, atol=1e-5)
            for g, w in zip(got.values(), wants, strict=True)
        ):
            return True
    except Exception:  # an exotic op or an old runtime: serve with torch instead
        pass
    target.unlink(missing_ok=True)
    return False


def save_python(
    model: Any, folder: Path, input_example: Any | None, artifacts: dict[str, str | Path] | None
) -> Manifest:
    """A ``PythonModel`` (class or instance): its module file, artifacts, and an entrypoint."""
    cls = model if isinstance(model, type) else type(model)
    if cls.__module__ == "__main__":
        raise ValueError(
            f"{cls.__name__} is defined in __main__; put it in a module file so the "
            "package can import it without running your script"
        )
    source = inspect.getsourcefile(cls)
    if source is None:
        raise ValueError(f"cannot find the source file of {cls.__name__}")
    (folder / "code").mkdir()
    module = Path(source).stem
    shutil.copyfile(source, folder / "code" / f"{module}.py")
    names: dict[str, str] = {}
    for name, path in (artifacts or {}).items():
        src = Path(path)
        dest = folder / "artifacts" / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dest)
        else:
            shutil.copyfile(src, dest)
        names[name] = f"artifacts/{name}"
    manifest = Manifest(
        "python",
        Signature(),
        entrypoint=f"code/{module}.py:{cls.__name__}",
        frameworks=_frameworks(),
        metadata={"artifacts": names},
    )
    if input_example is not None:
        instance = _instantiate_python(folder, manifest)
        output = instance.predict(input_example)
        manifest.signature = infer(input_example, output)
    return manifest


# -- load ---------------------------------------------------------------------------------------


class OnnxRunner:
    """An onnxruntime session; ``threads`` caps intra-op threads (0: onnxruntime decides).

    With ``threads`` given (a serving replica sharing the machine), idle intra-op threads sleep
    instead of spinning: a spinning thread after every small batch burns a core the HTTP work
    of the server and the replica needs (measured: a third of a core on the digits network).
    """

    def __init__(self, path: Path, threads: int = 0) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.outputs = [o.name for o in self.session.get_outputs()]

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return dict(zip(self.outputs, self.session.run(self.outputs, inputs), strict=True))


def _torch_runner(
    path: Path, signature: Signature
) -> Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]:
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        module = torch.export.load(str(path)).module()
    names = [t.name for t in signature.outputs]

    def run(inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        with torch.no_grad():
            out = module(*(torch.from_numpy(np.ascontiguousarray(a)) for a in inputs.values()))
        outs = [out] if isinstance(out, torch.Tensor) else list(out)
        return {n: o.numpy() for n, o in zip(names, outs, strict=True)}

    return run


def _instantiate_python(folder: Path, manifest: Manifest) -> PythonModel:
    if not manifest.entrypoint or ":" not in manifest.entrypoint:
        raise PackageError("python package has no entrypoint 'code/module.py:Class'")
    rel, cls_name = manifest.entrypoint.rsplit(":", 1)
    file = folder / rel
    name = f"shipyard_model_{abs(hash(str(file)))}_{file.stem}"
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise PackageError(f"cannot import {rel}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    instance = getattr(module, cls_name)()
    artifacts = {k: folder / v for k, v in manifest.metadata.get("artifacts", {}).items()}
    instance.setup(Context(artifacts=artifacts, package=folder))
    return instance  # type: ignore[no-any-return]


def runner_for(
    folder: Path, manifest: Manifest, runtime: str | None, threads: int = 0
) -> tuple[str, Callable[[Any], Any]]:
    """Pick a runtime (onnxruntime when an ONNX file exists) and return ``(name, run)``."""
    if manifest.flavor == "python":
        instance = _instantiate_python(folder, manifest)
        return "python", instance.predict
    available = manifest.runtimes
    choice = runtime or ("onnxruntime" if "onnxruntime" in available else "torch")
    if choice not in available:
        raise PackageError(f"runtime {choice!r} is not in this package (has {sorted(available)})")
    if choice == "onnxruntime":
        return choice, OnnxRunner(folder / available[choice], threads).run
    return choice, _torch_runner(folder / available[choice], manifest.signature)
