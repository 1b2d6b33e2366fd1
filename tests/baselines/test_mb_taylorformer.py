"""MB-TaylorFormer-specific checks beyond the generic fixture tests (tests/test_baseline_fixtures.py).

Weights are the fixtures' deterministic fill (scale 0.05) unless a test needs the
official initialisation, so outputs are non-trivial and reproducible without shared/.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest
import torch
import torch.nn.functional as F
from support.shared import fill_by_key
from torchvision.ops import deform_conv2d

import bench
from baselines._base import TrainRecipe
from baselines.mb_taylorformer import SKFF, ChannelNorm, DeformableDWConv, MBTaylorFormer, TaylorAttention

SCALE = 0.05  # the fixture's fill scale


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    """This network runs hundreds of small ops; on a shared 2-core CPU, intra-op threads
    oversubscribe and make it 10-30x slower, so this file runs single-threaded."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _rand(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


def test_output_is_input_plus_predicted_residual() -> None:
    """Global residual: with the last convolution zeroed, forward returns the hazy input exactly (range [0, 1])."""
    net = fill_by_key(bench.build_baseline("mb_taylorformer"), SCALE).eval()
    with torch.no_grad():
        net.output[0].weight.zero_()
        x = _rand(1, 3, 16, 16, seed=1)
        y = net(x)
    assert torch.equal(y, x)
    assert y.min() >= 0.0 and y.max() <= 1.0


def _naive_taylor_attention(att: TaylorAttention, x: torch.Tensor) -> torch.Tensor:
    """Per head: out_i = sum_j (1 + q_i.k_j) v_j / sum_j (1 + q_i.k_j), times temperature and sigmoid(gate)."""
    b, c, h, w = x.shape
    heads, ch = att.num_heads, c // att.num_heads
    q, k, v = att.qkv_dwconv(att.qkv(x)).chunk(3, dim=1)
    out = torch.empty(b, c, h * w)
    convs = [conv for conv in att.refine_att.conv_list for _ in range(conv.out_channels)]
    groups = [g for conv in att.refine_att.conv_list for g in range(conv.out_channels)]
    for hh in range(heads):
        sl = slice(hh * ch, (hh + 1) * ch)
        qh, kh, vh = (t[:, sl].reshape(b, ch, h * w) for t in (q, k, v))
        qh = qh / (qh.norm(dim=1, keepdim=True) / att.norm + 1e-6)
        kh = kh / (kh.norm(dim=1, keepdim=True) / att.norm + 1e-6)
        weights = 1 + qh.transpose(1, 2) @ kh  # B x N x N, positive since |q|, |k| <= qk_norm
        assert weights.min() > 1 - att.norm**2 - 1e-4
        mixed = (weights @ vh.transpose(1, 2)) / (weights.sum(-1, keepdim=True) + 1e-6)
        conv, g = convs[hh], groups[hh]
        qk = torch.cat([qh, kh], 1).reshape(b, 2 * ch, h, w)
        gate = F.conv2d(qk, conv.weight[g : g + 1], conv.bias[g : g + 1], padding=conv.padding)
        out[:, sl] = (mixed * att.temperature[hh] * torch.sigmoid(gate.reshape(b, h * w, 1))).transpose(1, 2)
    return att.project_out(out.reshape(b, c, h, w))


@pytest.mark.parametrize("heads", [1, 4, 8])
def test_taylor_attention_equals_the_quadratic_formula(heads: int) -> None:
    """The linear regrouping (sum v + q(k^T v)) / (N + q sum k) equals first-order-Taylor attention, head by head."""
    torch.manual_seed(heads)
    att = TaylorAttention(dim=16, num_heads=heads, bias=False, qk_norm=0.5).eval()
    with torch.no_grad():
        att.temperature.uniform_(0.5, 2.0)
        x = torch.randn(2, 16, 5, 7)
        got, want = att(x), _naive_taylor_attention(att, x)
    assert (got - want).abs().max().item() <= 1e-5


def test_refinement_windows_are_the_official_table() -> None:
    """The official crpe_window table, heads -> {kernel size: heads}."""
    expected = {1: [(3, 1)], 2: [(3, 2)], 4: [(3, 2), (5, 2)], 8: [(3, 2), (5, 3), (7, 3)]}
    for heads, windows in expected.items():
        att = TaylorAttention(dim=8 * heads, num_heads=heads, bias=False, qk_norm=0.5)
        got = [(conv.kernel_size[0], conv.out_channels) for conv in att.refine_att.conv_list]
        assert got == windows
        for conv in att.refine_att.conv_list:  # 2 x head_dim (q and k) input channels per head
            assert conv.weight.shape[1] == 2 * 8 and conv.groups == conv.out_channels
    with pytest.raises(ValueError, match="heads"):
        TaylorAttention(dim=12, num_heads=3, bias=False, qk_norm=0.5)


