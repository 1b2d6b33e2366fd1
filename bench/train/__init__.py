"""Training: one step engine (checkpoints, exact resume, non-finite guard, preemption, cost) and its loops."""

from bench.train.engine import TrainEngine, TrainTask
from bench.train.loop import TrainConfig, train
from bench.train.speed import SpeedOptions

__all__ = ["SpeedOptions", "TrainConfig", "TrainEngine", "TrainTask", "train"]
