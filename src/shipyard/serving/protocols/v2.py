"""The Open Inference Protocol (KServe V2) over REST.

``POST /v2/models/{name}[/versions/{v}]/infer`` with ``{"inputs": [{"name", "shape",
"datatype", "data"}], "outputs": [{"name"}]?, "id"?, "parameters"?}``; ``data`` is row-major
(flat or nested). The reply has ``model_name``, ``model_version``, ``id`` and typed ``outputs``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from shipyard.packages import Signature
from shipyard.serving.protocols import ProtocolError, parse_json, prepare

DATATYPES = {
    "BOOL": "bool",
    "UINT8": "uint8",
    "UINT16": "uint16",
    "UINT32": "uint32",
    "UINT64": "uint64",
    "INT8": "int8",
    "INT16": "int16",
    "INT32": "int32",
    "INT64": "int64",
    "FP16": "float16",
    "FP32": "float32",
    "FP64": "float64",
    "BYTES": "object",
}
NUMPY_TO_V2 = {v: k for k, v in DATATYPES.items()}


def datatype(dtype: str) -> str:
    """The V2 datatype of a numpy dtype name (strings are BYTES)."""
    return NUMPY_TO_V2.get(str(np.dtype(dtype)) if dtype != "object" else "object", "BYTES")


def decode(signature: Signature, body: bytes) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Inputs, and what the reply must echo (``id``, requested ``outputs``)."""
    data = parse_json(body)
    if not isinstance(data, dict) or not isinstance(data.get("inputs"), list):
        raise ProtocolError("the body must be an object with an 'inputs' list")
    arrays: dict[str, np.ndarray] = {}
    for i, tensor in enumerate(data["inputs"]):
        if not isinstance(tensor, dict):
            raise ProtocolError(f"inputs[{i}] must be an object")
        missing = [f for f in ("name", "shape", "datatype", "data") if f not in tensor]
        if missing:
            raise ProtocolError(f"inputs[{i}] lacks {', '.join(missing)}")
        name, shape, dt = tensor["name"], tensor["shape"], tensor["datatype"]
        if dt not in DATATYPES:
            raise ProtocolError(f"input {name!r}: unknown datatype {dt!r}")
        if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
            raise ProtocolError(f"input {name!r}: shape must be a list of non-negative integers")
        try:
            flat = np.asarray(tensor["data"], dtype=DATATYPES[dt])
        except (ValueError, TypeError) as exc:
            raise ProtocolError(f"input {name!r}: data is not {dt}: {exc}") from None
        if dt == "BYTES":
            flat = np.asarray(
                [v.decode() if isinstance(v, bytes) else v for v in flat.reshape(-1)], dtype=object
            )
        if flat.size != int(np.prod(shape)):
            raise ProtocolError(f"input {name!r}: {flat.size} values do not fill shape {shape}")
        arrays[name] = flat.reshape(shape)
    requested = data.get("outputs")
    echo = {
        "id": data.get("id"),
        "outputs": [o.get("name") for o in requested if isinstance(o, dict)] if requested else None,
    }
    return prepare(signature, arrays), echo


def encode(
    name: str, version: int | None, outputs: dict[str, np.ndarray], echo: dict[str, Any]
) -> dict[str, Any]:
    """The reply body, typed, flat row-major data, only the requested outputs if any."""
    wanted = echo.get("outputs")
    tensors = []
    for key, value in outputs.items():
        if wanted and key not in wanted:
            continue
        array = np.asarray(value)
        tensors.append(
            {
                "name": key,
                "shape": list(array.shape),
                "datatype": datatype(str(array.dtype)),
                "data": array.reshape(-1)
                if array.dtype != object
                else [str(v) for v in array.reshape(-1)],
            }
        )
    body: dict[str, Any] = {"model_name": name, "outputs": tensors}
    if version is not None:
        body["model_version"] = str(version)
    if echo.get("id") is not None:
        body["id"] = echo["id"]
    return body


def metadata(name: str, versions: list[int], signature: Signature) -> dict[str, Any]:
    """``GET /v2/models/{name}``."""

    def tensors(specs: Any) -> list[dict[str, Any]]:
        return [{"name": t.name, "datatype": datatype(t.dtype), "shape": t.shape} for t in specs]

    return {
        "name": name,
        "versions": [str(v) for v in versions],
        "platform": "shipyard",
        "inputs": tensors(signature.inputs),
        "outputs": tensors(signature.outputs),
    }
