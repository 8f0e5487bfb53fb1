"""Bytes -> model input tensor. Synchronous: the app runs it in a decode thread (libjpeg-turbo,
Pillow and numpy release the GIL while they work).

Two decoders, one result. Baseline and progressive RGB/grey JPEGs (nearly every photo) go to
libjpeg-turbo through simplejpeg, which decodes straight to an RGB array and, with draft on,
scales by n/8 in the DCT domain while decoding (never below the target size); every other
image goes through Pillow. Either way the header is read first: pixel count and decode memory
are checked before a single pixel is allocated, and the memory is reserved in the budget.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import IO, Any

import numpy as np
import simplejpeg  # type: ignore[import-untyped]  # ships no type information
from PIL import Image, PngImagePlugin, UnidentifiedImageError

from gateway import pixels as px
from gateway.contract import Preprocessing
from gateway.errors import GatewayError, InvalidImageError, PayloadTooLargeError
from gateway.memory import Reservation

# Formats worth accepting from the internet; fewer decoders, smaller attack surface.
FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP")
_FILTERS = {"nearest": Image.Resampling.NEAREST, "bilinear": Image.Resampling.BILINEAR}
_EXIF_ORIENTATION = 0x0112
# Our own pixel limit (ImageSpec.max_pixels) is checked on every header, before decoding;
# Pillow's global one would otherwise cap it at 89 MP and print warnings.
Image.MAX_IMAGE_PIXELS = None
# PNG text chunks are inflated while the header is read, before any memory is reserved; the
# model needs none of them, so they get 8 MiB in all (Pillow's default allows 64 MiB).
PngImagePlugin.MAX_TEXT_MEMORY = 8 * 1024 * 1024
# Decoder working memory besides the pixels (row buffers, zlib and libjpeg state).
DECODER_OVERHEAD = 2 * 1024 * 1024


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
    decoded_size: tuple[int, int]  # after DCT scaling, before resize
    decoder: str  # "libjpeg-turbo" or "pillow"


def prepare(
    data: bytes | bytearray | memoryview, spec: ImageSpec, memory: Reservation | None = None
) -> Prepared:
    """Decode, orient, resize and scale one image. Every decoder failure is the caller's bad
    input (422), an image too big for the limits a 413, one that does not fit now a 503."""
    with memoryview(data) as view:
        if not view.nbytes:
            raise InvalidImageError("empty image body")
        with io.BufferedReader(_ViewReader(view), buffer_size=64 * 1024) as stream:
            img = _open(stream)
            with img:
                _check_pixels(img.size, spec.max_pixels)
                if img.format == "JPEG" and img.mode in ("RGB", "L"):
                    fast = _jpeg_fast(view, img, spec, memory)
                    if fast is not None:
                        return fast
                return from_pillow(img, spec, memory)


class _ViewReader(io.RawIOBase):
    """A read-only file over a buffer, so Pillow reads the body where it lies (no copy of it)."""

    def __init__(self, view: memoryview) -> None:
        self._view = view
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        start = min(self._position, self._view.nbytes)
        count = min(len(target), self._view.nbytes - start)
        target[:count] = self._view[start : start + count]
        self._position = start + count
        return count

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._view.nbytes}
        self._position = max(0, base[whence] + offset)
        return self._position

    def tell(self) -> int:
        return self._position


def _open(stream: IO[bytes]) -> Image.Image:
    try:
        return Image.open(stream, formats=FORMATS)
    except UnidentifiedImageError:
        accepted = ", ".join(FORMATS)
        raise InvalidImageError(f"content is not a supported image ({accepted})") from None
    except Exception as exc:  # header parsers raise OSError, SyntaxError, struct.error...
        raise InvalidImageError(f"cannot read image header: {_short(exc)}") from None


def _check_pixels(size: tuple[int, int], limit: int) -> None:
    width, height = size
    if width <= 0 or height <= 0:
        raise InvalidImageError(f"image has no pixels ({width}x{height})")
    if width * height > limit:  # header only so far: nothing big was allocated
        raise PayloadTooLargeError(
            f"image is {width}x{height} = {width * height} pixels, more than the limit of {limit}"
        )


def orientation(img: Image.Image) -> int:
    try:
        value = int(img.getexif().get(_EXIF_ORIENTATION, 1))
    except Exception:  # a broken EXIF block must not fail an otherwise valid image
        return 1
    return value if value in px.UPRIGHT else 1


def scale_numerator(size: tuple[int, int], target: int) -> int:
    """libjpeg's n/8 DCT scaling: the smallest n whose output is at least target both ways."""
    for n in range(1, 8):
        if all(math.ceil(side * n / 8) >= target for side in size):
            return n
    return 8


