"""Model signatures: named tensors with dtype and shape, inferred from examples and enforced.

A shape dimension of -1 accepts any size (the batch dimension always is -1). Inputs are cast
when numpy calls the cast "same kind" (float64 -> float32, int -> float); anything else, a wrong
rank or a wrong fixed dimension is refused with an error naming the input, the expected and the
given shape and dtype.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from shipyard.errors import BadRequest


class SignatureError(BadRequest):
    """Inputs that do not match a model's signature."""

    title = "Input does not match the model signature"


@dataclass(frozen=True)
class TensorSpec:
    """One named tensor: dtype (numpy name) and shape (-1 = any size)."""

    name: str
    dtype: str
    shape: list[int]

    def describe(self) -> str:
        return f"{self.dtype}{list(self.shape)}"


@dataclass(frozen=True)
class Signature:
    """Inputs and outputs of a model."""

    inputs: list[TensorSpec] = field(default_factory=list)
    outputs: list[TensorSpec] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "inputs": [asdict(t) for t in self.inputs],
            "outputs": [asdict(t) for t in self.outputs],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Signature:
        return cls(
            inputs=[TensorSpec(t["name"], t["dtype"], list(t["shape"])) for t in data["inputs"]],
            outputs=[TensorSpec(t["name"], t["dtype"], list(t["shape"])) for t in data["outputs"]],
        )

    def prepare(self, inputs: Any) -> dict[str, np.ndarray]:
        """Name, check and cast ``inputs`` (an array, or a dict of arrays) for the model."""
        if not isinstance(inputs, dict):
            if len(self.inputs) != 1:
                names = ", ".join(t.name for t in self.inputs)
                raise SignatureError(
                    f"the model takes {len(self.inputs)} inputs ({names}); pass a dict of arrays"
                )
            inputs = {self.inputs[0].name: inputs}
        unknown = set(inputs) - {t.name for t in self.inputs}
        if unknown:
            raise SignatureError(
                f"unknown input(s) {sorted(unknown)}; the model takes "
                f"{[t.name for t in self.inputs]}"
            )
        return {spec.name: _check(spec, inputs.get(spec.name)) for spec in self.inputs}


def _check(spec: TensorSpec, value: Any) -> np.ndarray:
    if value is None:
        raise SignatureError(f"input {spec.name!r} is missing (expected {spec.describe()})")
    array = np.asarray(value)
    expected = np.dtype(spec.dtype)
    if array.ndim != len(spec.shape) or any(
        want not in (-1, got) for want, got in zip(spec.shape, array.shape, strict=True)
    ):
        raise SignatureError(
            f"input {spec.name!r}: expected shape {spec.describe()}, got {_given(array)}"
        )
    if array.dtype != expected:
        if not np.can_cast(array.dtype, expected, casting="same_kind"):
            raise SignatureError(
                f"input {spec.name!r}: expected dtype {spec.describe()}, got {_given(array)}"
            )
        array = array.astype(expected)
    return array


def _given(array: np.ndarray) -> str:
    # Only for errors: naming a dtype costs more than the whole check (serving calls this per
    # request).
    return f"{array.dtype}{list(array.shape)}"


def spec_of(name: str, value: Any) -> TensorSpec:
    """The spec of an example tensor; its first dimension becomes the batch dimension (-1)."""
    array = np.asarray(value)
    if array.ndim == 0:
        raise ValueError(f"example {name!r} must have a batch dimension, got a scalar")
    if array.dtype == object or array.dtype.kind in "OV":
        raise ValueError(f"example {name!r} has dtype {array.dtype}; use numeric or string arrays")
    return TensorSpec(name, str(array.dtype), [-1, *array.shape[1:]])


def infer(inputs: Any, outputs: Any, input_names: list[str] | None = None) -> Signature:
    """A signature from an input example and the model's output on it."""
    if isinstance(inputs, dict):
        ins = [spec_of(k, v) for k, v in inputs.items()]
    else:
        ins = [spec_of((input_names or ["input"])[0], inputs)]
    if isinstance(outputs, dict):
        outs = [spec_of(k, v) for k, v in outputs.items()]
    elif isinstance(outputs, list | tuple):
        outs = [spec_of(f"output_{i}", v) for i, v in enumerate(outputs)]
    else:
        outs = [spec_of("output", outputs)]
    return Signature(ins, outs)
