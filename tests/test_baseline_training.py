"""Every baseline trains: on one fixed batch, Adam lowers ``l2`` and ``l2 + diffloss`` within 50 steps.

Why these settings (the whole file must stay near a minute on a shared 2-core CPU):

* batch 2 x 3 x 16 x 16, the smallest size the networks take without padding, except MSBDN
  (32: its reflection padding at 1/16 scale needs 2 pixels) and DeepLPF (32: its U-Net pads
  anything smaller up to 32, see ``baselines/deeplpf.py``);
* the degraded image is the clear one with its contrast lowered and a colour cast added
  (``0.6 * clear + 0.2 + cast``), so a better restorer exists at every step;
* Adam at lr 1e-3 (ten times the paper's 1e-4) so that a drop shows in a few steps; each run
  stops as soon as the mean of its last ``WINDOW`` losses is below ``MARGIN`` x the first
  loss, and fails if that has not happened after ``MAX_STEPS`` steps;
* the DiffLoss prior is a tiny ADM (image size 16, widths 32/64, attention at 8x8), filled by
  the fixtures' deterministic rule (``fill_by_key``, scale 0.05) so its output layers are not
  the zero init of a fresh ADM: the DiffLoss terms are non-zero and carry gradient. It is
  frozen, and it must come out of training bit-identical.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from support.shared import fill_by_key
from torch import nn

import bench
from bench import build_loss
from bench.fidelity import single_thread
from bench.prior import create_adm

ALL = ["fsdgn", "mb_taylorformer", "rcdnet", "efderain", "deeplpf", "iat", "msbdn", "griddehazenet"]
MAX_STEPS = 50
WINDOW = 2  # final loss = mean of the last WINDOW steps
MARGIN = 0.9  # ... which must be below MARGIN x the first step's loss
LR = 1e-3
BATCH = 1  # one image: DeepLPF alone costs ~2 s a step per image at 32x32 on a busy CPU core
SIZE = {"msbdn": 32, "deeplpf": 32}  # default 16, see the module docstring
PRIOR_SIZE = 16
TINY_ADM = dict(image_size=PRIOR_SIZE, num_channels=32, num_res_blocks=1, channel_mult="1,2", learn_sigma=True,
                attention_resolutions="8", num_head_channels=16, use_scale_shift_norm=True, resblock_updown=True)
#: The paper's loss sets as bench.experiment.losses.LOSS_SETS spells them: pixel term alone, and with DiffLoss
#: (whose own pixel term is the same Euclidean l2, so the two differ by the DiffLoss term alone).
LOSSES = {
    "l2": {"l2": {"weight": 1.0, "norm": "l2"}},
    "l2+diffloss": {"diffloss": {"weight": 1.0, "lam": 0.01, "gamma": 0.001, "norm": "l2", "mode": "paper",
                                 "pixel": "l2", "variant": "eps"}},
}


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    """Many small ops: two intra-op threads on a shared 2-core CPU oversubscribe it."""
    with single_thread():
        yield


@pytest.fixture(scope="module")
def prior() -> nn.Module:
    return fill_by_key(create_adm(**TINY_ADM), 0.05)


def _batch(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    clear = torch.rand(BATCH, 3, size, size, generator=g)
    cast = torch.tensor([0.05, 0.0, -0.05]).view(1, 3, 1, 1)
    return (0.6 * clear + 0.2 + cast).clamp(0, 1), clear


def _train(model: nn.Module, loss: nn.Module, degraded: torch.Tensor, clear: torch.Tensor) -> list[float]:
    """Adam steps on one batch until the drop criterion holds (or MAX_STEPS); the losses seen."""
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    losses: list[float] = []
    for _ in range(MAX_STEPS):
        total = loss(model(degraded), clear)["total"]
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()
        losses.append(total.item())
        if len(losses) > WINDOW and sum(losses[-WINDOW:]) / WINDOW < MARGIN * losses[0]:
            break
    return losses


def test_the_loss_sets_are_the_papers() -> None:
    """Guard against drift: the two sets trained here are bench.experiment.losses' "l2" and "diffloss"."""
    from bench.experiment.losses import LOSS_SETS

    assert LOSS_SETS["l2"] == LOSSES["l2"]
    assert LOSS_SETS["diffloss"] == LOSSES["l2+diffloss"]


@pytest.mark.parametrize("loss_set", list(LOSSES))
@pytest.mark.parametrize("name", ALL)
def test_loss_goes_down_on_a_fixed_batch(name: str, loss_set: str, prior: nn.Module) -> None:
    torch.manual_seed(0)
    model = bench.build_baseline(name).train()
    loss = build_loss(LOSSES[loss_set], {"prior": prior}, seed=0)
    before = {k: v.clone() for k, v in prior.state_dict().items()}
    degraded, clear = _batch(SIZE.get(name, 16))

    losses = _train(model, loss, degraded, clear)

    assert all(torch.isfinite(torch.tensor(losses))), f"{name}/{loss_set}: non-finite loss in {losses}"
    final = sum(losses[-WINDOW:]) / WINDOW
    assert final < MARGIN * losses[0], (
        f"{name}/{loss_set}: mean of the last {WINDOW} losses {final:.4g} not below {MARGIN} x first "
        f"{losses[0]:.4g} after {len(losses)} steps: {[round(v, 4) for v in losses]}"
    )
    if "diffloss" in loss_set:
        terms = loss(model(degraded), clear)
        assert terms["diffloss.nat"].item() > 0, "the DiffLoss term is zero: the prior would teach nothing"
        assert all(not p.requires_grad and p.grad is None for p in prior.parameters())
    after = prior.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before), f"{name}: training changed the frozen prior"
