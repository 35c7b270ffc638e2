"""Safetensors reading and writing without a model in memory.

Reading: headers are parsed and validated up front (so a corrupt or truncated file fails
before any work starts), and tensors are read with ``pread`` into buffers we own. We never
``mmap`` parents: mapped pages count in a process's resident memory, and a 7B pair read
through mmap shows ~18 GiB RSS.

Writing: the whole layout (names, dtypes, shapes, shard assignment) is known before the
first byte is written, so each shard's header goes out first and tensors stream after it
in order, hashed (sha256) on the way. A shard is written under a temporary name and renamed
when complete, so a shard file that exists is a whole shard.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import struct
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from publisher.errors import SourceError, TensorFileError
from publisher.lazy import torch

# safetensors dtype name -> (torch dtype attribute, bytes per element)
_DTYPE_TABLE: dict[str, tuple[str, int]] = {
    "BOOL": ("bool", 1),
    "U8": ("uint8", 1),
    "I8": ("int8", 1),
    "I16": ("int16", 2),
    "U16": ("uint16", 2),
    "I32": ("int32", 4),
    "U32": ("uint32", 4),
    "I64": ("int64", 8),
    "U64": ("uint64", 8),
    "F16": ("float16", 2),
    "BF16": ("bfloat16", 2),
    "F32": ("float32", 4),
    "F64": ("float64", 8),
    "F8_E4M3": ("float8_e4m3fn", 1),
    "F8_E5M2": ("float8_e5m2", 1),
}
ITEMSIZE: dict[str, int] = {name: size for name, (_, size) in _DTYPE_TABLE.items()}


class _TorchDtypes(Mapping[str, "tuple[torch.dtype, int]"]):
    """safetensors dtype name -> (torch dtype, bytes per element); torch is imported on first use."""

    def __getitem__(self, key: str) -> tuple[torch.dtype, int]:
        attr, size = _DTYPE_TABLE[key]
        return getattr(torch, attr), size

    def __iter__(self) -> Iterator[str]:
        return iter(_DTYPE_TABLE)

    def __len__(self) -> int:
        return len(_DTYPE_TABLE)


class _DtypeNames(Mapping["torch.dtype", str]):
    """torch dtype -> safetensors dtype name."""

    _cache: dict[torch.dtype, str] | None = None

    def _table(self) -> dict[torch.dtype, str]:
        if self._cache is None:
            self._cache = {getattr(torch, attr): name for name, (attr, _) in _DTYPE_TABLE.items()}
        return self._cache

    def __getitem__(self, key: torch.dtype) -> str:
        return self._table()[key]

    def __iter__(self) -> Iterator[torch.dtype]:
        return iter(self._table())

    def __len__(self) -> int:
        return len(_DTYPE_TABLE)


DTYPES: Mapping[str, tuple[torch.dtype, int]] = _TorchDtypes()
TORCH_TO_DTYPE: Mapping[torch.dtype, str] = _DtypeNames()
# Names people write in configs (mergekit's `dtype:`, config.json's torch_dtype).
DTYPE_ALIASES: dict[str, str] = {
    "bfloat16": "BF16",
    "bf16": "BF16",
    "float16": "F16",
    "fp16": "F16",
    "half": "F16",
    "float32": "F32",
    "fp32": "F32",
    "float": "F32",
    "float64": "F64",
}
MAX_HEADER_BYTES = 100 * 1024 * 1024
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")


def require_hub_safetensors(repo_id: str, paths: Iterable[str], where: str) -> None:
    """A Hub repo's file list must hold safetensors weights: pickles are never loaded."""
    paths = list(paths)
    if any(p.endswith(".safetensors") for p in paths):
        return
    pickles = [p for p in paths if p.endswith(PICKLE_SUFFIXES)]
    if pickles:
        raise SourceError(
            f"{repo_id} has only pickle checkpoints ({', '.join(pickles[:3])}); publisher never unpickles",
            where=where,
            fix="use a revision with safetensors weights, or convert the model first",
        )
    raise SourceError(f"{repo_id} has no *.safetensors files", where=where)
