"""Targets, masks, digit geometry, augmentation and a short training run."""

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from test_detector_fixtures import render_table, render_text

from digit_detector import load_detector, save_detector
from digit_detector.geometry import (
    check_boxes,
    class_height_ratios,
    image_digit_height,
    neighbour_distances,
)
from digit_detector.targets import RING_WEIGHT, blob_maps, box_mask
from digit_detector.training import (
    CROP,
    SCALE_JITTER,
    WINDOW,
    Windows,
    augment,
    decoys,
    train_detector,
)


def test_blob_maps_known_values():
    points = torch.tensor([[[10.0, 12.0, 3], [30.0, 5.0, 7], [0.0, 0.0, 1]]])
    valid = torch.tensor([[True, True, False]])
    maps = blob_maps(points, valid, 20, 40, sigma=2.0)
    assert maps.shape == (1, 10, 20, 40)
    assert maps[0, 3, 12, 10] == pytest.approx(1.0)
    assert maps[0, 3, 12, 12] == pytest.approx(np.exp(-0.5))
    assert maps[0, 7, 5, 30] == pytest.approx(1.0)
    assert maps[0, 1].max() == 0  # invalid slot draws nothing
    assert maps[0, 3].sum() == pytest.approx(2 * np.pi * 4, rel=0.01)  # Gaussian integral


def test_box_mask_known_values():
    mask = box_mask(np.array([[10, 10, 14, 20]]), 40, 40, margin=2)
    assert mask[8, 8] == 1.0 and mask[15, 12] == 1.0 and mask[21, 15] == 1.0
    assert mask[22, 16] == pytest.approx(RING_WEIGHT)
    assert mask[6, 6] == pytest.approx(RING_WEIGHT) and mask[23, 12] == pytest.approx(RING_WEIGHT)
    assert mask[0, 0] == 0 and mask[30, 30] == 0


def test_geometry_corrects_for_class_heights():
    rows = []
    for image, height in (("a.png", 10), ("b.png", 20)):
        for i, digit in enumerate([0, 1, 2, 3, 4, 5]):
            tall = 1.5 if digit >= 3 else 1.0  # old-style: 3-5 taller than 0-2
            rows.append((image, 8 * i * height / 10, 0, 8 * i * height / 10 + 0.6 * height,
                         height * tall, digit))
    boxes = check_boxes(pd.DataFrame(rows, columns=["image", "x0", "y0", "x1", "y1", "digit"]))
    ratios = class_height_ratios(boxes)
    assert ratios[0] == pytest.approx(ratios[1]) and ratios[3] == pytest.approx(1.5 * ratios[0])
    a_height = image_digit_height(boxes[boxes.image == "a.png"], ratios)
    b_height = image_digit_height(boxes[boxes.image == "b.png"], ratios)
    assert b_height == pytest.approx(2 * a_height)
    distances = neighbour_distances(boxes[boxes.image == "a.png"], a_height)
    np.testing.assert_allclose(distances, 8.0)
    with pytest.raises(ValueError, match="bad digit box"):
        check_boxes(boxes.assign(digit=12))
    with pytest.raises(ValueError, match="lack the columns digit"):
        check_boxes(boxes.drop(columns="digit"))


def test_augmented_points_follow_the_warped_ink():
    n = 64
    images = torch.zeros(n, 1, WINDOW, WINDOW, dtype=torch.uint8)
    generator = torch.Generator().manual_seed(3)
    points = torch.zeros(n, 1, 3)
    for i in range(n):
        x, y = (torch.rand(2, generator=generator) * 16 + WINDOW / 2 - 8).round().int().tolist()
        images[i, 0, y - 1 : y + 2, x - 1 : x + 2] = 255
        points[i, 0] = torch.tensor([x, y, 4])
    batch = Windows(images, torch.full_like(images, 10), points, torch.ones(n, 1, dtype=bool))
    warped, masks, targets = augment(batch, 2.0, generator)
    assert warped.shape == (n, 1, CROP, CROP) and targets.shape == (n, 10, CROP, CROP)
    for i in range(n):
        ink = torch.relu(warped[i, 0] - 0.3)
        ys, xs = torch.meshgrid(torch.arange(CROP), torch.arange(CROP), indexing="ij")
        ink_x, ink_y = float((ink * xs).sum() / ink.sum()), float((ink * ys).sum() / ink.sum())
        target = targets[i, 4]
        peak_y, peak_x = divmod(int(target.argmax()), CROP)
        assert abs(ink_x - peak_x) <= 1.0 and abs(ink_y - peak_y) <= 1.0
        assert target.max() > 0.85
    assert float(masks.max()) == 1.0


