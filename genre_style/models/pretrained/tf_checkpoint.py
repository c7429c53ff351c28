"""Read a TensorFlow checkpoint (the V2 "tensor bundle": `<prefix>.index` + `<prefix>.data-*-of-*`) with numpy alone.

Why not TensorFlow, or the `tensorflow-checkpoint-reader` package: TensorFlow is a 500 MB dependency for reading a
few arrays, and `tensorflow-checkpoint-reader` 0.2.2 (its latest release) pins protobuf<3.19 (this project's MLflow
needs a newer one), and with that pin ignored it fails to import on numpy 2 (`np.string_`) and on protobuf >= 4
(descriptors of code generated before protoc 3.19). The format is small and stable, so it is read here directly:

- the `.index` file is a LevelDB-style table (uncompressed blocks of prefix-compressed key/value entries, a footer
  with the index block's position and the magic number 0xdb4775248b80fb57);
- the entry under the empty key is a BundleHeaderProto (shard count, endianness); every other key is a variable's
  name and its value a BundleEntryProto (dtype, shape, shard id, byte offset and size in the data shard);
- the tensors are raw little-endian arrays in `<prefix>.data-<shard>-of-<shards>`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

_MAGIC = 0xDB4775248B80FB57
_FOOTER = 48  # two block handles (varints) padded to 40 bytes, then the 8-byte magic
_TRAILER = 5  # each block's compression type (1 byte) and CRC (4 bytes)
# TensorFlow's DataType enum (types.proto) for the dtypes a checkpoint of a float model holds.
_DTYPES = {1: np.float32, 2: np.float64, 3: np.int32, 9: np.int64, 10: np.bool_, 19: np.float16}


class CheckpointFormatError(ValueError):
    """The files are not a TensorFlow V2 checkpoint this reader understands."""


@dataclass(frozen=True)
class _Entry:
    dtype: int
    shape: tuple[int, ...]
    shard: int
    offset: int
    size: int


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    """A protobuf/LevelDB base-128 varint at `pos`: (value, position after it)."""
    value, shift = 0, 0
    while True:
        if pos >= len(buf):
            raise CheckpointFormatError("truncated varint")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def _fields(buf: bytes) -> list[tuple[int, int | bytes]]:
    """A protobuf message's (field number, value) pairs: varints as ints, length-delimited and fixed as bytes."""
    fields: list[tuple[int, int | bytes]] = []
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        value: int | bytes
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = buf[pos : pos + 8], pos + 8
        elif wire == 2:
            length, pos = _varint(buf, pos)
            value, pos = buf[pos : pos + length], pos + length
        elif wire == 5:
            value, pos = buf[pos : pos + 4], pos + 4
        else:
            raise CheckpointFormatError(f"unsupported protobuf wire type {wire}")
        fields.append((number, value))
    return fields


def _shape(message: bytes) -> tuple[int, ...]:
    """TensorShapeProto: repeated `dim` (field 2), each a Dim whose field 1 is its size."""
    dims = []
    for number, dim in _fields(message):
        if number == 2 and isinstance(dim, bytes):
            dims.append(next((int(v) for n, v in _fields(dim) if n == 1 and isinstance(v, int)), 0))
    return tuple(dims)


def _int(values: dict[int, int | bytes], field: int, default: int = 0) -> int:
    value = values.get(field, default)
    if not isinstance(value, int):
        raise CheckpointFormatError(f"protobuf field {field} is not a varint")
    return value


def _entry(message: bytes) -> _Entry:
    """BundleEntryProto: dtype 1, shape 2, shard_id 3, offset 4, size 5 (crc32c 6, slices 7 unused here)."""
    values: dict[int, int | bytes] = dict(_fields(message))
    if 7 in values:
        raise CheckpointFormatError("partitioned (sliced) variables are not supported")
    shape = values.get(2, b"")
    return _Entry(
        dtype=_int(values, 1),
        shape=_shape(shape if isinstance(shape, bytes) else b""),
        shard=_int(values, 3),
        offset=_int(values, 4),
        size=_int(values, 5),
    )


def _block(data: bytes, offset: int, size: int) -> list[tuple[bytes, bytes]]:
    """The (key, value) entries of one table block: shared-prefix keys, restart points at the end."""
    if data[offset + size] != 0:
        raise CheckpointFormatError("compressed table blocks are not supported (TensorFlow writes them uncompressed)")
    block = data[offset : offset + size]
    (restarts,) = struct.unpack_from("<I", block, len(block) - 4)
    end = len(block) - 4 - 4 * restarts
    entries, pos, key = [], 0, b""
    while pos < end:
        shared, pos = _varint(block, pos)
        unshared, pos = _varint(block, pos)
        length, pos = _varint(block, pos)
        key = key[:shared] + block[pos : pos + unshared]
        pos += unshared
        entries.append((key, block[pos : pos + length]))
        pos += length
    return entries


def _table(path: Path) -> list[tuple[bytes, bytes]]:
    """Every (key, value) of a LevelDB-style table file, in key order."""
    data = path.read_bytes()
    if len(data) < _FOOTER or struct.unpack_from("<Q", data, len(data) - 8)[0] != _MAGIC:
        raise CheckpointFormatError(f"{path} is not a TensorFlow checkpoint index (no table magic number)")
    footer = data[len(data) - _FOOTER :]
    _, pos = _varint(footer, _varint(footer, 0)[1])  # the metaindex handle (offset, size): unused
    index_offset, pos = _varint(footer, pos)
    index_size, _ = _varint(footer, pos)
    entries = []
    for _, handle in _block(data, index_offset, index_size):
        offset, pos = _varint(handle, 0)
        size, _ = _varint(handle, pos)
        entries.extend(_block(data, offset, size))
    return entries


def read_checkpoint(prefix: str | Path) -> dict[str, np.ndarray]:
    """Every variable of the checkpoint at `prefix` (`prefix + ".index"` exists) as a numpy array of its dtype and
    shape, by its TensorFlow name (`"conv2d/kernel"`, optimiser slots such as `"conv2d/kernel/Adam"` included)."""
    prefix = str(prefix)
    index = Path(prefix + ".index")
    if not index.is_file():
        raise FileNotFoundError(f"no TensorFlow checkpoint index at {index}")
    entries = _table(index)
    header: dict[int, int | bytes] = dict(_fields(entries[0][1])) if entries and entries[0][0] == b"" else {}
    shards = _int(header, 1, 1)  # BundleHeaderProto: num_shards 1, endianness 2 (0: little)
    if _int(header, 2) != 0:
        raise CheckpointFormatError("big-endian checkpoints are not supported")
    blobs: dict[int, bytes] = {}
    tensors = {}
    for key, value in entries:
        if key == b"":
            continue
        entry = _entry(value)
        if entry.dtype not in _DTYPES:
            continue  # strings and resources: no weights
        if entry.shard not in blobs:
            blobs[entry.shard] = Path(f"{prefix}.data-{entry.shard:05d}-of-{shards:05d}").read_bytes()
        dtype = np.dtype(_DTYPES[entry.dtype]).newbyteorder("<")
        count = int(np.prod(entry.shape)) if entry.shape else 1
        if count * dtype.itemsize != entry.size:
            raise CheckpointFormatError(f"{key.decode()}: {entry.size} bytes for shape {entry.shape} of {dtype}")
        array = np.frombuffer(blobs[entry.shard], dtype=dtype, count=count, offset=entry.offset)
        tensors[key.decode()] = array.reshape(entry.shape).astype(dtype.newbyteorder("="))
    return tensors
