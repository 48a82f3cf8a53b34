"""Targets, masks, digit geometry, augmentation and a short training run."""

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from test_detector_fixtures import render_table, render_text

from digit_detector import load_detector, save_detector
from digit_detector.augmentation import SCALE_JITTER, SHEAR, WIDTH_JITTER, augment, decoys
from digit_detector.checkpoint import CheckpointError
from digit_detector.geometry import (
    check_boxes,
    class_height_ratios,
    image_digit_height,
    neighbour_distances,
)
from digit_detector.model import DetectorConfig, DigitDetector, LayerSpec
from digit_detector.targets import RING_WEIGHT, blob_maps, box_mask
from digit_detector.training import MINING_EVERY, checkpoint_path, train_detector, train_to_file
from digit_detector.training_data import CROP, WINDOW, Source, Windows
from digit_detector.training_loss import (
    HARD_PER_IMAGE,
    apply_output_gain,
    calibrated_loss,
    hard_windows,
    masked_mse,
    page_targets,
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
    errors = []
    ys, xs = torch.meshgrid(torch.arange(CROP), torch.arange(CROP), indexing="ij")
    for i in range(n):
        ink = torch.relu(warped[i, 0] - 0.3)
        ink_x, ink_y = float((ink * xs).sum() / ink.sum()), float((ink * ys).sum() / ink.sum())
        target = targets[i, 4]
        peak_y, peak_x = divmod(int(target.argmax()), CROP)
        errors.append(max(abs(ink_x - peak_x), abs(ink_y - peak_y)))
        assert target.max() > 0.85
    # re-inking adds specks and erodes the tiny dot, so a few windows are off by a pixel or two;
    # points left unwarped would be off by several pixels in most windows
    assert np.median(errors) <= 0.6 and np.percentile(errors, 90) <= 1.0
    assert float(masks.max()) == 1.0


def small_training_set(folder):
    """Three rendered table images (digit boxes) and a text page plus a broken file (negatives)."""
    frames = []
    for seed in range(3):
        grey, boxes = render_table(rows=8, seed=seed, size=26)
        Image.fromarray(grey).save(folder / f"t{seed}.png")
        frames.append(boxes.assign(image=str(folder / f"t{seed}.png")))
    Image.fromarray(render_text(seed=5)).save(folder / "text.png")
    (folder / "broken.png").write_bytes(b"no image")
    return pd.concat(frames, ignore_index=True), [folder / "text.png", folder / "broken.png"]


def test_short_training_run_learns_geometry_and_writes_loadable_weights(tmp_path):
    boxes, negatives = small_training_set(tmp_path)
    steps = []
    detector, summary = train_detector(
        boxes, negatives, epochs=MINING_EVERY + 1,
        steps_per_epoch=3, batch_size=8, patience=MINING_EVERY + 1,
        progress=lambda epoch, total, message: steps.append(epoch))
    assert steps == list(range(1, MINING_EVERY + 2)) and summary.epochs_run == MINING_EVERY + 1
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


def interrupt_after(last):
    """A progress callback that interrupts the run (as Ctrl-C) after epoch ``last``."""
    def progress(epoch, total, message):
        if epoch == last:
            raise KeyboardInterrupt
    return progress


@pytest.mark.slow  # 5-8 s: runs in `make test-slow` (CI)
def test_an_interrupted_run_resumes_from_its_checkpoint_bit_for_bit(tmp_path):
    boxes, negatives = small_training_set(tmp_path)
    settings = {"epochs": 2 * MINING_EVERY + 1, "steps_per_epoch": 2, "batch_size": 8}
    whole, whole_summary = train_detector(boxes, negatives, **settings)
    checkpoint = tmp_path / "run.checkpoint"

    # stopped after the epoch that follows the first search for hard windows; the resumed run
    # trains on that pool and then searches (numpy generator) and trains once more
    with pytest.raises(KeyboardInterrupt):
        train_detector(boxes, negatives, checkpoint=checkpoint,
                       progress=interrupt_after(MINING_EVERY + 1), **settings)
    epochs_run = []
    resumed, summary = train_detector(
        boxes, negatives, checkpoint=checkpoint,
        progress=lambda epoch, total, message: epochs_run.append(epoch), **settings)
    assert epochs_run == list(range(MINING_EVERY + 2, 2 * MINING_EVERY + 2))
    for (name, expected), actual in zip(whole.state_dict().items(),
                                        resumed.state_dict().values(), strict=True):
        assert torch.equal(expected, actual), name
    assert summary.train_losses == whole_summary.train_losses
    assert summary.validation_losses == whole_summary.validation_losses
    assert summary.best_epoch == whole_summary.best_epoch
    assert summary.resumed_after_epoch == MINING_EVERY + 1 and whole_summary.resumed_after_epoch == 0
    # the checkpoint of a finished run stays until the caller deletes it; it gives the result
    again, _ = train_detector(boxes, negatives, checkpoint=checkpoint, progress=interrupt_after(
        2 * MINING_EVERY + 1), **settings)
    assert all(torch.equal(a, b) for a, b in zip(whole.state_dict().values(),
                                                 again.state_dict().values(), strict=True))
    checkpoint.unlink()

    with pytest.raises(KeyboardInterrupt):
        train_detector(boxes, negatives, checkpoint=checkpoint, progress=interrupt_after(1),
                       **settings | {"seed": 1})
    with pytest.raises(CheckpointError, match="other data or settings"):
        train_detector(boxes, negatives, checkpoint=checkpoint, **settings)
    checkpoint.write_bytes(b"\x80\x04 not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable training checkpoint"):
        train_detector(boxes, negatives, checkpoint=checkpoint, **settings)


def test_train_to_file_resumes_writes_the_weights_and_removes_its_checkpoint(tmp_path):
    boxes, negatives = small_training_set(tmp_path)
    settings = {"epochs": 2, "steps_per_epoch": 2, "batch_size": 8}
    whole, _ = train_detector(boxes, negatives, **settings)
    output = tmp_path / "out" / "detector.safetensors"
    checkpoint = checkpoint_path(output)
    assert checkpoint == tmp_path / "out" / "detector.safetensors.checkpoint"
    with pytest.raises(KeyboardInterrupt):
        train_to_file(boxes, negatives, output, progress=interrupt_after(1), **settings)
    assert checkpoint.is_file() and not output.exists()
    notices = []
    detector, summary = train_to_file(boxes, negatives, output, notice=notices.append,
                                      **settings)
    assert summary.resumed_after_epoch == 1 and summary.epochs_run == 2
    assert len(notices) == 1 and str(checkpoint) in notices[0] and "resuming" in notices[0]
    assert not checkpoint.exists()
    saved = load_detector(output)
    assert saved.config == whole.config
    for (name, expected), actual in zip(whole.state_dict().items(),
                                        saved.state_dict().values(), strict=True):
        assert torch.equal(expected, actual), name
    train_to_file(boxes, negatives, output, notice=notices.append, **settings)
    assert len(notices) == 1  # a fresh run has nothing to resume


def _largest_relative_difference(a: DigitDetector, b: DigitDetector) -> float:
    """Largest difference between two detectors' weights, relative to the layer's largest."""
    return max(float((x - y).abs().max() / y.abs().max())
               for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))


