"""A job's code snapshot: the working directory as it is, minus what ``.gitignore`` excludes."""

from __future__ import annotations

import os
from pathlib import Path

import pathspec

from shipyard.errors import PayloadTooLarge

ALWAYS_SKIPPED = {".git", ".hg", ".svn", "__pycache__", ".shipyard"}


def _spec(folder: Path) -> pathspec.GitIgnoreSpec | None:
    ignore = folder / ".gitignore"
    if not ignore.is_file():
        return None
    return pathspec.GitIgnoreSpec.from_lines(ignore.read_text(errors="replace").splitlines())


def snapshot_files(root: Path, max_bytes: int) -> list[tuple[Path, str]]:
    """Files of ``root`` that git would not ignore (each folder's ``.gitignore`` applies below
    it), sorted; refuses, before anything is uploaded, a snapshot over ``max_bytes``."""
    root = root.resolve()
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a folder")
    specs: dict[Path, pathspec.GitIgnoreSpec | None] = {}
    found: list[tuple[Path, str]] = []
    total = 0

    def ignored(path: Path, is_dir: bool) -> bool:
        for folder in [path.parent, *path.parent.parents]:
            if folder not in specs:
                specs[folder] = _spec(folder)
            spec = specs[folder]
            if spec is not None:
                rel = path.relative_to(folder).as_posix() + ("/" if is_dir else "")
                if spec.match_file(rel):
                    return True
            if folder == root:
                break
        return False

    for here, dirs, files in os.walk(root):
        base = Path(here)
        dirs[:] = sorted(d for d in dirs if d not in ALWAYS_SKIPPED and not ignored(base / d, True))
        for name in sorted(files):
            path = base / name
            if not path.is_file() or ignored(path, False):
                continue
            total += path.stat().st_size
            found.append((path, path.relative_to(root).as_posix()))
    if total > max_bytes:
        biggest = sorted(found, key=lambda f: f[0].stat().st_size, reverse=True)[:3]
        names = ", ".join(f"{rel} ({p.stat().st_size / 1e6:.1f} MB)" for p, rel in biggest)
        raise PayloadTooLarge(
            f"the code snapshot of {root} is {total / 1e6:.1f} MB, over the limit of "
            f"{max_bytes / 1e6:.1f} MB (SHIPYARD_MAX_SNAPSHOT_BYTES); largest: {names}. "
            "Add data to .gitignore and push it as a dataset (shipyard datasets push)"
        )
    return sorted(found, key=lambda f: f[1])
