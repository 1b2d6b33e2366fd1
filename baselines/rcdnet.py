"""RCDNet: the rain convolutional dictionary network (Wang, Xie, Zhao, Meng, CVPR 2020).

The rainy image is modelled as O = B + sum_n C_n * M_n: a background B plus rain that
is a few shared 9x9 rain kernels C convolved with sparse rain maps M. RCDNet unfolds
proximal gradient descent on that model into S stages; each stage takes a gradient
step on M (through the rain kernels) and on B, then applies a learned proximal
operator to each: two small ResNets of four residual units ("M-net", "B-net").

Faithful to the official ``RCDNet_code/for_syn/src/model/rcdnet.py`` (class ``Mainnet``):
parameter names and shapes match, so official checkpoints load with ``strict=True``,
including the quirks that make the parameter count 3,166,355:

* ``conv`` holds S-1 copies of the rain kernels but only copy 1 is ever used (the paper
  shares the kernels across stages); ``mnet`` is built but never called (stage 1 uses
  ``m_stage[0]``); ``eta1`` (the M step size of stage 1) is never read, as M0 = 0 makes
  that step a plain transposed convolution. All are kept for checkpoint compatibility
  and receive no gradient.
* The rain kernels start from a constant the official code loads from ``init_kernel.mat``
  (key ``C9``, 3 x 32 x 9 x 9). The published ``init_rain_kernel.m`` does not reproduce
  it (the .mat was saved on 10 June 2020, before that script was published, and its
  kernels have other shapes and unnormalised sums), so the values are stored here: the 32
  kernels are symmetric in both axes and identical for R, G and B, so a 32 x 5 x 5
  float32 quadrant determines the tensor.

One deliberate difference: the official constructor wraps ``expand()``-ed views in
``nn.Parameter`` (``conv``, ``eta11``, ``eta12``, ``w_z_f``, each ``m_stage[i].tau``) and
builds ``weight0`` and ``conv`` over the same module-level kernel tensor, so under its
PyTorch 0.4.1 those entries alias one storage; current PyTorch refuses to optimise such
parameters ("more than one element of the written-to tensor refers to a single memory
location"). Here every parameter is an independent tensor with the same initial values;
the forward function and checkpoint loading are unaffected.

The official code works on 0-255 images (EDSR's ``rgb_range`` 255) and evaluates the last
stage's background ``ListB[-1]``; :meth:`RCDNet.restore` does the same on [0, 1] images.
"""

from __future__ import annotations

import base64
import zlib

import torch
import torch.nn.functional as F
from torch import nn

from baselines._base import Restorer, TrainRecipe
from bench.registry import BASELINES

#: Value range the official network works in (EDSR ``--rgb_range 255``).
RGB_RANGE = 255.0
#: Rain kernel size, and the padding that keeps the size in the 9x9 (transposed) convolutions.
KERNEL_SIZE = 9
KERNEL_PAD = KERNEL_SIZE // 2
#: Number of rain kernels in ``init_kernel.mat``; the official model only runs with num_M equal to it.
NUM_KERNELS = 32