def test_fine_tuning_starts_from_the_given_weights(tmp_path):
    boxes, negatives = small_training_set(tmp_path)
    init = load_detector()
    settings = {"epochs": 1, "steps_per_epoch": 2, "batch_size": 8, "learning_rate": 1e-6}
    other_architecture = DetectorConfig(layers=(LayerSpec(4, 3),))
    tuned, tuned_summary = train_detector(boxes, negatives, init=init,
                                          config=other_architecture, **settings)
    scratch, scratch_summary = train_detector(boxes, negatives, **settings)
    assert tuned.config.layers == init.config.layers  # the init's architecture wins
    # the init's working geometry is kept, not measured on the new images
    assert (tuned.config.digit_height_px, tuned.config.digit_pitch_px,
            tuned.config.glyph_to_digit_height) == (
        init.config.digit_height_px, init.config.digit_pitch_px,
        init.config.glyph_to_digit_height)
    assert scratch.config.digit_pitch_px != init.config.digit_pitch_px
    assert tuned.config.training_data_hash == scratch.config.training_data_hash
    for detector, summary in ((tuned, tuned_summary), (scratch, scratch_summary)):
        apply_output_gain(detector, 1 / summary.output_gain)  # the kept weights carry a gain
    assert _largest_relative_difference(tuned, init) < 1e-4
    assert _largest_relative_difference(scratch, init) > 0.5


