# The simple-audio-recognition tutorial's shape: WAV clips read with audio_dataset_from_directory, tf.signal.stft
# spectrograms in a tf.data map, cache/shuffle/prefetch, Normalization adapted on the dataset, a small convnet with
# Resizing, EarlyStopping, then evaluate, predict, a confusion matrix and the tutorial's export: a tf.Module with
# its own tf.function, saved with tf.saved_model.save. The download (mini Speech Commands) is replaced by
# synthetic clips written once: a tone per command, with noise.
import os
import pathlib

import numpy as np
import tensorflow as tf
from tensorflow.keras import layers, models

DATASET_PATH = "data/mini_speech_commands"
data_dir = pathlib.Path(DATASET_PATH)
if not data_dir.exists():
    rng = np.random.default_rng(0)
    t = np.arange(16000) / 16000
    for i, word in enumerate(["down", "go", "left", "no", "right", "stop", "up", "yes"]):
        (data_dir / word).mkdir(parents=True)
        for j in range(200):
            tone = np.sin(2 * np.pi * (200 + 60 * i + rng.uniform(-20, 20)) * t)
            wave = 0.3 * tone + 0.2 * rng.standard_normal(16000)
            wav = tf.audio.encode_wav(wave[:, None].astype("float32"), 16000)
            tf.io.write_file(str(data_dir / word / f"{j:04d}.wav"), wav)

commands = np.array(tf.io.gfile.listdir(str(data_dir)))
print("Commands:", commands)

train_ds, val_ds = tf.keras.utils.audio_dataset_from_directory(
    directory=data_dir, batch_size=64, validation_split=0.2, seed=0, output_sequence_length=16000, subset="both")
label_names = np.array(train_ds.class_names)


def squeeze(audio, labels):
    audio = tf.squeeze(audio, axis=-1)
    return audio, labels


train_ds = train_ds.map(squeeze, tf.data.AUTOTUNE)
val_ds = val_ds.map(squeeze, tf.data.AUTOTUNE)
test_ds = val_ds.shard(num_shards=2, index=0)
val_ds = val_ds.shard(num_shards=2, index=1)


def get_spectrogram(waveform):
    spectrogram = tf.signal.stft(waveform, frame_length=255, frame_step=128)
    spectrogram = tf.abs(spectrogram)
    spectrogram = spectrogram[..., tf.newaxis]
    return spectrogram


def make_spec_ds(ds):
    return ds.map(map_func=lambda audio, label: (get_spectrogram(audio), label), num_parallel_calls=tf.data.AUTOTUNE)


train_spectrogram_ds = make_spec_ds(train_ds)
val_spectrogram_ds = make_spec_ds(val_ds)
test_spectrogram_ds = make_spec_ds(test_ds)

for example_spectrograms, example_spect_labels in train_spectrogram_ds.take(1):
    break

train_spectrogram_ds = train_spectrogram_ds.cache().shuffle(10000).prefetch(tf.data.AUTOTUNE)
val_spectrogram_ds = val_spectrogram_ds.cache().prefetch(tf.data.AUTOTUNE)
test_spectrogram_ds = test_spectrogram_ds.cache().prefetch(tf.data.AUTOTUNE)

input_shape = example_spectrograms.shape[1:]
print("Input shape:", input_shape)
num_labels = len(label_names)

norm_layer = layers.Normalization()
norm_layer.adapt(data=train_spectrogram_ds.map(map_func=lambda spec, label: spec))

model = models.Sequential([
    layers.Input(shape=input_shape),
    layers.Resizing(32, 32),
    norm_layer,
    layers.Conv2D(32, 3, activation="relu"),
    layers.Conv2D(64, 3, activation="relu"),
    layers.MaxPooling2D(),
    layers.Dropout(0.25),
    layers.Flatten(),
    layers.Dense(128, activation="relu"),
    layers.Dropout(0.5),
    layers.Dense(num_labels),
])
model.summary()
model.compile(optimizer=tf.keras.optimizers.Adam(),
              loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])

EPOCHS = 10
history = model.fit(train_spectrogram_ds, validation_data=val_spectrogram_ds, epochs=EPOCHS,
                    callbacks=tf.keras.callbacks.EarlyStopping(verbose=1, patience=2))
print(model.evaluate(test_spectrogram_ds, return_dict=True))

y_pred = tf.argmax(model.predict(test_spectrogram_ds), axis=1)
y_true = tf.concat(list(test_spectrogram_ds.map(lambda s, lab: lab)), axis=0)
confusion_mtx = tf.math.confusion_matrix(y_true, y_pred)
print(confusion_mtx.numpy())


class ExportModel(tf.Module):
    def __init__(self, model):
        self.model = model
        self.__call__.get_concrete_function(x=tf.TensorSpec(shape=(), dtype=tf.string))
        self.__call__.get_concrete_function(x=tf.TensorSpec(shape=[None, 16000], dtype=tf.float32))

    @tf.function
    def __call__(self, x):
        if x.dtype == tf.string:
            x = tf.io.read_file(x)
            x, _ = tf.audio.decode_wav(x, desired_channels=1, desired_samples=16000)
            x = tf.squeeze(x, axis=-1)
            x = x[tf.newaxis, :]
        x = get_spectrogram(x)
        result = self.model(x, training=False)
        class_ids = tf.argmax(result, axis=-1)
        class_names = tf.gather(label_names, class_ids)
        return {"predictions": result, "class_ids": class_ids, "class_names": class_names}


export = ExportModel(model)
print(export(tf.constant(str(data_dir / "no" / "0001.wav")))["class_names"])
tf.saved_model.save(export, "saved")
print("saved to", os.path.abspath("saved"))