# ``init_kernel.mat['C9'][0, :, :5, :5]`` as little-endian float32, zlib-compressed, base64.
_KERNEL_QUADRANT_B64 = (
    "eNqd1nlQE9cDwHFQrqogKodaURQ2QBKSbI7N7tsXUCMiavHEoiBK+kMEvKqojAeiUkUuEVEBxYqURrAqFi/klEOwyo8oCBUl"
    "4AV4oPXCA5TO25ls4Tc48/v9dubzx35n9+3b95JJ9PT+v6MzbIKk9/ms2EbMyf8+3bvlhl5xLI2odNGdm5RIuJNfxEuvBxuQ"
    "uvbT1la+kbtcXnM9C+jaoj03BLUZEyjq1EGoa0qyS1hS6g6wYXkKtu3xEqH7Qj1tXP5zfpZrhbze57VJ1zk3N97qM+cpn3r4"
    "EXMMQO/me+qEyFJ1WtG7XdR7goc/+It9hqY70cElPVHqkdjOvoeAY8Y9Vm0qX/90KbsGo1z+zUsrrCY7nezY8Q5sbOEXP2um"
    "3iTh7Hixk+XO/hoCeHUlsG1X0FM8JHAaieiaTTpX+rR5H0B0LcYoTpY9/hWNMO9ZXTvhgrcBcXq6CiJfa8z8XpkJCx3OySeG"
    "prLjjbD2FAmb9SlZjpZ9D9cxUnyo3kMqP60U/rOgRfi9iDVAhXuy7+Y/6h2OxgoIiWTa2MUR2InP0bKOvQ8Agtoy90+ctm3G"
    "8qHNvhBBbVtSvcN33u3yj4sVCgS1q9fHO7aIhGRXVbwC+VrTHXNbP+MHKjaTvdt+V7HU/kpOn/1dmV8tMx4wE/ZuXLyM8I+f"
    "xI7XMO6InTc9Ul7w9iDbkrLaSB1m7c5CbMmTZ7QOaup6BecH7w6o8780Z/OTgslWL+WKE4Y0gtq/Xk4TSkNiyUk9R2iEue6S"
    "Wtgc9JRcMXggRFDjd14VYoMGUztDv4XI15ruKLipFfhYNfVZq5lvg/EK26A+31+3WTLJ1lZJn3XOqJopxfAZfb5vt6ZkSXve"
    "qNmWEScTnYt/SRbEaNjxeuxbRVj9IUopiGTn4pu5BE+MHQGurtVjn3E49Ve8q84HXFziyrbaaUW4vsVmAPcv6jOXO3cIJ5Wt"
    "hbx36/bn8O2uGfXZ89MpCoFV8qg+a1DksVsoxH36jNdT9UoYoC1jmvlKfcc1a28Rw4LLaYTZ80a1Y+GGKHn85XCIoBZ+2sIp"
    "98orefPx+xBBrapN4rRcOZzM3mGiQL7W0FG3bYQosT2aomJPsvPb7Z8umt5lDeacpdnrynimeNPrSGAo+oVt1mFueMX7PIBl"
    "P/5nrRp88S+fakDBCj12P1xN3bCL9yYQBxJK2P3wtpdw5g61kFuan2Gfy3W5z9ngdFnOt/Flx+P9qXRQNo0nY1TFbPPZEeKQ"
    "mTmZjMRamTb9g5t9dvoWPPvoYkqbaciM17S1yD7T6g0e7XqbCk2JYNoQ45GYof5kcaCICx4rq5mmUXpgQ0IixJ2e/mB+szEz"
    "3u0vvliLfpxYFbAR0Lgl05qD39gP/OZb8fa7xmDPjQzmXpvnftiMrjjxnPow8EzfirluQcFJ7GJpo1ieWwyCbQOZlnVQi2nL"
    "TSUvNnwAIVUHmBaQ8xpzSRwtWbXOmDadlaGozt2Lb875jXgUuBCY++2FXOupipTPanx7yzWigBMO/FLUUJkYqNioycfNcu8T"
    "YHg8CFqaDzvWbleEa6rwZXNfEb+3HQJnvKtgwfJohdK7Gh9T3kn0zD8MiptuQOuoOEX3578E92I8iNIh58HoswKIFK62EN5y"
    "DyOMTZrBW/H3EMkhHYW1Z2KJ70q7wcf76yCiUQmFhacSieFlA+lv3MIh0l+z3L+TuypgiHTAkRJK25RFI4GuWdwlyVKpfel7"
    "6lNEI4143ynnDh0yV/rUwhzMsftCIyYGNdyJj32lHT9Zg/x0Q4j01wYa/MxLuJInnRSJg6LKQRA5aVrJq9vVLl1J+AGrPGeI"
    "PCp7yIs2MZTVKsPB+8qpEFkDXvCMscEy/Y+RQP1kFkT6a2iPXtou4GXk75LP37CPRpjfz3fZvOd2DXKNWzuNoFbs/4Dn96MZ"
    "SV8bBRHU7JI/8OaHjCHHtjhCpL+20yiKGmycQLu8JaFOPj+e0u45SF+YPQnqjPdIoIZeTaa3CqdAnf+2oeduUZba73GwFXv/"
    "aQdW6GuYFs83w96EBIsf3VoNxPRI5jP5MANgqdoU8YLgNFDR4M6074t8sJFO58V1Xnngd48QprWaLMf4M4rFZ3LLQP3aMKat"
    "atyMtRoVyk5V8WgENQuTOuyQ3Thi7s8JNML8X3huzhHELCSMcitoBDXPBltO6eofCXXQXRrpr83J/oOnrg6TUJ7PSYvjztB+"
    "uZvCubyd19YSLzmYa0yZr3CH5pdVCs1mPX5DfpokosaS6nHwhVdmblJ8XGDCv7tULdn6YSxlczQI+lRHKuaZD+Z3XsqWJGMT"
    "KCOPVTAtdLficCpfUOniQKQWfQBV7+MgktDoJjC94Er0JJjRqwqOQySgaIEgc8RsIqVgNF1zLAcieI6vQFzvRXAMx9ERkech"
    "0l8rLU+SRJ0jycslg2jZlG7GuxXHJMnO7qTBMUt6ooEJRBIb1ZJ9y2aTh+PG0FGzzSCiCcyWHN43j2x+MZZWbTKHSH8Nrd/N"
    "mg6hwRYepS2aBBHm9zzfSiRRLaQCUtdDBDVVlbMo6tgmqjgpDiKobacI0fFlO6ng9UkQ6a+tnHpOcl5sQ742KwY36tJpJIUq"
    "kUw96kCOzrsOPsf/RiPJFZWSt2IBmX2pFszzyqURz0V/SKzWicjHofVgza/naaS/NtJzh1Q7o4NU9Oyn0x9tgcjohGip2qub"
    "nLo0jc5bvwsi08r3Sm+3DaDme2TQ63fEQMQvZp9UtsuAknpm0sNgHET6a38DVoT5Cg=="
)


