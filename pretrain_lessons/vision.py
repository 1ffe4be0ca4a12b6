"""Transfer learning for images: ResNet adapters, a cached MNIST-pretrained ResNet-18, EfficientNet-Lite0
with its ImageNet weights, feature extraction, label-budget subsets and ImageFolder builders."""
from __future__ import annotations

import contextlib
import io
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from . import paths, scale

# ---------------------------------------------------------------- ResNet adapters


def resnet18_for(in_channels: int = 1, num_classes: int = 10) -> nn.Module:
    """A torchvision ResNet-18 (random weights) whose first convolution takes `in_channels` channels."""
    from torchvision import models

    model = models.resnet18(weights=None, num_classes=num_classes)
    if in_channels != 3:
        model.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
    return model


def replace_head(model: nn.Module, num_classes: int) -> nn.Module:
    """Swap a ResNet's classifier `fc` for a fresh linear layer with `num_classes` outputs (in place; returns model)."""
    model.fc = nn.Linear(model.fc.in_features, num_classes)
    return model


def freeze_all_but(model: nn.Module, trainable: tuple[str, ...] = ("fc",)) -> nn.Module:
    """Freeze every parameter except those whose name starts with one of `trainable` (in place; returns model)."""
    for name, param in model.named_parameters():
        param.requires_grad = name.startswith(trainable)
    return model


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameter values in a model (only the trainable ones with `trainable_only`)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def discriminative_param_groups(model: nn.Module, head_lr: float, backbone_lr: float,
                                head: str = "fc") -> list[dict]:
    """Two optimizer parameter groups: the head (names starting with `head`) and everything else, each with its own LR."""
    head_params = [p for n, p in model.named_parameters() if n.startswith(head)]
    body_params = [p for n, p in model.named_parameters() if not n.startswith(head)]
    return [{"params": body_params, "lr": backbone_lr, "name": "backbone"},
            {"params": head_params, "lr": head_lr, "name": "head"}]


# ---------------------------------------------------------------- the course's source-pretrained ResNet-18

MNIST_CHECKPOINT = "resnet18-mnist"


