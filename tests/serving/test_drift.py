"""Input drift: reference data in packages, the statistics, the recorder, and an endpoint whose
traffic shifts, over every protocol, against real replica processes."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from shipyard.packages import REFERENCE_FILE, Manifest, SignatureError, load_package, save_model
from shipyard.packages.reference import load_reference, reference_sample
from shipyard.serving.drift import compare, features, ks, psi
from shipyard.serving.traffic import DRIFT_BODY_BYTES, EndpointTraffic
from tests.conftest import refused
from tests.serving.conftest import TRAIN, DriftServer, mlp, reference_server
from tests.serving.test_cli import sy

RNG = np.random.default_rng(7)


def test_psi_and_ks_tell_a_shift_from_sampling_noise() -> None:
    ref = RNG.normal(0, 1, 5000)
    same = RNG.normal(0, 1, 1000)
    shifted = RNG.normal(1, 1, 1000)
    assert psi(ref, same) < 0.05 and ks(ref, same) < 0.08
    assert psi(ref, shifted) > 0.5 and ks(ref, shifted) > 0.3
    assert psi(ref, ref) == pytest.approx(0, abs=1e-9) and ks(ref, ref) == 0
    # Few distinct values: one bin each, and a value never seen in the reference is drift.
    pixels = RNG.integers(0, 3, 2000).astype(float)
    assert psi(pixels, RNG.integers(0, 3, 500).astype(float)) < 0.05
    assert psi(np.zeros(100), np.zeros(50)) == pytest.approx(0)
    assert psi(np.zeros(100), np.full(50, 5.0)) > 10  # a constant pixel that lights up


def test_features_are_columns_or_row_summaries_of_wide_inputs() -> None:
    cols = features(
        {
            "x": np.ones((4, 3), np.float32),
            "age": np.arange(4),
            "image": np.zeros((4, 3, 16, 16)),
            "text": np.array(["a", "b", "c", "d"]),
        }
    )
    assert list(cols) == ["x[0]", "x[1]", "x[2]", "age", "mean(image)", "std(image)"]
    assert all(c.shape == (4,) and c.dtype == np.float64 for c in cols.values())


def test_compare_names_the_drifted_features_most_drifted_first() -> None:
    current = RNG.normal(0, 1, (1000, 64)).astype(np.float32)
    current[:, 5] += 2
    current[:, 9] += 0.8
    report = compare({"x": TRAIN}, {"x": current}, threshold=0.2)
    assert [f.name for f in report[:2]] == ["x[5]", "x[9]"]
    assert [f.name for f in report if f.drifted] == ["x[5]", "x[9]"]
    top = report[0]
    assert top.current_mean - top.reference_mean == pytest.approx(2, abs=0.15)
    assert report[0].psi > report[1].psi > 0.2 > report[2].psi


def test_the_recorder_keeps_each_versions_last_answered_bodies() -> None:
    t = EndpointTraffic(sample_size=0, drift_window=3)
    for i in range(5):
        t.record("1", 200, 0.001, b"%d" % i, b"", "/v1/models/ep:predict")
    t.record("1", 400, 0.001, b"bad", b"", "/v1/models/ep:predict")  # refused: not input
    t.record("2", 200, 0.001, b"two", b"", "/v2/models/ep/infer")
    t.record("2", 200, 0.001, b"x" * (DRIFT_BODY_BYTES + 1), b"", "/v2/models/ep/infer")
    t.record("none", 503, 0.5, b"lost", b"")
    assert t.recent_inputs() == {
        "1": [("/v1/models/ep:predict", b"2"), ("/v1/models/ep:predict", b"3")]
        + [("/v1/models/ep:predict", b"4")],
        "2": [("/v2/models/ep/infer", b"two")],
    }
    assert EndpointTraffic(sample_size=5, drift_window=0).recent_inputs() == {}


def test_a_package_keeps_a_checked_sample_of_its_reference_data(tmp_path: Path) -> None:
    path = tmp_path / "pkg"
    manifest = save_model(mlp(1), path, input_example=TRAIN[:2], reference_data=TRAIN)
    assert REFERENCE_FILE in manifest.files and Manifest.read(path).files == manifest.files
    kept = load_reference((path / REFERENCE_FILE).read_bytes())
    assert kept["x"].shape == (3000, 64) and kept["x"].dtype == np.float32
    np.testing.assert_array_equal(kept["x"], TRAIN)
    load_package(path)  # its hash verifies like any file's
    sampled = load_reference(reference_sample({"x": TRAIN}, rows=500))["x"]
    assert sampled.shape == (500, 64) and {r.tobytes() for r in sampled} <= {
        r.tobytes() for r in TRAIN
    }
    with pytest.raises(SignatureError, match="'x'"):
        save_model(mlp(1), tmp_path / "bad", input_example=TRAIN[:2], reference_data=TRAIN[:, :8])


@pytest.fixture
def drift_server(tmp_path: Path, packages: dict[int, Path]) -> Iterator[DriftServer]:
    """SQLite; version 1 of ``mlp`` has reference data, model ``plain`` has none."""
    with reference_server(tmp_path) as d:
        d.packages[2] = packages[2]
        d.register(2, model="plain")
        yield d


def test_an_endpoint_reports_drift_when_its_inputs_shift(drift_server: DriftServer) -> None:
    d = drift_server
    d.deploy(version=1, replicas=1)
    d.ready(1)
    (v,) = d.drift()["versions"]
    assert v["status"] == "collecting" and v["rows"] == 0 and v["reference_rows"] == 3000
    assert "v1 collecting: 0 rows in 0 requests, 500 needed" in sy(d, "endpoints", "drift", "ep")
    d.send(RNG.normal(0, 1, (1000, 64)).astype(np.float32))  # as in training
    report = d.drift()
    assert report["threshold"] == 0.2 and report["window"] == 20
    (v,) = report["versions"]
    assert v["status"] == "ok" and v["requests"] == 20 and v["rows"] == 1000, v
    assert len(v["features"]) == 64 and not any(f["drifted"] for f in v["features"])

    shifted = RNG.normal(0, 1, (1000, 64)).astype(np.float32)
    shifted[:, 12] += 3  # a sensor that went off
    shifted[:, 40] = 0  # a constant where training varied
    d.send(shifted)  # the window holds only these now
    (v,) = d.drift()["versions"]
    assert v["status"] == "drift" and v["rows"] == 1000
    drifted = {f["name"] for f in v["features"] if f["drifted"]}
    assert drifted == {"x[12]", "x[40]"}, v["features"][:4]
    top = {f["name"]: f for f in v["features"][:2]}
    assert top["x[12]"]["current_mean"] == pytest.approx(3, abs=0.2)
    assert top["x[12]"]["ks"] > 0.8
    out = sy(d, "endpoints", "drift", "ep", "--top", "3")
    assert "v1 drift: 1000 rows in 20 requests; 2 of 64 features drifted" in out
    rows = [line for line in out.splitlines() if "x[" in line]
    assert len(rows) == 3 and [r.rstrip(" │").endswith("drift") for r in rows] == [
        True,
        True,
        False,
    ]
    assert {"x[12]", "x[40]"} == {r.split()[1] for r in rows[:2]}, rows


def test_a_version_without_reference_data_says_so(drift_server: DriftServer) -> None:
    d = drift_server
    r = d.http.post(
        "/api/endpoints",
        json={"name": "plain", "project": "p", "model": "plain", "version": 1, "replicas": 1},
    )
    assert r.status_code == 201, r.text
    (v,) = d.drift("plain")["versions"]
    assert v["status"] == "no_reference" and v["features"] == [] and v["reference_rows"] == 0
    assert "its package has no reference data" in sy(d, "endpoints", "drift", "plain")
    env = {**os.environ, "SHIPYARD_URL": d.url, "SHIPYARD_TOKEN": d.token}
    refused(["endpoints", "drift", "ghost"], env, "endpoint 'ghost' does not exist")
