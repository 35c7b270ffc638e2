"""Parents: resolve each model reference to a local folder of safetensors, pinned to a revision.

A reference is a local folder, ``org/name`` or ``org/name@revision``. An existing folder
wins (relative to the recipe, then to the working directory), as transformers does. Hub
references are fetched with huggingface_hub's ``snapshot_download`` from ``HF_ENDPOINT``
(safetensors, configs and tokenizer files only; we never download or unpickle ``.bin``)
and pinned: the commit sha actually used goes into the manifest.
"""

from __future__ import annotations

import json
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from publisher.errors import SourceError
from publisher.hub.remote_source import OFFLINE_FIX, SMALL_PATTERNS, RemoteParent, RepoNotFound
from publisher.lora import LoraAdapter, open_adapter
from publisher.manifest import FileEntry, InputModel, LoraInput
from publisher.portable import PortableName, portable_name
from publisher.references import parse_reference
from publisher.tensors import ModelFiles, require_hub_safetensors, sha256_file

HUB_REF_RE = re.compile(r"^(?P<repo>[A-Za-z0-9_.\-]+/[A-Za-z0-9_.\-]+)(?:@(?P<rev>[A-Za-z0-9_.\-/]+))?$")
SHA_RE = re.compile(r"^[0-9a-f]{40}$")
ALLOW_PATTERNS = ["*.safetensors", *SMALL_PATTERNS]  # what a snapshot of a parent downloads
HASH_CACHE = Path(os.environ.get("PUBLISHER_CACHE", Path.home() / ".cache" / "publisher")) / "sha256.json"


@dataclass(frozen=True)
class ResolvedModel:
    ref: str
    kind: str  # "local" | "hub" | "recipe"
    path: Path
    files: ModelFiles
    repo_id: str | None = None
    revision: str | None = None
    remote: RemoteParent | None = None  # set when ``path`` is a header-only copy: weights stay on the Hub
    lora: LoraAdapter | None = None  # ``base+lora``: the adapter applied tensor by tensor (lora.py)

    @property
    def config(self) -> dict[str, object]:
        return self.files.config


def local_candidate(ref: str, recipe_dir: Path) -> Path | None:
    """The folder a reference names, if it names one that exists."""
    raw = Path(ref).expanduser()
    for candidate in ([raw] if raw.is_absolute() else [recipe_dir / raw, Path.cwd() / raw]):
        if candidate.is_dir():
            return candidate.resolve()
    return None


PATH_PREFIXES = ("/", "./", "../", "~", ".\\", "..\\")


def _refuse_missing_folder(ref: str, hub_match: re.Match[str] | None, what: str, recipe_dir: Path, where: str) -> None:
    """A reference written as a path (or no Hub repo id) whose folder is missing: say so, not the Hub's error."""
    if ref.startswith(PATH_PREFIXES) or (hub_match is None and _is_path(ref)):
        raise SourceError(
            f"{what} {_shown(Path(ref).expanduser(), recipe_dir)} does not exist",
            where=where,
            fix="fix the path; a relative path starts at the recipe's folder, then the working directory",
        )


def _is_path(ref: str) -> bool:
    """Not a repo id, but shaped like a path: more than one '/', or a backslash."""
    return ref.count("/") > 1 or "\\" in ref


def _shown(raw: Path, recipe_dir: Path) -> str:
    """A folder that was looked for, as a user reads it: absolute, without ``..``."""
    return os.path.normpath(raw if raw.is_absolute() else (recipe_dir / raw).absolute())


