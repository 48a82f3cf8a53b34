"""VGG-16 as a second model family for BiLRP (paper section 5).

The convolutional part is built with torchvision's ``features`` indexing, so a torchvision
state dict (``features.0.weight`` ...) loads directly; torchvision itself is not needed. The
embedding is ``features[:cut]`` flattened, optionally followed by a fixed random projection.
"""

from pathlib import Path

import numpy as np
import torch
from torch import nn

from sphaera_tables.explain.rules import Composite, Gamma, ZBox

# Channels per conv layer, "M" for max-pooling: the VGG-16 ("D") configuration.
VGG16_CONFIG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
                512, 512, 512, "M")
VGG16_LAYERS = 31
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def vgg16_features():
    """The 31 modules of torchvision's ``vgg16().features`` (random weights)."""
    layers = []
    channels = 3
    for item in VGG16_CONFIG:
        if item == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(channels, item, kernel_size=3, padding=1), nn.ReLU()]
            channels = item
    return nn.Sequential(*layers)


def _conv_indices():
    """Indices of the conv layers in ``features`` (each conv is followed by a ReLU)."""
    indices, index = [], 0
    for item in VGG16_CONFIG:
        if item != "M":
            indices.append(index)
        index += 1 if item == "M" else 2
    return indices


class VGG16Embedding(nn.Module):
    """``phi(x) = P flatten(features[:cut](x))``, with ``P`` a fixed random projection or none.

    Parameters
    ----------
    cut : int
        Number of ``features`` modules kept (1..31); the paper's "layer 31" is ``cut=31``.
    input_size : (int, int)
        Height and width of the inputs in pixels (fixes the projection's input size).
    projection_dim : int or None
        Output size of the random projection (the paper uses 100); None for no projection.
    seed : int
        Seed of the projection matrix (entries N(0, 1 / projection_dim)).
    """

    def __init__(self, cut=VGG16_LAYERS, input_size=(128, 128), projection_dim=100, seed=0):
        super().__init__()
        if not 1 <= cut <= VGG16_LAYERS:
            raise ValueError(f"cut must be between 1 and {VGG16_LAYERS}, got {cut}")
        self.features = vgg16_features()[:cut]
        self.projection = None
        if projection_dim is not None:
            with torch.no_grad():
                n_features = self.features(torch.zeros((1, 3) + tuple(input_size))).numel()
            generator = torch.Generator().manual_seed(seed)
            weight = torch.randn((projection_dim, n_features), generator=generator)
            self.projection = nn.Linear(n_features, projection_dim, bias=False)
            self.projection.weight.data = weight / np.sqrt(projection_dim)

    def forward(self, x):
        features = self.features(x).flatten(1)
        return features if self.projection is None else self.projection(features)


def load_vgg16_weights(model, path):
    """Load ``features.N.weight/bias`` tensors from a state-dict file into ``model``.

    ``path`` is a ``.safetensors`` file or a torch file read with ``weights_only=True`` (no
    pickled code is ever executed). Keys may carry a ``features.`` prefix as in torchvision;
    layers beyond the model's cut and classifier weights are ignored. Returns ``model``.
    """
    path = Path(path)
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise ValueError(f"{path}: cannot read weights ({error})") from error
    if not isinstance(state, dict):
        raise ValueError(f"{path}: not a state dict")
    wanted = {k: v for k, v in state.items() if k.startswith("features.")}
    own = model.features.state_dict()
    selected = {}
    for key, target in own.items():
        source = wanted.get(f"features.{key}")
        if source is None:
            raise ValueError(f"{path}: missing weights 'features.{key}'")
        if tuple(source.shape) != tuple(target.shape):
            raise ValueError(
                f"{path}: 'features.{key}' has shape {tuple(source.shape)}, "
                f"expected {tuple(target.shape)}"
            )
        selected[key] = source.to(target.dtype)
    model.features.load_state_dict(selected)
    return model


def vgg16_composite(low=None, high=None):
    """The paper's rules: zB at layer 1, gamma 0.5 / 0.25 / 0.1 / 0.0 for layers 2-10 / 11-17 /
    18-24 / 25-31.

    "Layer L" is the output of ``features[:L]``, so module ``features.i`` belongs to layer
    ``i + 1``. ``low`` and ``high`` are the pixel bounds of the zB rule in the model's input
    space, default: ImageNet-normalised [0, 1] pixels, shape (1, 3, 1, 1).
    """
    if low is None or high is None:
        mean = torch.tensor(IMAGENET_MEAN).reshape(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD).reshape(1, 3, 1, 1)
        low, high = (0 - mean) / std, (1 - mean) / std
    rules = {"features.0": ZBox(low, high)}
    for index in _conv_indices()[1:]:
        layer = index + 1
        gamma = 0.5 if layer <= 10 else 0.25 if layer <= 17 else 0.1 if layer <= 24 else 0.0
        rules[f"features.{index}"] = Gamma(gamma)
    return Composite(rules)
