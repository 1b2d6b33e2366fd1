"""GridDehazeNet: attention-based multi-scale network for image dehazing (Liu et al., ICCV 2019).

A grid of residual dense blocks (RDBs): ``height`` rows at successively halved resolution
(16, 32, 64 channels) and ``width`` columns. Information flows right along each row
through RDBs, down through strided-conv blocks in the left half of the grid and up
through transposed-conv blocks in the right half. Where two streams meet, a learned
per-channel weight for each ("channel-wise attention", the ``coefficient`` tensor) mixes
them. A 3x3 conv + RDB in front and an RDB + 3x3 conv + ReLU at the end make it an
image-to-image network.

Module and parameter names follow the official ``model.py`` (class ``GateHazeNet``) and
``residual_dense_block.py`` so that official checkpoints load with ``strict=True``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from baselines._base import Restorer, TrainRecipe
from bench.registry import BASELINES


class DenseLayer(nn.Module):
    """3x3 conv + ReLU whose output is appended to its input (official ``MakeDense``)."""

    def __init__(self, cin: int, growth_rate: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, growth_rate, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat((x, F.relu(self.conv(x))), 1)


class RDB(nn.Module):
    """Residual dense block: dense layers, 1x1 fusion back to the input width, skip (official ``RDB``)."""

    def __init__(self, channels: int, num_dense_layer: int, growth_rate: int) -> None:
        super().__init__()
        self.residual_dense_layers = nn.Sequential(
            *(DenseLayer(channels + k * growth_rate, growth_rate) for k in range(num_dense_layer))
        )
        self.conv_1x1 = nn.Conv2d(channels + num_dense_layer * growth_rate, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_1x1(self.residual_dense_layers(x)) + x


class DownSample(nn.Module):
    """Stride-2 3x3 conv + ReLU, then a 3x3 conv doubling the width + ReLU (official ``DownSample``)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(channels, 2 * channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.conv2(F.relu(self.conv1(x))))


