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


try:
    import keras

    class Squares(keras.utils.PyDataset):
        """Batches of (i, i*i) for i < n."""

        def __init__(self, n=22, batch=5):
            super().__init__()
            self.n, self.batch = n, batch

        def __len__(self):
            return -(-self.n // self.batch)

        def __getitem__(self, idx):
            i = np.arange(idx * self.batch, min(self.n, (idx + 1) * self.batch))
            return i, (i * i).astype(np.float32)
except ImportError:  # keras is optional for these fixtures
    Squares = None
