"""What the API takes: integers bounded to what the store holds, strings the store can keep.

Wire models and route parameters use the integer types below instead of a bare ``int``: a
version is at least 1, an offset at least 0, and nothing is wider than its column (``Integer``
is 32 bits on PostgreSQL, ``BigInteger`` and SQL's ``OFFSET`` 64), so an edge value is a 422
naming the field instead of an ``OverflowError`` from the driver.

Floats are ``Finite`` (an audit record is JSON, which has no NaN), and free-form JSON objects
(a run's ``config``) are ``FreeForm``: integers within 64 bits (replies are written by orjson,
which refuses wider ones) and finite numbers, at any depth.

Strings are checked once per request, by ``refuse_unstorable`` (a dependency of every route,
installed by ``create_app``): a NUL (PostgreSQL's ``text`` refuses it) or a lone UTF-16
surrogate (it has no UTF-8 form: SQLite and psycopg fail to encode it) in a path or query
parameter or anywhere in a JSON body, dict keys included, is a 422 naming the field. Routes that
parse their own JSON body call ``check_json`` on it.
"""

from __future__ import annotations

import email.message
import json
import math
import re
from typing import Annotated, Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import AfterValidator, Field, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

Int32 = Annotated[int, Field(ge=INT32_MIN, le=INT32_MAX)]
"""Any integer an ``Integer`` column holds (an exit code, an image's step)."""
Int64 = Annotated[int, Field(ge=INT64_MIN, le=INT64_MAX)]
"""Any integer a ``BigInteger`` column holds (a metric's step)."""
Count = Annotated[int, Field(ge=0, le=INT32_MAX)]
"""A count or a resource in an ``Integer`` column: GPUs, replicas, attempts."""
Size = Annotated[int, Field(ge=0, le=INT64_MAX)]
"""A size in bytes (a ``BigInteger`` column)."""
Version = Annotated[int, Field(ge=1, le=INT32_MAX)]
"""A version number: 1, 2, ... (an ``Integer`` column)."""
Attempt = Annotated[int, Field(ge=1, le=INT32_MAX)]
"""An attempt of a job: 1, 2, ... (an ``Integer`` column)."""
Offset = Annotated[int, Field(ge=0, le=INT64_MAX)]
"""Rows to skip in a listing (SQL's ``OFFSET`` is 64 bits)."""
Cursor = Annotated[int, Field(ge=0, le=INT32_MAX)]
"""Where a reader of a log is: the id of the last chunk it has (an ``Integer`` column)."""
MAX_LIMIT = 10_000
Limit = Annotated[int, Field(ge=1, le=MAX_LIMIT)]
"""Rows a listing answers at most."""

# What can hide an unstorable string in a JSON body: the escape of a NUL or a surrogate (\u0000,
# \ud800), or the raw UTF-8 bytes of a surrogate (json.loads decodes bytes with "surrogatepass").
# A body with neither (nearly every body) is not walked; `in` looks for their first bytes at
# memchr speed, the expressions only run where those are.
_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")
_RAW_SURROGATE = re.compile(rb"\xed[\xa0-\xbf]")


def _suspect(raw: bytes) -> bool:
    return (b"\\u" in raw and _ESCAPE.search(raw) is not None) or (
        b"\xed" in raw and _RAW_SURROGATE.search(raw) is not None
    )


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _reason(text: str) -> str | None:
    """Why ``text`` cannot be stored, or ``None`` when it can."""
    m = _UNSTORABLE.search(text)
    if m is None:
        return None
    if m[0] == "\x00":
        return "String must not contain NUL (\\u0000): it cannot be stored"
    char = f"\\u{ord(m[0]):04x}"
    return f"String must not contain a lone UTF-16 surrogate ({char}): it is not Unicode text"


def _printable(key: str) -> str:
    """A dict key fit to show in an error's ``loc`` (escaped, cut to 64 characters)."""
    text = _UNSTORABLE.sub(lambda m: f"\\u{ord(m[0]):04x}", key)
    return text if len(text) <= 64 else text[:64] + "…"