class UpSample(nn.Module):
    """Stride-2 3x3 transposed conv to an exact target size + ReLU, then a width-halving conv + ReLU.

    The official ``UpSample`` passes the finer row's feature size as ``output_size``,
    which is what makes the grid work at any input size.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.deconv = nn.ConvTranspose2d(channels, channels, 3, stride=2, padding=1)
        self.conv = nn.Conv2d(channels, channels // 2, 3, padding=1)

    def forward(self, x: torch.Tensor, size: torch.Size | tuple[int, int]) -> torch.Tensor:
        out = F.relu(self.deconv(x, output_size=list(size[-2:])))
        return F.relu(self.conv(out))


GRIDDEHAZENET_RECIPE = TrainRecipe(
    loss="smooth_l1 + 0.04 * perceptual(VGG16 relu1_2/relu2_2/relu3_3, MSE, mean of 3, no ImageNet normalisation)",
    lr=1e-3,
    batch=18,
    patch=240,
    schedule="step(x0.5 every 20 epochs indoor / every 2 epochs outdoor)",
    iterations=None,
    optimizer="adam(default betas, no weight decay)",
    notes=(
        "proteus1991/GridDehazeNet train.py + utils.adjust_learning_rate + perceptual.py: Adam lr 1e-3, "
        "train_batch_size 18, 240x240 random crops (no flips), lambda_loss 0.04; RESIDE ITS 100 epochs (lr halved "
        "at epochs 20, 40, 60, 80) or OTS 10 epochs (halved every 2). Hazy input normalised to [-1, 1] "
        "(Normalize(0.5, 0.5)); ground truth and output stay on [0, 1]. The VGG16 features[:16] see the raw "
        "output and ground truth; the best validation-PSNR checkpoint is kept."
    ),
)


@BASELINES.register(
    "griddehazenet",
    task="dehazing",
    dataset="dense_haze",
    paper="Liu, Ma, Shi, Chen, ICCV 2019, GridDehazeNet: Attention-Based Multi-Scale Network for Image Dehazing",
    repo="proteus1991/GridDehazeNet",
    commit="6f0cdf48203a2f41f15b7abc8da6ec3203668c8c",
    fixture="griddehazenet",
    params=958_051,
    input_range=(-1.0, 1.0),  # what official_forward takes; forward() takes [0, 1] and normalises
    recipe=GRIDDEHAZENET_RECIPE,
    size_multiple_note=(
        "none: stride-2 convs round up and every transposed conv is given the finer row's exact size, so any H x W "
        "works (size_multiple = 1)"
    ),
)
class GridDehazeNet(Restorer):
    """The official ``GateHazeNet`` (``model.py``) in its default (paper) configuration.

    ``official_forward`` takes the normalised hazy image in [-1, 1] as the official data
    loaders produce it and returns the ReLU output on the [0, 1] scale; ``forward``
    takes [0, 1], normalises, and returns that output (unclamped, as trained; the
    official ``save_image`` clamps when writing PNGs).
    """

    size_multiple = 1

    def __init__(
        self,
        in_channels: int = 3,
        depth_rate: int = 16,
        kernel_size: int = 3,
        stride: int = 2,
        height: int = 3,
        width: int = 6,
        num_dense_layer: int = 4,
        growth_rate: int = 16,
        attention: bool = True,
    ) -> None:
        super().__init__()
        if stride != 2:
            # The official DownSample/UpSample blocks hard-wire a factor of 2; other strides cannot build.
            raise ValueError(f"GridDehazeNet supports stride=2 only, got {stride}")
        if height < 2 or width < 2:
            raise ValueError(f"GridDehazeNet needs height >= 2 and width >= 2, got {height}x{width}")
        self.height, self.width, self.depth_rate = height, width, depth_rate
        half = width // 2
        self.rdb_module = nn.ModuleDict()
        self.upsample_module = nn.ModuleDict()
        self.downsample_module = nn.ModuleDict()
        # Channel-wise attention weights: [row, column, stream (0: along the row, 1: across rows), channel].
        # Initialised to ones; frozen when attention=False (requires_grad off, as in the official code).
        self.coefficient = nn.Parameter(
            torch.ones(height, width, 2, depth_rate * 2 ** (height - 1)), requires_grad=attention
        )
        pad = (kernel_size - 1) // 2
        self.conv_in = nn.Conv2d(in_channels, depth_rate, kernel_size, padding=pad)
        self.conv_out = nn.Conv2d(depth_rate, in_channels, kernel_size, padding=pad)
        self.rdb_in = RDB(depth_rate, num_dense_layer, growth_rate)
        self.rdb_out = RDB(depth_rate, num_dense_layer, growth_rate)

        for i in range(height):
            for j in range(width - 1):
                self.rdb_module[f"{i}_{j}"] = RDB(self._channels(i), num_dense_layer, growth_rate)
        for i in range(height - 1):
            for j in range(half):
                self.downsample_module[f"{i}_{j}"] = DownSample(self._channels(i))
        for i in range(height - 2, -1, -1):
            for j in range(half, width):
                self.upsample_module[f"{i}_{j}"] = UpSample(self._channels(i + 1))

    def _channels(self, row: int) -> int:
        return self.depth_rate * 2**row

    def _attend(self, row: int, col: int, along: torch.Tensor, across: torch.Tensor) -> torch.Tensor:
        """Mix the stream along the row with the one from the neighbouring row, per channel."""
        n = self._channels(row)
        w = self.coefficient[row, col, :, :n]
        return w[0][None, :, None, None] * along + w[1][None, :, None, None] * across

    def official_forward(self, x: torch.Tensor) -> torch.Tensor:
        rdb, down, up = self.rdb_module, self.downsample_module, self.upsample_module
        half = self.width // 2
        grid: list[list[torch.Tensor | None]] = [[None] * self.width for _ in range(self.height)]

        grid[0][0] = self.rdb_in(self.conv_in(x))
        for j in range(1, half):
            grid[0][j] = rdb[f"0_{j - 1}"](grid[0][j - 1])
        for i in range(1, self.height):
            grid[i][0] = down[f"{i - 1}_0"](grid[i - 1][0])
        # Left half: every inner node mixes its left neighbour (RDB) and the one above (down-sampled).
        for i in range(1, self.height):
            for j in range(1, half):
                grid[i][j] = self._attend(
                    i, j, rdb[f"{i}_{j - 1}"](grid[i][j - 1]), down[f"{i - 1}_{j}"](grid[i - 1][j])
                )
        # Bottom row of the right half: RDBs only.
        bottom = self.height - 1
        for j in range(half, self.width):
            grid[bottom][j] = rdb[f"{bottom}_{j - 1}"](grid[bottom][j - 1])
        # Right half, rows from the second-lowest up, left to right: each node mixes its left neighbour (RDB)
        # and the one below (up-sampled to the exact size). The official code first fills the right half's
        # first column in every row, then the rest; every node's inputs are ready either way, so same result.
        for i in range(self.height - 2, -1, -1):
            for j in range(half, self.width):
                left = grid[i][j - 1]
                grid[i][j] = self._attend(i, j, rdb[f"{i}_{j - 1}"](left), up[f"{i}_{j}"](grid[i + 1][j], left.shape))
        return F.relu(self.conv_out(self.rdb_out(grid[0][self.width - 1])))

    @staticmethod
    def normalise(x: torch.Tensor) -> torch.Tensor:
        """[0, 1] -> [-1, 1]: the official loaders' ``Normalize((0.5,) * 3, (0.5,) * 3)`` on hazy images."""
        return (x - 0.5) / 0.5

    def restore(self, x: torch.Tensor) -> torch.Tensor:
        return self.official_forward(self.normalise(x))
