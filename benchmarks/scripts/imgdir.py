# Images written to disk, then loaded the way the image-classification tutorial loads a downloaded folder:
# keras.utils.image_dataset_from_directory, a small convnet.
import os
import numpy as np
import keras
from keras import layers

root = "flowers"
if not os.path.isdir(root):
    rng = np.random.default_rng(0)
    for c in ("daisy", "rose"):
        os.makedirs(os.path.join(root, c), exist_ok=True)
        for i in range(120):
            keras.utils.save_img(os.path.join(root, c, f"{i}.png"), rng.integers(0, 255, (48, 48, 3)).astype("uint8"))
train_ds = keras.utils.image_dataset_from_directory(root, image_size=(48, 48), batch_size=16, validation_split=0.2,
                                                    subset="training", seed=1)
val_ds = keras.utils.image_dataset_from_directory(root, image_size=(48, 48), batch_size=16, validation_split=0.2,
                                                  subset="validation", seed=1)
model = keras.Sequential([keras.Input((48, 48, 3)), layers.Rescaling(1 / 255), layers.Conv2D(16, 3, activation="relu"),
                          layers.MaxPooling2D(), layers.Conv2D(32, 3, activation="relu"), layers.GlobalAveragePooling2D(),
                          layers.Dense(2)])
model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
model.fit(train_ds, validation_data=val_ds, epochs=4)
