"""TensorFlow Serving's REST API: ``POST /v1/models/{name}[/versions/{v}]:predict``.

Row format: ``{"instances": [...]}`` -> ``{"predictions": [...]}``; one instance per row, a dict
of named values when the model has several inputs. Columnar format: ``{"inputs": value}`` or
``{"inputs": {name: value}}`` -> ``{"outputs": value | {name: value}}``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from shipyard.packages import Signature
from shipyard.serving.protocols import ProtocolError, parse_json, prepare, to_array


def decode(signature: Signature, body: bytes) -> tuple[dict[str, np.ndarray], str]:
    """Inputs and the format (``row`` or ``columnar``) the reply must use."""
    data = parse_json(body)
    if not isinstance(data, dict):
        raise ProtocolError("the body must be a JSON object with 'instances' or 'inputs'")
    if ("instances" in data) == ("inputs" in data):
        raise ProtocolError("the body must have exactly one of 'instances' or 'inputs'")
    names = [t.name for t in signature.inputs]
    if "instances" in data:
        instances = data["instances"]
        if not isinstance(instances, list) or not instances:
            raise ProtocolError("'instances' must be a non-empty list")
        if len(names) == 1 and not isinstance(instances[0], dict):
            return prepare(signature, {names[0]: to_array(instances, names[0])}), "row"
        if not all(isinstance(i, dict) for i in instances):
            raise ProtocolError("with several inputs each instance must be an object by name")
        columns = {
            n: to_array([i.get(n) for i in instances], n)
            for n in names
            if any(n in i for i in instances)
        }
        return prepare(signature, columns), "row"
    inputs = data["inputs"]
    if isinstance(inputs, dict):
        return prepare(signature, {k: to_array(v, k) for k, v in inputs.items()}), "columnar"
    if len(names) != 1:
        raise ProtocolError(f"the model takes inputs {names}; pass 'inputs' as an object")
    return prepare(signature, {names[0]: to_array(inputs, names[0])}), "columnar"


def encode(outputs: dict[str, np.ndarray], fmt: str) -> dict[str, Any]:
    """The reply body for ``outputs`` in the request's format."""
    if fmt == "columnar":
        if len(outputs) == 1:
            return {"outputs": next(iter(outputs.values()))}
        return {"outputs": outputs}
    if len(outputs) == 1:
        return {"predictions": next(iter(outputs.values()))}
    n = len(next(iter(outputs.values())))
    return {"predictions": [{k: v[i] for k, v in outputs.items()} for i in range(n)]}


def status(name: str, versions: list[int], ready: bool) -> dict[str, Any]:
    """``GET /v1/models/{name}``: the model's version status list."""
    state = "AVAILABLE" if ready else "LOADING"
    return {
        "model_version_status": [
            {"version": str(v), "state": state, "status": {"error_code": "OK", "error_message": ""}}
            for v in versions
        ]
    }


_TF_DTYPES = {
    "float32": "DT_FLOAT",
    "float64": "DT_DOUBLE",
    "int32": "DT_INT32",
    "int64": "DT_INT64",
    "uint8": "DT_UINT8",
    "int8": "DT_INT8",
    "bool": "DT_BOOL",
    "float16": "DT_HALF",
    "int16": "DT_INT16",
}


def metadata(name: str, version: int, signature: Signature) -> dict[str, Any]:
    """``GET /v1/models/{name}/metadata``: the serving_default signature."""

    def tensors(specs: Any) -> dict[str, Any]:
        return {
            t.name: {
                "dtype": _TF_DTYPES.get(t.dtype, "DT_STRING"),
                "name": t.name,
                "tensor_shape": {
                    "dim": [{"size": str(d), "name": ""} for d in t.shape],
                    "unknown_rank": False,
                },
            }
            for t in specs
        }

    return {
        "model_spec": {"name": name, "signature_name": "", "version": str(version)},
        "metadata": {
            "signature_def": {
                "signature_def": {
                    "serving_default": {
                        "inputs": tensors(signature.inputs),
                        "outputs": tensors(signature.outputs),
                        "method_name": "tensorflow/serving/predict",
                    }
                }
            }
        },
    }
