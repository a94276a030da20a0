"""Write scikit-learn's 8x8 digits as a dataset folder (``digits.npz`` and a README).

python examples/digits/make_dataset.py ./digits-data
shipyard datasets push ./digits-data --name digits --project digits
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "digits-data")
    out.mkdir(parents=True, exist_ok=True)
    digits = load_digits()
    np.savez_compressed(out / "digits.npz", data=digits.data, target=digits.target)
    (out / "README.md").write_text(
        f"scikit-learn's optical digits: {len(digits.target)} images of 8x8 pixels (0-16), "
        "labels 0-9.\n"
    )
    print(f"wrote {out}/digits.npz ({len(digits.target)} images)")


if __name__ == "__main__":
    main()