def initial_rain_kernels() -> torch.Tensor:
    """The official rain-kernel initialisation (``init_kernel.mat`` key ``C9``), 3 x 32 x 9 x 9 float32.

    Rebuilt from the stored quadrant by mirroring rows and columns and repeating it for
    R, G and B; equal bit for bit to ``torch.FloatTensor(loadmat('init_kernel.mat')['C9'])``.
    """
    raw = zlib.decompress(base64.b64decode("".join(_KERNEL_QUADRANT_B64)))
    q = torch.frombuffer(bytearray(raw), dtype=torch.float32).reshape(NUM_KERNELS, 5, 5)
    half = torch.cat([q, q[:, :4].flip(1)], dim=1)
    full = torch.cat([half, half[:, :, :4].flip(2)], dim=2)
    return full.unsqueeze(0).repeat(3, 1, 1, 1).contiguous()


def _residual_unit(channels: int) -> nn.Sequential:
    """conv-BN-ReLU-conv-BN; the caller adds the skip and the final ReLU (official layout)."""
    return nn.Sequential(
        nn.Conv2d(channels, channels, 3, padding=1),
        nn.BatchNorm2d(channels),
        nn.ReLU(),
        nn.Conv2d(channels, channels, 3, padding=1),
        nn.BatchNorm2d(channels),
    )


def _run_units(x: torch.Tensor, units: list[nn.Module]) -> torch.Tensor:
    for unit in units:
        x = F.relu(x + unit(x))
    return x


