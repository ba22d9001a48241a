"""The synthetic `shapes` dataset (data/shapes.py) and the shapes-vit built-in model trained on it."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import ndimage

from data import load_dataset
from data.shapes import CLASS_NAMES, COUNTS, SIZE, arrays, generate


@pytest.fixture(scope="module")
def small():
    return generate(120, seed=7)


def test_generation_is_deterministic_given_the_seed(small):
    again = generate(120, seed=7)
    for a, b in zip(small, again):
        np.testing.assert_array_equal(a, b)
    other = generate(120, seed=8)
    assert not np.array_equal(small[0], other[0])


def test_arrays_shapes_and_dtypes(small):
    images, labels, masks = small
    assert images.shape == (120, SIZE, SIZE, 3) and images.dtype == np.uint8
    assert labels.shape == (120,) and labels.dtype == np.int64
    assert masks.shape == (120, SIZE, SIZE) and masks.dtype == bool
    assert len(CLASS_NAMES) >= 5 and len(set(CLASS_NAMES)) == len(CLASS_NAMES)


def test_classes_are_balanced(small):
    _, labels, _ = small
    counts = np.bincount(labels, minlength=len(CLASS_NAMES))
    assert counts.min() >= 1 and counts.max() - counts.min() <= 1
    test_counts = np.bincount(arrays("test")[1], minlength=len(CLASS_NAMES))
    assert test_counts.sum() == COUNTS["test"] and test_counts.max() - test_counts.min() <= 1


def test_masks_are_non_empty_and_inside_the_image(small):
    _, _, masks = small
    area = masks.sum(axis=(1, 2))
    assert area.min() >= 40  # the smallest shape (radius 7) still covers dozens of pixels
    assert area.max() < 0.5 * SIZE * SIZE
    border = np.concatenate([masks[:, 0], masks[:, -1], masks[:, :, 0], masks[:, :, -1]], axis=1)
    assert not border.any(), "every shape lies wholly inside the frame"


def test_shape_pixels_differ_from_the_background_around_them(small):
    images, _, masks = small
    x = images.astype(np.float64) / 255.0
    around = ndimage.binary_dilation(masks, structure=np.ones((1, 7, 7), bool)) & ~masks
    inside_mean = (x * masks[..., None]).sum((1, 2)) / masks.sum((1, 2))[:, None]
    around_mean = (x * around[..., None]).sum((1, 2)) / around.sum((1, 2))[:, None]
    contrast = np.linalg.norm(inside_mean - around_mean, axis=1)  # RGB distance in [0, 1] units
    assert contrast.min() > 0.2
    # the shape is a (shaded) flat fill: more uniform than the cluttered background
    inside_std = np.array([x[i][masks[i]].std(0).mean() for i in range(len(x))])
    outside_std = np.array([x[i][~masks[i]].std(0).mean() for i in range(len(x))])
    assert np.mean(inside_std < outside_std) > 0.9


def test_background_is_cluttered_not_flat(small):
    images, _, masks = small
    x = images.astype(np.float64) / 255.0
    outside_std = np.array([x[i][~masks[i]].std(0).mean() for i in range(len(x))])
    assert outside_std.min() > 0.03


def test_load_dataset_api():
    test = load_dataset("shapes", "test")
    assert len(test) == COUNTS["test"]
    assert load_dataset("shapes", "test") is test  # cached
    assert test.modality == "image" and test.class_names == CLASS_NAMES
    img = test.inputs[3]
    assert isinstance(img, Image.Image) and img.mode == "RGB" and img.size == (SIZE, SIZE)
    images, labels, masks = arrays("test")
    np.testing.assert_array_equal(np.asarray(img), images[3])
    np.testing.assert_array_equal(test.labels, labels)
    assert test.masks.shape == (len(test), SIZE, SIZE) and test.masks.dtype == bool
    np.testing.assert_array_equal(test.masks, masks)
    assert test.captions[3] == CLASS_NAMES[labels[3]]
    sub = test.subset([5, 1])
    np.testing.assert_array_equal(sub.masks, masks[[5, 1]])
    both = load_dataset("shapes", "all")  # train then test
    assert len(both) == COUNTS["train"] + COUNTS["test"]
    np.testing.assert_array_equal(both.masks[COUNTS["train"] :], masks)
    assert not np.array_equal(np.asarray(both.inputs[0]), images[0])  # train and test are different draws
    with pytest.raises(ValueError, match="split"):
        load_dataset("shapes", "validation")


def test_shapes_vit_spec_accuracy_and_unembed(shapes_vit):
    s = shapes_vit.spec
    assert (s.modality, s.n_layers, s.n_heads, s.grid, s.channels, s.image_size) == ("image", 4, 4, (8, 8), 3, 48)
    assert s.class_names == tuple(CLASS_NAMES) and s.dataset == "shapes"
    ds = load_dataset("shapes", "test")
    pred = shapes_vit.logits(shapes_vit.prepare(ds.inputs)).argmax(-1).numpy()
    assert (pred == ds.labels).mean() >= 0.95
    metrics = json.loads((Path(s.source) / "metrics.json").read_text())
    assert metrics["test_accuracy"] >= 0.95 and metrics["n_test"] == len(ds)
    tr = shapes_vit.run(shapes_vit.prepare(ds.inputs[:16]), capture=True)
    torch.testing.assert_close(shapes_vit.unembed(tr.resid[-1][:, 0]), tr.logits, rtol=1e-5, atol=1e-5)
