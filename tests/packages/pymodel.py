"""A python-flavor model for the tests: a vocabulary file and a weight matrix as artifacts."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from shipyard.packages import Context, PythonModel


class BagOfWords(PythonModel):
    """Scores rows of token ids with a linear layer; the vocabulary size comes from a file."""

    def setup(self, context: Context) -> None:
        self.vocab = json.loads(context.artifacts["vocab"].read_text())
        self.weights = np.load(context.artifacts["weights"])

    def predict(self, batch: Any) -> Any:
        counts = np.zeros((len(batch), len(self.vocab)), np.float32)
        for i, row in enumerate(np.asarray(batch)):
            for token in row:
                counts[i, int(token) % len(self.vocab)] += 1
        return {"scores": counts @ self.weights, "length": np.asarray([len(r) for r in batch])}
