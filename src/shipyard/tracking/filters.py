"""The run filter language, parsed by hand into SQLAlchemy expressions (never eval, never SQL text).

    filter  := or
    or      := and ("or" and)*
    and     := unary ("and" unary)*
    unary   := "not" unary | "(" or ")" | compare
    compare := field OP value | field "in" "(" value ("," value)* ")"
    OP      := = == != < <= > >= ~        (~ is "contains", for strings)
    field   := config.PATH | summary.KEY | metrics.KEY | min.KEY | max.KEY
             | tags | status | name | user | id | created_at | finished_at
    value   := number | "string" | 'string' | true | false | null | now[-Nd] | bare-word

``summary.KEY`` (alias ``metrics.KEY``) is the last value of a metric, ``min.KEY`` and ``max.KEY``
its extremes. ``tags = "x"`` holds when x is one of the run's tags. Dates compare with ISO strings
or ``now-7d`` (s, m, h, d, w). A field or key with spaces can be written in backticks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, String, and_, cast, exists, not_, or_, select, true
from sqlalchemy.orm import aliased

from shipyard.auth.tables import User
from shipyard.db import utcnow
from shipyard.errors import Unprocessable
from shipyard.tracking.tables import ConfigValue, MetricSummary, Run

TOKEN = re.compile(
    r"""\s*(?:
      (?P<num>-?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?(?![\w/.-]))
    | (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
    | (?P<tick>`[^`]*`)
    | (?P<op>==|!=|<=|>=|=|<|>|~|\(|\)|,)
    | (?P<word>[A-Za-z_][\w./:+-]*(?:`[^`]*`)?)
    )""",
    re.VERBOSE,
)
DURATION = re.compile(r"^now(?:-(\d+)([smhdw]))?$")
UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
KEYWORDS = {"and", "or", "not", "in"}
SIMPLE = {"status", "name", "id", "created_at", "finished_at", "updated_at"}
SUMMARY_ROOTS = {"summary": "last", "metrics": "last", "min": "min", "max": "max"}


@dataclass
class Tok:
    kind: str
    text: str
    pos: int


def tokenize(text: str) -> list[Tok]:
    """Split a filter into tokens; a character that starts no token is an error."""
    toks: list[Tok] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise Unprocessable(f"filter: unexpected {text[pos:].strip()[:20]!r} at {pos}")
        kind = m.lastgroup or ""
        toks.append(Tok(kind, m.group(kind), m.start(kind)))
        pos = m.end()
    return toks


class Parser:
    """Recursive descent over the tokens, building a SQL expression on ``Run``."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = tokenize(text)
        self.i = 0

    def parse(self) -> ColumnElement[bool]:
        if not self.toks:
            return true()
        expr = self._or()
        if self.i < len(self.toks):
            self._fail(f"unexpected {self.toks[self.i].text!r}")
        return expr

    def _fail(self, msg: str) -> None:
        raise Unprocessable(f"filter {self.text!r}: {msg}")

    def _peek(self) -> Tok | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def _take(self) -> Tok:
        tok = self._peek()
        if tok is None:
            self._fail("ends too early")
            raise AssertionError
        self.i += 1
        return tok

    def _word(self, word: str) -> bool:
        tok = self._peek()
        if tok is not None and tok.kind == "word" and tok.text.lower() == word:
            self.i += 1
            return True
        return False

    def _or(self) -> ColumnElement[bool]:
        parts = [self._and()]
        while self._word("or"):
            parts.append(self._and())
        return parts[0] if len(parts) == 1 else or_(*parts)

    def _and(self) -> ColumnElement[bool]:
        parts = [self._unary()]
        while self._word("and"):
            parts.append(self._unary())
        return parts[0] if len(parts) == 1 else and_(*parts)

    def _unary(self) -> ColumnElement[bool]:
        if self._word("not"):
            return not_(self._unary())
        tok = self._peek()
        if tok is not None and tok.kind == "op" and tok.text == "(":
            self.i += 1
            inner = self._or()
            close = self._take()
            if close.text != ")":
                self._fail(f"expected ')' at {close.pos}")
            return inner
        return self._compare()

    def _compare(self) -> ColumnElement[bool]:
        field = self._take()
        if field.kind not in ("word", "tick") or field.text.lower() in KEYWORDS:
            self._fail(f"expected a field at {field.pos}, got {field.text!r}")
        name = field.text
        if self._word("in"):
            if self._take().text != "(":
                self._fail("expected '(' after 'in'")
            values = [self._value()]
            while (tok := self._take()).text == ",":
                values.append(self._value())
            if tok.text != ")":
                self._fail(f"expected ')' at {tok.pos}")
            return or_(*(compare(name, "=", v) for v in values))
        op = self._take()
        if op.kind != "op" or op.text in "(),":
            self._fail(f"expected an operator after {name!r}, got {op.text!r}")
        return compare(name, op.text, self._value())

    def _value(self) -> Any:
        tok = self._take()
        if tok.kind == "num":
            return float(tok.text) if any(c in tok.text for c in ".eE") else int(tok.text)
        if tok.kind == "str":
            return bytes(tok.text[1:-1], "utf-8").decode("unicode_escape")
        if tok.kind == "word":
            low = tok.text.lower()
            if low in ("true", "false"):
                return low == "true"
            if low == "null":
                return None
            if m := DURATION.match(low):
                amount = int(m.group(1) or 0)
                return utcnow() - timedelta(**{UNITS[m.group(2) or "s"]: amount})
            return tok.text
        self._fail(f"expected a value at {tok.pos}, got {tok.text!r}")
        raise AssertionError


