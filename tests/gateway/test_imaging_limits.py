"""Decoding, exactly: the message of each kind of bad image, both edges of the pixel limit, the
DCT scale libjpeg is asked for, the memory each decode reserves (and the 413/503 when it does not
fit), which decoder ran and at what size, and that both decoders give Pillow's pixels."""

from __future__ import annotations

import io
import struct
import tracemalloc

import numpy as np
import pytest
from PIL import Image, ImageFile, PngImagePlugin

from gateway.contract import Preprocessing
from gateway.errors import InvalidImageError, OverloadedError, PayloadTooLargeError
from gateway.imaging import (
    DECODER_OVERHEAD,
    ImageSpec,
    from_pillow,
    orientation,
    prepare,
    scale_numerator,
)
from gateway.memory import MemoryBudget, Reservation
from tests.gateway.support import encode, photo

NONE = Preprocessing.NONE
MiB = 1024 * 1024
BASELINE = encode(photo((640, 480)), "JPEG", quality=90)


def progressive(size: tuple[int, int]) -> bytes:
    buffer = io.BytesIO()
    photo(size).save(buffer, "JPEG", progressive=True)
    return buffer.getvalue()


def reserved(data: bytes, spec: ImageSpec) -> Reservation:
    memory = MemoryBudget(1 << 30).reservation("request")
    prepare(data, spec, memory)
    return memory


def invalid(data: bytes | bytearray, spec: ImageSpec | None = None) -> str:
    with pytest.raises(InvalidImageError) as refused:
        prepare(data, spec or ImageSpec(32, NONE))
    assert refused.value.status == 422
    return refused.value.message


def test_the_spec_defaults() -> None:
    spec = ImageSpec(299, Preprocessing.XCEPTION)
    assert (spec.resize_filter, spec.jpeg_draft, spec.max_pixels) == ("nearest", True, 25_000_000)


