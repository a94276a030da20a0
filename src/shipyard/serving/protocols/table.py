"""The one table of inference protocols: each protocol's request paths, the path the server
forwards each to on a replica, and how a request body is read and a reply written.

Everything that knows a protocol path reads it here: the server's inference routes and their
fast path (``serving.inference``), the replica's routes and its fast path (``serving.replica``)
and input drift (``serving.drift``, which decodes the recent bodies by the protocol of the path
they were sent to). A template's ``{name}`` and ``{version}`` are one path segment each.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from shipyard.packages import Signature
from shipyard.serving.protocols import hf, tfserving, v2

# body -> (inputs by name, what the reply needs to know of the request: its format, its echo)
Decode = Callable[[Signature, bytes], tuple[dict[str, np.ndarray], Any]]
# (outputs, what ``Decode`` kept, endpoint name, version) -> the reply as JSON-able values
Encode = Callable[[dict[str, np.ndarray], Any, str, int | None], Any]


@dataclass(frozen=True, slots=True)
class InferPath:
    """One inference POST path of a protocol."""

    template: str  # the route, e.g. "/v1/models/{name}/versions/{version}:predict"
    replica: str  # the path the server sends it to on a replica ({name}, {version} filled)
    summary: str  # what the route does, for its OpenAPI entry
    pattern: re.Pattern[str]  # the template as a regex, with groups ``name`` (and ``version``)

    @property
    def versioned(self) -> bool:
        return "{version}" in self.template


@dataclass(frozen=True, slots=True)
class Protocol:
    """A request and reply format, and the paths that speak it."""

    name: str  # tfserving | v2 | hf
    decode: Decode
    encode: Encode
    paths: tuple[InferPath, ...]
    standalone: tuple[str, ...] = ()  # more paths a replica answers when run on its own

    @property
    def on_replica(self) -> tuple[str, ...]:
        """The paths a replica answers in this protocol."""
        return (*(path.template for path in self.paths), *self.standalone)


def pattern(template: str) -> re.Pattern[str]:
    """A path template as a regex matching a whole path, ``{name}``/``{version}`` as groups."""
    regex = re.escape(template)
    for group in ("name", "version"):
        regex = regex.replace(re.escape(f"{{{group}}}"), f"(?P<{group}>[^/]+)")
    return re.compile(f"^{regex}$")


def _path(template: str, replica: str, summary: str) -> InferPath:
    return InferPath(template, replica, summary, pattern(template))


TFSERVING = Protocol(
    "tfserving",
    tfserving.decode,
    lambda outputs, fmt, _name, _version: tfserving.encode(outputs, fmt),
    (
        _path(
            "/v1/models/{name}:predict",
            "/v1/models/{name}:predict",
            "TensorFlow Serving predict (row ``instances`` or columnar ``inputs``).",
        ),
        _path(
            "/v1/models/{name}/versions/{version}:predict",
            "/v1/models/{name}:predict",  # the replica serves one version
            "TensorFlow Serving predict on one version.",
        ),
    ),
)
V2 = Protocol(
    "v2",
    v2.decode,
    lambda outputs, echo, name, version: v2.encode(name, version, outputs, echo),
    (
        _path(
            "/v2/models/{name}/infer",
            "/v2/models/{name}/infer",
            "Open Inference infer with typed tensors.",
        ),
        _path(
            "/v2/models/{name}/versions/{version}/infer",
            "/v2/models/{name}/versions/{version}/infer",
            "Open Inference infer on one version.",
        ),
    ),
)
HF = Protocol(
    "hf",
    hf.decode,
    lambda outputs, single, _name, _version: hf.encode(outputs, single),
    (
        _path(
            "/endpoints/{name}/predict",
            "/endpoints/{name}/predict",
            'Hugging Face-style: ``{"inputs": ..., "parameters": {...}}``.',
        ),
    ),
    standalone=("/",),  # ``shipyard serve DIR`` answers a bare POST / as an HF endpoint does
)
PROTOCOLS = (TFSERVING, V2, HF)
# Every inference path with its protocol, in the order a request path is matched.
PATHS = tuple((protocol, path) for protocol in PROTOCOLS for path in protocol.paths)
# The beginnings of the inference paths: a request starting with none of them is not one.
PREFIXES = tuple(dict.fromkeys(path.template.split("{", 1)[0] for _, path in PATHS))


def protocol_of(path: str) -> Protocol | None:
    """The protocol of a request (or replica) path; None for a path that is none of them."""
    for protocol, infer in PATHS:
        if infer.pattern.match(path):
            return protocol
    return None
