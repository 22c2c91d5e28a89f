"""A PyDataset for redline.data tests; in a module of its own, apart from the generators, so that their worker
processes import numpy only, not Keras (and TensorFlow with it), as a user's generator module would."""

import numpy as np

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
