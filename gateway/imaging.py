"""Bytes -> model input tensor. Pure and synchronous: the app runs it in a thread pool
(Pillow and numpy release the GIL while decoding, resizing and computing)."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, UnidentifiedImageError

from gateway.contract import Preprocessing
from gateway.errors import InvalidImageError, PayloadTooLargeError

# Formats worth accepting from the internet; fewer decoders, smaller attack surface.
FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP")
_FILTERS = {"nearest": Image.Resampling.NEAREST, "bilinear": Image.Resampling.BILINEAR}
# Keras "caffe" mode means, in BGR order.
_CAFFE_BGR_MEAN = np.array([103.939, 116.779, 123.68], dtype=np.float32)
_EXIF_ORIENTATION = 0x0112
# EXIF orientation -> the transpose that makes the image upright (as ImageOps.exif_transpose).
_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


@dataclass(frozen=True)
class ImageSpec:
    size: int
    preprocessing: Preprocessing
    resize_filter: str = "nearest"
    jpeg_draft: bool = True
    max_pixels: int = 25_000_000


@dataclass(frozen=True)
class Prepared:
    tensor: np.ndarray  # float32, shape (1, size, size, 3), C-contiguous
    source_size: tuple[int, int]  # (width, height) in the file
    decoded_size: tuple[int, int]  # after JPEG draft scaling, before resize


def decode(data: bytes, spec: ImageSpec) -> tuple[Image.Image, tuple[int, int], tuple[int, int]]:
    """Decode to an RGB image of spec.size x spec.size; refuse bombs before decoding pixels.

    Every decoder failure is the caller's bad input (422), never a server error.
    """
    if not data:
        raise InvalidImageError("empty image body")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data), formats=FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise PayloadTooLargeError(f"image has too many pixels: {exc}") from None
    except UnidentifiedImageError:
        accepted = ", ".join(FORMATS)
        raise InvalidImageError(f"content is not a supported image ({accepted})") from None
    except Exception as exc:  # header parsers raise OSError, SyntaxError, struct.error...
        raise InvalidImageError(f"cannot read image header: {exc}") from None
    with img:
        source = img.size
        pixels = source[0] * source[1]
        if pixels > spec.max_pixels:  # header only so far: nothing big was allocated
            raise PayloadTooLargeError(
                f"image is {source[0]}x{source[1]} = {pixels} pixels, "
                f"more than the limit of {spec.max_pixels}"
            )
        upright = _UPRIGHT.get(_orientation(img))
        try:
            if spec.jpeg_draft:
                # JPEG only: libjpeg scales by 1/2, 1/4 or 1/8 while decoding, never below
                # the target size: far less work than decoding every pixel of a big photo.
                img.draft("RGB", (spec.size, spec.size))
            img.load()
            rgb = img if img.mode == "RGB" else img.convert("RGB")
            decoded = rgb.size
            out = rgb.resize((spec.size, spec.size), _FILTERS[spec.resize_filter])
        except Exception as exc:  # truncated or corrupt pixel data
            raise InvalidImageError(f"cannot decode image: {exc}") from None
    if upright is not None:
        # Turning the small square result equals resizing the turned original.
        out = out.transpose(upright)
    return out, source, decoded


def _orientation(img: Image.Image) -> int:
    try:
        return int(img.getexif().get(_EXIF_ORIENTATION, 1))
    except Exception:  # a broken EXIF block must not fail an otherwise valid image
        return 1


def to_tensor(img: Image.Image, preprocessing: Preprocessing) -> np.ndarray:
    """RGB image -> float32 (1, H, W, 3), scaled with vectorised in-place numpy ops."""
    pixels = np.asarray(img, dtype=np.uint8)
    if preprocessing is Preprocessing.CAFFE:
        x = pixels[..., ::-1].astype(np.float32)  # RGB -> BGR
        x -= _CAFFE_BGR_MEAN
    else:
        x = pixels.astype(np.float32)
        if preprocessing is Preprocessing.XCEPTION:
            x /= 127.5
            x -= 1.0
        elif preprocessing is Preprocessing.UNIT:
            x /= 255.0
    return np.ascontiguousarray(x[np.newaxis])


def prepare(data: bytes, spec: ImageSpec) -> Prepared:
    img, source, decoded = decode(data, spec)
    return Prepared(to_tensor(img, spec.preprocessing), source, decoded)