def test_a_fine_tuning_checkpoint_is_refused_by_a_run_from_other_weights(tmp_path):
    boxes, negatives = small_training_set(tmp_path)
    init = load_detector()
    other = load_detector()
    apply_output_gain(other, 1.5)
    settings = {"epochs": 2, "steps_per_epoch": 2, "batch_size": 8}
    checkpoint = tmp_path / "tune.checkpoint"
    with pytest.raises(KeyboardInterrupt):
        train_detector(boxes, negatives, init=init, checkpoint=checkpoint,
                       progress=interrupt_after(1), **settings)
    for start in (other, None):
        with pytest.raises(CheckpointError, match="starting weights"):
            train_detector(boxes, negatives, init=start, checkpoint=checkpoint, **settings)
    _, summary = train_detector(boxes, negatives, init=init, checkpoint=checkpoint, **settings)
    assert summary.resumed_after_epoch == 1 and summary.epochs_run == 2


def test_page_targets_equal_blob_maps_of_the_whole_image():
    rng = np.random.default_rng(0)
    points = np.column_stack([rng.uniform(-3, 153, 40), rng.uniform(-3, 133, 40),
                              rng.integers(0, 10, 40)]).astype(np.float32)
    tiled = page_targets(points, 130, 150, sigma=1.5, tile=64)
    whole = blob_maps(torch.from_numpy(points)[None], torch.ones(1, 40, dtype=bool), 130, 150,
                      1.5)[0]
    assert tiled.shape == (10, 130, 150)
    assert torch.allclose(tiled, whole, atol=1e-3)  # blobs are cut at 4 sigma: exp(-8)
    assert float(whole.max()) > 0.99


def test_hard_windows_are_cut_where_the_detector_errs_most():
    detector = DigitDetector(DetectorConfig())
    for parameter in detector.parameters():
        parameter.data.zero_()  # answers 0 everywhere: it errs only at the digits
    points = np.array([[30.0, 30.0, 3], [90.0, 80.0, 7]], dtype=np.float32)
    source = Source(np.zeros((120, 120), dtype=np.float32), np.ones((120, 120), np.float32),
                    points)
    windows = hard_windows(detector, [source, source])
    assert len(windows) == 2 * HARD_PER_IMAGE
    cell = CROP // 2
    for first in (0, HARD_PER_IMAGE):
        found = set()
        for i in range(first, first + 2):  # the two worst cells hold the two digits
            centre = windows.points[i][windows.valid[i]]
            near = centre[(centre[:, :2] - WINDOW / 2).abs().max(dim=1).values <= cell / 2]
            assert len(near) == 1
            found.add(int(near[0, 2]))
        assert found == {3, 7}
    assert detector.training  # left in training mode for the optimiser loop


def test_calibrated_loss_is_the_loss_at_the_best_output_gain():
    torch.manual_seed(0)
    detector = DigitDetector(DetectorConfig())
    _, windows = _bars(6)
    loss, gain = calibrated_loss(detector, windows, sigma=1.5)
    assert detector.training

    def loss_at(factor):
        scaled = DigitDetector(detector.config)
        scaled.load_state_dict(detector.state_dict())
        apply_output_gain(scaled, factor)
        offset = (WINDOW - CROP) // 2
        images, masks = windows.tensors()
        crop = slice(offset, offset + CROP)
        points = windows.points.clone()
        points[..., :2] -= offset
        targets = blob_maps(points, windows.valid, CROP, CROP, 1.5)
        with torch.no_grad():
            output = scaled(images[..., crop, crop])
        return float(masked_mse(output, targets, masks[..., crop, crop]))

    assert gain > 0
    assert loss == pytest.approx(loss_at(gain), rel=1e-4)
    assert loss < loss_at(0.9 * gain) and loss < loss_at(1.1 * gain) and loss < loss_at(1.0)


