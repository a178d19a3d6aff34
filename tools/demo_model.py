"""Small SavedModels built on the spot, and hub-style compressed archives of them.

Used by `make local` (a demo model with no internet) and by the tests.
"""

from __future__ import annotations

import io
import os
import tarfile

import tensorflow as tf


class TextAndNumbers(tf.Module):
    """Two signatures: strings -> features (default), and numbers -> scaled numbers."""

    def __init__(self, vocab_path: str, seed: int = 1) -> None:
        super().__init__()
        self.vocab = tf.saved_model.Asset(vocab_path)
        table_init = tf.lookup.TextFileInitializer(
            vocab_path, tf.string, tf.lookup.TextFileIndex.WHOLE_LINE,
            tf.int64, tf.lookup.TextFileIndex.LINE_NUMBER,
        )
        self.table = tf.lookup.StaticHashTable(table_init, default_value=-1)
        # Big enough that a small shard size splits it over several files.
        self.embedding = tf.Variable(tf.random.stateless_normal([64, 16], seed=[seed, 2]))
        self.scale_by = tf.Variable(3.0)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def embed(self, sentences):
        ids = self.table.lookup(tf.strings.lower(sentences))
        rows = tf.gather(self.embedding, tf.math.floormod(ids, 64))
        return {"embedding": rows, "known": tf.cast(ids >= 0, tf.int32)}

    @tf.function(input_signature=[tf.TensorSpec([None, 2], tf.float32)])
    def scale(self, values):
        return {"scaled": values * self.scale_by}


def save_text_model(folder: str, seed: int = 1) -> str:
    """Write the model to `folder` (sharded variables) and return it; another
    `seed`, other embedding weights (another tree digest)."""
    os.makedirs(folder, exist_ok=True)
    vocab = os.path.join(folder, "..", "vocab.txt")
    with open(vocab, "w") as handle:
        handle.write("hello\nworld\n")
    module = TextAndNumbers(vocab, seed)
    options = tf.saved_model.SaveOptions(
        experimental_sharding_callback=tf.train.experimental.MaxShardSizePolicy(
            max_shard_size=1024
        )
    )
    tf.saved_model.save(
        module,
        folder,
        signatures={"serving_default": module.embed, "scale": module.scale},
        options=options,
    )
    return folder


def compressed_archive(model_folder: str) -> bytes:
    """The hub's compressed format: a tar.gz of the SavedModel folder's contents."""
    buffer = io.BytesIO()
    write_archive(model_folder, buffer)
    return buffer.getvalue()


def write_archive(model_folder: str, target, compresslevel: int = 9) -> None:
    """Write the hub's compressed format for `model_folder` to a file object."""
    with tarfile.open(fileobj=target, mode="w:gz", compresslevel=compresslevel) as archive:
        for name in sorted(os.listdir(model_folder)):
            archive.add(os.path.join(model_folder, name), arcname=name)


class Weights(tf.Module):
    """A hub-like model whose size is its weights: `megabytes` of float32 variables."""

    def __init__(self, megabytes: int, chunk_megabytes: int = 64) -> None:
        super().__init__()
        rows = chunk_megabytes * (1 << 20) // (4 * 256)
        self.chunks = [
            tf.Variable(tf.random.stateless_uniform([rows, 256], seed=[i, 7]))
            for i in range(max(1, megabytes // chunk_megabytes))
        ]

    @tf.function(input_signature=[tf.TensorSpec([None, 256], tf.float32)])
    def project(self, inputs):
        return {"scores": tf.add_n([tf.reduce_sum(inputs @ tf.transpose(c[:8]), -1) for c in self.chunks])}


def save_weights_model(folder: str, megabytes: int) -> str:
    module = Weights(megabytes)
    tf.saved_model.save(module, folder, signatures={"serving_default": module.project})
    return folder


def archive_with_member(name: str, data: bytes = b"x", link_to: str | None = None) -> bytes:
    """A tar.gz with one crafted member: for the unsafe-archive tests."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        info = tarfile.TarInfo(name)
        if link_to is not None:
            info.type = tarfile.SYMTYPE
            info.linkname = link_to
            archive.addfile(info)
        else:
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()
