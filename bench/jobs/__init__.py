"""Job kinds, one module each (or a pair that belongs together); importing this package registers them all.

data -> prior (smoke) -> train -> evaluate (selection of a checkpoint) -> render, and Table 2's
cub (prepare, degrade) -> restore_cub -> classifier (fine-tune, classify), and zero_shot (GDP on the prior).
"""

from bench.jobs import classifier, cub, data, evaluate, prior, render, restore_cub, train, zero_shot  # noqa: F401
