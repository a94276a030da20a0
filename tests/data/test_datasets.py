"""Datasets through a real server: content-addressed versions, dedupe, verified and resumable
transfer, lineage into runs and model versions, and the CLI."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from fastapi import FastAPI
from typer.testing import CliRunner

import shipyard
from shipyard.cli import app as cli
from shipyard.client import _datasets as transfer
from shipyard.client._config import ClientSettings
from shipyard.errors import NotFound, Unprocessable
from tests.packages.pymodel import BagOfWords

CHUNK = transfer.CHUNK


def folder(root: Path, big: bytes) -> Path:
    (root / "images").mkdir(parents=True)
    (root / "labels.csv").write_text("id,label\n1,cat\n")
    (root / "images" / "big.bin").write_bytes(big)
    (root / "empty.txt").write_bytes(b"")
    return root


@pytest.fixture
def big() -> bytes:
    return os.urandom(2 * CHUNK + 1000)  # three chunks


def test_push_is_content_addressed_and_sends_only_what_changed(
    sdk: ClientSettings, tmp_path: Path, big: bytes
) -> None:
    src = folder(tmp_path / "src", big)
    with shipyard.Client(settings=sdk) as c:
        v1, first = transfer.push_dataset(c.http, "p", "digits", src, "first cut")
        assert (v1["version"], v1["file_count"], v1["size"]) == (1, 3, len(big) + 15)
        assert first.sent == len(big) + 15
        v, again = transfer.push_dataset(c.http, "p", "digits", src)
        assert v["version"] == 1 and again.sent == 0  # the same files: no new version
        (src / "images" / "big.bin").write_bytes(big[:-1] + b"!")
        v2, third = transfer.push_dataset(c.http, "p", "digits", src, "fixed a byte")
        assert v2["version"] == 2 and third.sent == 1000  # only the last chunk changed
        d = c.http.json("GET", "/api/projects/p/datasets/digits")
        assert d["latest_version"] == 2
        assert [(x["version"], x["description"]) for x in d["versions"]] == [
            (2, "fixed a byte"),
            (1, "first cut"),
        ]
        assert d["versions"][1]["created_by"] == "local"
        assert d["versions"][1]["source"]["path"] == str(src.resolve())
        files = c.http.json("GET", "/api/projects/p/datasets/digits/versions/1")["files"]
        assert [f["path"] for f in files] == ["empty.txt", "images/big.bin", "labels.csv"]
        assert len(files[1]["chunks"]) == 3


def test_pull_verifies_every_hash_and_resumes(
    sdk: ClientSettings, app: FastAPI, tmp_path: Path, big: bytes
) -> None:
    src = folder(tmp_path / "src", big)
    with shipyard.Client(settings=sdk) as c:
        transfer.push_dataset(c.http, "p", "digits", src)
        dest = tmp_path / "dest"
        info, done = transfer.pull_dataset(c.http, "p", "digits@latest", dest)
        assert info["version"] == 1 and done.files == 3
        assert (dest / "images" / "big.bin").read_bytes() == big
        assert (dest / "empty.txt").read_bytes() == b""
        _, again = transfer.pull_dataset(c.http, "p", "digits@1", dest)
        assert again.sent == 0 and again.skipped == 3  # intact files are kept
        (dest / "images" / "big.bin").unlink()
        (dest / "images" / "big.bin.partial").write_bytes(big[:CHUNK] + b"garbage")
        _, resumed = transfer.pull_dataset(c.http, "p", "digits@1", dest)
        assert resumed.sent == len(big) - CHUNK  # the intact first chunk was kept
        assert (dest / "images" / "big.bin").read_bytes() == big
        with pytest.raises(NotFound, match="has no version 7"):
            transfer.pull_dataset(c.http, "p", "digits@7", tmp_path / "x")
        with pytest.raises(NotFound, match="dataset 'nope' does not exist"):
            transfer.pull_dataset(c.http, "p", "nope@1", tmp_path / "x")


def test_a_corrupted_blob_is_refused_on_pull_naming_the_file(
    sdk: ClientSettings, app: FastAPI, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "weights.bin").write_bytes(b"precious bytes")
    with shipyard.Client(settings=sdk) as c:
        v, _ = transfer.push_dataset(c.http, "p", "d", src)
        sha = c.http.json("GET", "/api/projects/p/datasets/d/versions/1")["files"][0]["sha256"]
        root = Path(app.state.runtime.settings.artifact_root)
        (blob,) = root.glob(f"blobs/*/{sha[:2]}/{sha}")
        blob.write_bytes(b"precious bytez")  # bit rot in the store
        with pytest.raises(Unprocessable, match="file 'weights.bin' is corrupted"):
            transfer.pull_dataset(c.http, "p", "d@1", tmp_path / "dest")
        assert not (tmp_path / "dest" / "weights.bin").exists()


def test_a_manifest_naming_blobs_not_uploaded_is_refused(sdk: ClientSettings) -> None:
    entry = {"path": "a", "size": 3, "sha256": "a" * 64, "chunks": ["b" * 64]}
    with shipyard.Client(settings=sdk) as c:
        c.http.json("POST", "/api/projects", {"name": "p"})
        with pytest.raises(Unprocessable, match="1 blob.* not uploaded yet"):
            c.http.json("POST", "/api/projects/p/datasets/d/versions", {"files": [entry]})


def test_lineage_runs_from_dataset_version_to_run_to_model_version(
    sdk: ClientSettings, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "train.csv").write_text("x,y\n1,2\n")
    (tmp_path / "vocab.json").write_text(json.dumps(["a", "b", "c"]))
    np.save(tmp_path / "w.npy", np.eye(3, dtype=np.float32))
    with shipyard.Client(settings=sdk) as c:
        c.push_dataset("p", "corpus", src)
        with shipyard.init(project="p", settings=sdk, system_metrics=False) as run:
            used = run.use_dataset("corpus@latest", download=tmp_path / "here")
            assert used["version"] == 1 and (tmp_path / "here" / "train.csv").exists()
            run.use_dataset("corpus@1")  # recorded once
            with pytest.raises(NotFound):
                run.use_dataset("corpus@9")
            version = run.log_model(
                BagOfWords(),
                name="bow",
                input_example=np.array([[0, 1]], np.int64),
                artifacts={"vocab": tmp_path / "vocab.json", "weights": tmp_path / "w.npy"},
            )
        entry = {"project": "p", "name": "corpus", "version": 1}
        datasets = c.run(run.id).environment["datasets"]
        assert len(datasets) == 1 and entry.items() <= datasets[0].items()
        assert entry.items() <= version["lineage"]["datasets"][0].items()


def test_cli_push_ls_pull(sdk: ClientSettings, tmp_path: Path, big: bytes) -> None:
    src = folder(tmp_path / "src", big)
    env = {
        "SHIPYARD_URL": sdk.url,
        "SHIPYARD_HOME": str(sdk.home),
        "SHIPYARD_TOKEN": str(sdk.token),
        "COLUMNS": "200",
    }
    runner = CliRunner()

    def run(*args: str) -> str:
        result = runner.invoke(cli, list(args), env=env)
        assert result.exit_code == 0, result.output
        return result.output

    assert "digits@1: 3 file(s)" in run("datasets", "push", str(src), "--name", "digits", "-p", "p")
    assert "sent 0.0 MB" in run("datasets", "push", str(src), "--name", "digits", "-p", "p")
    assert "digits" in run("datasets", "ls", "-p", "p")
    assert "3" in run("datasets", "ls", "digits", "-p", "p")
    out = run("datasets", "pull", "p/digits@1", str(tmp_path / "dest"))
    assert "digits@1" in out and (tmp_path / "dest" / "labels.csv").exists()
    bad = runner.invoke(cli, ["datasets", "pull", "digits@1", str(tmp_path / "x")], env=env)
    assert bad.exit_code != 0
