"""Pixel arithmetic after decoding: orientation, NEAREST sampling, bit depth, model scaling.

Pure numpy and Pillow, no I/O. Each step writes its result once: NEAREST picks rows, then
the bytes of the picked columns; scaling casts into the output tensor and scales it in place.
"""

from __future__ import annotations

import functools

import numpy as np
from PIL import Image

from gateway.contract import Preprocessing
from gateway.errors import InvalidImageError

# Keras "caffe" mode means, in BGR order.
CAFFE_BGR_MEAN = np.array([103.939, 116.779, 123.68], dtype=np.float32)
# EXIF orientation -> the transpose that makes the image upright (as ImageOps.exif_transpose).
UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
# Pillow modes whose samples are wider than 8 bits; everything else converts to RGB as is.
SIXTEEN_BIT = frozenset({"I;16", "I;16L", "I;16B", "I;16N"})
HIGH_BIT = SIXTEEN_BIT | {"I", "F"}
_TO_8_BIT_16 = np.float32(255 / 65535)


def upright_view(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """(H, W, C) array turned upright for an EXIF orientation, as a view (no copy)."""
    swapped = pixels.transpose(1, 0, 2)
    views = {
        2: pixels[:, ::-1],
        3: pixels[::-1, ::-1],
        4: pixels[::-1],
        5: swapped,
        6: swapped[:, ::-1],
        7: swapped[::-1, ::-1],
        8: swapped[::-1],
    }
    return views.get(orientation, pixels)


@functools.lru_cache(maxsize=512)
def nearest_indices(source: int, target: int) -> np.ndarray:
    """The source rows (or columns) Pillow's NEAREST resize samples, asked from Pillow itself.

    Pillow steps through source coordinates in floating point, which a closed formula does not
    reproduce for every size; resizing a row of indices gives its exact choice.
    """
    ramp = Image.fromarray(np.arange(source, dtype=np.int32)[np.newaxis, :])
    picked = np.asarray(ramp.resize((target, 1), Image.Resampling.NEAREST), dtype=np.intp)
    picked = picked.ravel()
    picked.flags.writeable = False
    return picked


@functools.lru_cache(maxsize=512)
def _byte_columns(width: int, target: int, reverse_channels: bool) -> np.ndarray:
    """Byte offsets in an RGB row of the picked pixels' channels (in BGR order if reversed)."""
    channels = np.array([2, 1, 0] if reverse_channels else [0, 1, 2], dtype=np.intp)
    offsets = (3 * nearest_indices(width, target)[:, np.newaxis] + channels).ravel()
    offsets.flags.writeable = False
    return offsets


def nearest_rgb(pixels: np.ndarray, size: int, *, bgr: bool = False) -> np.ndarray:
    """(H, W, 3) uint8 -> (size, size, 3) uint8, exactly what Pillow's NEAREST resize picks.

    Rows are picked whole, then the picked columns' bytes in one gather: two passes over the
    small result instead of Pillow's copy into its own 4-byte-per-pixel layout and back.
    """
    height, width = pixels.shape[:2]
    rows = np.ascontiguousarray(pixels).reshape(height, width * 3)
    rows = rows.take(nearest_indices(height, size), axis=0)
    picked = rows.take(_byte_columns(width, size, bgr), axis=1)
    return picked.reshape(size, size, 3)


def high_bit_gray(img: Image.Image) -> np.ndarray:
    """A wide single-channel image as float32 on the 0..255 scale of 8-bit images.

    16-bit modes: the full 0..65535 range maps to 0..255. "I" (32-bit integers, which is how
    Pillow widens 16-bit samples) is clipped to 0..65535 and scaled the same way. "F" (float)
    is taken as 0..1, the convention of float images, and clipped to it.
    """
    values = np.asarray(img)
    if img.mode == "F":
        if not np.isfinite(values).all():
            raise InvalidImageError("image has NaN or infinite pixel values")
        return np.clip(values, 0.0, 1.0, dtype=np.float32) * np.float32(255)
    if img.mode == "I":
        values = np.clip(values, 0, 65535)
    return values.astype(np.float32) * _TO_8_BIT_16


def as_rgb(img: Image.Image, *, bgr: bool = False) -> np.ndarray:
    """A small (resized) image as (H, W, 3) uint8 RGB, or float32 0..255 for wide modes."""
    if img.mode in HIGH_BIT:
        gray = high_bit_gray(img)
        return np.repeat(gray[..., np.newaxis], 3, axis=2)
    rgb = np.asarray(img if img.mode == "RGB" else img.convert("RGB"))
    return np.ascontiguousarray(rgb[..., ::-1]) if bgr else rgb


def scale_into(pixels: np.ndarray, preprocessing: Preprocessing, *, bgr_done: bool) -> np.ndarray:
    """(S, S, 3) pixels -> float32 (1, S, S, 3) model input, computed as Keras does in float32.

    The cast writes the output once; scaling then runs in place on it. For caffe, pass pixels
    already in BGR order (bgr_done=True) when the sampler could reorder them for free.
    """
    out = np.empty((1, *pixels.shape), dtype=np.float32)
    if preprocessing is Preprocessing.CAFFE and not bgr_done:
        pixels = pixels[..., ::-1]
    np.copyto(out[0], pixels, casting="unsafe")  # uint8 or float32 -> float32, exact
    if preprocessing is Preprocessing.XCEPTION:
        np.divide(out, np.float32(127.5), out=out)
        np.subtract(out, np.float32(1.0), out=out)
    elif preprocessing is Preprocessing.CAFFE:
        np.subtract(out, CAFFE_BGR_MEAN, out=out)
    elif preprocessing is Preprocessing.UNIT:
        np.divide(out, np.float32(255.0), out=out)
    return out
