"""Train a small PyTorch network on scikit-learn's 8x8 digits and track it with Shipyard.

    python examples/digits/train.py --lr 0.01 --epochs 30

Logs the config, per-epoch losses and accuracy, sample images with predictions, the best
checkpoint (with its accuracy) and a confusion-matrix image; with ``--register MODEL`` the best
weights become a new version of that registered model (a torch package with its ONNX twin, lineage
back to this run). Needs a server (``shipyard server``)
or runs offline with ``--offline`` (then ``shipyard sync``).

The data is scikit-learn's copy, or ``digits.npz`` from ``--data FOLDER`` (a pulled dataset), or,
in a job submitted with ``--dataset digits@VERSION``, the dataset the job mounted. Make the
dataset with ``python examples/digits/make_dataset.py ./digits-data``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image as PILImage
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

import shipyard


def make_model(hidden: list[int], dropout: float) -> nn.Sequential:
    layers: list[nn.Module] = []
    width = 64
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU(), nn.Dropout(dropout)]
        width = h
    layers.append(nn.Linear(width, 10))
    return nn.Sequential(*layers)


def confusion_png(y_true: np.ndarray, y_pred: np.ndarray, path: Path) -> None:
    matrix = np.zeros((10, 10))
    np.add.at(matrix, (y_true, y_pred), 1)
    shade = (255 * (1 - matrix / max(matrix.max(), 1))).astype(np.uint8)
    PILImage.fromarray(shade).resize((200, 200), PILImage.NEAREST).save(path)


def load(data: str | None) -> tuple[np.ndarray, np.ndarray]:
    """Images (n, 64) and labels from ``data``, a job's mounted dataset, or scikit-learn."""
    folder = Path(data) if data else None
    mounted = Path(os.environ.get("SHIPYARD_DATASETS", "/nonexistent")) / "digits"
    if folder is None and (mounted / "digits.npz").exists():
        folder = mounted
    if folder is not None:
        arrays = np.load(folder / "digits.npz")
        print(f"data from {folder}")
        return arrays["data"], arrays["target"]
    digits = load_digits()
    return digits.data, digits.target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", default="digits")
    parser.add_argument("--name", default=None)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--hidden", type=int, nargs="+", default=[64, 32])
    parser.add_argument("--dropout", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--offline", action="store_true", help="Spool locally; `shipyard sync`.")
    parser.add_argument("--data", default=None, help="A folder with digits.npz.")
    parser.add_argument(
        "--register", default=None, metavar="MODEL", help="Register the best weights as MODEL."
    )
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    images, labels = load(args.data)
    x = (images / 16.0).astype(np.float32)
    x_train, x_val, y_train, y_val = train_test_split(
        x, labels, test_size=0.25, random_state=args.seed, stratify=labels
    )
    xt, yt = torch.from_numpy(x_train), torch.from_numpy(y_train)
    xv, yv = torch.from_numpy(x_val), torch.from_numpy(y_val)
    model = make_model(args.hidden, args.dropout)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    loss_fn = nn.CrossEntropyLoss()
    config = {
        "lr": args.lr,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "layers": args.hidden,
        "dropout": args.dropout,
        "seed": args.seed,
        "optimizer": {"name": "adam"},
    }
    name = args.name or f"mlp-lr{args.lr:g}"

    with (
        shipyard.init(
            project=args.project,
            name=name,
            config=config,
            mode="offline" if args.offline else "online",
        ) as run,
        tempfile.TemporaryDirectory() as tmp,
    ):
        best_acc = -1.0
        best_state: dict[str, torch.Tensor] = {}
        step = 0
        for epoch in range(args.epochs):
            model.train()
            order = torch.randperm(len(xt))
            for start in range(0, len(xt), args.batch_size):
                idx = order[start : start + args.batch_size]
                optimizer.zero_grad()
                loss = loss_fn(model(xt[idx]), yt[idx])
                loss.backward()
                optimizer.step()
                run.log({"train/loss": loss.item()}, step=step)
                step += 1
            model.eval()
            with torch.no_grad():
                logits = model(xv)
                val_loss = loss_fn(logits, yv).item()
                pred = logits.argmax(dim=1)
                acc = (pred == yv).float().mean().item()
            run.log({"val/loss": val_loss, "val/acc": acc, "epoch": epoch}, step=step)
            if epoch % 10 == 0 or epoch == args.epochs - 1:
                samples = [
                    shipyard.Image(
                        x_val[i].reshape(8, 8), caption=f"true {y_val[i]} / pred {int(pred[i])}"
                    )
                    for i in range(8)
                ]
                run.log({"samples": samples}, step=step)
            if acc > best_acc:
                best_acc = acc
                ckpt = Path(tmp) / "model.pt"
                torch.save(model.state_dict(), ckpt)
                best_state = {k: v.clone() for k, v in model.state_dict().items()}
                run.log_checkpoint(
                    ckpt, metrics={"val/acc": acc}, step=step, name=f"epoch{epoch:03d}.pt"
                )
            print(f"epoch {epoch:3d}  val/loss {val_loss:.4f}  val/acc {acc:.4f}")
        confusion_png(y_val, pred.numpy(), Path(tmp) / "confusion.png")
        run.log_artifact(Path(tmp) / "confusion.png")
        run.log({"best/val_acc": best_acc})
        if args.register:
            model.load_state_dict(best_state)
            model.eval()
            version = run.log_model(
                model, name=args.register, input_example=x_val[:1], reference_data=x_train
            )  # the training inputs: the endpoint's drift is measured against them
            print(f"registered {args.register} version {version['version']}")
        print(f"run {run.id}: best val/acc {best_acc:.4f}")


if __name__ == "__main__":
    main()
