"""Job kinds: prepare data, train the smoke prior, train, evaluate, render, and Table 2's classification.

Importing this package registers each kind's runner in ``bench.graph.job.JOB_KINDS``.
"""

from bench.jobs import classify, data, evaluate, prior, render, train  # noqa: F401
