"""Alembic migrations of the store, applied at server start and by ``shipyard db upgrade``."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, MetaData

HERE = Path(__file__).parent


def alembic_config(engine: Engine) -> Config:
    """An Alembic config bound to ``engine`` (no alembic.ini needed)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the store up to ``revision``."""
    command.upgrade(alembic_config(engine), revision)


def metadata() -> MetaData:
    """Every feature's tables on one MetaData (imports the table modules)."""
    from shipyard.audit import tables as _audit  # noqa: F401
    from shipyard.auth import tables as _auth  # noqa: F401
    from shipyard.data import tables as _data  # noqa: F401
    from shipyard.db import Base
    from shipyard.jobs import tables as _jobs  # noqa: F401
    from shipyard.monitoring import tables as _monitoring  # noqa: F401
    from shipyard.registry import tables as _registry  # noqa: F401
    from shipyard.serving import tables as _serving  # noqa: F401
    from shipyard.tracking import tables as _tracking  # noqa: F401

    return Base.metadata
