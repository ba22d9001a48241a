"""Bundled datasets and input validation: every bad input gives a clear InputError."""

import io

import numpy as np
import pytest
from PIL import Image

from data import InputError, list_datasets, load_dataset, load_image
from data.inputs import MAX_IMAGE_PIXELS


def _png(img: Image.Image, fmt="PNG") -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


def test_digits_splits_are_disjoint_and_complete():
    train, test, full = (load_dataset("digits", s) for s in ("train", "test", "all"))
    assert len(train) + len(test) == len(full) == 1797
    assert train.inputs[0].size == (8, 8) and train.class_names == [str(i) for i in range(10)]
    tr = {np.asarray(i).tobytes() for i in train.inputs}
    overlap = sum(np.asarray(i).tobytes() in tr for i in test.inputs)
    assert overlap < 5  # a few scans of different digits can coincide pixel for pixel; splits are index-disjoint
    assert set(np.unique(test.labels)) == set(range(10))


def test_prose_is_real_text_with_all_topics():
    ds = load_dataset("prose", "test")
    assert ds.modality == "text" and len(ds) >= 40
    assert set(np.unique(ds.labels)) == set(range(len(ds.class_names)))
    assert all(len(t.split()) >= 8 for t in ds.inputs)
    assert "prose" in list_datasets() and list_datasets()["digits"] == "image"
    # references, author lists and addresses are not prose about the topic (they were labelled "medicine", ...)
    every = load_dataset("prose", "all").inputs
    for marker in ("Proceedings", "Decision Tree Construction", "pp.", "@", "[2]", "Mangasarian:"):
        assert not any(marker in t for t in every), marker


def test_prose_sentences_keep_prose_and_drop_citations():
    from data.datasets import _sentences

    text = (
        "The data set contains three classes of fifty instances each, where each class refers to a type of plant. "
        'Bennett, "Decision Tree Construction Via Linear Programming." Proceedings of the 4th Midwest Society, pp '
        "97-101, 1992], a classification method which uses linear programming to construct a decision tree."
    )
    assert _sentences(text) == [text.split(". ")[0] + "."]


def test_unknown_dataset_and_split():
    with pytest.raises(ValueError, match="Bundled datasets"):
        load_dataset("imagenet")
    with pytest.raises(ValueError, match="split"):
        load_dataset("digits", "validation")


def test_subset_keeps_rows_aligned():
    ds = load_dataset("digits", "test")
    sub = ds.subset([5, 2])
    assert list(sub.labels) == [ds.labels[5], ds.labels[2]] and sub.inputs[1] is ds.inputs[2]


def test_load_image_accepts_png_and_jpeg():
    rgb = Image.fromarray(np.random.default_rng(0).integers(0, 255, (20, 30, 3), dtype=np.uint8))
    assert load_image(_png(rgb)).mode == "RGB"
    assert load_image(_png(rgb, "JPEG")).size == (30, 20)
    assert load_image(_png(rgb.convert("L"))).mode == "L"
    assert load_image(_png(rgb.convert("RGBA"))).mode == "RGB"


@pytest.mark.parametrize(
    "raw,match",
    [
        (b"", "empty"),
        (b"this is a text file, not an image", "not an image"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "not an image|corrupt"),
    ],
)
def test_bad_uploads_are_refused_clearly(raw, match):
    with pytest.raises(InputError, match=match):
        load_image(raw, "file.png")


