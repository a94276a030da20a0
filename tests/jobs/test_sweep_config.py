"""A malformed sweep.yaml is a 422 naming the field, never a 500 (its values are free-form JSON)."""

from __future__ import annotations

from typing import Any

import pytest

from shipyard.errors import Unprocessable
from shipyard.jobs.sweeps import parse_config

SWEEP: dict[str, Any] = {
    "method": "grid",
    "metric": {"name": "acc", "goal": "maximize"},
    "parameters": {"x": {"values": [1, 2]}},
    "command": ["true", "${args}"],
}
RANGE = {"x": {"min": 0, "max": 1, "distribution": "q_uniform", "q": "x"}}


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"run_cap": "x"}, "run_cap"),
        ({"run_cap": [1]}, "run_cap"),
        ({"run_cap": 1.5}, "run_cap"),
        ({"parallelism": None}, "parallelism"),
        ({"resources": 5}, "resources"),
        ({"env": [1]}, "env"),
        ({"datasets": "ds@1"}, "datasets"),
        ({"method": "random", "parameters": RANGE}, "q must be"),
        ({"early_terminate": {"type": "asha", "min_iter": "x"}}, "early_terminate.min_iter"),
        ({"early_terminate": {"type": "asha", "eta": 1}}, "early_terminate.eta"),
        (
            {"early_terminate": {"type": "median", "min_trials": 2**63}},
            "early_terminate.min_trials",
        ),
    ],
)
def test_a_malformed_field_is_refused_by_name(extra: dict[str, Any], field: str) -> None:
    with pytest.raises(Unprocessable, match=field):
        parse_config({**SWEEP, **extra})


def test_whole_floats_and_absent_mappings_still_parse() -> None:
    spec = parse_config({**SWEEP, "run_cap": 2.0, "parallelism": 1, "env": None, "resources": None})
    assert (spec.run_cap, spec.parallelism, spec.job) == (2, 1, {"env": {}})
