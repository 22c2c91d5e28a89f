"""File sources: TFRecord files and folders of images, read through tf.data with parallel interleave."""

from __future__ import annotations

import glob
import os

from ..errors import UsageError
from .sources import FileSource

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")


def _readable(path: str) -> None:
    try:
        with open(path, "rb") as f:
            f.read(1)
    except OSError as exc:
        raise UsageError(f"cannot read {path!r}: {exc.strerror}; fix its permissions or remove it from the source") from None


def tfrecord(pattern: str, parse_fn=None) -> FileSource:
    """TFRecord files matching a glob pattern; parse_fn(serialized) -> element, run in parallel."""
    files = sorted(glob.glob(pattern))
    if not files:
        raise UsageError(f"no TFRecord files match {pattern!r}; give a glob such as 'data/train-*.tfrecord'")
    for f in files:
        _readable(f)
    return FileSource(kind="tfrecord", files=tuple(files), parse_fn=parse_fn)


def image_folder(path: str, image_size=(224, 224)) -> FileSource:
    """A folder with one sub-folder per class of images; labels are the sorted class names' indices."""
    if not os.path.isdir(path):
        raise UsageError(f"image folder {path!r} does not exist or is not a folder; give a folder with one sub-folder per class")
    classes = sorted(d for d in os.listdir(path) if os.path.isdir(os.path.join(path, d)))
    if not classes:
        raise UsageError(f"image folder {path!r} has no class sub-folders; put each class's images in its own sub-folder")
    files, labels = [], []
    for label, name in enumerate(classes):
        for f in sorted(os.listdir(os.path.join(path, name))):
            if f.lower().endswith(IMAGE_EXTENSIONS):
                full = os.path.join(path, name, f)
                _readable(full)
                files.append(full)
                labels.append(label)
    if not files:
        raise UsageError(f"image folder {path!r} holds no images ({', '.join(IMAGE_EXTENSIONS)})")
    return FileSource(kind="images", files=tuple(files), labels=tuple(labels), class_names=tuple(classes), image_size=tuple(image_size))
