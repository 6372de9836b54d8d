"""Reading and writing the safetensors format with numpy alone (no torch).

Layout: an 8-byte little-endian header length N, N bytes of JSON
{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}, then the
raw little-endian tensor bytes. Sharded checkpoints add `model.safetensors.index.json`
({"weight_map": {name: file}}).
"""

from __future__ import annotations

import json
import pathlib
import struct

import ml_dtypes
import numpy as np

_DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16,
           "BF16": ml_dtypes.bfloat16, "I64": np.int64, "I32": np.int32, "I8": np.int8,
           "U8": np.uint8, "BOOL": np.bool_}
_NAMES = {np.dtype(v): k for k, v in _DTYPES.items()}


def read_file(path) -> dict[str, np.ndarray]:
  """All tensors of one .safetensors file."""
  data = pathlib.Path(path).read_bytes()
  (n,) = struct.unpack("<Q", data[:8])
  header = json.loads(data[8:8 + n])
  body = memoryview(data)[8 + n:]
  out = {}
  for name, info in header.items():
    if name == "__metadata__":
      continue
    if info["dtype"] not in _DTYPES:
      raise ValueError(f"{path}: tensor {name!r} has dtype {info['dtype']!r}, "
                       f"supported: {sorted(_DTYPES)}")
    begin, end = info["data_offsets"]
    arr = np.frombuffer(body[begin:end], dtype=_DTYPES[info["dtype"]])
    out[name] = arr.reshape(info["shape"]).copy()
  return out


def read_checkpoint(directory) -> dict[str, np.ndarray]:
  """Every tensor of a save_pretrained directory, single file or sharded."""
  directory = pathlib.Path(directory)
  index = directory / "model.safetensors.index.json"
  if index.exists():
    files = sorted(set(json.loads(index.read_text())["weight_map"].values()))
  elif (directory / "model.safetensors").exists():
    files = ["model.safetensors"]
  else:
    raise FileNotFoundError(f"{directory} holds neither model.safetensors nor "
                            "model.safetensors.index.json")
  tensors = {}
  for f in files:
    tensors.update(read_file(directory / f))
  return tensors


def write_file(path, tensors: dict[str, np.ndarray], metadata: dict[str, str] | None = None):
  """Writes tensors (sorted by name, as the reference writer does) to one file."""
  header, chunks, offset = {}, [], 0
  if metadata:
    header["__metadata__"] = metadata
  for name in sorted(tensors):
    arr = np.ascontiguousarray(tensors[name])
    if arr.dtype not in _NAMES:
      raise ValueError(f"tensor {name!r} has dtype {arr.dtype}, supported: "
                       f"{sorted(str(d) for d in _NAMES)}")
    raw = arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()
    header[name] = {"dtype": _NAMES[arr.dtype], "shape": list(arr.shape),
                    "data_offsets": [offset, offset + len(raw)]}
    chunks.append(raw)
    offset += len(raw)
  blob = json.dumps(header, separators=(",", ":")).encode()
  blob += b" " * (-len(blob) % 8)  # the header is padded to 8-byte alignment
  with open(path, "wb") as f:
    f.write(struct.pack("<Q", len(blob)))
    f.write(blob)
    for raw in chunks:
      f.write(raw)