def test_what_is_not_a_decodable_image() -> None:
    assert invalid(b"") == "empty image body"
    assert invalid(bytearray()) == "empty image body"
    supported = "content is not a supported image (JPEG, PNG, WEBP, GIF, BMP)"
    assert invalid(b"<html>hello</html>") == supported
    assert invalid(encode(photo((16, 16)), "TIFF")) == supported
    assert invalid(BASELINE[:300]) == "cannot read image header: Truncated File Read"
    webp = encode(photo((16, 16)), "WEBP")
    assert invalid(webp[:-4]) == "cannot read image header: could not create decoder object"
    small = encode(photo((64, 64)), "JPEG")
    assert invalid(small[: len(small) // 2]) == (
        "cannot decode image: image file is truncated (36 bytes not processed)"
    )


@pytest.mark.parametrize(("text", "shown"), [("", "OSError"), ("x" * 300, "x" * 200)])
def test_a_decoder_failure_is_named_briefly(
    monkeypatch: pytest.MonkeyPatch, text: str, shown: str
) -> None:
    def fail(self: ImageFile.ImageFile) -> None:
        raise OSError(text) if text else OSError()

    monkeypatch.setattr(ImageFile.ImageFile, "load", fail)
    assert invalid(encode(photo((16, 16)), "PNG")) == f"cannot decode image: {shown}"


def test_both_edges_of_the_pixel_limit() -> None:
    data = encode(Image.new("L", (100, 50)), "PNG")
    assert prepare(data, ImageSpec(8, NONE, max_pixels=5000)).source_size == (100, 50)
    with pytest.raises(PayloadTooLargeError) as big:
        prepare(data, ImageSpec(8, NONE, max_pixels=4999))
    assert big.value.message == "image is 100x50 = 5000 pixels, more than the limit of 4999"
    with pytest.raises(PayloadTooLargeError) as photo_big:
        prepare(BASELINE, ImageSpec(8, NONE, max_pixels=307_199))
    assert photo_big.value.message == (
        "image is 640x480 = 307200 pixels, more than the limit of 307199"
    )


@pytest.mark.parametrize(
    ("size", "target", "n"),
    [((1024, 768), 299, 4), ((768, 1024), 299, 4), ((597, 597), 299, 4), ((596, 800), 299, 5),
     ((640, 480), 299, 5), ((2392, 2392), 299, 1), ((2385, 4000), 299, 1),
     ((2384, 4000), 299, 2), ((4000, 300), 299, 8),
     ((299, 299), 299, 8), ((100, 100), 299, 8), ((10, 10), 0, 1), ((8, 8), 8, 8),
     ((9, 16), 8, 7), ((7, 16), 8, 8)],
)  # fmt: skip
def test_the_dct_scale_is_the_smallest_that_keeps_the_target(
    size: tuple[int, int], target: int, n: int
) -> None:
    assert scale_numerator(size, target) == n


def test_a_baseline_jpeg_reserves_its_scaled_pixels() -> None:
    spec = ImageSpec(299, NONE)
    memory = reserved(BASELINE, spec)
    # 5/8 of 640x480 is 400x300, three bytes a pixel, plus the decoder's working memory.
    assert (memory.nbytes, memory.what) == (400 * 300 * 3 + DECODER_OVERHEAD, "image decode")
    assert 2 * MiB == DECODER_OVERHEAD
    full = reserved(BASELINE, ImageSpec(299, NONE, jpeg_draft=False))
    assert full.nbytes == 640 * 480 * 3 + DECODER_OVERHEAD
    prepared = prepare(BASELINE, spec)
    assert (prepared.decoder, prepared.source_size, prepared.decoded_size) == (
        "libjpeg-turbo",
        (640, 480),
        (400, 300),
    )
    assert prepare(BASELINE, ImageSpec(299, NONE, jpeg_draft=False)).decoded_size == (640, 480)


def test_a_progressive_jpeg_also_reserves_its_coefficients() -> None:
    memory = reserved(progressive((640, 480)), ImageSpec(299, NONE))
    # 4:2:0 sampling: 1.5 coefficient planes of 16-bit values, in padded blocks.
    coefficients = int(2 * 1.5 * (640 + 16) * (480 + 16))
    assert memory.nbytes == 400 * 300 * 3 + coefficients + DECODER_OVERHEAD == 3_433_280
    grey = io.BytesIO()
    Image.fromarray(np.asarray(photo((64, 48)).convert("L"))).save(grey, "JPEG", progressive=True)
    one_plane = reserved(grey.getvalue(), ImageSpec(8, NONE, jpeg_draft=False))
    assert one_plane.nbytes == 64 * 48 * 3 + 2 * (64 + 16) * (48 + 16) + DECODER_OVERHEAD


def test_a_decode_that_does_not_fit_the_budget() -> None:
    needed = 400 * 300 * 3 + DECODER_OVERHEAD
    exact = MemoryBudget(needed).reservation("request")
    prepare(BASELINE, ImageSpec(299, NONE), exact)
    assert exact.nbytes == needed
    with pytest.raises(PayloadTooLargeError) as never:
        prepare(BASELINE, ImageSpec(299, NONE), MemoryBudget(needed - 1).reservation("request"))
    assert never.value.message == (
        "image decode needs 2.3 MiB, more than this replica's memory budget of 2 MiB"
    )
    budget = MemoryBudget(needed)
    budget.try_reserve(1)
    with pytest.raises(OverloadedError) as busy:
        prepare(BASELINE, ImageSpec(299, NONE), budget.reservation("request"))
    assert busy.value.message == (
        "gateway memory budget is in use (image decode does not fit now), retry shortly"
    )


@pytest.mark.parametrize(
    ("mode", "fmt", "per_pixel"),
    [("RGB", "PNG", 4), ("RGBA", "PNG", 4), ("L", "PNG", 1), ("P", "PNG", 1), ("1", "PNG", 1),
     ("I;16", "PNG", 2), ("LA", "PNG", 4), ("RGB", "BMP", 4), ("P", "GIF", 1)],
)  # fmt: skip
def test_pillow_reserves_its_frame_per_mode(mode: str, fmt: str, per_pixel: int) -> None:
    img = Image.new(mode, (64, 48))
    prepared_memory = reserved(encode(img, fmt), ImageSpec(8, NONE))
    assert prepared_memory.nbytes == 64 * 48 * per_pixel + DECODER_OVERHEAD
    assert prepare(encode(img, fmt), ImageSpec(8, NONE)).decoder == "pillow"


def test_webp_is_decoded_twice_over() -> None:
    memory = reserved(encode(photo((64, 48)), "WEBP"), ImageSpec(8, NONE))
    assert memory.nbytes == 2 * 64 * 48 * 4 + DECODER_OVERHEAD


def test_a_turned_image_reserves_its_rotation_and_a_conversion_its_own() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    turned = encode(photo((64, 48)), "PNG", exif=exif)
    memory = reserved(turned, ImageSpec(8, NONE))
    assert (memory.nbytes, memory.what) == (2 * 64 * 48 * 4 + DECODER_OVERHEAD, "image rotation")
    palette = encode(photo((64, 48)).convert("P"), "PNG")
    converted = reserved(palette, ImageSpec(8, NONE, resize_filter="bilinear"))
    assert (converted.nbytes, converted.what) == (
        64 * 48 * 1 + 64 * 48 * 4 + DECODER_OVERHEAD,
        "image conversion",
    )
    rgb = reserved(encode(photo((64, 48)), "PNG"), ImageSpec(8, NONE, resize_filter="bilinear"))
    assert (rgb.nbytes, rgb.what) == (64 * 48 * 4 + DECODER_OVERHEAD, "image decode")
    wide = reserved(encode(Image.new("I;16", (64, 48)), "PNG"), ImageSpec(8, NONE, "bilinear"))
    assert wide.nbytes == 64 * 48 * 2 + 64 * 48 * 4 + DECODER_OVERHEAD


def test_a_cmyk_jpeg_goes_to_pillow_scaled_while_decoding() -> None:
    cmyk = encode(photo((640, 480)).convert("CMYK"), "JPEG")
    prepared = prepare(cmyk, ImageSpec(299, NONE))
    assert (prepared.decoder, prepared.source_size, prepared.decoded_size) == (
        "pillow",
        (640, 480),
        (640, 480),
    )
    small = prepare(cmyk, ImageSpec(150, NONE))
    assert small.decoded_size == (320, 240)
    assert reserved(cmyk, ImageSpec(150, NONE)).nbytes == 320 * 240 * 4 + DECODER_OVERHEAD
    assert prepare(cmyk, ImageSpec(150, NONE, jpeg_draft=False)).decoded_size == (640, 480)


def pillow_reference(data: bytes, size: int, filter_: str, mode: Preprocessing) -> np.ndarray:
    resample = Image.Resampling.BILINEAR if filter_ == "bilinear" else Image.Resampling.NEAREST
    img = Image.open(io.BytesIO(data)).convert("RGB").resize((size, size), resample)
    x = np.asarray(img, dtype=np.float32)[np.newaxis]
    if mode is Preprocessing.CAFFE:
        x = x[..., ::-1] - np.array([103.939, 116.779, 123.68], dtype=np.float32)
    elif mode is Preprocessing.UNIT:
        x = x / np.float32(255.0)
    return x


@pytest.mark.parametrize("filter_", ["nearest", "bilinear"])
@pytest.mark.parametrize("mode", [Preprocessing.NONE, Preprocessing.CAFFE, Preprocessing.UNIT])
@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_both_decoders_give_pillows_pixels(filter_: str, mode: Preprocessing, fmt: str) -> None:
    data = encode(photo((96, 64)), fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    prepared = prepare(data, ImageSpec(40, mode, resize_filter=filter_, jpeg_draft=False))
    assert prepared.decoder == ("libjpeg-turbo" if fmt == "JPEG" else "pillow")
    assert prepared.tensor.shape == (1, 40, 40, 3) and prepared.tensor.dtype == np.float32
    np.testing.assert_allclose(
        prepared.tensor, pillow_reference(data, 40, filter_, mode), atol=1e-5
    )


def test_a_jpeg_libjpeg_turbo_refuses_is_decoded_by_pillow() -> None:
    data = encode(photo((96, 64)), "JPEG", quality=90)
    cut = data[: len(data) // 2] + b"\xff\xd9"  # half the scan, then the end marker
    prepared = prepare(cut, ImageSpec(16, NONE, jpeg_draft=False))
    assert prepared.decoder == "pillow"
    np.testing.assert_array_equal(prepared.tensor, pillow_reference(cut, 16, "nearest", NONE))


@pytest.mark.parametrize(("value", "expected"), [(1, 1), (3, 3), (6, 6), (8, 8), (0, 1), (9, 1)])
def test_the_exif_orientation_read(value: int, expected: int) -> None:
    exif = Image.Exif()
    exif[0x0112] = value
    with Image.open(io.BytesIO(encode(photo((8, 8)), "PNG", exif=exif))) as img:
        img.load()
        assert orientation(img) == expected
    with Image.open(io.BytesIO(encode(photo((8, 8)), "PNG"))) as plain:
        assert orientation(plain) == 1


def test_a_portrait_jpeg_keeps_the_target_width_too() -> None:
    tall = encode(photo((600, 1200)), "JPEG", quality=90)
    prepared = prepare(tall, ImageSpec(299, NONE))
    # 4/8: the width is the side that needs it (2/8 would leave it 150 wide).
    assert (prepared.decoder, prepared.decoded_size) == ("libjpeg-turbo", (300, 600))
    assert reserved(tall, ImageSpec(299, NONE)).nbytes == 300 * 600 * 3 + DECODER_OVERHEAD


@pytest.mark.parametrize("mode", ["I", "F"])
def test_wide_images_interpolate_in_their_own_mode(mode: str) -> None:
    memory = MemoryBudget(1 << 30).reservation("request")
    from_pillow(Image.new(mode, (64, 48)), ImageSpec(8, NONE, resize_filter="bilinear"), memory)
    assert (memory.nbytes, memory.what) == (64 * 48 * 4 + DECODER_OVERHEAD, "image decode")


@pytest.mark.parametrize("mode", ["RGBA", "LA", "CMYK"])
def test_bilinear_interpolates_the_rgb_pixels_not_the_stored_ones(mode: str) -> None:
    rng = np.random.default_rng(5)
    rgba = rng.integers(0, 256, (48, 64, 4), dtype=np.uint8)
    rgba[::2, :, 3] = 0  # every other row transparent: premultiplied alpha would show
    img = Image.fromarray(rgba, "RGBA")
    stored = img.convert(mode)
    fmt = "JPEG" if mode == "CMYK" else "PNG"
    data = encode(stored, fmt)
    with Image.open(io.BytesIO(data)) as opened:
        expected = np.asarray(
            opened.convert("RGB").resize((16, 16), Image.Resampling.BILINEAR), dtype=np.float32
        )
    prepared = prepare(data, ImageSpec(16, NONE, resize_filter="bilinear", jpeg_draft=False))
    np.testing.assert_array_equal(prepared.tensor[0], expected)


def test_a_progressive_cmyk_jpeg_reserves_the_coefficients_of_the_whole_image() -> None:
    buffer = io.BytesIO()
    photo((320, 240)).convert("CMYK").save(buffer, "JPEG", progressive=True)
    data = buffer.getvalue()
    # Four full-resolution planes of 16-bit coefficients, whatever scale the output has:
    # libjpeg keeps every coefficient of a progressive image until its last scan.
    coefficients = 2 * 4 * (320 + 16) * (240 + 16)
    full = reserved(data, ImageSpec(299, NONE))
    assert full.nbytes == 320 * 240 * 4 + coefficients + DECODER_OVERHEAD
    drafted = reserved(data, ImageSpec(100, NONE))
    assert prepare(data, ImageSpec(100, NONE)).decoded_size == (160, 120)
    assert drafted.nbytes == 160 * 120 * 4 + coefficients + DECODER_OVERHEAD


def test_a_failure_after_decoding_is_an_invalid_image(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise ValueError("no conversion")

    monkeypatch.setattr(Image.Image, "resize", fail)
    assert invalid(encode(photo((16, 16)), "PNG")) == "cannot convert image: no conversion"


@pytest.mark.parametrize("size", [(1, 5), (5, 1), (1, 1)])
def test_a_single_row_or_column_is_an_image(size: tuple[int, int]) -> None:
    prepared = prepare(encode(photo(size), "PNG"), ImageSpec(8, NONE))
    assert prepared.source_size == size and prepared.tensor.shape == (1, 8, 8, 3)


def test_a_png_that_calls_itself_progressive_is_still_decoded() -> None:
    text = PngImagePlugin.PngInfo()
    text.add_text("progressive", "1")  # text chunks land in Image.info, as a JPEG's flag would
    data = encode(photo((16, 16)), "PNG", pnginfo=text)
    with Image.open(io.BytesIO(data)) as img:
        assert img.info["progressive"] == "1"
    assert prepare(data, ImageSpec(8, NONE)).decoder == "pillow"


def test_a_422_subsampled_progressive_jpeg_has_two_coefficient_planes() -> None:
    buffer = io.BytesIO()
    photo((64, 48)).save(buffer, "JPEG", progressive=True, subsampling=1)  # 4:2:2
    data = buffer.getvalue()
    with Image.open(io.BytesIO(data)) as img:
        layers = getattr(img, "layer")  # noqa: B009 - a JpegImageFile attribute mypy does not see
        assert [layer[1:3] for layer in layers] == [(2, 1), (1, 1), (1, 1)]
    # Y at full size, Cb and Cr at half the width: 2 planes' worth of 16-bit coefficients.
    memory = reserved(data, ImageSpec(8, NONE, jpeg_draft=False))
    assert memory.nbytes == 64 * 48 * 3 + 2 * 2 * (64 + 16) * (48 + 16) + DECODER_OVERHEAD


def test_an_orientation_that_is_not_a_number_leaves_the_image_as_it_is() -> None:
    # A TIFF directory by hand: one entry, tag 0x0112 (orientation) as the text "six".
    tiff = b"MM\x00*" + struct.pack(">IH", 8, 1) + struct.pack(">HHI", 0x0112, 2, 4) + b"six\x00"
    data = encode(photo((12, 8)), "PNG", exif=b"Exif\x00\x00" + tiff + b"\x00" * 4)
    with Image.open(io.BytesIO(data)) as img:
        img.load()
        assert img.getexif()[0x0112] == "six"
        assert orientation(img) == 1
    plain = prepare(encode(photo((12, 8)), "PNG"), ImageSpec(8, NONE))
    np.testing.assert_array_equal(prepare(data, ImageSpec(8, NONE)).tensor, plain.tensor)


def test_pixels_far_from_the_header_are_found() -> None:
    bmp = bytearray(encode(photo((8, 8)), "BMP"))
    offset = struct.unpack_from("<I", bmp, 10)[0]  # where the pixels start
    far = bmp[:offset] + b"\x00" * 100_000 + bmp[offset:]  # past the first buffer's reach
    struct.pack_into("<I", far, 10, offset + 100_000)
    struct.pack_into("<I", far, 2, len(far))
    spec = ImageSpec(8, NONE)
    np.testing.assert_array_equal(
        prepare(bytes(far), spec).tensor, prepare(bytes(bmp), spec).tensor
    )


def test_the_body_is_decoded_where_it_lies_not_copied() -> None:
    data = encode(photo((1024, 1024)), "BMP")  # 3 MiB, read through Python file objects
    prepare(data, ImageSpec(8, NONE))
    tracemalloc.start()
    try:
        prepare(data, ImageSpec(8, NONE))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < len(data) // 4, peak
