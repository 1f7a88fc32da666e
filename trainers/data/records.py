"""Sharded TFRecord datasets: `python -m builder data pack` writes them, `--data tfrecord:DIR`
trains from them.

    DIR/index.json                 format, class names, and per split: count, examples per class, shards
    DIR/train-00000-of-00012.tfrecord
    DIR/val-00000-of-00002.tfrecord
    DIR/test-00000-of-00003.tfrecord

Each record is a `tf.train.Example` with the encoded image bytes (`image`, the original file
unless `--image-size` re-encodes it), its class (`label`) and its source file (`file`). The split
is made once, when packing, by the same stratified, seeded rule as `image_folder`, so a folder
and its shards train on the same examples.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import DataError
from .sources import RecordSplit
from .traced import as_written

FORMAT = "keras-blueprint-records-1"
INDEX = "index.json"


def load_tfrecord(config: dict):
    """The splits of a folder written by `data pack`."""
    from .datasets import Splits

    root = Path(config.get("path") or "")
    if not config.get("path"):
        raise DataError("dataset 'tfrecord' needs `data: {path: ...}` (or --data tfrecord:DIR)")
    index_file = root / INDEX
    if not index_file.is_file():
        raise DataError(f"{root}: no {INDEX}; make shards with: python -m builder data pack IMAGE_FOLDER -o {root}")
    try:
        index = json.loads(index_file.read_text())
    except ValueError as exc:
        raise DataError(f"{index_file}: not valid JSON ({exc})") from None
    if index.get("format") != FORMAT:
        raise DataError(f"{index_file}: format {index.get('format')!r}, expected {FORMAT!r}; pack the folder again")
    splits = {}
    for name in ("train", "val", "test"):
        entry = index["splits"][name]
        shards = [str(root / shard) for shard in entry["shards"]]
        missing = [shard for shard in shards if not Path(shard).is_file()]
        if missing:
            raise DataError(f"{missing[0]}: listed in {index_file} but missing; pack the folder again")
        splits[name] = RecordSplit(shards, int(entry["count"]), list(entry["label_counts"]))
    return Splits(splits["train"], splits["val"], splits["test"], list(index["class_names"]))


def _example(image: bytes, label: int, file: str) -> bytes:
    import tensorflow as tf

    feature = {"image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[image])),
               "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[int(label)])),
               "file": tf.train.Feature(bytes_list=tf.train.BytesList(value=[file.encode()]))}
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def _encoded_images(files: list, image_size):
    """The files' bytes in order: as stored, or resized to `image_size` and re-encoded as JPEG
    (quality 95) in parallel."""
    import tensorflow as tf

    paths = tf.data.Dataset.from_tensor_slices(np.asarray(files, dtype=object).astype(str))
    if image_size is None:
        return paths.map(tf.io.read_file, num_parallel_calls=tf.data.AUTOTUNE).prefetch(64)

    def resize(path):
        image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
        image = tf.image.resize(image, image_size, antialias=True)
        return tf.io.encode_jpeg(tf.cast(tf.round(tf.clip_by_value(image, 0, 255)), tf.uint8), quality=95)

    return paths.map(as_written(resize), num_parallel_calls=tf.data.AUTOTUNE).prefetch(64)


def pack(folder, out, shard_size: int = 1024, image_size=None, config: dict | None = None, verbose: int = 1) -> dict:
    """Write the image folder `folder` as TFRecord shards in `out`; returns the index."""
    import keras
    import tensorflow as tf

    from .datasets import load_image_folder

    config = {"dataset": "image_folder", "path": str(folder), **(config or {})}
    splits = load_image_folder(config)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if (out / INDEX).exists():
        raise DataError(f"{out} already holds shards ({INDEX}); choose an empty folder")
    total = sum(len(split) for split in splits.named().values())
    bar = keras.utils.Progbar(total, verbose=verbose, unit_name="image")
    index = {"format": FORMAT, "class_names": splits.class_names, "source": str(Path(folder).resolve()),
             "image_size": list(image_size) if image_size else None,
             "split": {key: config.get(key) for key in ("seed", "validation_split", "test_split")},
             "skipped": [{"file": file, "reason": reason} for file, reason in splits.skipped], "splits": {}}
    done = 0
    for name, split in splits.named().items():
        shard_count = max(1, -(-len(split) // shard_size))
        shards = [f"{name}-{i:05d}-of-{shard_count:05d}.tfrecord" for i in range(shard_count)]
        images = iter(_encoded_images(split.files, image_size).as_numpy_iterator()) if len(split) else iter(())
        for number, shard in enumerate(shards):
            rows = range(number * shard_size, min(len(split), (number + 1) * shard_size))
            with tf.io.TFRecordWriter(str(out / f".{shard}.tmp")) as writer:
                for row in rows:
                    writer.write(_example(next(images), split.labels[row], split.files[row]))
                    done += 1
                    if done % 64 == 0 or done == total:
                        bar.update(done)
            (out / f".{shard}.tmp").replace(out / shard)
        index["splits"][name] = {"count": len(split), "shards": shards,
                                 "label_counts": np.bincount(split.labels, minlength=len(splits.class_names)).tolist()}
    (out / INDEX).write_text(json.dumps(index, indent=1) + "\n")  # last: a folder with an index is complete
    return index
