"""Zero-shot restorers built on the diffusion prior, registered by name in ``bench.registry.RESTORERS``.

Importing this package registers them. API: ``RESTORERS.get("gdp_x0")(prior, task="lowlight",
steps=...)`` builds one; ``.restore(img_1x3xHxW_in_0_1, seed=..., progress=...)`` returns the
restored image at the input's size.
"""

from __future__ import annotations

from bench.restorers.gdp import GDP, QUALITY_AS_COMMENTED, TASK_SETTINGS, gdp_cost, paper_profile_cost

__all__ = ["GDP", "QUALITY_AS_COMMENTED", "TASK_SETTINGS", "gdp_cost", "paper_profile_cost"]
