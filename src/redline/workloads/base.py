"""The Workload record and the FLOP-counting helpers the workloads share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


def conv_macs(out_h: int, out_w: int, out_c: int, k_h: int, k_w: int, in_c: int) -> int:
    """Multiply-adds of one convolution's forward pass for one sample."""
    return out_h * out_w * out_c * k_h * k_w * in_c


def training_flops(layer_macs: list[tuple[int, bool]]) -> int:
    """FLOPs of one training step per sample.

    ``layer_macs`` lists (forward multiply-adds, needs_input_gradient) per
    matmul/conv layer. Forward and weight gradient cost the same; the input
    gradient costs it once more where something trainable lies before the layer.
    """
    return sum(2 * macs * (3 if needs_input_grad else 2) for macs, needs_input_grad in layer_macs)


@dataclass(frozen=True)
class Workload:
    name: str
    description: str
    #: what usually limits it: "dispatch", "compute", "input", "memory" or "overhead".
    bound: str
    batch_size: int
    #: samples per epoch (a multiple of batch_size).
    samples: int
    flops_per_sample: int
    #: () -> an uncompiled keras.Model
    build_model: Callable
    #: (seed) -> (x, y) numpy arrays; None for generator workloads
    make_data: Callable | None
    loss: str = "sparse_categorical_crossentropy"
    optimizer: str = "adam"
    #: for input-bound workloads: per-example (x, y) -> (x, y) tf function done in the pipeline
    augment: Callable | None = None
    #: for generator workloads: fn(shard=0, num_shards=1) yielding (x, y), and () -> its output signature
    generator: Callable | None = None
    output_signature: Callable | None = None

    @property
    def steps_per_epoch(self) -> int:
        return self.samples // self.batch_size