def resolve(
    ref: str,
    *,
    recipe_dir: Path,
    where: str,
    pins: dict[str, str] | None = None,
    recipe_outputs: dict[str, Path] | None = None,
    endpoint: str | None = None,
    token: str | None = None,
    headers_dir: Path | None = None,
) -> ResolvedModel:
    """Find a parent. ``pins`` maps repo ids to revisions (a release pins parents it just
    published); ``recipe_outputs`` maps repo ids to local build folders of sibling recipes.
    With ``headers_dir``, a Hub parent is not downloaded: its header-only copy goes there
    (see ``hub/remote_source.py``) and its weights are read later by Range requests.
    ``base+lora`` resolves the base as any reference and the adapter beside it."""
    parsed = parse_reference(ref)
    if parsed.lora is not None:
        kwargs = dict(pins=pins, recipe_outputs=recipe_outputs, endpoint=endpoint, token=token)
        base = resolve(str(parsed.model), recipe_dir=recipe_dir, where=where, headers_dir=headers_dir, **kwargs)  # type: ignore[arg-type]
        adapter = resolve_adapter(str(parsed.lora), recipe_dir=recipe_dir, where=where, endpoint=endpoint, token=token)
        return replace(base, ref=ref, lora=adapter)
    # A folder wins, as in mergekit, whose revision only applies to the Hub ("./m@main" is ./m).
    local = local_candidate(ref, recipe_dir) or local_candidate(str(parsed.model.path), recipe_dir)
    if local is not None:
        return ResolvedModel(ref=ref, kind="local", path=local, files=_open(local, where))
    m = HUB_REF_RE.fullmatch(ref)
    _refuse_missing_folder(ref, m, "folder", recipe_dir, where)
    if m is None:
        raise SourceError(
            f"'{ref}' is neither an existing folder nor a Hub repo id",
            where=where,
            fix="use a path to a model folder, 'org/name' or 'org/name@revision'",
        )
    try:
        return _resolve_hub(ref, m.group("repo"), m.group("rev"), where, pins, recipe_outputs, endpoint, token, headers_dir)
    except RepoNotFound as e:
        raise _does_not_exist(e, recipe_dir / parsed.model.path) from None


def _does_not_exist(e: RepoNotFound, folder: Path) -> SourceError:
    """A bare ``org/name`` that is neither a folder here nor a repo there: say both, and what to do."""
    hub = (f"and {e.repo_id} is not in the local cache (HF_HUB_OFFLINE=1)" if e.offline
           else f"and no repo {e.repo_id} at {e.endpoint}")
    fix = (f"fix the path or the repo id; to fetch it, {OFFLINE_FIX}" if e.offline
           else "fix the path (relative to the recipe's folder) or the repo id; a private repo needs HF_TOKEN")
    here = " here" if e.offline else ""  # offline, the Hub may well have it: only this machine was asked
    return SourceError(f"does not exist{here}: no folder {_shown(folder, Path.cwd())} {hub}", where=e.where, fix=fix)


def _resolve_hub(
    ref: str,
    repo_id: str,
    revision: str | None,
    where: str,
    pins: dict[str, str] | None,
    recipe_outputs: dict[str, Path] | None,
    endpoint: str | None,
    token: str | None,
    headers_dir: Path | None,
) -> ResolvedModel:
    if recipe_outputs and repo_id in recipe_outputs:
        path = recipe_outputs[repo_id]
        rev = (pins or {}).get(repo_id)
        return ResolvedModel(ref=ref, kind="recipe", path=path, files=_open(path, where), repo_id=repo_id, revision=rev)
    if revision is None and pins and repo_id in pins:
        revision = pins[repo_id]
    if headers_dir is not None and _reachable(endpoint):
        from publisher.hub.remote_source import fetch_parent

        remote, path = fetch_parent(repo_id, revision, headers_dir, where=where, endpoint=endpoint, token=token)
        return ResolvedModel(
            ref=ref, kind="hub", path=path, files=_open(path, where), repo_id=repo_id, revision=remote.commit, remote=remote
        )
    path, sha = _download(repo_id, revision, where, endpoint, token)
    return ResolvedModel(ref=ref, kind="hub", path=path, files=_open(path, where), repo_id=repo_id, revision=sha)


def resolve_adapter(ref: str, *, recipe_dir: Path, where: str, endpoint: str | None, token: str | None) -> LoraAdapter:
    """A LoRA adapter: a local folder, or a Hub repo downloaded whole (adapters are small)."""
    local = local_candidate(ref, recipe_dir)
    revision: str | None = None
    if local is None:
        m = HUB_REF_RE.fullmatch(ref)
        _refuse_missing_folder(ref, m, "LoRA folder", recipe_dir, where)
        if m is None:
            raise SourceError(f"LoRA '{ref}' is neither an existing folder nor a Hub repo id", where=where)
        try:
            local, revision = _download(m.group("repo"), m.group("rev"), where, endpoint, token)
        except RepoNotFound as e:
            raise _does_not_exist(e, recipe_dir / m.group("repo")) from None
    adapter = open_adapter(ref, local, where)
    adapter.revision = revision
    return adapter