def mnist_normalize(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 28, 28) images → float (N, 1, 28, 28), standardised with the MNIST mean and std."""
    from .data.loaders import MNIST_MEAN, MNIST_STD

    return ((images.float() / 255 - MNIST_MEAN) / MNIST_STD).unsqueeze(1)


def mnist_pretrained_resnet18(progress: bool = True) -> nn.Module:
    """ResNet-18 (1-channel stem) trained on all 60,000 MNIST digits: loaded from its checkpoint, trained if missing.

    The checkpoint lives in `checkpoints/<scale>/resnet18-mnist/`; training is resumable (`fit` checkpoints),
    and the finished weights are kept in `model.pt`. The model carries `mnist_test_accuracy`, `train_seconds`,
    `trained_now` (False when it was loaded) and `conv1_init` (its first-layer filters before pretraining).
    """
    folder = paths.checkpoint_dir(MNIST_CHECKPOINT)
    final = folder / "model.pt"
    if final.exists():
        saved = torch.load(final, map_location="cpu", weights_only=True)
        model = resnet18_for(in_channels=1, num_classes=10)
        model.load_state_dict(saved["model"])
        model.mnist_test_accuracy = float(saved["test_accuracy"])
        model.train_seconds = float(saved["seconds"])
        model.conv1_init = saved.get("conv1_init")
        model.trained_now = False
        return model.eval()
    from .data.loaders import TensorLoader, mnist_tensors
    from .device import seed_everything
    from .train import evaluate, fit

    seed_everything(0)
    model = resnet18_for(in_channels=1, num_classes=10)
    conv1_init = model.conv1.weight.detach().clone()       # kept to show what pretraining changed in the first layer
    data = mnist_tensors()
    n_train = scale.pick(smoke=1024, cpu=60_000)
    n_test = scale.pick(smoke=1000, cpu=10_000)
    x, y = mnist_normalize(data["train_images"][:n_train]), data["train_labels"][:n_train]
    x_test, y_test = mnist_normalize(data["test_images"][:n_test]), data["test_labels"][:n_test]
    train = TensorLoader(x, y, batch_size=128, shuffle=True)
    history = fit(model, train, epochs=scale.pick(smoke=1, cpu=1, gpu=3), lr=2e-3, weight_decay=1e-4,
                  scheduler="cosine", warmup_steps=scale.pick(smoke=2, cpu=50), checkpoint=folder / "train.pt",
                  checkpoint_every=100, progress=progress)
    accuracy = evaluate(model, TensorLoader(x_test, y_test, batch_size=500), progress=False)["accuracy"]
    torch.save({"model": model.state_dict(), "test_accuracy": accuracy, "seconds": history.seconds,
                "conv1_init": conv1_init}, final)
    model.mnist_test_accuracy, model.train_seconds, model.trained_now = accuracy, history.seconds, True
    model.conv1_init = conv1_init
    return model.eval()


# ---------------------------------------------------------------- EfficientNet-Lite0 (ImageNet weights that ship offline)

# (expansion, output channels, repeats, first stride, kernel) per stage, as in the EfficientNet-B0/Lite0 paper table.
LITE0_STAGES = [(1, 16, 1, 1, 3), (6, 24, 2, 2, 3), (6, 40, 2, 2, 5), (6, 80, 3, 2, 3),
                (6, 112, 3, 1, 5), (6, 192, 4, 2, 5), (6, 320, 1, 1, 3)]


class SameConv2d(nn.Conv2d):
    """A convolution padded like TensorFlow's 'SAME' (extra pixel at the bottom/right), as the weights were trained."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size, k, s in zip(x.shape[:-3:-1], self.kernel_size[::-1], self.stride[::-1]):
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads += [total // 2, total - total // 2]
        return super().forward(F.pad(x, pads))


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=1e-3, momentum=0.01)  # TensorFlow's batch-norm settings


