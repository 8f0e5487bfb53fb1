from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageOps

from gateway.errors import InvalidImageError, PayloadTooLargeError
from gateway.imaging import ImageSpec, prepare
from gateway.settings import Preprocessing
from tests.gateway.support import encode, photo

XCEPTION = ImageSpec(size=299, preprocessing=Preprocessing.XCEPTION)


def seed_reference(data: bytes, size: int = 299) -> np.ndarray:
    """What the seed gateway computed: full decode, NEAREST resize, x/127.5 - 1."""
    img = Image.open(io.BytesIO(data)).convert("RGB").resize((size, size), Image.Resampling.NEAREST)
    return (np.asarray(img, dtype=np.float32) / 127.5 - 1.0)[np.newaxis]


def test_without_draft_matches_the_seed_gateway_exactly() -> None:
    data = encode(photo((640, 480)), "JPEG", quality=90)
    spec = ImageSpec(size=299, preprocessing=Preprocessing.XCEPTION, jpeg_draft=False)
    prepared = prepare(data, spec)
    assert prepared.tensor.dtype == np.float32
    assert prepared.tensor.shape == (1, 299, 299, 3)
    assert prepared.tensor.flags["C_CONTIGUOUS"]
    np.testing.assert_allclose(prepared.tensor, seed_reference(data), atol=1e-6)


def test_jpeg_draft_decodes_a_large_photo_at_reduced_scale() -> None:
    data = encode(photo((1024, 768)), "JPEG", quality=90)
    drafted = prepare(data, XCEPTION)
    assert drafted.source_size == (1024, 768)
    assert drafted.decoded_size == (512, 384)  # libjpeg 1/2 scale, still >= 299 both ways
    full = prepare(
        data, ImageSpec(size=299, preprocessing=Preprocessing.XCEPTION, jpeg_draft=False)
    )
    assert full.decoded_size == (1024, 768)
    # Same picture: draft changes sampling, not content.
    assert np.abs(drafted.tensor - full.tensor).mean() < 0.1


def test_draft_never_goes_below_the_target_size() -> None:
    data = encode(photo((400, 300)), "JPEG")
    assert prepare(data, XCEPTION).decoded_size == (400, 300)


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        (Preprocessing.XCEPTION, lambda x: x / 127.5 - 1.0),
        (Preprocessing.CAFFE, lambda x: x[..., ::-1] - np.array([103.939, 116.779, 123.68])),
        (Preprocessing.UNIT, lambda x: x / 255.0),
        (Preprocessing.NONE, lambda x: x),
    ],
)
def test_preprocessing_modes_match_keras_formulas(mode: Preprocessing, expected) -> None:
    pixels = np.random.default_rng(3).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    data = encode(Image.fromarray(pixels), "PNG")  # lossless: exact pixels
    tensor = prepare(data, ImageSpec(size=32, preprocessing=mode)).tensor
    np.testing.assert_allclose(tensor[0], expected(pixels.astype(np.float64)), rtol=1e-6, atol=1e-5)


@pytest.mark.parametrize("img_mode", ["L", "RGBA", "P", "CMYK", "LA"])
def test_any_colour_mode_becomes_rgb(img_mode: str) -> None:
    img = Image.new(img_mode, (50, 40))
    fmt = "JPEG" if img_mode == "CMYK" else "PNG"
    tensor = prepare(encode(img, fmt), ImageSpec(size=16, preprocessing=Preprocessing.NONE)).tensor
    assert tensor.shape == (1, 16, 16, 3)


def test_exif_orientation_is_applied() -> None:
    pixels = np.zeros((20, 40, 3), dtype=np.uint8)
    pixels[:, :20] = (255, 0, 0)  # left half red, right half blue
    pixels[:, 20:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6  # camera was turned: display rotated 90 degrees clockwise
    data = encode(Image.fromarray(pixels), "PNG", exif=exif)
    spec = ImageSpec(size=20, preprocessing=Preprocessing.NONE)
    upright = ImageOps.exif_transpose(Image.open(io.BytesIO(data)))
    expected = np.asarray(upright.convert("RGB").resize((20, 20), Image.Resampling.NEAREST))
    np.testing.assert_array_equal(prepare(data, spec).tensor[0], expected.astype(np.float32))
    assert prepare(data, spec).tensor[0, 0, 0, 0] == 255  # red is now on top
    assert prepare(data, spec).tensor[0, -1, 0, 2] == 255  # blue at the bottom


def test_pixel_bomb_is_refused_before_decoding() -> None:
    data = encode(Image.new("L", (2000, 2000)), "PNG")  # ~4 KB file, 4 MP
    assert len(data) < 20_000
    spec = ImageSpec(size=299, preprocessing=Preprocessing.XCEPTION, max_pixels=1_000_000)
    with pytest.raises(PayloadTooLargeError, match="4000000 pixels"):
        prepare(data, spec)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"<html>hello</html>",
        encode(photo((64, 64)), "JPEG")[:300],  # truncated
        encode(photo((64, 64)), "TIFF"),  # a real image, but not an accepted format
        b"\x89PNG\r\n\x1a\n" + b"\x00" * 100,  # PNG signature, garbage after
    ],
    ids=["empty", "html", "truncated-jpeg", "tiff", "broken-png"],
)
def test_undecodable_content_is_invalid_image(data: bytes) -> None:
    with pytest.raises(InvalidImageError):
        prepare(data, XCEPTION)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "GIF", "BMP"])
def test_accepted_formats(fmt: str) -> None:
    tensor = prepare(encode(photo((80, 60)), fmt), XCEPTION).tensor
    assert tensor.shape == (1, 299, 299, 3)
    assert tensor.min() >= -1.0 and tensor.max() <= 1.0
