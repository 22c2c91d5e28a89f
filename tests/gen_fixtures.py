"""Generator functions for redline.data tests; module-level so worker processes can import them."""

import numpy as np


def numbers(shard=0, num_shards=1, n=23):
    for i in range(shard, n, num_shards):
        yield np.int64(i), np.float32(i) * 2


def failing(shard=0, num_shards=1, n=20, bad=13):
    for i in range(shard, n, num_shards):
        if i == bad:
            raise ValueError(f"cannot decode record {i}")
        yield np.int64(i), np.float32(i)


def unsharded():
    for i in range(7):
        yield np.int64(i), np.float32(i)
