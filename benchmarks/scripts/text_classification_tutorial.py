# TensorFlow's "Basic text classification" tutorial, as written there: review files in folders read with
# text_dataset_from_directory (a validation split by seed), a custom standardization with tf.strings regexes, a
# TextVectorization layer adapted on the text alone, vectorize_text mapped over the datasets, cache and prefetch, an
# Embedding / GlobalAveragePooling1D model with dropout, from-logits binary cross-entropy, fit with validation data,
# evaluate, then the tutorial's export model (the vectorize layer, the model and a sigmoid) compiled and evaluated
# on raw strings, and a prediction on new text. The download (aclImdb) is replaced by synthetic reviews written once.
import os
import re
import string

import numpy as np
import tensorflow as tf
from tensorflow.keras import layers, losses

dataset_dir = os.path.join("data", "aclImdb")
if not os.path.exists(dataset_dir):
    rng = np.random.default_rng(0)
    words = [f"word{i}" for i in range(3000)]
    good, bad = ["great", "wonderful", "moving"], ["awful", "boring", "dull"]
    for split, n in (("train", 1500), ("test", 500)):
        for label in ("pos", "neg"):
            folder = os.path.join(dataset_dir, split, label)
            os.makedirs(folder)
            for i in range(n):
                body = list(rng.choice(words, size=int(rng.integers(80, 200))))
                body[int(rng.integers(len(body)))] = str(rng.choice(good if label == "pos" else bad))
                with open(os.path.join(folder, f"{i}_{int(rng.integers(1, 10))}.txt"), "w") as f:
                    f.write("<br />".join(" ".join(body[j:j + 20]) for j in range(0, len(body), 20)))

train_dir = os.path.join(dataset_dir, "train")
batch_size = 32
seed = 42

raw_train_ds = tf.keras.utils.text_dataset_from_directory(
    train_dir, batch_size=batch_size, validation_split=0.2, subset="training", seed=seed)
raw_val_ds = tf.keras.utils.text_dataset_from_directory(
    train_dir, batch_size=batch_size, validation_split=0.2, subset="validation", seed=seed)
raw_test_ds = tf.keras.utils.text_dataset_from_directory(os.path.join(dataset_dir, "test"), batch_size=batch_size)

for text_batch, label_batch in raw_train_ds.take(1):
    for i in range(3):
        print("Review", text_batch.numpy()[i][:80])
        print("Label", label_batch.numpy()[i])


def custom_standardization(input_data):
    lowercase = tf.strings.lower(input_data)
    stripped_html = tf.strings.regex_replace(lowercase, "<br />", " ")
    return tf.strings.regex_replace(stripped_html, "[%s]" % re.escape(string.punctuation), "")


max_features = 10000
sequence_length = 250

vectorize_layer = layers.TextVectorization(
    standardize=custom_standardization, max_tokens=max_features, output_mode="int",
    output_sequence_length=sequence_length)

train_text = raw_train_ds.map(lambda x, y: x)
vectorize_layer.adapt(train_text)


def vectorize_text(text, label):
    text = tf.expand_dims(text, -1)
    return vectorize_layer(text), label


text_batch, label_batch = next(iter(raw_train_ds))
first_review, first_label = text_batch[0], label_batch[0]
print("Vectorized review", vectorize_text(first_review, first_label))
print("1287 ---> ", vectorize_layer.get_vocabulary()[1287])
print("Vocabulary size: {}".format(len(vectorize_layer.get_vocabulary())))

train_ds = raw_train_ds.map(vectorize_text)
val_ds = raw_val_ds.map(vectorize_text)
test_ds = raw_test_ds.map(vectorize_text)

AUTOTUNE = tf.data.AUTOTUNE
train_ds = train_ds.cache().prefetch(buffer_size=AUTOTUNE)
val_ds = val_ds.cache().prefetch(buffer_size=AUTOTUNE)
test_ds = test_ds.cache().prefetch(buffer_size=AUTOTUNE)

embedding_dim = 16
model = tf.keras.Sequential([
    layers.Embedding(max_features, embedding_dim),
    layers.Dropout(0.2),
    layers.GlobalAveragePooling1D(),
    layers.Dropout(0.2),
    layers.Dense(1, activation="sigmoid")])
model.summary()

model.compile(loss=losses.BinaryCrossentropy(), optimizer="adam",
              metrics=[tf.metrics.BinaryAccuracy(threshold=0.5)])

epochs = 10
history = model.fit(train_ds, validation_data=val_ds, epochs=epochs)

loss, accuracy = model.evaluate(test_ds)
print("Loss: ", loss)
print("Accuracy: ", accuracy)

history_dict = history.history
print(history_dict.keys())
acc = history_dict["binary_accuracy"]
val_acc = history_dict["val_binary_accuracy"]
print("epochs run:", len(acc), "best val accuracy:", max(val_acc))

export_model = tf.keras.Sequential([vectorize_layer, model, layers.Activation("sigmoid")])
export_model.compile(loss=losses.BinaryCrossentropy(from_logits=False), optimizer="adam", metrics=["accuracy"])

metrics = export_model.evaluate(raw_test_ds, return_dict=True)
print(metrics)

examples = tf.constant(["The movie was great!", "The movie was okay.", "The movie was terrible..."])
print(export_model.predict(examples))
