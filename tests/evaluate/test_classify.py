"""The classification check behind Table 2: Top-1, image preparation, weight mapping, fine-tuning, save/load.

Fast by design (seconds): fine-tuning is tested on a tiny stand-in network with the
classifier interface (``net``, ``num_classes``, ``forward``); the timm networks are only
built on the meta device or once (ResNet50 save/load), never trained here.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from torch import nn

from bench.errors import BenchError, DataError, MissingFileError
from bench.evaluate.classify import (
    VGG16_CONV_INDICES,
    Classifier,
    ClassifyRecipe,
    ImageSet,
    build_classifier,
    finetune,
    load_classifier,
    predict,
    prepare_image,
    save_classifier,
    smoke_standin,
    top1,
    vgg16_features_to_timm,
)

CHANNELS = (3, 64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512)


def test_top1_is_percent_and_refuses_mismatched_vectors() -> None:
    assert top1([0, 1, 2, 3], [0, 1, 0, 0]) == pytest.approx(50.0, abs=1e-12)
    assert top1(torch.tensor([5]), torch.tensor([5])) == 100.0
    with pytest.raises(ValueError):
        top1([0, 1], [0])
    with pytest.raises(ValueError):
        top1([], [])


def test_recipe_refuses_unknown_choices() -> None:
    for bad in ({"optimizer": "rmsprop"}, {"schedule": "step"}, {"train_layers": "some"},
                {"input_size": 64, "resize": 32}):
        with pytest.raises(BenchError):
            ClassifyRecipe(**bad)


def test_prepare_image_resizes_short_side_and_crops_the_centre() -> None:
    # Landscape 20 x 40: short side -> 10 gives 10 x 20; the centre crop keeps columns 5..14.
    img = torch.zeros(3, 20, 40)
    img[1, :, 14:26] = 1.0  # a green band in the middle 12 of 40 columns (the centre 6 of 20 after resizing)
    out = prepare_image(img, 10)
    assert out.shape == (3, 10, 10) and out.dtype == torch.uint8
    assert int(out[1, :, 4:6].min()) == 255  # the band sits in the crop's centre
    assert int(out[1, :, 0].max()) == 0 and int(out[1, :, 9].max()) == 0  # unblurred edges of the crop stay dark
    portrait = prepare_image(torch.full((3, 30, 12), 0.5), 8)
    assert portrait.shape == (3, 8, 8) and bool((portrait == 128).all())  # 0.5 * 255 + 0.5 rounds to 128


def test_image_set_refuses_inconsistent_or_empty_sets() -> None:
    imgs = torch.zeros(2, 3, 4, 4, dtype=torch.uint8)
    with pytest.raises(DataError):
        ImageSet(["a"], imgs, torch.tensor([0, 1]))
    with pytest.raises(DataError):
        ImageSet([], imgs[:0], torch.tensor([], dtype=torch.long))


def _vgg_state(prefix: str = "features.") -> dict[str, torch.Tensor]:
    out = {}
    for i, idx in enumerate(VGG16_CONV_INDICES):
        out[f"{prefix}{idx}.weight"] = torch.zeros(CHANNELS[i + 1], CHANNELS[i], 3, 3)
        out[f"{prefix}{idx}.bias"] = torch.full((CHANNELS[i + 1],), float(i))
    return out


def test_vgg16_mapping_accepts_both_layouts_and_refuses_wrong_files() -> None:
    mapped = vgg16_features_to_timm(_vgg_state(""))  # bare nn.Sequential keys
    assert sorted(mapped) == sorted(_vgg_state())
    assert float(mapped["features.28.bias"][0]) == 12.0  # the 13th convolution keeps its own tensor
    missing = _vgg_state()
    del missing["features.28.bias"]
    with pytest.raises(BenchError, match=re.escape("lacks 'features.28.bias'")):
        vgg16_features_to_timm(missing)
    extra = {**_vgg_state(), "classifier.0.weight": torch.zeros(1)}
    with pytest.raises(BenchError, match="unexpected key"):
        vgg16_features_to_timm(extra)
    wrong = _vgg_state()
    wrong["features.0.weight"] = torch.zeros(64, 3, 5, 5)
    with pytest.raises(BenchError, match="shape"):
        vgg16_features_to_timm(wrong)


def test_vgg16_weight_file_fits_timm_vgg16() -> None:
    """The manifest's built file maps onto timm's ``vgg16`` key for key and shape for shape."""
    from bench.weights import locate

    try:
        path = locate("vgg16_features", verify=False)
    except MissingFileError as e:
        pytest.skip(f"VGG16 weights not built here: {e}")
    mapped = vgg16_features_to_timm(torch.load(path, map_location="cpu", weights_only=True))
    with torch.device("meta"):
        own = Classifier("vgg16", 200).net.state_dict()
    assert len(mapped) == 26
    for k, v in mapped.items():
        assert tuple(v.shape) == tuple(own[k].shape), k
    assert float(mapped["features.0.weight"].abs().mean()) > 0.01  # real weights, not an empty file


class TinyClassifier(nn.Module):
    """The classifier interface with a network small enough to train in milliseconds."""

    def __init__(self, num_classes: int = 2):
        super().__init__()
        self.arch, self.num_classes = "tiny", num_classes
        self.net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                 nn.Linear(4, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def _toy_set(n: int = 16) -> ImageSet:
    """Class 0 dark, class 1 bright, with per-image noise: separable by mean brightness."""
    g = torch.Generator().manual_seed(1)
    labels = torch.arange(n) % 2
    base = torch.where(labels.view(-1, 1, 1, 1) == 1, 200.0, 50.0)
    imgs = (base + 20 * torch.randn(n, 3, 12, 12, generator=g)).clamp(0, 255).to(torch.uint8)
    return ImageSet([f"i{k}" for k in range(n)], imgs, labels)


RECIPE = ClassifyRecipe(optimizer="adam", lr=0.05, weight_decay=0.0, epochs=8, batch=4, input_size=10, resize=12)


@pytest.fixture
def one_thread():
    """Tiny ops on a shared CPU are dominated by thread hand-offs; one thread is several times faster."""
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


def _trained(seed: int, recipe: ClassifyRecipe = RECIPE, loaded: tuple[str, ...] = ()) -> tuple[nn.Module, list]:
    torch.manual_seed(123)  # the same initial weights for every call
    model = TinyClassifier()
    history = finetune(model, _toy_set(), recipe, seed, "cpu", loaded)  # type: ignore[arg-type]
    return model, history


def test_finetune_is_deterministic_and_learns(one_thread) -> None:
    a, hist_a = _trained(seed=0)
    b, hist_b = _trained(seed=0)
    assert hist_a == hist_b
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(va, vb), k
    assert len(hist_a) == 8 and hist_a[-1]["steps"] == 8 * 4
    assert hist_a[-1]["loss"] < hist_a[0]["loss"]
    data = _toy_set()
    assert top1(predict(a, data.images, 10, "cpu"), data.labels) >= 90.0  # type: ignore[arg-type]
    c, _ = _trained(seed=1)  # another seed: another batch order and augmentation
    assert not torch.equal(c.state_dict()["net.4.weight"], a.state_dict()["net.4.weight"])


def test_head_mode_leaves_loaded_layers_untouched(one_thread) -> None:
    torch.manual_seed(123)
    before = {k: v.clone() for k, v in TinyClassifier().state_dict().items()}
    recipe = ClassifyRecipe(optimizer="sgd", lr=0.1, epochs=2, batch=4, input_size=10, resize=12, train_layers="head")
    model, _ = _trained(seed=0, recipe=recipe, loaded=("0.weight", "0.bias"))
    after = model.state_dict()
    assert torch.equal(after["net.0.weight"], before["net.0.weight"])
    assert torch.equal(after["net.0.bias"], before["net.0.bias"])
    assert not torch.equal(after["net.4.weight"], before["net.4.weight"])


def test_finetune_refuses_labels_outside_the_head() -> None:
    data = _toy_set()
    data.labels[0] = 5
    with pytest.raises(DataError, match="Labels must lie"):
        finetune(TinyClassifier(), data, RECIPE, 0, "cpu")  # type: ignore[arg-type]


def test_saved_classifier_loads_to_the_same_function(tmp_path, one_thread) -> None:
    """Round trip through the meta-device loader: same outputs, no tensor left unfilled."""
    model, loaded = build_classifier("resnet50", 3, "scratch", seed=0)
    assert loaded == []
    model.eval()
    save_classifier(tmp_path / "c.pt", model, {"init": "scratch"})
    back, meta = load_classifier(tmp_path / "c.pt")
    assert meta == {"init": "scratch"}
    assert not any(t.is_meta for t in [*back.parameters(), *back.buffers()])
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(back(x), model(x), rtol=0, atol=0)


def test_smoke_standin_is_deterministic_and_splits_disjoint_regions() -> None:
    a = smoke_standin(per_class_train=2, per_class_test=1, size=16, seed=0)
    b = smoke_standin(per_class_train=2, per_class_test=1, size=16, seed=0)
    assert [i for i, _, _ in a["train"]] == [i for i, _, _ in b["train"]]
    assert all(np.array_equal(x[2], y[2]) for x, y in zip(a["train"] + a["test"], b["train"] + b["test"]))
    assert len(a["train"]) == 12 and len(a["test"]) == 6
    assert sorted({lab for _, lab, _ in a["test"]}) == list(range(6))
    assert all(img.shape == (16, 16, 3) and img.dtype == np.uint8 for _, _, img in a["train"] + a["test"])
    ids = [i for i, _, _ in a["train"] + a["test"]]
    assert len(set(ids)) == len(ids)
    c = smoke_standin(per_class_train=2, per_class_test=1, size=16, seed=1)
    assert not np.array_equal(a["train"][0][2], c["train"][0][2])