def test_short_training_run_learns_geometry_and_writes_loadable_weights(tmp_path):
    frames = []
    for seed in range(3):
        grey, boxes = render_table(rows=8, seed=seed, size=26)
        Image.fromarray(grey).save(tmp_path / f"t{seed}.png")
        frames.append(boxes.assign(image=str(tmp_path / f"t{seed}.png")))
    Image.fromarray(render_text(seed=5)).save(tmp_path / "text.png")
    (tmp_path / "broken.png").write_bytes(b"no image")
    boxes = pd.concat(frames, ignore_index=True)
    steps = []
    detector, summary = train_detector(
        boxes, [tmp_path / "text.png", tmp_path / "broken.png"], epochs=2, steps_per_epoch=3,
        batch_size=8, progress=lambda epoch, total, message: steps.append(epoch))
    assert steps == [1, 2] and summary.epochs_run == 2
    assert summary.images == 3 and summary.validation_windows > 0
    assert any("broken.png" in problem for problem in summary.problems)
    # the rendered pitch is the advance of one old-style figure, about 0.5 em = 13 px at 26 px
    heights = boxes.y1 - boxes.y0
    true_pitch = np.median(np.diff(boxes.x0)[(np.diff(boxes.x0) > 0) & (np.diff(boxes.x0) < 20)])
    scale = detector.config.digit_height_px / np.median(heights)
    assert detector.config.digit_pitch_px == pytest.approx(true_pitch * scale, rel=0.15)
    assert len(detector.config.training_data_hash) == 64
    loaded = load_detector(save_detector(detector, tmp_path / "d.safetensors"))
    assert loaded.config == detector.config


def _spread(images):
    """Standard deviation along x and y (N, 2) of the ink above half of each window's peak
    (above the augmentation noise)."""
    ink = torch.relu(images[:, 0] - 0.5 * images[:, 0].amax(dim=(1, 2), keepdim=True))
    ys, xs = torch.meshgrid(torch.arange(ink.shape[1]), torch.arange(ink.shape[2]),
                            indexing="ij")
    total = ink.sum(dim=(1, 2))
    mean_x = (ink * xs).sum(dim=(1, 2)) / total
    mean_y = (ink * ys).sum(dim=(1, 2)) / total
    var_x = (ink * (xs - mean_x[:, None, None]) ** 2).sum(dim=(1, 2)) / total
    var_y = (ink * (ys - mean_y[:, None, None]) ** 2).sum(dim=(1, 2)) / total
    return torch.stack([var_x, var_y], dim=1).sqrt()


def test_decoys_are_turned_or_wrongly_sized_and_have_no_targets():
    n = 64
    images = torch.zeros(n, 1, WINDOW, WINDOW, dtype=torch.uint8)
    images[:, 0, WINDOW // 2 - 1 : WINDOW // 2 + 2, WINDOW // 2 - 8 : WINDOW // 2 + 8] = 255
    points = torch.tensor([[[WINDOW / 2, WINDOW / 2, 5]]]).repeat(n, 1, 1)
    batch = Windows(images, torch.full_like(images, 10), points, torch.ones(n, 1, dtype=bool))
    generator = torch.Generator().manual_seed(4)
    decoy_images, masks, targets = decoys(batch, generator)
    assert decoy_images.shape == (n, 1, CROP, CROP) and targets.shape == (n, 10, CROP, CROP)
    assert float(targets.abs().sum()) == 0.0 and float(masks.max()) == 1.0
    original = float(_spread(augment(batch, 2.0, generator)[0])[:, 0].median())
    spread = _spread(decoy_images)
    turned = spread[:, 1] > spread[:, 0]
    resized = (spread[:, 0] / original < 0.7) | (spread[:, 0] / original > 1.5)
    assert bool((turned | resized).all())
    assert 0 < int(turned.sum()) < n  # both kinds occur


def test_augmentation_jitters_the_digit_size_within_the_tolerated_range():
    n = 128
    images = torch.zeros(n, 1, WINDOW, WINDOW, dtype=torch.uint8)
    images[:, 0, WINDOW // 2 - 1 : WINDOW // 2 + 2, WINDOW // 2 - 8 : WINDOW // 2 + 8] = 255
    points = torch.tensor([[[WINDOW / 2, WINDOW / 2, 5]]]).repeat(n, 1, 1)
    batch = Windows(images, torch.full_like(images, 10), points, torch.ones(n, 1, dtype=bool))
    lengths = _spread(augment(batch, 2.0, torch.Generator().manual_seed(5))[0])[:, 0]
    ratio = lengths / float(_spread(images[:1].float() / 255)[0, 0])
    low, high = SCALE_JITTER
    assert float(ratio.min()) > 0.8 * low and float(ratio.max()) < 1.2 * high
    assert float(ratio.min()) < 0.8 and float(ratio.max()) > 1.25  # the range is used
