"""The import contract (``[tool.importlinter]`` in pyproject.toml) holds, and it would catch the
imports it forbids: run on a small fixture tree of the same shape with one bad import each."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
LINT = Path(sys.executable).with_name("lint-imports")


def lint(config: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT), str(config), "--no-cache"],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={"PYTHONPATH": str(cwd), "PATH": "/usr/bin:/bin"},
        timeout=120,
    )


def test_the_import_contract_is_kept() -> None:
    proc = lint(ROOT / "pyproject.toml", ROOT / "src")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "0 broken" in proc.stdout


def _modules() -> set[str]:
    """Every module the contracts name, in the fixture package's terms."""
    found = set()
    for contract in CONFIG["contracts"]:
        for key in (
            "protected_modules",
            "allowed_importers",
            "source_modules",
            "forbidden_modules",
        ):
            for name in contract.get(key, []):
                if name.startswith("shipyard"):
                    found.add(name.replace("shipyard", "fixture", 1).removesuffix(".*"))
    return found


def fixture_tree(tmp_path: Path, bad: tuple[str, str] | None) -> Path:
    """A package ``fixture`` with every module the contracts name (a ``tables``, ``service`` and
    private ``_impl`` module in each feature), a proper import across features, and ``bad``
    (importer, imported) if given; returns the config file, the contracts copied with
    ``shipyard`` renamed and without the product's ignored imports."""
    pkg = tmp_path / "fixture"
    for name in _modules() | {"fixture"}:
        parts = name.split(".")
        folder = pkg.joinpath(*parts[1:])
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "__init__.py").touch()
        for module in ("tables", "service", "_impl"):
            (folder / f"{module}.py").write_text("X = 1\n")
    # what the contracts allow: a feature's package, the root's wiring of a feature's modules
    (pkg / "registry" / "service.py").write_text("from fixture.tracking import X\n")
    (pkg / "app" / "__init__.py").write_text("import fixture.tracking.tables\n")
    if bad is not None:
        importer, imported = bad
        path = pkg.joinpath(*importer.split(".")[1:], "service.py")
        path.write_text(path.read_text() + f"import {imported}\n")
    lines = [
        "[importlinter]",
        "root_packages =\n    fixture",
        "include_external_packages = True",
        "exclude_type_checking_imports = True",
    ]
    for i, contract in enumerate(CONFIG["contracts"]):
        lines.append(f"[importlinter:contract:{i}]")
        for key, value in contract.items():
            if key == "ignore_imports":
                continue
            if isinstance(value, list):
                value = "\n" + "\n".join(
                    "    " + v.replace("shipyard", "fixture", 1) for v in value
                )
            lines.append(f"{key} = {value}")
    config = tmp_path / ".importlinter"
    config.write_text("\n".join(lines) + "\n")
    return config


def test_the_fixture_tree_keeps_the_contract(tmp_path: Path) -> None:
    proc = lint(fixture_tree(tmp_path, None), tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]


@pytest.mark.parametrize(
    ("bad", "broken"),
    [
        (("fixture.registry", "fixture.tracking.tables"), "tracking: other features use"),
        (("fixture.ui", "fixture.serving.service"), "serving: other features use"),
        (("fixture.db", "fixture.migrations"), "the core knows no feature"),
        (("fixture.config", "fixture.jobs"), "the core knows no feature"),
        (("fixture.client", "fixture.tracking"), "the SDK never imports the server"),
        (("fixture.client", "sqlalchemy"), "the SDK never imports the server"),
        (("fixture.tracking", "fixture.client._impl"), "the SDK's private modules are its own"),
    ],
)
def test_a_deliberate_bad_import_breaks_the_contract(
    tmp_path: Path, bad: tuple[str, str], broken: str
) -> None:
    proc = lint(fixture_tree(tmp_path, bad), tmp_path)
    assert proc.returncode == 1, proc.stdout[-3000:]
    line = next(line for line in proc.stdout.splitlines() if line.startswith(broken))
    assert line.endswith("BROKEN"), proc.stdout[-3000:]
