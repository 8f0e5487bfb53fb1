"""The model sees the right pixels whatever the file's mode, bit depth and orientation."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageOps

from gateway.errors import InvalidImageError
from gateway.imaging import ImageSpec, from_pillow, prepare
from gateway.settings import Preprocessing
from tests.gateway.support import encode, photo

RAW = ImageSpec(size=16, preprocessing=Preprocessing.NONE, jpeg_draft=False)


def png16(samples: np.ndarray) -> bytes:
    """A 16-bit PNG (grey, grey+alpha, RGB or RGBA from the last axis), written by hand:
    Pillow cannot write 16-bit colour PNGs, and this is what cameras and editors produce."""
    channels = 1 if samples.ndim == 2 else samples.shape[2]
    colour_type = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    height, width = samples.shape[:2]
    rows = samples.astype(">u2").reshape(height, -1)
    raw = b"".join(b"\x00" + row.tobytes() for row in rows)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def pixel(data: bytes | Image.Image, spec: ImageSpec = RAW) -> np.ndarray:
    prepared = from_pillow(data, spec) if isinstance(data, Image.Image) else prepare(data, spec)
    return prepared.tensor[0, 5, 5]


@pytest.mark.parametrize("value", [0, 257, 32768, 40000, 65535])
def test_16_bit_grey_png_is_scaled_not_clipped(value: int) -> None:
    data = png16(np.full((20, 30), value, dtype=np.uint16))
    assert Image.open(io.BytesIO(data)).mode == "I;16"
    np.testing.assert_allclose(pixel(data), [value / 257] * 3, rtol=1e-6)


@pytest.mark.parametrize("channels", [3, 4])
def test_16_bit_colour_pngs_keep_their_colour(channels: int) -> None:
    rgb = np.array([65535, 40000, 1000, 65535][:channels], dtype=np.uint16)
    data = png16(np.broadcast_to(rgb, (20, 30, channels)))
    expected = rgb[:3] / 257
    np.testing.assert_allclose(pixel(data), expected, atol=1.0)  # Pillow keeps the high byte


def test_16_bit_grey_with_alpha_keeps_the_grey() -> None:
    data = png16(np.broadcast_to(np.array([40000, 0], np.uint16), (20, 30, 2)))
    np.testing.assert_allclose(pixel(data), [40000 / 257] * 3, atol=1.0)


@pytest.mark.parametrize(("mode", "dtype"), [("I;16", "<u2"), ("I;16L", "<u2"), ("I;16B", ">u2")])
def test_every_16_bit_mode_is_scaled_the_same(mode: str, dtype: str) -> None:
    img = Image.frombytes(mode, (30, 20), np.full((20, 30), 50000, dtype=dtype).tobytes())
    np.testing.assert_allclose(pixel(img), [50000 / 257] * 3, rtol=1e-6)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(-5, 0.0), (0, 0.0), (30000, 30000 / 257), (65535, 255.0), (1 << 20, 255.0)],
)
def test_32_bit_integer_images_hold_16_bit_samples(value: int, expected: float) -> None:
    img = Image.new("I", (30, 20), value)
    np.testing.assert_allclose(pixel(img), [expected] * 3, rtol=1e-6)


@pytest.mark.parametrize(
    ("value", "expected"), [(-0.5, 0.0), (0.0, 0.0), (0.25, 63.75), (1.0, 255.0), (7.0, 255.0)]
)
def test_float_images_are_taken_as_0_to_1(value: float, expected: float) -> None:
    img = Image.new("F", (30, 20), value)
    np.testing.assert_allclose(pixel(img), [expected] * 3, rtol=1e-6)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_float_pixels_are_invalid(bad: float) -> None:
    with pytest.raises(InvalidImageError, match="NaN or infinite"):
        pixel(Image.new("F", (30, 20), bad))


@pytest.mark.parametrize("filter_", ["nearest", "bilinear"])
@pytest.mark.parametrize("mode", ["I;16", "I", "F"])
def test_wide_modes_resize_with_either_filter(mode: str, filter_: str) -> None:
    values = {"I;16": 40000, "I": 40000, "F": 40000 / 65535}
    img = Image.new(mode, (40, 30), values[mode])
    spec = ImageSpec(size=16, preprocessing=Preprocessing.NONE, resize_filter=filter_)
    np.testing.assert_allclose(pixel(img, spec), [40000 / 257] * 3, rtol=1e-4)


EIGHT_BIT = {
    "1": (Image.new("1", (30, 20), 1), "PNG", (255, 255, 255)),
    "L": (Image.new("L", (30, 20), 77), "PNG", (77, 77, 77)),
    "P": (Image.new("RGB", (30, 20), (10, 200, 30)).quantize(4), "PNG", (10, 200, 30)),
    "LA": (Image.new("LA", (30, 20), (90, 0)), "PNG", (90, 90, 90)),  # alpha dropped, as Keras
    "RGBA": (Image.new("RGBA", (30, 20), (1, 2, 3, 0)), "PNG", (1, 2, 3)),
    "GIF": (Image.new("RGB", (30, 20), (255, 0, 0)).quantize(2), "GIF", (255, 0, 0)),
    "BMP-RGB": (Image.new("RGB", (30, 20), (4, 5, 6)), "BMP", (4, 5, 6)),
    "WEBP": (Image.new("RGB", (30, 20), (0, 0, 255)), "WEBP", (0, 0, 255)),
}


@pytest.mark.parametrize("case", list(EIGHT_BIT.values()), ids=list(EIGHT_BIT))
def test_eight_bit_modes_become_their_rgb(case: tuple[Image.Image, str, tuple[int, ...]]) -> None:
    img, fmt, rgb = case
    data = encode(img, fmt, **({"lossless": True} if fmt == "WEBP" else {}))
    np.testing.assert_allclose(pixel(data), rgb, atol=1)


def test_cmyk_jpeg_is_converted_like_pillow_does() -> None:
    data = encode(Image.new("CMYK", (30, 20), (0, 255, 255, 0)), "JPEG", quality=100)
    reference = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))[5, 5]
    np.testing.assert_array_equal(pixel(data), reference)


def oriented(exif_orientation: int, fmt: str) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = exif_orientation
    pixels = np.asarray(photo((64, 40), seed=exif_orientation))
    return encode(
        Image.fromarray(pixels), fmt, exif=exif, **({"quality": 95} if fmt == "JPEG" else {})
    )


def upright_reference(data: bytes, size: int) -> np.ndarray:
    img = ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB")
    return np.asarray(img.resize((size, size), Image.Resampling.NEAREST), dtype=np.float32)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"], ids=["libjpeg-turbo", "pillow"])
@pytest.mark.parametrize("exif_orientation", range(1, 9))
def test_every_exif_orientation_matches_a_reference_transposition(
    exif_orientation: int, fmt: str
) -> None:
    data = oriented(exif_orientation, fmt)
    spec = ImageSpec(size=24, preprocessing=Preprocessing.NONE, jpeg_draft=False)
    prepared = prepare(data, spec)
    assert prepared.decoder == ("libjpeg-turbo" if fmt == "JPEG" else "pillow")
    np.testing.assert_array_equal(prepared.tensor[0], upright_reference(data, 24))


@pytest.mark.parametrize("value", [0, 9, 1000])
def test_an_invalid_orientation_is_ignored(value: int) -> None:
    exif = Image.Exif()
    exif[0x0112] = value
    data = encode(photo((64, 40)), "PNG", exif=exif)
    spec = ImageSpec(size=24, preprocessing=Preprocessing.NONE)
    plain = np.asarray(Image.open(io.BytesIO(data)).convert("RGB").resize((24, 24), 0), np.float32)
    np.testing.assert_array_equal(prepare(data, spec).tensor[0], plain)