class BackgroundProx(nn.Module):
    """Proximal operator for the background and its dual features (official ``Xnet``).

    Channels are [B (3 colours), Z (num_Z features)]; four residual units.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels
        for i in range(1, 5):
            setattr(self, f"resx{i}", _residual_unit(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _run_units(x, [self.resx1, self.resx2, self.resx3, self.resx4])


class RainMapProx(nn.Module):
    """Proximal operator for the rain maps (official ``Mnet``): four residual units, then a
    learned per-channel soft threshold ``relu(m - tau)`` that keeps the maps sparse."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels
        self.tau = nn.Parameter(torch.full((1, channels, 1, 1), 0.5))
        for i in range(1, 5):
            setattr(self, f"resm{i}", _residual_unit(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = _run_units(x, [self.resm1, self.resm2, self.resm3, self.resm4])
        return F.relu(m - self.tau)


RCDNET_RECIPE = TrainRecipe(
    loss="rcdnet_multistage_mse",
    lr=1e-3,
    batch=16,
    patch=64,
    schedule="step(every 25 epochs, gamma=0.2)",
    iterations=90_000,
    optimizer="adam(betas=(0.9, 0.999), eps=1e-8, weight_decay=0)",
    notes=(
        "hongwang01/RCDNet README training command + for_syn/src/option.py + trainer.py: --epochs 100 "
        "--batch_size 16 --patch_size 64 --lr 1e-3 (default) --lr_decay 25 --gamma 0.2 --loss 1*MSE, "
        "rgb_range 255, random 64x64 crops + horizontal flip only. An EDSR 'epoch' is test_every=1000 batches "
        "rounded down to whole passes: Rain100H's 1800 pairs give 8 passes = 900 batches, so ~90k iterations "
        "(100k-ish on other sets). Loss on 0-255 images, nn.MSELoss: 0.1*MSE(B0, B) + sum_j 0.1*(MSE(ListB[j], B) "
        "+ MSE(ListCM[j], O - B)) for j < S + MSE(ListB[-1], B) + 0.9*MSE(ListCM[-1], O - B); see "
        "RCDNet.stage_outputs. Batches whose loss exceeds 1e6 x the previous epoch's are skipped."
    ),
)


@BASELINES.register(
    "rcdnet",
    task="deraining",
    dataset="rain100h",
    paper="Wang, Xie, Zhao, Meng, CVPR 2020, A Model-Driven Deep Neural Network for Single Image Rain Removal",
    repo="hongwang01/RCDNet",
    commit="c6e1539697590452ce0ceb6d6e3bb897e8f65f90",
    fixture="rcdnet",
    params=3_166_355,
    input_range=(0.0, 255.0),
    recipe=RCDNET_RECIPE,
    size_multiple_note="stride-1 convolutions with size-preserving padding throughout: any H x W (size_multiple = 1)",
)
class RCDNet(Restorer):
    """The official ``Mainnet`` with ``stage``, ``num_M``, ``num_Z`` as in its ``args``.

    ``official_forward`` takes a 0-255 image and returns ``stack([B0, ListB[-1]])`` (the
    initial and the final background); ``forward`` takes and returns [0, 1] images (the
    final background); :meth:`stage_outputs` gives every stage for the official loss.
    """

    size_multiple = 1

    def __init__(self, stage: int = 17, num_M: int = NUM_KERNELS, num_Z: int = 32) -> None:
        super().__init__()
        if num_M != NUM_KERNELS:
            raise ValueError(f"RCDNet's rain kernels come in a set of {NUM_KERNELS}; num_M must be {NUM_KERNELS}")
        if stage < 3:
            # The official forward reads conv[1], which exists only for stage >= 3.
            raise ValueError(f"RCDNet needs stage >= 3, got {stage}")
        self.S = stage
        self.iter = stage - 1
        self.num_M = num_M
        self.num_Z = num_Z
        kernels = initial_rain_kernels()
        # Step sizes (stored x10, used /10 as in the official code): eta2 for B in stage 1 (eta1,
        # meant for M there, is never read), eta11/eta12 for M/B in each later stage.
        self.eta1 = nn.Parameter(torch.tensor([1.0]))
        self.eta2 = nn.Parameter(torch.tensor([5.0]))
        self.eta11 = nn.Parameter(torch.full((self.iter, 1), 1.0))
        self.eta12 = nn.Parameter(torch.full((self.iter, 1), 5.0))
        # Rain kernels: weight0 for stage 1; conv has one copy per later stage, of which only
        # conv[1] is used (the kernels are shared across stages).
        self.weight0 = nn.Parameter(kernels.clone())
        self.conv = nn.Parameter(kernels.unsqueeze(0).repeat(self.iter, 1, 1, 1, 1))
        # 3x3 box filter mapping the rainy image to the initial dual features Z0.
        self.w_z_f = nn.Parameter(torch.full((num_Z, 3, 3, 3), 1.0 / 9.0))
        # Threshold that turns the initial residual O - B0 into a sparse rain layer.
        self.tau = nn.Parameter(torch.tensor([1.0]))
        self.xnet = BackgroundProx(num_Z + 3)
        self.mnet = RainMapProx(num_M)  # built but unused by the official forward; kept for its keys
        self.x_stage = nn.Sequential(*[BackgroundProx(num_Z + 3) for _ in range(stage)])
        self.m_stage = nn.Sequential(*[RainMapProx(num_M) for _ in range(stage)])
        self.fxnet = BackgroundProx(num_Z + 3)

    def _rain(self, m: torch.Tensor) -> torch.Tensor:
        """Rain layer C * M from the rain maps (shared kernels, scaled by 1/10 as officially)."""
        return F.conv2d(m, self.conv[1] / 10, padding=KERNEL_PAD)

    def unfold(self, o: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
        """The official forward on a 0-255 image: (B0, backgrounds per stage, rain layers per stage).

        ``backgrounds`` has S + 1 entries (stages 1..S, then the fine-tuned final one) and
        ``rain layers`` S entries, exactly the official ``ListB`` and ``ListCM``.
        """
        backgrounds: list[torch.Tensor] = []
        rain_layers: list[torch.Tensor] = []

        # Initialisation: B0 and Z from the rainy image (M0 = 0).
        z0 = F.conv2d(o, self.w_z_f, padding=1)
        out = self.xnet(torch.cat([o, z0], dim=1))
        b0, z = out[:, :3], out[:, 3:]

        # Stage 1: rain maps from the thresholded residual, then the background.
        rain_residual = F.relu(o - b0 - self.tau)
        grad_m = F.conv_transpose2d(rain_residual, self.weight0 / 10, padding=KERNEL_PAD)
        m = self.m_stage[0](grad_m)
        cm = self._rain(m)
        b_step = b0 - self.eta2 / 10 * (b0 - (o - cm))
        out = self.x_stage[0](torch.cat([b_step, z], dim=1))
        b, z = out[:, :3], out[:, 3:]
        backgrounds.append(b)
        rain_layers.append(cm)

        # Stages 2..S: a gradient step on M through the kernels, prox; then on B, prox.
        for i in range(self.iter):
            grad_m = F.conv_transpose2d(cm - (o - b), self.conv[1] / 10, padding=KERNEL_PAD)
            m = self.m_stage[i + 1](m - self.eta11[i] / 10 * grad_m)
            cm = self._rain(m)
            rain_layers.append(cm)
            b_step = b - self.eta12[i] / 10 * (b - (o - cm))
            out = self.x_stage[i + 1](torch.cat([b_step, z], dim=1))
            b, z = out[:, :3], out[:, 3:]
            backgrounds.append(b)

        # A last background prox on the final [B, Z] ("fine-tune").
        backgrounds.append(self.fxnet(out)[:, :3])
        return b0, backgrounds, rain_layers

    def official_forward(self, x: torch.Tensor) -> torch.Tensor:
        """0-255 rainy image -> ``stack([B0, ListB[-1]])``, as the fixture stores it."""
        b0, backgrounds, _ = self.unfold(x)
        return torch.stack([b0, backgrounds[-1]])

    def restore(self, x: torch.Tensor) -> torch.Tensor:
        """[0, 1] rainy image -> the last stage's background on the [0, 1] scale.

        The official test quantises ``ListB[-1]`` (clamp to 0-255, round); that step is left to
        evaluation so the output stays differentiable.
        """
        _, backgrounds, _ = self.unfold(x * RGB_RANGE)
        return backgrounds[-1] / RGB_RANGE

    def stage_outputs(self, x: torch.Tensor) -> dict[str, torch.Tensor | list[torch.Tensor]]:
        """Every intermediate result on the [0, 1] scale, for the official multi-stage loss.

        ``b0``: initial background; ``backgrounds``: ListB (S + 1 entries, the last is what
        ``forward`` returns); ``rain_layers``: ListCM (S entries, targets are O - B).
        """
        b0, backgrounds, rain_layers = self.unfold(x * RGB_RANGE)
        return {
            "b0": b0 / RGB_RANGE,
            "backgrounds": [b / RGB_RANGE for b in backgrounds],
            "rain_layers": [c / RGB_RANGE for c in rain_layers],
        }
