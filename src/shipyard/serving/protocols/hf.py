"""Hugging Face inference-endpoint style: ``{"inputs": ..., "parameters": {...}}``.

``inputs`` is the single input's value (a batch of rows, or one row, which is batched for
you), or an object by input name. The reply is the output's value (an object for several).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from shipyard.packages import Signature
from shipyard.serving.protocols import ProtocolError, parse_json, prepare, to_array


def decode(signature: Signature, body: bytes) -> tuple[dict[str, np.ndarray], bool]:
    """Inputs, and whether a single unbatched row was sent (the reply is unbatched too)."""
    data = parse_json(body)
    if not isinstance(data, dict) or "inputs" not in data:
        raise ProtocolError("the body must be an object with 'inputs'")
    params = data.get("parameters", {})
    if not isinstance(params, dict):
        raise ProtocolError("'parameters' must be an object")
    inputs = data["inputs"]
    if isinstance(inputs, dict):
        return prepare(signature, {k: to_array(v, k) for k, v in inputs.items()}), False
    spec = signature.inputs[0] if len(signature.inputs) == 1 else None
    if spec is None:
        raise ProtocolError("the model takes several inputs; pass 'inputs' as an object")
    array = to_array(inputs, spec.name)
    single = array.ndim == len(spec.shape) - 1  # one row without its batch dimension
    if single:
        array = array[np.newaxis]
    return prepare(signature, {spec.name: array}), single


def encode(outputs: dict[str, np.ndarray], single: bool) -> Any:
    """The reply: the output (first row only for an unbatched request)."""
    if single:
        outputs = {k: v[0] for k, v in outputs.items()}
    if len(outputs) == 1:
        return next(iter(outputs.values()))
    return outputs