def test_output_gain_scales_the_maps_exactly():
    torch.manual_seed(1)
    detector = DigitDetector(DetectorConfig())
    page = torch.rand(1, 1, 40, 50)
    with torch.no_grad():
        before = detector(page)
        apply_output_gain(detector, 0.37)
        after = detector(page)
    assert float(before.abs().max()) > 0
    assert torch.allclose(after, 0.37 * before, atol=1e-6)


def _bars(n, vertical=False):
    """``n`` windows showing one 3 x 16 px bar (horizontal or vertical) labelled as a 5 at
    the centre, and the batch made of them."""
    images = torch.zeros(n, 1, WINDOW, WINDOW, dtype=torch.uint8)
    short = slice(WINDOW // 2 - 1, WINDOW // 2 + 2)
    long = slice(WINDOW // 2 - 8, WINDOW // 2 + 8)
    rows, columns = (long, short) if vertical else (short, long)
    images[:, 0, rows, columns] = 255
    points = torch.tensor([[[WINDOW / 2, WINDOW / 2, 5]]]).repeat(n, 1, 1)
    return images, Windows(images, torch.full_like(images, 10), points,
                           torch.ones(n, 1, dtype=bool))


def _ink_offsets(images):
    """Ink above half of each window's peak (above the augmentation noise), (N, h, w), and
    every pixel's x and y offsets from the window's ink centroid."""
    ink = torch.relu(images[:, 0] - 0.5 * images[:, 0].amax(dim=(1, 2), keepdim=True))
    ys, xs = torch.meshgrid(torch.arange(ink.shape[1]), torch.arange(ink.shape[2]),
                            indexing="ij")
    total = ink.sum(dim=(1, 2))
    mean_x = (ink * xs).sum(dim=(1, 2)) / total
    mean_y = (ink * ys).sum(dim=(1, 2)) / total
    return ink, xs - mean_x[:, None, None], ys - mean_y[:, None, None]


def _spread(images):
    """Standard deviation along x and y (N, 2) of the ink of each window."""
    ink, dx, dy = _ink_offsets(images)
    total = ink.sum(dim=(1, 2))
    variances = [(ink * d**2).sum(dim=(1, 2)) / total for d in (dx, dy)]
    return torch.stack(variances, dim=1).sqrt()


def test_decoys_are_turned_or_wrongly_sized_and_have_no_targets():
    n = 64
    _, batch = _bars(n)
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
    images, batch = _bars(128)
    lengths = _spread(augment(batch, 2.0, torch.Generator().manual_seed(5))[0])[:, 0]
    ratio = lengths / float(_spread(images[:1].float() / 255)[0, 0])
    low, high = SCALE_JITTER
    # the bar is horizontal: its length also takes the width jitter; re-inking may break a
    # stroke now and then, hence percentiles
    assert float(ratio.quantile(0.05)) > 0.8 * low / WIDTH_JITTER
    assert float(ratio.quantile(0.95)) < 1.2 * high * WIDTH_JITTER
    assert float(ratio.min()) < 0.8 and float(ratio.max()) > 1.25  # the range is used


def test_augmentation_slants_digits_both_ways_within_the_shear_range():
    _, batch = _bars(128, vertical=True)
    ink, dx, dy = _ink_offsets(augment(batch, 2.0, torch.Generator().manual_seed(6))[0])
    slant = (ink * dx * dy).sum(dim=(1, 2)) / (ink * dy**2).sum(dim=(1, 2))
    # a vertical stroke leans by the shear (plus at most tan 4 deg from the small rotation)
    assert float(slant.abs().max()) <= SHEAR + 0.1
    assert float(slant.min()) < -0.6 * SHEAR and float(slant.max()) > 0.6 * SHEAR