def unstorable(
    value: Any, loc: tuple[str | int, ...] = (), numbers: bool = False
) -> dict[str, Any] | None:
    """The first value in ``value`` (JSON data) the store cannot keep, as a pydantic-style error
    (``type``, ``loc``, ``msg``), or ``None``: strings with NUL or a lone surrogate (dict keys
    too), and with ``numbers`` integers past 64 bits and NaN or infinite floats."""
    stack: list[tuple[tuple[str | int, ...], Any]] = [(loc, value)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, str):
            if (reason := _reason(item)) is not None:
                return {"type": "string_unstorable", "loc": where, "msg": reason}
        elif isinstance(item, bool) or not numbers and isinstance(item, int | float):
            continue
        elif isinstance(item, int):
            if not INT64_MIN <= item <= INT64_MAX:
                msg = f"Integer must be between {INT64_MIN} and {INT64_MAX} (64 bits)"
                return {"type": "int_unstorable", "loc": where, "msg": msg}
        elif isinstance(item, float):
            if not math.isfinite(item):
                msg = "Number must be finite: JSON has no NaN or infinity"
                return {"type": "finite_number", "loc": where, "msg": msg}
        elif isinstance(item, dict):
            for key, child in item.items():
                if isinstance(key, str) and (reason := _reason(key)) is not None:
                    msg = "Key" + reason.removeprefix("String")
                    key_loc = (*where, _printable(key))
                    return {"type": "string_unstorable", "loc": key_loc, "msg": msg}
                stack.append(((*where, key), child))
        elif isinstance(item, list | tuple):
            stack.extend(((*where, i), child) for i, child in enumerate(item))
    return None


def _storable_json(value: dict[str, Any]) -> dict[str, Any]:
    if (error := unstorable(value, numbers=True)) is not None:
        detail = InitErrorDetails(
            type=PydanticCustomError(error["type"], error["msg"]), loc=error["loc"], input=None
        )
        raise ValidationError.from_exception_data("FreeForm", [detail])
    return value


FreeForm = Annotated[dict[str, Any], AfterValidator(_storable_json)]
"""A free-form JSON object (a run's config, its environment): any keys and values, with
integers within 64 bits (replies are written by orjson) and finite numbers (a JSON column holds
no NaN)."""
Finite = Annotated[float, Field(allow_inf_nan=False)]
"""A float a JSON column (an audit record) can hold: no NaN, no infinity."""


def _refuse(error: dict[str, Any]) -> RequestValidationError:
    return RequestValidationError([{**error, "input": None}])


def check_json(raw: bytes) -> None:
    """Refuse (422, naming the field) a JSON body holding a value the store cannot keep; a body
    that is not JSON is left to its parser."""
    if _suspect(raw):
        try:
            data = json.loads(raw)
        except ValueError:
            return
        if (error := unstorable(data, ("body",))) is not None:
            raise _refuse(error)


def _is_json(content_type: str | None) -> bool:
    """Whether FastAPI parses a body of this type as JSON."""
    if not content_type:
        return False
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )


async def refuse_unstorable(request: Request) -> None:
    """Refuse (422, naming the field) a request whose path or query parameters, or JSON body
    parsed for its route, hold a value the store cannot keep."""
    for name, value in request.path_params.items():
        if isinstance(value, str) and (reason := _reason(value)) is not None:
            raise _refuse({"type": "string_unstorable", "loc": ("path", name), "msg": reason})
    for name, value in request.query_params.multi_items():
        for text in (name, value):
            if (reason := _reason(text)) is not None:
                loc = ("query", _printable(name))
                raise _refuse({"type": "string_unstorable", "loc": loc, "msg": reason})
    # Only a body the route declares, which FastAPI has read and parsed already: a streamed
    # upload is never read here, and a route parsing its own body calls check_json itself.
    route = request.scope.get("route")
    if getattr(route, "body_field", None) is None:
        return
    if _is_json(request.headers.get("content-type")):
        raw = await request.body()
        if _suspect(raw):
            error = unstorable(await request.json(), ("body",))
            if error is not None:
                raise _refuse(error)
