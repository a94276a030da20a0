"""Request and response formats: TensorFlow Serving REST, Open Inference (KServe V2), HF-style.

Each protocol turns a request body into named numpy arrays for the model's signature and the
model's outputs back into its response. Errors are 400s whose problem+json body also carries the
``error`` member these protocols' own clients read.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson

from shipyard.errors import BadRequest
from shipyard.packages import Signature, SignatureError


class ProtocolError(BadRequest):
    """A request that does not follow its protocol."""

    title = "Bad inference request"

    def problem(self) -> dict[str, Any]:
        body = super().problem()
        body["error"] = self.detail  # what TF Serving and KServe clients read
        return body


def parse_json(body: bytes) -> Any:
    """The request body as JSON (NaN/Infinity not accepted: tensors are finite on the wire)."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError(f"the request body is not valid JSON: {exc}") from None


def to_array(value: Any, name: str, dtype: str | None = None) -> np.ndarray:
    """A nested list (or scalar) as an array, with a clear error for ragged input."""
    try:
        array = np.asarray(value) if dtype is None else np.asarray(value, dtype=dtype)
    except (ValueError, TypeError) as exc:
        raise ProtocolError(f"input {name!r}: {exc}") from None
    if array.dtype == object and dtype is None:
        raise ProtocolError(f"input {name!r} is ragged or mixes types")
    return array


def prepare(signature: Signature, inputs: Any) -> dict[str, np.ndarray]:
    """Check and cast inputs for the signature; signature errors become protocol 400s."""
    try:
        return signature.prepare(inputs)
    except SignatureError as exc:
        raise ProtocolError(exc.detail) from None


def rows(arrays: dict[str, np.ndarray]) -> int:
    """The batch size of a request (the first dimension, equal across inputs)."""
    sizes = {a.shape[0] if a.ndim else 1 for a in arrays.values()}
    if len(sizes) != 1:
        raise ProtocolError(f"inputs have different batch sizes: {sorted(sizes)}")
    return sizes.pop()


def dumps(value: Any) -> bytes:
    """JSON with numpy arrays written natively (fast path for float32/64 outputs)."""
    return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY)