def test_deformable_conv_with_zero_offsets_is_a_depthwise_conv() -> None:
    torch.manual_seed(0)
    layer = DeformableDWConv(8, 12, (-3, 3)).eval()
    with torch.no_grad():
        layer.offset_generator[1].weight.zero_()
        x = torch.randn(2, 8, 9, 11)
        want = F.hardswish(layer.pwconv(F.conv2d(x, layer.dcn.weight, padding=1, groups=8)))
        assert (layer(x) - want).abs().max().item() <= 1e-5


def test_offsets_are_clamped_to_offset_clamp() -> None:
    """Predicted offsets are clamped to [-3, 3] before sampling; unclamped ones would give another result."""
    torch.manual_seed(0)
    layer = DeformableDWConv(8, 8, (-3, 3)).eval()
    with torch.no_grad():
        layer.offset_generator[1].weight.mul_(50)
        x = torch.randn(1, 8, 12, 12)
        raw = layer.offset_generator(x)
        assert raw.abs().max() > 3
        clamped = deform_conv2d(x, raw.clamp(-3, 3), layer.dcn.weight, padding=1)
        unclamped = deform_conv2d(x, raw, layer.dcn.weight, padding=1)
        got = layer(x)
    assert (got - F.hardswish(layer.pwconv(clamped))).abs().max().item() <= 1e-6
    assert (got - F.hardswish(layer.pwconv(unclamped))).abs().max().item() > 1e-3


def test_channel_norms() -> None:
    """WithBias = layer norm over channels (eps 1e-5); BiasFree divides by the std without centring."""
    torch.manual_seed(0)
    x = torch.randn(2, 6, 4, 5) + 3.0
    with_bias, bias_free = ChannelNorm(6, with_bias=True), ChannelNorm(6, with_bias=False)
    with torch.no_grad():
        for p in (*with_bias.parameters(), *bias_free.parameters()):
            p.normal_()
        ref = F.layer_norm(x.permute(0, 2, 3, 1), (6,), with_bias.weight, with_bias.bias, eps=1e-5).permute(0, 3, 1, 2)
        assert (with_bias(x) - ref).abs().max().item() <= 1e-5
        std = torch.sqrt(x.var(1, keepdim=True, unbiased=False) + 1e-5)
        assert (bias_free(x) - x / std * bias_free.weight.view(1, 6, 1, 1)).abs().max().item() <= 1e-5


def test_skff_of_identical_branches_is_that_branch() -> None:
    """SKFF's branch weights are a softmax over branches, so fusing copies of one map returns it."""
    torch.manual_seed(0)
    fuse = SKFF(16, height=3)
    f = torch.randn(2, 16, 5, 5)
    with torch.no_grad():
        assert (fuse([f, f, f]) - f).abs().max().item() <= 1e-5


def test_official_initialisation_of_the_embedding_convs() -> None:
    """Official DWConv2d_BN init: every plain conv ~ N(0, 2 / (k*k*out_channels))."""
    torch.manual_seed(0)
    net = MBTaylorFormer()
    conv = net.patch_embed_latent.patch_embeds[0].patch_conv
    for layer in (conv.offset_generator[1], conv.pwconv):  # 18*96 and 96*96 samples
        want = math.sqrt(2.0 / (layer.kernel_size[0] * layer.kernel_size[1] * layer.out_channels))
        assert abs(layer.weight.std().item() / want - 1) < 0.1


def test_gradients_reach_every_parameter() -> None:
    torch.manual_seed(0)
    net = bench.build_baseline("mb_taylorformer").train()
    net(_rand(1, 3, 16, 16, seed=4)).square().mean().backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing, f"no or non-finite gradient for {missing[:5]}"
    assert net.patch_embed.proj.weight.grad.abs().sum() > 0
    assert net.patch_embed_encoder_level1.patch_embeds[0].patch_conv.offset_generator[1].weight.grad.abs().sum() > 0
    assert net.latent.mhca_blks[1].MHCA_layers[3].attn.temperature.grad.abs().sum() > 0


def test_dual_pixel_variant_builds_and_runs() -> None:
    """The official dual_pixel_task branch: 6 input channels, a skip conv, and no global residual."""
    net = MBTaylorFormer(inp_channels=6, dual_pixel_task=True).eval()
    assert net.state_dict()["skip_conv.weight"].shape == (48, 24, 1, 1)
    with torch.no_grad():
        assert net.official_forward(_rand(1, 6, 8, 8, seed=5)).shape == (1, 3, 8, 8)


def test_registration_metadata() -> None:
    meta = bench.BASELINES.meta("mb_taylorformer")
    assert meta["params"] == 2_676_520
    assert meta["repo"] == "FVL2020/ICCV-2023-MB-TaylorFormer"
    assert meta["commit"] == "c504250a45a91cefb20c9ee706df0a834e62beb0"
    recipe = meta["recipe"]
    assert isinstance(recipe, TrainRecipe)
    assert (recipe.loss, recipe.lr, recipe.batch, recipe.patch, recipe.iterations) == ("l1", 2e-4, 8, 256, 500_000)
