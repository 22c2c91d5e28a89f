"""Built-in workloads: small, deterministic, synthetic, each with an exact FLOP count.

Each module defines WORKLOAD. Data is generated locally from a seed; nothing
is downloaded. FLOPs count the multiply-adds of dense and convolution layers
(2 FLOPs each) in the forward pass, the weight gradients and the input
gradients (skipped for a layer with nothing trainable before it); elementwise
work (bias, activations, pooling, loss, optimizer) is left out, as peak
matmul FLOP/s, the yardstick, leaves it out too.
"""

from __future__ import annotations

from . import cnn, embed, generator, input, mlp, tiny
from .base import Workload, conv_macs, training_flops

WORKLOADS = {w.name: w for w in (mlp.WORKLOAD, cnn.WORKLOAD, input.WORKLOAD, embed.WORKLOAD, tiny.WORKLOAD, generator.WORKLOAD)}
DEFAULT = "mlp"


def get(name: str) -> Workload:
    from ..errors import UsageError

    if name not in WORKLOADS:
        raise UsageError(f"unknown workload {name!r}: valid are {', '.join(WORKLOADS)}")
    return WORKLOADS[name]


__all__ = ["DEFAULT", "WORKLOADS", "Workload", "conv_macs", "get", "training_flops"]
