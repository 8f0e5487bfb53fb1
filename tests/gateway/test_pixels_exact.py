"""Pixel steps value by value: each model scaling on known pixels, the BGR order for caffe
whichever step reorders, wide samples on the 8-bit scale, and what a bad float image is told."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from gateway import pixels
from gateway.contract import Preprocessing
from gateway.errors import InvalidImageError

RGB = np.array([[[0, 127, 255], [10, 20, 30]], [[255, 255, 255], [1, 2, 3]]], dtype=np.uint8)
MEAN = np.array([103.939, 116.779, 123.68], dtype=np.float32)


def scaled(rgb: np.ndarray, mode: Preprocessing, bgr_done: bool = False) -> np.ndarray:
    out = pixels.scale_into(rgb, mode, bgr_done=bgr_done)
    assert out.dtype == np.float32 and out.shape == (1, *rgb.shape)
    assert out.flags["C_CONTIGUOUS"]
    return out


def test_xception_scaling() -> None:
    expected = RGB.astype(np.float32) / np.float32(127.5) - np.float32(1.0)
    np.testing.assert_array_equal(scaled(RGB, Preprocessing.XCEPTION)[0], expected)
    assert scaled(RGB, Preprocessing.XCEPTION)[0, 0, 0].tolist() == [
        -1.0,
        pytest.approx(-0.0039215, abs=1e-6),
        1.0,
    ]


def test_caffe_scaling_reverses_the_channels_unless_done() -> None:
    bgr = RGB[..., ::-1].astype(np.float32) - MEAN
    np.testing.assert_array_equal(scaled(RGB, Preprocessing.CAFFE)[0], bgr)
    already = np.ascontiguousarray(RGB[..., ::-1])
    np.testing.assert_array_equal(scaled(already, Preprocessing.CAFFE, bgr_done=True)[0], bgr)


def test_bgr_done_changes_nothing_for_the_other_modes() -> None:
    for mode in (Preprocessing.XCEPTION, Preprocessing.UNIT, Preprocessing.NONE):
        np.testing.assert_array_equal(scaled(RGB, mode, bgr_done=True), scaled(RGB, mode))


def test_unit_and_none_scaling() -> None:
    np.testing.assert_array_equal(
        scaled(RGB, Preprocessing.UNIT)[0], RGB.astype(np.float32) / np.float32(255.0)
    )
    assert scaled(RGB, Preprocessing.UNIT)[0, 1, 0].tolist() == [1.0, 1.0, 1.0]
    np.testing.assert_array_equal(scaled(RGB, Preprocessing.NONE)[0], RGB.astype(np.float32))


def test_wide_pixels_are_scaled_as_floats() -> None:
    wide = np.array([[[0.0, 63.75, 255.0]]], dtype=np.float32)
    np.testing.assert_array_equal(scaled(wide, Preprocessing.UNIT)[0], [[[0.0, 0.25, 1.0]]])
    np.testing.assert_array_equal(scaled(wide, Preprocessing.XCEPTION)[0], [[[-1.0, -0.5, 1.0]]])


def test_as_rgb_of_each_kind_of_mode() -> None:
    rgb = Image.fromarray(RGB)
    np.testing.assert_array_equal(pixels.as_rgb(rgb), RGB)
    np.testing.assert_array_equal(pixels.as_rgb(rgb, bgr=True), RGB[..., ::-1])
    assert pixels.as_rgb(rgb, bgr=True).flags["C_CONTIGUOUS"]
    grey = Image.fromarray(np.array([[0, 200]], dtype=np.uint8))
    np.testing.assert_array_equal(pixels.as_rgb(grey), [[[0, 0, 0], [200, 200, 200]]])
    wide = Image.frombytes("I;16", (2, 1), np.array([0, 65535], dtype="<u2").tobytes())
    out = pixels.as_rgb(wide)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [[[0.0] * 3, [255.0] * 3]])


def test_high_bit_grey_scales() -> None:
    sixteen = Image.frombytes("I;16", (3, 1), np.array([0, 257, 65535], "<u2").tobytes())
    np.testing.assert_allclose(pixels.high_bit_gray(sixteen), [[0.0, 1.0, 255.0]], rtol=1e-6)
    ints = Image.fromarray(np.array([[-7, 65535, 1 << 20]], dtype=np.int32), "I")
    np.testing.assert_allclose(pixels.high_bit_gray(ints), [[0.0, 255.0, 255.0]], rtol=1e-6)
    floats = Image.fromarray(np.array([[-1.0, 0.5, 3.0]], dtype=np.float32), "F")
    np.testing.assert_array_equal(pixels.high_bit_gray(floats), [[0.0, 127.5, 255.0]])


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_a_float_image_with_non_finite_pixels(bad: float) -> None:
    img = Image.fromarray(np.array([[0.5, bad]], dtype=np.float32), "F")
    with pytest.raises(InvalidImageError) as refused:
        pixels.high_bit_gray(img)
    assert (refused.value.status, refused.value.message) == (
        422,
        "image has NaN or infinite pixel values",
    )


def test_nearest_indices_are_read_only_and_exact() -> None:
    picked = pixels.nearest_indices(10, 4)
    assert picked.tolist() == [1, 3, 6, 8] and not picked.flags.writeable
    assert pixels.nearest_indices(3, 6).tolist() == [0, 0, 1, 1, 2, 2]
    with pytest.raises(ValueError):
        picked[0] = 0


def test_nearest_rgb_of_a_non_contiguous_view() -> None:
    rgb = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3)
    view = rgb[::-1, ::-1]
    expected = np.asarray(
        Image.fromarray(np.ascontiguousarray(view)).resize((3, 3), Image.Resampling.NEAREST)
    )
    np.testing.assert_array_equal(pixels.nearest_rgb(view, 3), expected)
    np.testing.assert_array_equal(pixels.nearest_rgb(view, 3, bgr=True), expected[..., ::-1])
