"""The README documents every setting and every CLI command (so none goes undocumented)."""

from __future__ import annotations

from pathlib import Path

import pytest

from shipyard.client._config import ClientSettings
from shipyard.config import Settings

README = (Path(__file__).parents[1] / "README.md").read_text()


@pytest.mark.parametrize("field", sorted({*Settings.model_fields, *ClientSettings.model_fields}))
def test_every_setting_is_in_the_readme(field: str) -> None:
    assert f"`SHIPYARD_{field.upper()}`" in README


@pytest.mark.parametrize("field", sorted(Settings.model_fields))
def test_every_setting_has_a_description(field: str) -> None:
    assert Settings.model_fields[field].description


def test_the_two_commands_are_in_the_readme() -> None:
    assert "make demo" in README and "make test" in README
    ci = (Path(__file__).parents[1] / ".ci" / "run").read_text()
    assert "make test" in ci