SINGLE_FILE = "model.safetensors"
INDEX_FILE = "model.safetensors.index.json"


def dtype_name(value: str) -> str:
    """Normalise a dtype written by a person (``bfloat16``) to the safetensors name (``BF16``)."""
    key = value.strip()
    if key in _DTYPE_TABLE:
        return key
    alias = DTYPE_ALIASES.get(key.lower().removeprefix("torch."))
    if alias is None:
        raise ValueError(f"unknown dtype {value!r}")
    return alias


def torch_dtype(name: str) -> torch.dtype:
    return DTYPES[name][0]


@dataclass(frozen=True)
class TensorInfo:
    """Where one tensor lives: enough to read it, or to plan around it without reading."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    path: Path
    offset: int  # absolute byte offset of the data in the file
    nbytes: int

    @property
    def numel(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    @property
    def torch_dtype(self) -> torch.dtype:
        return DTYPES[self.dtype][0]

    @property
    def itemsize(self) -> int:
        return ITEMSIZE[self.dtype]


def read_header(path: Path) -> tuple[dict[str, TensorInfo], dict[str, str]]:
    """Parse and validate a safetensors header; every inconsistency is a TensorFileError."""
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            raw_len = f.read(8)
            if len(raw_len) < 8:
                raise TensorFileError(
                    f"file is {size} bytes, too short for a safetensors header",
                    where=str(path),
                    fix="the file is truncated; download it again",
                )
            (header_len,) = struct.unpack("<Q", raw_len)
            if header_len > MAX_HEADER_BYTES or 8 + header_len > size:
                raise TensorFileError(
                    f"header length {header_len} does not fit in a {size}-byte file",
                    where=str(path),
                    fix="the file is truncated or not safetensors; download it again",
                )
            header_bytes = f.read(header_len)
    except OSError as e:
        raise TensorFileError(f"cannot read: {e.strerror}", where=str(path)) from e
    try:
        header = json.loads(header_bytes)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise TensorFileError(
            f"header is not valid JSON ({e})", where=str(path), fix="download the file again"
        ) from e
    if not isinstance(header, dict):
        raise TensorFileError("header is not a JSON object", where=str(path))
    data_start = 8 + header_len
    data_size = size - data_start
    metadata_raw = header.pop("__metadata__", None) or {}
    if not isinstance(metadata_raw, dict):
        raise TensorFileError("__metadata__ is not an object", where=str(path))
    metadata = {str(k): str(v) for k, v in metadata_raw.items()}
    tensors: dict[str, TensorInfo] = {}
    spans: list[tuple[int, int, str]] = []
    for name, entry in header.items():
        where = f"{path}: tensor {name}"
        if not isinstance(entry, dict):
            raise TensorFileError("header entry is not an object", where=where)
        dtype = entry.get("dtype")
        shape = entry.get("shape")
        offsets = entry.get("data_offsets")
        if dtype not in _DTYPE_TABLE:
            raise TensorFileError(f"unknown dtype {dtype!r}", where=where)
        if not (isinstance(shape, list) and all(isinstance(d, int) and d >= 0 for d in shape)):
            raise TensorFileError(f"invalid shape {shape!r}", where=where)
        if not (
            isinstance(offsets, list)
            and len(offsets) == 2
            and all(isinstance(o, int) and o >= 0 for o in offsets)
            and offsets[0] <= offsets[1]
        ):
            raise TensorFileError(f"invalid data_offsets {offsets!r}", where=where)
        begin, end = offsets
        numel = 1
        for d in shape:
            numel *= d
        expected = numel * ITEMSIZE[dtype]
        if end - begin != expected:
            raise TensorFileError(
                f"{dtype}{shape} needs {expected} bytes but data_offsets span {end - begin}",
                where=where,
                fix="the file is corrupt; download it again",
            )
        if end > data_size:
            raise TensorFileError(
                f"data_offsets end at {end} beyond the {data_size} data bytes in the file",
                where=where,
                fix="the file is truncated; download it again",
            )
        spans.append((begin, end, name))
        tensors[name] = TensorInfo(
            name=name,
            dtype=dtype,
            shape=tuple(shape),
            path=path,
            offset=data_start + begin,
            nbytes=expected,
        )
    spans.sort()
    for (_b0, e0, n0), (b1, _e1, n1) in itertools.pairwise(spans):
        if b1 < e0:
            raise TensorFileError(
                f"tensors {n0} and {n1} overlap in the data section", where=str(path)
            )
    return tensors, metadata


class TensorReader:
    """Reads tensors by ``pread`` into fresh buffers; safe to share between threads."""

    def __init__(self) -> None:
        self._fds: dict[Path, int] = {}
        self._lock = threading.Lock()

    def _fd(self, path: Path) -> int:
        fd = self._fds.get(path)
        if fd is not None:
            return fd
        with self._lock:
            fd = self._fds.get(path)
            if fd is None:
                fd = os.open(path, os.O_RDONLY)
                if hasattr(os, "posix_fadvise"):
                    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
                self._fds[path] = fd
            return fd

    def read(self, info: TensorInfo, rows: tuple[int, int] | None = None) -> torch.Tensor:
        """The tensor (or a band of its first dimension) as a new CPU tensor."""
        shape = list(info.shape)
        offset = info.offset
        nbytes = info.nbytes
        if rows is not None:
            r0, r1 = rows
            row_bytes = info.nbytes // shape[0] if shape and shape[0] else 0
            offset += r0 * row_bytes
            nbytes = (r1 - r0) * row_bytes
            shape[0] = r1 - r0
        buf = torch.empty(nbytes, dtype=torch.uint8)
        if nbytes:
            self._read_into(info, offset, buf)
        return buf.view(info.torch_dtype).reshape(shape)

    def _read_into(self, info: TensorInfo, offset: int, buf: torch.Tensor) -> None:
        view = memoryview(buf.numpy()).cast("B")  # type: ignore[arg-type]
        fd = self._fd(info.path)
        done = 0
        total = len(view)
        while done < total:
            n = os.preadv(fd, [view[done:]], offset + done)
            if n <= 0:
                raise TensorFileError(
                    "file ended while reading the tensor",
                    where=f"{info.path}: tensor {info.name}",
                    fix="the file is truncated; download it again",
                )
            done += n

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()

    def __enter__(self) -> TensorReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class ModelFiles:
    """The safetensors side of a model folder: every tensor, where it lives, and the config."""

    root: Path
    tensors: dict[str, TensorInfo]
    files: list[Path]
    config: dict[str, object] = field(default_factory=dict)

    @classmethod
    def open(cls, root: Path) -> ModelFiles:
        root = Path(root)
        if not root.is_dir():
            raise SourceError(f"{root} is not a folder", where=str(root))
        index_path = root / INDEX_FILE
        if index_path.is_file():
            files = _files_from_index(index_path)
        else:
            files = sorted(root.glob("*.safetensors"))
        if not files:
            pickles = sorted(p.name for p in root.iterdir() if p.suffix in PICKLE_SUFFIXES)
            if pickles:
                raise SourceError(
                    f"only pickle checkpoints found ({', '.join(pickles[:3])}); "
                    "publisher never unpickles",
                    where=str(root),
                    fix="convert the model to safetensors first (e.g. the Hub's convert space)",
                )
            raise SourceError("no *.safetensors files", where=str(root))
        tensors: dict[str, TensorInfo] = {}
        for path in files:
            infos, _ = read_header(path)
            for name, info in infos.items():
                if name in tensors:
                    raise TensorFileError(
                        f"tensor {name} appears in both {tensors[name].path.name} and {path.name}",
                        where=str(root),
                    )
                tensors[name] = info
        config: dict[str, object] = {}
        config_path = root / "config.json"
        if config_path.is_file():
            try:
                loaded = json.loads(config_path.read_text())
            except json.JSONDecodeError as e:
                raise SourceError(f"config.json is not valid JSON ({e})", where=str(config_path)) from e
            if isinstance(loaded, dict):
                config = loaded
        return cls(root=root, tensors=tensors, files=files, config=config)

    @property
    def parameter_count(self) -> int:
        return sum(t.numel for t in self.tensors.values())


def _files_from_index(index_path: Path) -> list[Path]:
    try:
        index = json.loads(index_path.read_text())
        weight_map = index["weight_map"]
        names = sorted(set(weight_map.values()))
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as e:
        raise TensorFileError(
            f"not a valid safetensors index ({e})", where=str(index_path)
        ) from e
    files = []
    for name in names:
        if "/" in name or name.startswith("."):
            raise TensorFileError(f"index names a file outside the folder: {name}", where=str(index_path))
        path = index_path.parent / name
        if not path.is_file():
            raise TensorFileError(
                f"index lists {name}, which is missing", where=str(index_path),
                fix="download the missing shard",
            )
        files.append(path)
    return files


# ----------------------------------------------------------------------------- writing


@dataclass(frozen=True)
class PlannedTensor:
    """A tensor the writer will receive: known before it is computed."""

    name: str
    dtype: str
    shape: tuple[int, ...]

    @property
    def nbytes(self) -> int:
        n = ITEMSIZE[self.dtype]
        for d in self.shape:
            n *= d
        return n


@dataclass(frozen=True)
class FileDigest:
    """A written file: its path relative to the model folder, size and sha256."""

    path: str
    size: int
    sha256: str


def shard_names(count: int) -> list[str]:
    if count == 1:
        return [SINGLE_FILE]
    return [f"model-{i:05d}-of-{count:05d}.safetensors" for i in range(1, count + 1)]


def assign_shards(tensors: Sequence[PlannedTensor], max_shard_bytes: int) -> list[list[PlannedTensor]]:
    """Greedy, order-preserving split: a shard closes before the tensor that would overflow it."""
    shards: list[list[PlannedTensor]] = [[]]
    size = 0
    for t in tensors:
        if shards[-1] and size + t.nbytes > max_shard_bytes:
            shards.append([])
            size = 0
        shards[-1].append(t)
        size += t.nbytes
    return shards


def encode_header(tensors: Sequence[PlannedTensor], metadata: dict[str, str] | None) -> bytes:
    """Header bytes (length prefix included), padded with spaces to 8-byte alignment."""
    header: dict[str, object] = {}
    if metadata:
        header["__metadata__"] = dict(metadata)
    offset = 0
    for t in tensors:
        header[t.name] = {"dtype": t.dtype, "shape": list(t.shape), "data_offsets": [offset, offset + t.nbytes]}
        offset += t.nbytes
    body = json.dumps(header, separators=(",", ":")).encode()
    body += b" " * (-len(body) % 8)
    return struct.pack("<Q", len(body)) + body


class ShardWriter:
    """Writes one safetensors file sequentially, hashing as it goes; atomic on close."""

    def __init__(self, path: Path, tensors: Sequence[PlannedTensor], metadata: dict[str, str] | None) -> None:
        self.path = path
        self._pending = list(tensors)
        self._next = 0
        self._tmp = path.with_name(path.name + ".partial")
        self._file = self._tmp.open("wb")
        self._hash = hashlib.sha256()
        self._size = 0
        self._part_bytes = 0  # bytes of the expected tensor already written by write_part
        self._emit(encode_header(tensors, metadata))

    def _emit(self, data: bytes | memoryview) -> None:
        self._file.write(data)
        self._hash.update(data)
        self._size += len(data)

    @property
    def expected(self) -> PlannedTensor | None:
        return self._pending[self._next] if self._next < len(self._pending) else None

    def write(self, name: str, tensor: torch.Tensor) -> None:
        want = self.expected
        if self._part_bytes:
            raise RuntimeError(f"writer is in the middle of {want.name if want else '?'}, got {name}")
        if want is None or want.name != name:
            raise RuntimeError(f"writer expected {want.name if want else 'no tensor'}, got {name}")
        got_dtype = TORCH_TO_DTYPE.get(tensor.dtype)
        if got_dtype != want.dtype or tuple(tensor.shape) != want.shape:
            raise RuntimeError(
                f"{name}: planned {want.dtype}{list(want.shape)}, got {got_dtype}{list(tensor.shape)}"
            )
        if want.nbytes:
            self._emit(tensor_bytes(tensor))
        self._next += 1

    def write_part(self, name: str, part: torch.Tensor) -> None:
        """Append the next rows of the expected tensor: a big tensor streams band by band."""
        want = self.expected
        if want is None or want.name != name:
            raise RuntimeError(f"writer expected {want.name if want else 'no tensor'}, got {name}")
        got_dtype = TORCH_TO_DTYPE.get(part.dtype)
        if got_dtype != want.dtype or tuple(part.shape[1:]) != want.shape[1:]:
            raise RuntimeError(
                f"{name}: planned {want.dtype}{list(want.shape)}, got a part {got_dtype}{list(part.shape)}"
            )
        nbytes = part.numel() * part.element_size()
        if self._part_bytes + nbytes > want.nbytes:
            raise RuntimeError(f"{name}: parts exceed the planned {want.nbytes} bytes")
        if nbytes:
            self._emit(tensor_bytes(part))
        self._part_bytes += nbytes
        if self._part_bytes == want.nbytes:
            self._part_bytes = 0
            self._next += 1

    def close(self, *, fsync: bool = True) -> FileDigest:
        if self.expected is not None:
            raise RuntimeError(f"shard {self.path.name} closed before {self.expected.name} was written")
        self._file.flush()
        if fsync:
            os.fsync(self._file.fileno())
        self._file.close()
        os.replace(self._tmp, self.path)
        return FileDigest(path=self.path.name, size=self._size, sha256=self._hash.hexdigest())

    def abort(self) -> None:
        self._file.close()
        self._tmp.unlink(missing_ok=True)


def tensor_bytes(tensor: torch.Tensor) -> memoryview:
    """A zero-copy byte view of a CPU tensor (contiguous copy only if needed)."""
    t = tensor.detach()
    if not t.is_contiguous():
        t = t.contiguous()
    return memoryview(t.reshape(-1).view(torch.uint8).numpy()).cast("B")  # type: ignore[arg-type]


def write_index(root: Path, shards: Sequence[Sequence[PlannedTensor]], names: Sequence[str], total_parameters: int) -> FileDigest | None:
    """``model.safetensors.index.json`` as transformers writes it; none for a single file."""
    if len(names) == 1:
        return None
    weight_map = {t.name: fname for shard, fname in zip(shards, names, strict=True) for t in shard}
    index = {
        "metadata": {
            "total_parameters": total_parameters,
            "total_size": sum(t.nbytes for shard in shards for t in shard),
        },
        "weight_map": dict(sorted(weight_map.items())),
    }
    data = (json.dumps(index, indent=2) + "\n").encode()
    return write_file_atomic(root / INDEX_FILE, data)


def write_file_atomic(path: Path, data: bytes) -> FileDigest:
    tmp = path.with_name(path.name + ".partial")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return FileDigest(path=path.name, size=len(data), sha256=hashlib.sha256(data).hexdigest())


def sha256_file(path: Path, chunk: int = 16 << 20) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def iter_planned(tensors: Iterable[tuple[str, torch.Tensor]]) -> Iterator[PlannedTensor]:
    for name, t in tensors:
        yield PlannedTensor(name=name, dtype=TORCH_TO_DTYPE[t.dtype], shape=tuple(t.shape))