class MBConv(nn.Module):
    """Inverted residual block: 1×1 expand → depthwise k×k → 1×1 project, ReLU6, a skip when shapes allow (no SE in Lite)."""

    def __init__(self, c_in: int, c_out: int, expand: int, kernel: int, stride: int):
        super().__init__()
        mid = c_in * expand
        if expand != 1:
            self._expand_conv = nn.Conv2d(c_in, mid, 1, bias=False)
            self._bn0 = _bn(mid)
        self._depthwise_conv = SameConv2d(mid, mid, kernel, stride, groups=mid, bias=False)
        self._bn1 = _bn(mid)
        self._project_conv = nn.Conv2d(mid, c_out, 1, bias=False)
        self._bn2 = _bn(c_out)
        self.skip = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu6(self._bn0(self._expand_conv(x))) if hasattr(self, "_expand_conv") else x
        out = F.relu6(self._bn1(self._depthwise_conv(out)))
        out = self._bn2(self._project_conv(out))
        return out + x if self.skip else out


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 (4.7M parameters). Layer names mirror the published state dict so it loads as is."""

    def __init__(self, num_classes: int = 1000, dropout: float = 0.2):
        super().__init__()
        self._conv_stem = SameConv2d(3, 32, 3, 2, bias=False)
        self._bn0 = _bn(32)
        blocks, c_in = [], 32
        for expand, c_out, repeats, stride, kernel in LITE0_STAGES:
            for i in range(repeats):
                blocks.append(MBConv(c_in, c_out, expand, kernel, stride if i == 0 else 1))
                c_in = c_out
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = nn.Conv2d(320, 1280, 1, bias=False)
        self._bn1 = _bn(1280)
        self._dropout = nn.Dropout(dropout)
        self._fc = nn.Linear(1280, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The 1280-number feature vector of each image (global average of the last feature map)."""
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        return F.relu6(self._bn1(self._conv_head(x))).mean((2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._fc(self._dropout(self.features(x)))


# EfficientNet-Lite was trained on pixels scaled to [-1, 1]: (value·255 − 127) / 128, the same for R, G and B.
LITE_MEAN, LITE_STD = (0.498, 0.498, 0.498), (0.502, 0.502, 0.502)
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def efficientnet_lite0(pretrained: bool = True) -> EfficientNetLite0:
    """EfficientNet-Lite0 with the provisioned ImageNet weights (or random weights), in eval mode."""
    model = EfficientNetLite0()
    if pretrained:
        from .data.loaders import efficientnet_lite0_weights

        state = torch.load(efficientnet_lite0_weights(), map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    return model.eval()


def imagenet_categories() -> list[str]:
    """The 1000 ImageNet class names (shipped inside torchvision, no download)."""
    from torchvision.models import ResNet18_Weights

    return list(ResNet18_Weights.IMAGENET1K_V1.meta["categories"])


# ---------------------------------------------------------------- features, label budgets, linear probes


def feature_extractor(model: nn.Module, layer: str = "layer4") -> nn.Module:
    """The part of a classifier before its head, sharing its weights: EfficientNet's `features`, or a torchvision
    ResNet's child modules up to `layer` ('layer1' … 'layer4'), then global average pooling and a flatten."""
    if isinstance(model, EfficientNetLite0):
        return _Features(model)
    names = [name for name, _ in model.named_children()]
    kept = [module for name, module in model.named_children()][: names.index(layer) + 1]
    return nn.Sequential(*kept, nn.AdaptiveAvgPool2d(1), nn.Flatten())


class _Features(nn.Module):
    """Wraps a model that has a `features` method as a module."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.features(x)


@torch.no_grad()
def extract_features(extractor: nn.Module, loader, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Run a frozen feature extractor (in eval mode) over a loader of (images, labels); return (features, labels) on the CPU."""
    was_training = extractor.training
    extractor.eval().to(device)
    feats, labels = [], []
    for x, y in loader:
        feats.append(extractor(x.to(device)).float().cpu())
        labels.append(y)
    extractor.train(was_training)
    return torch.cat(feats), torch.cat(labels)


def balanced_subset(labels: torch.Tensor, per_class: int, seed: int = 0) -> torch.Tensor:
    """Indices of `per_class` examples of every class, from a fixed seeded order: smaller budgets are subsets of larger ones."""
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(labels), generator=generator)
    chosen = []
    for c in labels.unique().tolist():
        of_class = order[labels[order] == c]
        if len(of_class) < per_class:
            raise ValueError(f"class {c} has only {len(of_class)} examples; cannot take {per_class}")
        chosen.append(of_class[:per_class])
    return torch.cat(chosen).sort().values


class LinearProbe(nn.Module):
    """A linear classifier on frozen features, centred with their training mean and scaled by one overall std.

    One overall scale (not one per feature) keeps features that happen to be nearly constant in a few training
    examples from being blown up, which matters when there are only a handful of labels.
    """

    def __init__(self, train_features: torch.Tensor, num_classes: int):
        super().__init__()
        self.register_buffer("mean", train_features.mean(0))
        self.register_buffer("scale", (train_features - train_features.mean(0)).std().clamp(min=1e-6))
        self.linear = nn.Linear(train_features.shape[1], num_classes)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.linear((features - self.mean) / self.scale)


def train_linear_probe(features: torch.Tensor, labels: torch.Tensor, num_classes: int = 10, steps: int = 300,
                       lr: float = 1e-2, weight_decay: float = 1e-2, batch_size: int = 512) -> LinearProbe:
    """Fit a LinearProbe on cached features with the course's loop (AdamW, cosine schedule); return it in eval mode."""
    from .data.loaders import TensorLoader
    from .train import fit

    probe = LinearProbe(features, num_classes)
    loader = TensorLoader(features, labels, batch_size=min(batch_size, len(labels)), shuffle=True)
    fit(probe, loader, max_steps=steps, lr=lr, weight_decay=weight_decay, scheduler="cosine", device="cpu",
        progress=False)
    return probe.eval()


# ---------------------------------------------------------------- images on disk: ImageFolder


def class_folder_name(index: int, name: str, n_classes: int = 10) -> str:
    """A folder name for class `index` that sorts in label order and is safe on every file system ('0_T-shirt_top').

    The index is zero-padded to the width of the largest one, so that alphabetical order is label order.
    """
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name)
    return f"{index:0{len(str(n_classes - 1))}d}_{safe}"


def write_image_folder(images: torch.Tensor, labels: torch.Tensor, class_names: list[str], root: str | Path) -> Path:
    """Write uint8 (N, H, W) images as PNG files into one folder per class (`root/<class>/<n>.png`), replacing `root`."""
    import shutil

    from PIL import Image

    root = Path(root)
    if root.exists():
        shutil.rmtree(root)
    folders = [root / class_folder_name(i, name, len(class_names)) for i, name in enumerate(class_names)]
    for folder in folders:
        folder.mkdir(parents=True)
    for n, (image, label) in enumerate(zip(images.numpy(), labels.tolist())):
        Image.fromarray(image).save(folders[label] / f"{n:05d}.png")
    return root


def filter_mosaic(weight: torch.Tensor, ncols: int = 8, gap: int = 1) -> torch.Tensor:
    """First-layer filters (out, 1, k, k) tiled into one image, each filter scaled to [0, 1] on its own; gaps are NaN."""
    w = weight.detach().float().cpu()[:, 0]
    n, k = len(w), w.shape[-1]
    lo, hi = w.amin((1, 2), keepdim=True), w.amax((1, 2), keepdim=True)
    w = (w - lo) / (hi - lo).clamp(min=1e-8)
    nrows = -(-n // ncols)
    mosaic = torch.full((nrows * (k + gap) - gap, ncols * (k + gap) - gap), float("nan"))
    for i in range(n):
        r, c = divmod(i, ncols)
        mosaic[r * (k + gap): r * (k + gap) + k, c * (k + gap): c * (k + gap) + k] = w[i]
    return mosaic


# ---------------------------------------------------------------- weights that may need a download


def attempt(build: Callable[[], object]) -> tuple[object | None, list[str], str | None]:
    """Call `build()`; return (its result or None, the warnings it raised, the error message or None).

    Download chatter (stdout, stderr) is swallowed, and the home folder is shown as ~ in messages.
    """
    home = str(Path.home())
    with (warnings.catch_warnings(record=True) as caught, contextlib.redirect_stdout(io.StringIO()),
          contextlib.redirect_stderr(io.StringIO())):
        warnings.simplefilter("always")
        try:
            result, error = build(), None
        except Exception as exc:  # noqa: BLE001 - offline, any download failure means "not available"
            result, error = None, f"{type(exc).__name__}: {exc}".replace(home, "~")
    return result, [str(w.message).replace(home, "~") for w in caught], error


@dataclass
class ImageNetNet:
    """An ImageNet-pretrained network with the input normalisation it was trained with."""

    name: str
    model: nn.Module
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    note: str


def imagenet_network() -> ImageNetNet:
    """torchvision's ResNet-18 ImageNet weights when they can be had (cache or download), else EfficientNet-Lite0."""
    from torchvision import models

    resnet, _, error = attempt(lambda: models.resnet18(weights=models.ResNet18_Weights.IMAGENET1K_V1))
    if resnet is not None:
        return ImageNetNet("ResNet-18 (ImageNet)", resnet.eval(), IMAGENET_MEAN, IMAGENET_STD,
                           "torchvision's ResNet-18 ImageNet weights (IMAGENET1K_V1) loaded.")
    return ImageNetNet("EfficientNet-Lite0 (ImageNet)", efficientnet_lite0(), LITE_MEAN, LITE_STD,
                       f"torchvision's ResNet-18 ImageNet weights cannot be had here ({error}); "
                       "using the provisioned EfficientNet-Lite0 ImageNet weights instead.")
