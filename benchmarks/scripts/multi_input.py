# A multi-input, multi-output functional model, as the Keras functional API guide writes it: a ticket's title and
# body (token ids) and its tags go in; a priority score and a department come out. Dict inputs and targets as
# numpy arrays, a loss per output with weights, validation_split, EarlyStopping, verbose=2.
import numpy as np
import keras
from keras import layers

num_tags, num_words, num_departments = 12, 10000, 4
title_input = keras.Input(shape=(None,), name="title")
body_input = keras.Input(shape=(None,), name="body")
tags_input = keras.Input(shape=(num_tags,), name="tags")
title_features = layers.Embedding(num_words, 64)(title_input)
body_features = layers.Embedding(num_words, 64)(body_input)
title_features = layers.LSTM(128)(title_features)
body_features = layers.LSTM(32)(body_features)
x = layers.concatenate([title_features, body_features, tags_input])
priority_pred = layers.Dense(1, name="priority")(x)
department_pred = layers.Dense(num_departments, name="department")(x)
model = keras.Model(inputs=[title_input, body_input, tags_input], outputs={"priority": priority_pred, "department": department_pred})

model.compile(optimizer=keras.optimizers.RMSprop(1e-3),
              loss={"priority": keras.losses.BinaryCrossentropy(from_logits=True),
                    "department": keras.losses.CategoricalCrossentropy(from_logits=True)},
              loss_weights={"priority": 1.0, "department": 0.2})

rng = np.random.default_rng(1)
n = 2560
title_data = rng.integers(0, num_words, size=(n, 10))
body_data = rng.integers(0, num_words, size=(n, 100))
tags_data = rng.integers(0, 2, size=(n, num_tags)).astype("float32")
priority_targets = rng.random(size=(n, 1))
dept_targets = rng.integers(0, 2, size=(n, num_departments))

model.fit({"title": title_data, "body": body_data, "tags": tags_data},
          {"priority": priority_targets, "department": dept_targets},
          epochs=4, batch_size=32, validation_split=0.2, verbose=2,
          callbacks=[keras.callbacks.EarlyStopping(monitor="val_loss", patience=3)])