def test_truncated_png_is_refused():
    raw = _png(Image.new("RGB", (64, 64), "red"))
    with pytest.raises(InputError, match="corrupt|not an image"):
        load_image(raw[: len(raw) // 2], "half.png")


def test_decompression_bomb_is_refused_before_decoding():
    side = int(np.sqrt(MAX_IMAGE_PIXELS)) + 100
    bomb = _png(Image.new("L", (side, side)))  # compresses to a few KB
    assert len(bomb) < 1_000_000
    with pytest.raises(InputError, match="MP"):
        load_image(bomb, "bomb.png")


def test_an_image_pillow_refuses_gets_the_size_message(monkeypatch):
    """Pillow's own decompression-bomb guard fires before HeadScope's size check: the user still reads the
    size limit and what to do, not an exception name."""
    raw = _png(Image.new("L", (400, 300)))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10_000)  # 120,000 pixels > 2 x the limit: DecompressionBombError
    with pytest.raises(InputError, match="too large for Pillow.*Downscale it first"):
        load_image(raw, "huge.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100_000)  # between 1 and 2 x: the warning
    with pytest.raises(InputError, match="Downscale it first"):
        load_image(raw, "large.png")


def test_every_colour_mode_decodes_as_a_viewer_shows_it():
    ramp16 = np.tile(np.linspace(0, 65535, 256).round().astype(np.uint16), (8, 1))  # a 16-bit scanner ramp
    grey = np.asarray(load_image(_png(Image.fromarray(ramp16)), "ramp16.png"))
    assert grey.dtype == np.uint8 and grey.min() == 0 and grey.max() == 255  # scaled, not clipped to 255
    np.testing.assert_allclose(grey[0], np.linspace(0, 255, 256), atol=1)
    for bits in (12, 10):  # sensor data in a 16-bit PNG: read at the depth it uses, not nearly black
        ramp = np.tile(np.linspace(0, 2**bits - 1, 256).round().astype(np.uint16), (8, 1))
        np.testing.assert_allclose(
            np.asarray(load_image(_png(Image.fromarray(ramp))))[0], np.linspace(0, 255, 256), atol=1
        )

    la = Image.fromarray(np.stack([np.full((4, 4), 40, np.uint8), np.zeros((4, 4), np.uint8)], -1), "LA")
    assert load_image(_png(la)).mode == "L" and np.asarray(load_image(_png(la))).min() == 255  # transparent: white

    pal = Image.new("P", (4, 4), 1)
    pal.putpalette([0, 0, 0, 200, 0, 0] + [0] * 762)
    pal.putpixel((0, 0), 0)
    raw = io.BytesIO()
    pal.save(raw, format="PNG", transparency=0)
    rgb = np.asarray(load_image(raw.getvalue()))
    assert tuple(rgb[0, 0]) == (255, 255, 255) and tuple(rgb[1, 1]) == (200, 0, 0)

    rgba = Image.new("RGBA", (4, 4), (0, 0, 255, 0))
    assert tuple(np.asarray(load_image(_png(rgba)))[0, 0]) == (255, 255, 255)

    cmyk = Image.new("CMYK", (4, 4), (0, 0, 0, 0))  # no ink: white paper
    out = load_image(_png(cmyk, "JPEG"))
    assert out.mode == "RGB" and np.asarray(out).min() > 240

    tall = Image.new("RGB", (20, 10), "white")
    exif = tall.getexif()
    exif[0x0112] = 6  # EXIF orientation: rotate 90 degrees clockwise to display
    raw = io.BytesIO()
    tall.save(raw, format="JPEG", exif=exif)
    assert load_image(raw.getvalue()).size == (10, 20)


def test_prepare_rejects_bad_image_inputs(digits_vit):
    with pytest.raises(InputError, match="No images"):
        digits_vit.prepare([])
    with pytest.raises(InputError, match="array must be"):
        digits_vit.prepare([np.zeros((4, 4, 7))])
    with pytest.raises(InputError, match="expected a PIL image"):
        digits_vit.prepare(["not an image"])
    big = Image.new("RGB", (300, 200), "white")  # any size and mode is resized / converted
    assert digits_vit.prepare([big]).tensors["pixel_values"].shape == (1, 1, 32, 32)


def test_text_inputs_empty_and_too_long(minilm):
    with pytest.raises(InputError, match="empty"):
        minilm.prepare(["   "])
    with pytest.raises(InputError, match="expected a string"):
        minilm.prepare([3])
    long_text = "word " * 400
    batch = minilm.prepare([long_text])
    assert batch.token_mask.shape[1] == minilm.spec.max_tokens == 256
    assert batch.notes and "truncated" in batch.notes[0] and "256" in batch.notes[0]
    assert minilm.prepare(["fine"]).notes == []


@pytest.mark.parametrize("how", ["blur", "noise", "paste"])
@pytest.mark.parametrize("region", ["centre", "left half"])
def test_a_corrupted_image_changes_only_its_region(how, region):
    from data.inputs import REGIONS, corrupt

    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (40, 60, 3), dtype=np.uint8))
    donor = Image.fromarray(rng.integers(0, 256, (20, 30, 3), dtype=np.uint8))
    out = np.asarray(corrupt(image, how, region, donor=donor))
    before = np.asarray(image)
    l, t, r, b = (round(f * s) for f, s in zip(REGIONS[region], (60, 40, 60, 40)))
    inside = np.zeros(before.shape[:2], bool)
    inside[t:b, l:r] = True
    assert np.array_equal(out[~inside], before[~inside])  # outside the region: the image, pixel for pixel
    assert (out[inside] != before[inside]).mean() > 0.5
    if how == "paste":
        resized = np.asarray(donor.resize((60, 40), Image.Resampling.BILINEAR))
        assert np.array_equal(out[inside], resized[inside])
    with pytest.raises(ValueError, match="region one of"):
        corrupt(image, how, "middle")