def _jpeg_coefficients(img: Image.Image) -> int:
    """Bytes libjpeg keeps for a progressive JPEG's DCT coefficients (the whole image)."""
    if not img.info.get("progressive"):
        return 0  # baseline: decoded a few rows at a time
    layers = getattr(img, "layer", None) or [("Y", 1, 1, 0)]
    h_max = max(layer[1] for layer in layers) or 1
    v_max = max(layer[2] for layer in layers) or 1
    share = sum(layer[1] * layer[2] for layer in layers) / (h_max * v_max)
    width, height = img.size
    return int(2 * share * (width + 16) * (height + 16))  # 16-bit coefficients, padded blocks


def _jpeg_fast(
    view: memoryview, img: Image.Image, spec: ImageSpec, memory: Reservation | None
) -> Prepared | None:
    """libjpeg-turbo straight to an RGB array; None if it cannot (Pillow then tries)."""
    n = scale_numerator(img.size, spec.size) if spec.jpeg_draft else 8
    decoded = tuple(math.ceil(side * n / 8) for side in img.size)
    pixel_bytes = decoded[0] * decoded[1] * 3 + _jpeg_coefficients(img)
    _reserve(memory, pixel_bytes + DECODER_OVERHEAD, "image decode")
    turn = orientation(img)
    minimum = spec.size if spec.jpeg_draft else 0
    try:
        rgb = simplejpeg.decode_jpeg(
            view, colorspace="RGB", min_height=minimum, min_width=minimum, strict=True
        )
    except ValueError:  # unsupported variant, corrupt or truncated data: Pillow decides
        return None
    upright = px.upright_view(rgb, turn)
    if spec.resize_filter == "nearest":
        bgr = spec.preprocessing is Preprocessing.CAFFE
        small = px.nearest_rgb(upright, spec.size, bgr=bgr)
        tensor = px.scale_into(small, spec.preprocessing, bgr_done=bgr)
    else:
        resized = Image.fromarray(np.ascontiguousarray(upright)).resize(
            (spec.size, spec.size), _FILTERS[spec.resize_filter]
        )
        tensor = px.scale_into(px.as_rgb(resized), spec.preprocessing, bgr_done=False)
    return Prepared(tensor, img.size, (rgb.shape[1], rgb.shape[0]), "libjpeg-turbo")


def _pixel_bytes(img: Image.Image) -> int:
    """Bytes per pixel of Pillow's storage for a mode (RGB is stored as 4)."""
    if img.mode in ("1", "L", "P"):
        return 1
    return 2 if img.mode in px.SIXTEEN_BIT else 4


def from_pillow(img: Image.Image, spec: ImageSpec, memory: Reservation | None = None) -> Prepared:
    """The Pillow path for an opened image (any mode), as prepare() uses it."""
    coefficients = _jpeg_coefficients(img)  # of the whole image, before draft() shrinks img.size
    if spec.jpeg_draft and img.format == "JPEG":
        # libjpeg scales by 1/2, 1/4 or 1/8 while decoding, never below the target size.
        img.draft(img.mode, (spec.size, spec.size))
    frame = img.size[0] * img.size[1] * _pixel_bytes(img)
    copies = 2 if img.format == "WEBP" else 1  # libwebp decodes into its own buffer first
    _reserve(memory, frame * copies + coefficients + DECODER_OVERHEAD, "image decode")
    try:
        img.load()
    except (GatewayError, MemoryError):
        raise
    except Exception as exc:  # truncated or corrupt pixel data
        raise InvalidImageError(f"cannot decode image: {_short(exc)}") from None
    decoded = img.size
    turn = orientation(img)  # after load(): a PNG may keep its EXIF after the pixels
    try:
        small = _resized(img, turn, spec, memory, frame)
        rgb = px.as_rgb(small)
    except (GatewayError, MemoryError):
        raise
    except Exception as exc:  # modes Pillow cannot convert (e.g. LAB), decoder leftovers
        raise InvalidImageError(f"cannot convert image: {_short(exc)}") from None
    tensor = px.scale_into(rgb, spec.preprocessing, bgr_done=False)
    return Prepared(tensor, img.size, decoded, "pillow")


def _resized(
    img: Image.Image, turn: int, spec: ImageSpec, memory: Reservation | None, frame: int
) -> Image.Image:
    """Upright, then resized: the same pixels as exif_transpose followed by resize."""
    work = img
    if turn != 1:
        _reserve(memory, frame, "image rotation")
        work = work.transpose(px.UPRIGHT[turn])
    resample = _FILTERS[spec.resize_filter]
    if resample != Image.Resampling.NEAREST:
        # Interpolate in a mode that can: RGB for 8-bit images, 32-bit for 16-bit ones.
        if work.mode in px.SIXTEEN_BIT:
            wide = "I"
        elif work.mode in px.HIGH_BIT:
            wide = work.mode
        else:
            wide = "RGB"
        if work.mode != wide:
            _reserve(memory, work.size[0] * work.size[1] * 4, "image conversion")
            work = work.convert(wide)
    return work.resize((spec.size, spec.size), resample)


def _reserve(memory: Reservation | None, nbytes: int, what: str) -> None:
    if memory is not None:
        memory.what = what
        memory.grow(nbytes)


def _short(exc: BaseException) -> str:
    return (str(exc) or type(exc).__name__)[:200]
