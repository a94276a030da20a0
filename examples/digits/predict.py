"""Call a digits endpoint with each protocol, then keep it busy for a while and report accuracy.

    python examples/digits/predict.py --endpoint digits --seconds 10

The validation digits (the split ``train.py`` holds out) go to the TensorFlow Serving row format
one at a time from a few threads, for ``--seconds``; one request each through the columnar TF
Serving format, Open Inference V2 and the Hugging Face-style route must agree with it. Prints the
endpoint's accuracy, requests per second and latency percentiles as the client saw them.
"""

from __future__ import annotations

import argparse
import threading
import time

import httpx
import numpy as np
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import shipyard


def validation_set(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    _, x_val, _, y_val = train_test_split(
        x, digits.target, test_size=0.25, random_state=seed, stratify=digits.target
    )
    return x_val, y_val


def check_protocols(http: httpx.Client, name: str, x: np.ndarray) -> np.ndarray:
    """The same four digits through every protocol; the answers must agree."""
    rows = http.post(f"/v1/models/{name}:predict", json={"instances": x.tolist()})
    rows.raise_for_status()
    want = np.asarray(rows.json()["predictions"])
    columnar = http.post(f"/v1/models/{name}:predict", json={"inputs": {"x": x.tolist()}})
    tensor = {"name": "x", "shape": list(x.shape), "datatype": "FP32", "data": x.ravel().tolist()}
    v2 = http.post(f"/v2/models/{name}/infer", json={"inputs": [tensor]})
    hf = http.post(f"/endpoints/{name}/predict", json={"inputs": x.tolist()})
    for label, got in (
        ("TF Serving columnar", columnar.json()["outputs"]),
        ("Open Inference V2", np.reshape(v2.json()["outputs"][0]["data"], want.shape)),
        ("Hugging Face-style", hf.json()),
    ):
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-4, atol=1e-4, err_msg=label)
        print(f"  {label:<20} agrees")
    return want


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint", default="digits")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()

    # SHIPYARD_URL and SHIPYARD_TOKEN, or the local token a server on this machine keeps in
    # SHIPYARD_HOME/token: what the SDK itself would send.
    settings = shipyard.ClientSettings()
    url, token = settings.url, settings.token
    headers = {"authorization": f"Bearer {token}"} if token else {}
    x_val, y_val = validation_set()
    with httpx.Client(base_url=url, headers=headers, timeout=60) as http:
        print(f"endpoint {args.endpoint} at {url}: the four protocols")
        check_protocols(http, args.endpoint, x_val[:4])

    latencies: list[float] = []
    correct = [0, 0]  # right, answered
    failures: list[str] = []
    lock = threading.Lock()
    stop = time.monotonic() + args.seconds

    def worker(offset: int) -> None:
        i = offset
        with httpx.Client(base_url=url, headers=headers, timeout=60) as http:
            while time.monotonic() < stop:
                k = i % len(x_val)
                t = time.perf_counter()
                r = http.post(
                    f"/v1/models/{args.endpoint}:predict", json={"instances": [x_val[k].tolist()]}
                )
                took = time.perf_counter() - t
                with lock:
                    latencies.append(took)
                    if r.status_code != 200:
                        failures.append(f"{r.status_code} {r.text[:200]}")
                    else:
                        correct[1] += 1
                        correct[0] += int(np.argmax(r.json()["predictions"][0]) == y_val[k])
                i += args.threads

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(args.threads)]
    start = time.monotonic()
    for t in threads:
        t.start()
    columns = (TextColumn("[bold]predicting"), BarColumn(), TextColumn("{task.fields[n]} requests"))
    with Progress(*columns, TimeRemainingColumn()) as progress:
        task = progress.add_task("load", total=args.seconds, n=0)
        while any(t.is_alive() for t in threads):
            time.sleep(0.2)
            progress.update(
                task, completed=min(time.monotonic() - start, args.seconds), n=len(latencies)
            )
    elapsed = time.monotonic() - start
    ms = np.percentile(np.asarray(latencies) * 1000, [50, 95, 99]) if latencies else [0, 0, 0]
    right, answered = correct
    print(
        f"{len(latencies)} requests in {elapsed:.1f} s ({len(latencies) / elapsed:.0f}/s, "
        f"{args.threads} threads): accuracy {right / max(answered, 1):.4f} on {answered} answers; "
        f"latency p50 {ms[0]:.1f} ms, p95 {ms[1]:.1f} ms, p99 {ms[2]:.1f} ms"
    )
    if failures:
        raise SystemExit(f"{len(failures)} requests failed, the first: {failures[0]}")


if __name__ == "__main__":
    main()
