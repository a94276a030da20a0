"""Media the SDK logs: images from numpy arrays or PIL images, stored as PNG."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from PIL import Image as PILImage


class Image:
    """An image to log: ``run.log({"samples": shipyard.Image(array, caption="epoch 3")})``.

    Arrays are HxW (grey), HxWx3 (RGB) or HxWx4 (RGBA); floats in [0, 1] are scaled to 0-255.
    The pixels are copied now, so the caller may reuse its buffer.
    """

    def __init__(self, data: Any, caption: str = "") -> None:
        self.caption = caption
        if isinstance(data, PILImage.Image):
            self._image = data.copy()
            return
        array = np.asarray(data)
        if array.ndim == 3 and array.shape[0] in (1, 3, 4) and array.shape[2] not in (1, 3, 4):
            array = np.moveaxis(array, 0, -1)  # CHW (torch) -> HWC
        if array.ndim == 3 and array.shape[2] == 1:
            array = array[:, :, 0]
        if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
            raise ValueError(f"Image wants HxW, HxWx3 or HxWx4 pixels, got shape {array.shape}")
        if array.dtype.kind == "f":
            top = float(np.nanmax(array)) if array.size else 1.0
            scale = 255.0 if top <= 1.0 else 1.0
            array = np.clip(np.nan_to_num(array) * scale, 0, 255)
        self._image = PILImage.fromarray(array.astype(np.uint8))

    @property
    def size(self) -> tuple[int, int]:
        """Width and height in pixels."""
        return self._image.size

    def png(self) -> bytes:
        """The image encoded as PNG."""
        buf = io.BytesIO()
        self._image.save(buf, format="PNG")
        return buf.getvalue()