def _reachable(endpoint: str | None) -> bool:
    """Whether huggingface_hub may talk to the endpoint (HF_HUB_OFFLINE spares loopback servers)."""
    from huggingface_hub import constants

    from publisher.hub.remote import is_loopback, resolve_endpoint

    return not constants.HF_HUB_OFFLINE or is_loopback(resolve_endpoint(endpoint))


def _open(path: Path, where: str) -> ModelFiles:
    try:
        return ModelFiles.open(path)
    except SourceError as e:
        raise SourceError(e.what, where=f"{where}: {e.where}", fix=e.fix) from None


def _download(
    repo_id: str, revision: str | None, where: str, endpoint: str | None, token: str | None
) -> tuple[Path, str]:
    from huggingface_hub import HfApi, constants, snapshot_download
    from huggingface_hub.errors import (
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    from publisher.hub.reach import Unreachable, unreachable_parent
    from publisher.hub.remote import (
        describe,
        is_loopback,
        loopback_online,
        resolve_endpoint,
        resolve_token,
    )

    endpoint = resolve_endpoint(endpoint)
    token = resolve_token(token)
    offline = False
    try:
        with loopback_online(endpoint):
            offline = bool(constants.HF_HUB_OFFLINE)
            if not offline:
                files = HfApi(endpoint=endpoint, token=token or False).list_repo_files(repo_id, revision=revision)
                require_hub_safetensors(repo_id, files, where)
            folder = snapshot_download(
                repo_id,
                revision=revision,
                allow_patterns=ALLOW_PATTERNS,
                endpoint=endpoint,
                token=token or False,
                cache_dir=os.environ.get("PUBLISHER_HF_CACHE") or None,
            )
    except RevisionNotFoundError as e:
        raise SourceError(f"revision '{revision}' of {repo_id} not found", where=where) from e
    except RepositoryNotFoundError as e:
        raise RepoNotFound(repo_id, endpoint, where) from e
    except Unreachable as e:
        raise unreachable_parent(e, repo_id, where) from None
    except LocalEntryNotFoundError as e:
        if offline:
            raise RepoNotFound(repo_id, endpoint, where, offline=True) from e
        hint = "is the server running?" if is_loopback(endpoint) else OFFLINE_FIX
        raise SourceError(
            f"{repo_id} is not in the local cache and {endpoint} cannot be reached",
            where=where,
            fix=f"{hint}, or use a local folder",
        ) from e
    except HfHubHTTPError as e:
        raise SourceError(f"cannot fetch {repo_id} from {endpoint}: {describe(e, token)}", where=where, exit_code=1) from None
    except Exception as e:
        if type(e).__module__.split(".")[0] in ("httpx", "httpx2", "httpcore", "httpcore2") or isinstance(e, OSError):
            raise SourceError(
                f"cannot reach {endpoint} to fetch {repo_id} ({type(e).__name__}: {e})",
                where=where,
                fix="check HF_ENDPOINT and the network, or use a local folder",
                exit_code=1,
            ) from None
        raise
    path = Path(folder)
    sha = path.name if SHA_RE.fullmatch(path.name) else (revision or "")
    return path, sha


# ----------------------------------------------------------------------------- hashing


def _load_hash_cache() -> dict[str, str]:
    try:
        data = json.loads(HASH_CACHE.read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, json.JSONDecodeError):
        return {}


def _cache_key(path: Path) -> str:
    """What must be unchanged for a remembered sha256 to hold: ctime too, which no copy
    (``shutil.copy2`` keeps mtime) or ``os.utime`` can set back."""
    st = path.stat()
    return f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{st.st_ctime_ns}|{st.st_ino}"


RACY_SECONDS = 2.0  # a file changed this recently may change again within the same timestamp tick


def _settled(path: Path, now: float) -> bool:
    """Whether a file's timestamps are old enough to tell a later change apart (as git does for
    "racily clean" entries): one written in the same clock tick as a change after hashing would
    keep its size and mtime, and a remembered hash would then be wrong."""
    st = path.stat()
    return now - max(st.st_mtime_ns, st.st_ctime_ns) / 1e9 > RACY_SECONDS


def _blob_sha(path: Path) -> str | None:
    """Files in a huggingface_hub cache snapshot are links to ``blobs/<sha256>`` for LFS files."""
    if path.is_symlink():
        target = Path(os.readlink(path)).name
        if re.fullmatch(r"[0-9a-f]{64}", target):
            return target
    return None


def model_files(model: ResolvedModel) -> list[Path]:
    """The files of a parent the manifest records: its safetensors and config.json."""
    config = model.path / "config.json"
    adapter = model.lora.files if model.lora is not None else []
    return [*model.files.files, *([config] if config.is_file() else []), *adapter]


def known_hashes(paths: list[Path]) -> dict[Path, str]:
    """sha256 we have without reading: Hub blob names, and hashes remembered from earlier builds."""
    cache = _load_hash_cache()
    out: dict[Path, str] = {}
    for p in paths:
        sha = _blob_sha(p) or cache.get(_cache_key(p))
        if sha:
            out[p] = sha
    return out


def remember_hashes(hashes: dict[Path, str]) -> None:
    """Keep computed hashes (keyed by path, size, mtime, ctime and inode) so no build hashes a
    file twice. Builds running at once each write their own temporary file, under a lock, over
    what is on disk then: no writer's entries are lost or spliced into another's."""
    import fcntl
    import tempfile
    import time

    now = time.time()
    fresh = {_cache_key(p): sha for p, sha in hashes.items() if _blob_sha(p) is None and _settled(p, now)}
    if not fresh:
        return
    try:
        HASH_CACHE.parent.mkdir(parents=True, exist_ok=True)
        with open(HASH_CACHE.with_suffix(".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            cache = _load_hash_cache() | fresh
            fd, tmp = tempfile.mkstemp(prefix=f".{HASH_CACHE.name}.", dir=HASH_CACHE.parent)
            with os.fdopen(fd, "w") as f:
                f.write(json.dumps(cache))
            os.replace(tmp, HASH_CACHE)
    except OSError:
        pass  # a cache we cannot write only costs time


def hash_files(paths: list[Path], threads: int = 2) -> dict[Path, str]:
    """sha256 of files read from disk, in parallel (hashlib releases the GIL)."""
    if not paths:
        return {}
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        return dict(zip(paths, pool.map(sha256_file, paths), strict=True))


def input_entry(model: ResolvedModel, hashes: dict[Path, str], name: PortableName | None = None) -> InputModel:
    """The manifest's record of a parent; ``name``: a local folder's portable name (no paths)."""
    return InputModel(
        ref=name.ref if name else model.ref,
        kind=(name.kind if name else model.kind),  # type: ignore[arg-type]
        repo_id=name.repo_id if name else model.repo_id,
        revision=name.revision if name else model.revision,
        lora=lora_entry(model),
        files=[FileEntry(path=p.name, size=p.stat().st_size, sha256=hashes[p]) for p in model_files(model)],
    )


def lora_entry(model: ResolvedModel) -> LoraInput | None:
    """The adapter of a LoRA parent, by repo id when it came from the Hub, else by folder name."""
    if model.lora is None:
        return None
    hub = HUB_REF_RE.fullmatch(model.lora.ref) if model.lora.revision is not None else None
    if hub:
        return LoraInput(ref=model.lora.ref, repo_id=hub.group("repo"), revision=model.lora.revision)
    name = portable_name(model.lora.path)
    return LoraInput(ref=name.ref, repo_id=name.repo_id, revision=name.revision)


def portable_ref(model: ResolvedModel, base: PortableName | None) -> PortableName | None:
    """A LoRA parent's portable name: its base's and its adapter's, joined by '+'."""
    lora = lora_entry(model)
    if lora is None:
        return base
    base_ref = base.ref if base else str(parse_reference(model.ref).model)
    if base is None and lora.repo_id:
        return None  # both on the Hub: the reference as written is portable
    kind = base.kind if base else model.kind
    return PortableName(f"{base_ref}+{lora.ref}", kind, base.repo_id if base else model.repo_id, base.revision if base else model.revision)


def file_identity(path: Path) -> str:
    """What must not change for a half-written build to be resumed: path, size, mtime."""
    st = path.stat()
    return f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"
