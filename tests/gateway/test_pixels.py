"""The numpy steps reproduce Pillow and Keras exactly: NEAREST picks, orientation, scaling."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from gateway import pixels
from gateway.contract import Preprocessing
from gateway.imaging import ImageSpec, from_pillow, prepare, scale_numerator
from tests.gateway.support import encode, photo

SIZES = [(1, 299), (7, 3), (298, 299), (299, 299), (300, 299), (512, 299), (598, 299), (4000, 299)]


@pytest.mark.parametrize(("source", "target"), SIZES)
def test_nearest_rgb_picks_exactly_what_pillow_picks(source: int, target: int) -> None:
    rng = np.random.default_rng(source)
    height = max(1, source // 2)
    rgb = rng.integers(0, 256, (height, source, 3), dtype=np.uint8)
    expected = np.asarray(Image.fromarray(rgb).resize((target, target), Image.Resampling.NEAREST))
    np.testing.assert_array_equal(pixels.nearest_rgb(rgb, target), expected)
    np.testing.assert_array_equal(pixels.nearest_rgb(rgb, target, bgr=True), expected[..., ::-1])


@pytest.mark.parametrize("orientation", range(1, 9))
def test_upright_view_is_pillows_transpose(orientation: int) -> None:
    rgb = np.random.default_rng(orientation).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    img = Image.fromarray(rgb)
    if orientation in pixels.UPRIGHT:
        img = img.transpose(pixels.UPRIGHT[orientation])
    np.testing.assert_array_equal(pixels.upright_view(rgb, orientation), np.asarray(img))


def keras_reference(rgb: np.ndarray, mode: Preprocessing) -> np.ndarray:
    """Keras preprocess_input on a float32 batch, operation by operation."""
    x = rgb.astype(np.float32)[np.newaxis]
    if mode is Preprocessing.XCEPTION:
        x /= 127.5
        x -= 1.0
    elif mode is Preprocessing.CAFFE:
        x = x[..., ::-1] - np.array([103.939, 116.779, 123.68], dtype=np.float32)
    elif mode is Preprocessing.UNIT:
        x /= 255.0
    return x


@pytest.mark.parametrize("mode", list(Preprocessing))
@pytest.mark.parametrize("bgr_done", [False, True])
def test_scaling_is_bit_identical_to_keras(mode: Preprocessing, bgr_done: bool) -> None:
    rgb = np.random.default_rng(4).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    given = rgb[..., ::-1] if (bgr_done and mode is Preprocessing.CAFFE) else rgb
    out = pixels.scale_into(np.ascontiguousarray(given), mode, bgr_done=bgr_done)
    assert out.dtype == np.float32 and out.shape == (1, 32, 32, 3) and out.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(out, keras_reference(rgb, mode))


@pytest.mark.parametrize("size", [(1024, 768), (640, 480), (333, 777), (299, 299), (120, 90)])
@pytest.mark.parametrize("mode", [Preprocessing.XCEPTION, Preprocessing.CAFFE])
def test_both_decoders_agree_exactly_without_draft(
    size: tuple[int, int], mode: Preprocessing
) -> None:
    data = encode(photo(size), "JPEG", quality=90)
    spec = ImageSpec(size=299, preprocessing=mode, jpeg_draft=False)
    fast = prepare(data, spec)
    with Image.open(io.BytesIO(data)) as img:
        slow = from_pillow(img, spec)
    assert (fast.decoder, slow.decoder) == ("libjpeg-turbo", "pillow")
    np.testing.assert_array_equal(fast.tensor, slow.tensor)


@pytest.mark.parametrize(
    ("size", "numerator"),
    [((4000, 3000), 1), ((2000, 1500), 2), ((1024, 768), 4), ((640, 480), 5), ((600, 299), 8)],
)
def test_dct_scaling_never_goes_below_the_target(size: tuple[int, int], numerator: int) -> None:
    assert scale_numerator(size, 299) == numerator
    smaller = scale_numerator(size, 299) - 1
    if smaller:  # the next smaller scale would cut below 299 on some side
        assert min(-(-side * smaller // 8) for side in size) < 299
    data = encode(Image.new("RGB", size, (120, 30, 200)), "JPEG", quality=80)  # quick to make
    prepared = prepare(data, ImageSpec(size=299, preprocessing=Preprocessing.XCEPTION))
    assert prepared.decoded_size == tuple(-(-side * numerator // 8) for side in size)
    assert min(prepared.decoded_size) >= 299
