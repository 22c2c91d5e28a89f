# Collaborative filtering as the keras.io movie-recommendation example writes it (ratings made synthetic):
# a subclassed model with user and movie embeddings and biases, a dot product, numpy arrays, batch 64,
# validation_data, the default progress bar.
import numpy as np
import keras
from keras import layers, ops

rng = np.random.default_rng(42)
num_users, num_movies, n = 610, 9724, 100000
u = rng.integers(0, num_users, n)
m = rng.integers(0, num_movies, n)
taste = rng.normal(size=(num_users, 8)); kind = rng.normal(size=(num_movies, 8))
r = (taste[u] * kind[m]).sum(axis=1)
y = ((r - r.min()) / (r.max() - r.min())).astype("float32")
x = np.stack([u, m], axis=1)
train_indices = int(0.9 * n)
x_train, x_val, y_train, y_val = x[:train_indices], x[train_indices:], y[:train_indices], y[train_indices:]
EMBEDDING_SIZE = 50


class RecommenderNet(keras.Model):
    def __init__(self, num_users, num_movies, embedding_size, **kwargs):
        super().__init__(**kwargs)
        self.user_embedding = layers.Embedding(num_users, embedding_size, embeddings_initializer="he_normal",
                                               embeddings_regularizer=keras.regularizers.l2(1e-6))
        self.user_bias = layers.Embedding(num_users, 1)
        self.movie_embedding = layers.Embedding(num_movies, embedding_size, embeddings_initializer="he_normal",
                                                embeddings_regularizer=keras.regularizers.l2(1e-6))
        self.movie_bias = layers.Embedding(num_movies, 1)

    def call(self, inputs):
        user_vector = self.user_embedding(inputs[:, 0])
        user_bias = self.user_bias(inputs[:, 0])
        movie_vector = self.movie_embedding(inputs[:, 1])
        movie_bias = self.movie_bias(inputs[:, 1])
        dot_user_movie = ops.tensordot(user_vector, movie_vector, 2)
        x = dot_user_movie + user_bias + movie_bias
        return ops.nn.sigmoid(x)


model = RecommenderNet(num_users, num_movies, EMBEDDING_SIZE)
model.compile(loss=keras.losses.BinaryCrossentropy(), optimizer=keras.optimizers.Adam(learning_rate=0.001))
history = model.fit(x=x_train, y=y_train, batch_size=64, epochs=5, verbose=1, validation_data=(x_val, y_val))
print("val_loss", history.history["val_loss"][-1])
