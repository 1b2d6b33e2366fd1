"""The training loop: checkpoints, exact resume, NaN guard, progress."""

from bench.train.loop import TrainConfig, train

__all__ = ["TrainConfig", "train"]
