"""Every error class renders a well-formed problem and survives the trip back through the SDK."""

from __future__ import annotations

import pytest

from shipyard import errors

CLASSES = [
    errors.BadRequest,
    errors.PathNotAllowed,
    errors.Unauthorized,
    errors.Forbidden,
    errors.NotFound,
    errors.Conflict,
    errors.PayloadTooLarge,
    errors.Unprocessable,
    errors.Unavailable,
]


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_problem_shape(cls: type[errors.ShipyardError]) -> None:
    body = cls("thing 'x' is wrong", errors=[{"loc": ["body"], "msg": "m"}]).problem()
    assert isinstance(body, dict)
    assert body == {
        "type": "about:blank",
        "title": cls.title,
        "status": cls.status,
        "detail": "thing 'x' is wrong",
        "errors": [{"loc": ["body"], "msg": "m"}],
    }
    assert 400 <= body["status"] < 600


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_round_trip_through_problem(cls: type[errors.ShipyardError]) -> None:
    again = errors.from_problem(cls.status, cls("why").problem())
    assert isinstance(again, errors.ERRORS_BY_STATUS[cls.status])
    assert again.detail == "why"


def test_unknown_status_becomes_the_base_error() -> None:
    err = errors.from_problem(418, {"detail": "teapot"})
    assert type(err) is errors.ShipyardError and err.detail == "teapot"
