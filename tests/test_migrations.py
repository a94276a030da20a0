"""Migrations form one chain and match the tables the code declares."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.script import ScriptDirectory

from shipyard.db import make_engine
from shipyard.migrations import alembic_config, upgrade


def test_single_head_and_no_drift(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
    cfg = alembic_config(engine)
    assert len(ScriptDirectory.from_config(cfg).get_heads()) == 1
    upgrade(engine)
    command.check(cfg)  # raises if the models and the migrations disagree
    engine.dispose()
