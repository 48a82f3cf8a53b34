"""The detector network, its configuration and its weight files."""

import os
import pickle

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from digit_detector import DetectorConfig, DigitDetector, WeightFileError, load_detector
from digit_detector.model import LayerSpec
from digit_detector.weights import DEFAULT_WEIGHTS, save_detector


def random_detector(seed=0, config=None):
    torch.manual_seed(seed)
    detector = DigitDetector(config or DetectorConfig())
    detector.eval()
    return detector


def test_config_json_round_trip_and_validation():
    config = DetectorConfig(layers=(LayerSpec(8, 3), LayerSpec(4, 5, 2)), digit_pitch_px=9.5,
                            training_data_hash="abc")
    assert DetectorConfig.from_json(config.to_json()) == config
    with pytest.raises(ValueError, match="malformed"):
        DetectorConfig.from_json('{"layers": [{"out_channels": 8, "kernel": 4}]}')
    with pytest.raises(ValueError, match="malformed"):
        DetectorConfig.from_json("not json")
    with pytest.raises(ValueError, match="malformed"):
        DetectorConfig.from_json('{"layers": [], "unknown_field": 1}')


def test_receptive_field_and_flops_match_the_network():
    config = DetectorConfig()
    detector = random_detector(config=config)
    # receptive field: with positive weights an impulse reaches exactly a square of that side
    with torch.no_grad():
        for parameter in detector.parameters():
            parameter.abs_()
        x = torch.zeros(1, 1, 61, 61)
        x[0, 0, 30, 30] = 1.0
        rows, cols = (detector(x)[0].sum(0) > 0).nonzero(as_tuple=True)
    assert int(rows.max() - rows.min() + 1) == config.receptive_field_px
    assert int(cols.max() - cols.min() + 1) == config.receptive_field_px
    # flops: count multiply-adds of each Conv2d with hooks
    counted = []
    for module in detector.modules():
        if isinstance(module, torch.nn.Conv2d):
            module.register_forward_hook(lambda m, i, o: counted.append(
                2 * m.in_channels * m.out_channels * m.kernel_size[0] * m.kernel_size[1]
                * o.shape[-1] * o.shape[-2]))
    detector(torch.rand(1, 1, 20, 30))
    assert sum(counted) == config.flops_per_pixel() * 20 * 30


def test_network_is_bias_free_homogeneous_and_keeps_resolution():
    detector = random_detector()
    assert all(m.bias is None for m in detector.modules() if isinstance(m, torch.nn.Conv2d))
    x = torch.rand(2, 1, 37, 53)
    with torch.no_grad():
        out = detector(x)
        assert out.shape == (2, 10, 37, 53)
        assert torch.all(out >= 0)
        torch.testing.assert_close(detector(3 * x), 3 * out, rtol=1e-4, atol=1e-5)
        assert torch.count_nonzero(detector(torch.zeros(1, 1, 20, 20))) == 0


def test_weights_round_trip(tmp_path):
    detector = random_detector(config=DetectorConfig(digit_pitch_px=9.25,
                                                     training_data_hash="f" * 64))
    path = save_detector(detector, tmp_path / "d.safetensors")
    loaded = load_detector(path)
    assert loaded.config == detector.config
    x = torch.rand(1, 1, 40, 40)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), detector(x))


class _Trap:
    def __reduce__(self):
        return (os.makedirs, (os.environ["TRAP_DIR"],))


def test_pickle_file_is_refused_without_executing_it(tmp_path, monkeypatch):
    trap_dir = tmp_path / "trap_was_executed"
    monkeypatch.setenv("TRAP_DIR", str(trap_dir))
    path = tmp_path / "evil.safetensors"
    path.write_bytes(pickle.dumps({"w": _Trap()}))
    with pytest.raises(WeightFileError, match="evil.safetensors: not a safetensors"):
        load_detector(path)
    assert not trap_dir.exists()


@pytest.mark.parametrize("content", [b"", os.urandom(4096), b"\x10\x00\x00\x00\x00\x00\x00\x00{"])
def test_garbage_files_are_refused(tmp_path, content):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(content)
    with pytest.raises(WeightFileError, match="bad.safetensors"):
        load_detector(path)


def test_truncated_file_is_refused(tmp_path):
    path = save_detector(random_detector(), tmp_path / "full.safetensors")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 500])
    with pytest.raises(WeightFileError, match="full.safetensors"):
        load_detector(path)


def test_wrong_tensors_or_metadata_are_refused(tmp_path):
    detector = random_detector()
    state = {k: v.contiguous() for k, v in detector.state_dict().items()}
    metadata = {"format": "sphaera-digit-detector/1",
                "digit_detector_config": detector.config.to_json()}
    no_metadata = tmp_path / "plain.safetensors"
    save_file(state, str(no_metadata))
    with pytest.raises(WeightFileError, match="without a digit detector configuration"):
        load_detector(no_metadata)
    wrong_shape = dict(state)
    first = next(iter(wrong_shape))
    wrong_shape[first] = torch.zeros(3, 3)
    save_file(wrong_shape, str(tmp_path / "shape.safetensors"), metadata=metadata)
    with pytest.raises(WeightFileError, match="has shape"):
        load_detector(tmp_path / "shape.safetensors")
    missing = dict(state)
    missing.pop(first)
    save_file(missing, str(tmp_path / "missing.safetensors"), metadata=metadata)
    with pytest.raises(WeightFileError, match="do not match"):
        load_detector(tmp_path / "missing.safetensors")
    with pytest.raises(WeightFileError, match="no such weight file"):
        load_detector(tmp_path / "absent.safetensors")


def test_shipped_default_weights_load():
    assert DEFAULT_WEIGHTS.stat().st_size < 200_000
    detector = load_detector()
    assert len(detector.config.training_data_hash) == 64
    assert 0.4 * detector.config.digit_height_px < detector.config.digit_pitch_px
    assert detector.config.digit_pitch_px < 1.2 * detector.config.digit_height_px
    assert np.isfinite(sum(float(p.detach().sum()) for p in detector.parameters()))
