"""Reading pages: every valid image kind becomes 8-bit grey, every bad file a clear error."""

import numpy as np
import pytest
from PIL import Image

from digit_detector import PageReadError, load_page


def test_grey_and_rgb_pages(tmp_path):
    grey = np.tile(np.arange(0, 250, 10, dtype=np.uint8), (8, 1))
    Image.fromarray(grey).save(tmp_path / "g.png")
    np.testing.assert_array_equal(load_page(tmp_path / "g.png"), grey)
    rgb = np.stack([grey, grey, grey], axis=-1)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    np.testing.assert_array_equal(load_page(tmp_path / "rgb.png"), grey)


def test_rgba_is_composited_on_white(tmp_path):
    rgba = np.zeros((4, 4, 4), dtype=np.uint8)
    rgba[:2, :, 3] = 255  # top half opaque black, bottom half fully transparent
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    page = load_page(tmp_path / "a.png")
    assert page.dtype == np.uint8 and page.shape == (4, 4)
    assert (page[:2] == 0).all() and (page[2:] == 255).all()


def test_sixteen_bit_is_rescaled(tmp_path):
    values = np.array([[0, 32768, 65535]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "16.png")
    np.testing.assert_array_equal(load_page(tmp_path / "16.png"), [[0, 128, 255]])


def test_cmyk_and_palette(tmp_path):
    Image.new("CMYK", (5, 5), (0, 0, 0, 255)).save(tmp_path / "k.jpg")
    assert load_page(tmp_path / "k.jpg").max() < 30  # full black ink
    palette = Image.new("P", (5, 5))
    palette.putpalette([255, 255, 255, 0, 0, 0] + [0] * 762)
    palette.putpixel((2, 2), 1)
    palette.save(tmp_path / "p.png")
    page = load_page(tmp_path / "p.png")
    assert page[2, 2] == 0 and page[0, 0] == 255


@pytest.mark.parametrize(("name", "content", "reason"), [
    ("empty.jpg", b"", "empty file"),
    ("notes.png", b"these are not pixels\n", "not a readable image"),
])
def test_bad_files_name_the_file(tmp_path, name, content, reason):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(PageReadError, match=f"{name}: {reason}"):
        load_page(tmp_path / name)


def test_missing_and_truncated_files(tmp_path):
    with pytest.raises(PageReadError, match="nothing.jpg: no such file"):
        load_page(tmp_path / "nothing.jpg")
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (200, 200), dtype=np.uint8)).save(
        tmp_path / "cut.png")
    data = (tmp_path / "cut.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(PageReadError, match="cut.png: corrupt or truncated"):
        load_page(tmp_path / "cut.png")


def test_too_large_image_is_refused_before_decoding(tmp_path):
    Image.new("L", (300, 200), 255).save(tmp_path / "big.png")
    with pytest.raises(PageReadError, match=r"big.png: image too large .*300 x 200"):
        load_page(tmp_path / "big.png", max_pixels=50_000)
    assert load_page(tmp_path / "big.png", max_pixels=60_000).shape == (200, 300)
