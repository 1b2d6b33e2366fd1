"""Loss sets by name: what each paper row trains with, and the check of a user's declared one.

The DiffLoss settings come from ``bench.losses.diffloss.PAPER_DEFAULTS`` (stated once). The
pixel term uses the paper's Euclidean norm (``||x - z||_2``, Eq. 16) in both the baseline and the
DiffLoss rows, so the two differ by the DiffLoss term alone.
"""

from __future__ import annotations

import inspect
from typing import Any

from bench.errors import BenchError
from bench.losses.diffloss import PAPER_DEFAULTS

_DIFFLOSS: dict[str, Any] = {"weight": 1.0, **PAPER_DEFAULTS, "mode": "paper", "pixel": "l2"}

LOSS_SETS: dict[str, dict[str, dict[str, Any]]] = {
    "l2": {"l2": {"weight": 1.0, "norm": "l2"}},
    "diffloss": {"diffloss": {**_DIFFLOSS, "variant": "eps"}},
    # Table 4 ablation: (a) constrain x0-hat only, (b) x_{t-1}-hat only; (c) is "diffloss".
    "diffloss_x0": {"diffloss": {**_DIFFLOSS, "variant": "x0"}},
    "diffloss_xprev": {"diffloss": {**_DIFFLOSS, "variant": "xprev"}},
    # Table 3: every row shares the L1 base term and adds its own (weights stated in REPRODUCE.md).
    "l1": {"l1": {"weight": 1.0}},
    "l1+perceptual": {"l1": {"weight": 1.0}, "perceptual": {"weight": 0.04}},
    "l1+adversarial": {"l1": {"weight": 1.0}, "adversarial": {"weight": 1e-3}},
    "l1+diffloss": {"l1": {"weight": 1.0}, "diffloss": {**_DIFFLOSS, "variant": "eps", "pixel": None}},
}

#: Figure 7: gamma sweep with lambda = 0 on MSBDN (gamma = 0 is the pixel loss alone).
FIGURE7_GAMMAS = (0.0, 5e-4, 1e-3, 5e-3, 1e-2)
for _g in FIGURE7_GAMMAS:
    LOSS_SETS[f"diffloss_gamma{_g:g}"] = {"diffloss": {**_DIFFLOSS, "variant": "eps", "lam": 0.0, "gamma": _g}}

#: Which loss set is the "without DiffLoss" partner of each one (the DiffLoss gain is their difference).
WITHOUT_DIFFLOSS = {"diffloss": "l2", "l1+diffloss": "l1"}


def has_prior_term(losses: dict[str, dict[str, Any]]) -> bool:
    return any(name == "diffloss" for name in losses)


def without_zero_weight_priors(losses: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The same loss with every DiffLoss term of gamma = 0 replaced by its pixel term alone.

    gamma = 0 multiplies the prior's terms by zero: the network's gradient is the pixel term's, so
    running the 552M-parameter prior forward and backward would only cost hours (Figure 7's first
    point). The job then needs no prior at all, and its key says exactly what it computes.
    """
    out = {}
    for name, cfg in losses.items():
        if name == "diffloss" and float(cfg.get("gamma", 1.0)) == 0.0:
            if cfg.get("pixel", "l2") is None:
                continue  # nothing left of this term
            out["l2"] = {"weight": cfg.get("weight", 1.0), "norm": cfg.get("norm", "l2")}
        else:
            out[name] = cfg
    if not out:
        raise BenchError("A loss set with DiffLoss at gamma = 0 and no pixel term trains nothing.",
                         fix="Give gamma > 0 or keep the pixel term.")
    return out


def check_loss_set(terms: Any) -> dict[str, dict[str, Any]]:
    """A user's declared loss set: registered terms, known keyword arguments, numeric weights."""
    from bench.registry import LOSSES

    if not isinstance(terms, dict) or not terms:
        raise BenchError("A loss set must be a table of terms, such as l2 = { weight = 1.0 }.",
                         fix="Declare it as [loss_set.NAME] with one line per term.")
    out = {}
    for name, cfg in terms.items():
        builder = LOSSES.get(name)  # "did you mean" on a typo
        cfg = {} if cfg is None else cfg
        if not isinstance(cfg, dict):
            raise BenchError(f"Term '{name}' must be a table of settings, such as {{ weight = 1.0 }}.",
                             fix="Write it as NAME = { weight = ..., ... }.")
        weight = cfg.get("weight", 1.0)
        if isinstance(weight, bool) or not isinstance(weight, int | float) or weight < 0:
            raise BenchError(f"Term '{name}' has weight {weight!r}; a weight is a number of at least 0.",
                             fix="For example: weight = 1.0.")
        params = inspect.signature(builder).parameters
        given = set(cfg) - {"weight"}
        needs = set(LOSSES.meta(name).get("needs", ()))
        unknown = sorted(k for k in given if k not in params or k in needs)
        if unknown:
            allowed = sorted(set(params) - needs - {"self", "seed"})
            raise BenchError(f"Term '{name}' has no setting '{unknown[0]}'.",
                             fix=f"Its settings: weight, {', '.join(allowed)}.")
        out[name] = {"weight": float(weight), **{k: v for k, v in cfg.items() if k != "weight"}}
    return out