def _split_field(name: str) -> tuple[str, str]:
    name = name.replace("`", "")
    root, _, rest = name.partition(".")
    return root.lower(), rest


def _cmp(col: Any, op: str, value: Any) -> ColumnElement[bool]:
    if value is None:
        if op in ("=", "=="):
            return col.is_(None)  # type: ignore[no-any-return]
        if op == "!=":
            return col.is_not(None)  # type: ignore[no-any-return]
        raise Unprocessable(f"filter: null only compares with = or !=, not {op!r}")
    if op == "~":
        return col.contains(str(value))  # type: ignore[no-any-return]
    ops = {
        "=": col.__eq__,
        "==": col.__eq__,
        "!=": col.__ne__,
        "<": col.__lt__,
        "<=": col.__le__,
        ">": col.__gt__,
        ">=": col.__ge__,
    }
    result: ColumnElement[bool] = ops[op](value)
    return result


def _date(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError as exc:
        raise Unprocessable(f"filter: {value!r} is not a date (use ISO 8601 or now-7d)") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=utcnow().tzinfo)


def compare(name: str, op: str, value: Any) -> ColumnElement[bool]:
    """The SQL condition for one ``field OP value``."""
    root, rest = _split_field(name)
    if root in SUMMARY_ROOTS and rest:
        ms = aliased(MetricSummary)
        col = getattr(ms, SUMMARY_ROOTS[root])
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise Unprocessable(f"filter: {name} compares with a number, not {value!r}")
        return exists(
            select(ms.run_id).where(ms.run_id == Run.id, ms.key == rest, _cmp(col, op, value))
        )
    if root == "config" and rest:
        cv = aliased(ConfigValue)
        if value is None:
            present = exists(
                select(cv.run_id).where(
                    cv.run_id == Run.id,
                    cv.key == rest,
                    or_(cv.num.is_not(None), cv.text.is_not(None)),
                )
            )
            if op not in ("=", "==", "!="):
                raise Unprocessable(f"filter: null only compares with = or !=, not {op!r}")
            return not_(present) if op != "!=" else present
        if isinstance(value, bool):
            cond = _cmp(cv.text, op, "true" if value else "false")
        elif isinstance(value, int | float):
            cond = _cmp(cv.num, op, float(value))
        else:
            cond = _cmp(cv.text, op, str(value))
        return exists(select(cv.run_id).where(cv.run_id == Run.id, cv.key == rest, cond))
    if root in ("tags", "tag") and not rest:
        if op not in ("=", "==", "!=", "~"):
            raise Unprocessable("filter: tags support =, != and ~ (has tag / lacks tag / contains)")
        text = cast(Run.tags, String)
        needle = str(value) if op == "~" else f'"{value}"'
        has = text.contains(needle, autoescape=True)
        return not_(has) if op == "!=" else has
    if root == "user" and not rest:
        return exists(select(User.id).where(User.id == Run.created_by, _cmp(User.name, op, value)))
    if root in SIMPLE and not rest:
        col = getattr(Run, root)
        if root.endswith("_at"):
            return _cmp(col, op, None if value is None else _date(value))
        return _cmp(col, op, None if value is None else str(value))
    raise Unprocessable(
        f"filter: unknown field {name!r}; use config.X, summary.X, min.X, max.X, tags, status, "
        "name, user, id, created_at or finished_at"
    )


def parse_filter(text: str | None) -> ColumnElement[bool]:
    """Parse a filter into a condition on ``Run``; an empty filter matches every run."""
    if not text or not text.strip():
        return true()
    if len(text) > 4096:
        raise Unprocessable("filter: longer than 4096 characters")
    return Parser(text).parse()


def order_column(field: str) -> tuple[Any, Any]:
    """``(column, join)`` for sorting by ``field``; ``join`` is a summary alias to outer-join."""
    root, rest = _split_field(field)
    if root in SUMMARY_ROOTS and rest:
        ms = aliased(MetricSummary)
        return getattr(ms, SUMMARY_ROOTS[root]), (ms, and_(ms.run_id == Run.id, ms.key == rest))
    if root == "config" and rest:
        cv = aliased(ConfigValue)
        return cv.num, (cv, and_(cv.run_id == Run.id, cv.key == rest))
    if root in SIMPLE and not rest:
        return getattr(Run, root), None
    raise Unprocessable(f"order_by: unknown field {field!r}")
