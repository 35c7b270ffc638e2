"""What a Hub already holds of a release: version tags, and a header-only copy of a published build.

Re-rendering the card of a published version needs the build's facts (config, safetensors
headers, tokenizer files, recipe, manifest), not its weights. ``fetch_published_build``
writes them in the build directory layout: every small file whole, and each safetensors
shard as its real header followed by a sparse hole up to its true size, so file sizes and
header offsets check out while only a few kilobytes per shard cross the network. Cards
render from it exactly as from the original build, and the publisher, which compares the
manifest's sha256 with the repo's LFS objects (it never re-hashes them), sees identical
weights: a changed card becomes a README-only commit. The copy is never a model: it must
not be published as one, and ``release`` only hands it to the publisher for versions whose
every repo is already tagged (nothing but README.md can then be committed).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from publisher.check.results import CHECKS_FILE
from publisher.errors import HubError, PublishError
from publisher.hub.ranged import TooLarge, read_prefix, safetensors_header, write_header_copy
from publisher.hub.remote import (
    Retry,
    client_settings,
    describe,
    make_api,
    resolve_endpoint,
    resolve_token,
)
from publisher.manifest import MANIFEST_FILE, Manifest

if TYPE_CHECKING:
    import httpx2
    from huggingface_hub import HfApi

SMALL_FILE_LIMIT = 64 << 20  # config, tokenizer, recipe, manifest: never more than this
HEADER_ONLY_MARK = ".header-only"  # a file in the copy's root: says what it is to anyone who looks


@dataclass(frozen=True)
class RepoRefs:
    main: str | None
    tags: dict[str, str]  # tag name → commit


class PublishedView:
    """Read-only access to one endpoint's repos through huggingface_hub (HfApi and its session)."""

    def __init__(self, endpoint: str | None = None, token: str | None = None, retry: Retry | None = None) -> None:
        self.endpoint = resolve_endpoint(endpoint)
        self.token = resolve_token(token)
        self.retry = retry or Retry()
        self.api: HfApi = make_api(self.endpoint, self.token)
        self._refs: dict[str, RepoRefs | None] = {}

    def refs(self, repo_id: str) -> RepoRefs | None:
        """main's head and the tags; None when the repo does not exist (or is not visible)."""
        if repo_id not in self._refs:
            from huggingface_hub.errors import RepositoryNotFoundError

            with client_settings(self.endpoint):
                try:
                    refs = self.retry.call(lambda: self.api.list_repo_refs(repo_id), f"reading refs of {repo_id}", self.token)
                except RepositoryNotFoundError:
                    self._refs[repo_id] = None
                    return None
            main = next((b.target_commit for b in refs.branches if b.name == "main"), None)
            self._refs[repo_id] = RepoRefs(main, {t.name: t.target_commit for t in refs.tags})
        return self._refs[repo_id]

    def tag_commit(self, repo_id: str, tag: str) -> str | None:
        refs = self.refs(repo_id)
        return refs.tags.get(tag) if refs else None

    def tag_date(self, repo_id: str, tag: str) -> date | None:
        """The day ``tag`` was published (its commit's date): the date a re-rendered card keeps."""
        commit = self.tag_commit(repo_id, tag)
        if commit is None:
            return None
        with client_settings(self.endpoint):
            commits = self.retry.call(
                lambda: self.api.list_repo_commits(repo_id, revision=commit), f"reading {repo_id} history", self.token
            )
        return commits[0].created_at.date() if commits else None

    def forget(self, repo_id: str) -> None:
        """Drop what was read of a repo (after writing to it)."""
        self._refs.pop(repo_id, None)

    # ------------------------------------------------------------------ the header-only copy
    def read_manifest(self, repo_id: str, tag: str) -> bytes:
        """manifest.json of ``repo_id`` at ``tag``, as published."""
        from huggingface_hub.errors import EntryNotFoundError

        commit = self.tag_commit(repo_id, tag)
        if commit is None:
            raise PublishError(f"{repo_id} has no tag {tag}", where=repo_id)
        with client_settings(self.endpoint):
            try:
                return self._read(_session(), repo_id, MANIFEST_FILE, commit, SMALL_FILE_LIMIT, ranged=False)[0]
            except EntryNotFoundError:
                raise PublishError(
                    f"{tag} has no manifest.json: it was not published by publisher",
                    where=repo_id,
                    fix="publish a new version of it with `publisher release`",
                ) from None

    def fetch_build(self, repo_id: str, tag: str, out: Path, *, manifest: bytes | None = None) -> Manifest:
        """The published build of ``repo_id``@``tag`` (and its variants' repos) as a header-only copy."""
        raw = manifest if manifest is not None else self.read_manifest(repo_id, tag)
        try:
            parsed = Manifest.model_validate_json(raw)
        except ValueError:
            raise PublishError(
                f"the manifest.json of {tag} is not one publisher reads",
                where=repo_id,
                fix="publish a new version of it with `publisher release`",
            ) from None
        out.mkdir(parents=True, exist_ok=True)
        (out / HEADER_ONLY_MARK).write_text("weights are sparse holes: a copy for re-rendering cards, not a model\n")
        with client_settings(self.endpoint):
            session = _session()
            for variant in parsed.variants:
                vrepo = variant.repo_id or repo_id
                vcommit = self.tag_commit(vrepo, tag)
                if vcommit is None:
                    raise PublishError(
                        f"{repo_id} {tag} is published but {vrepo} has no tag {tag} (an earlier release stopped half-way)",
                        where=vrepo,
                        fix="re-run the release where its build directory is (--builds), so the missing repo is published from it",
                    )
                folder = out / variant.folder if variant.folder else out
                if variant.folder:
                    self._own_manifest(session, vrepo, vcommit, folder)
                for entry in variant.files:
                    dest = folder / entry.path
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    if entry.path.endswith(".safetensors"):
                        self._header_copy(session, vrepo, entry.path, vcommit, entry.size, dest)
                        continue
                    data, _ = self._read(session, vrepo, entry.path, vcommit, SMALL_FILE_LIMIT, ranged=False)
                    if len(data) != entry.size:
                        raise PublishError(
                            f"{entry.path} is {len(data)} bytes at {tag}, manifest.json says {entry.size}",
                            where=vrepo,
                            fix="the repo was changed by hand; publish a new version",
                        )
                    dest.write_bytes(data)
            self._fetch_checks(session, repo_id, tag, out)
        (out / MANIFEST_FILE).write_bytes(raw)
        return parsed

    def _fetch_checks(self, session: httpx2.Client, repo_id: str, tag: str, out: Path) -> None:
        """checks.json as published beside the manifest (absent before the release gate existed)."""
        from huggingface_hub.errors import EntryNotFoundError

        commit = self.tag_commit(repo_id, tag)
        if commit is None:
            return
        try:
            data, _ = self._read(session, repo_id, CHECKS_FILE, commit, SMALL_FILE_LIMIT, ranged=False)
        except EntryNotFoundError:
            return
        (out / CHECKS_FILE).write_bytes(data)

    def _own_manifest(self, session: httpx2.Client, repo_id: str, commit: str, folder: Path) -> None:
        """A variant repo's own manifest.json (repos published before variants had one have none)."""
        from huggingface_hub.errors import EntryNotFoundError

        try:
            data, _ = self._read(session, repo_id, MANIFEST_FILE, commit, SMALL_FILE_LIMIT, ranged=False)
        except EntryNotFoundError:
            return
        folder.mkdir(parents=True, exist_ok=True)
        (folder / MANIFEST_FILE).write_bytes(data)

    def _header_copy(self, session: httpx2.Client, repo_id: str, name: str, commit: str, size: int, dest: Path) -> None:
        try:
            header, total = safetensors_header(
                lambda limit: self._read(session, repo_id, name, commit, limit, ranged=True), name
            )
        except ValueError as e:
            raise PublishError(str(e), where=repo_id) from None
        if total != size:
            raise PublishError(
                f"{name} is {total} bytes on the Hub, manifest.json says {size}", where=repo_id,
                fix="the repo was changed by hand; publish a new version",
            )
        write_header_copy(dest, header, total)

    def _read(
        self, session: httpx2.Client, repo_id: str, filename: str, revision: str, limit: int, *, ranged: bool
    ) -> tuple[bytes, int]:
        """Up to ``limit`` bytes from the start of a file, and the file's full size."""

        def read() -> tuple[bytes, int]:
            from huggingface_hub.utils import build_hf_headers

            headers = build_hf_headers(token=self.token or False, library_name="publisher")
            try:
                return read_prefix(session, self.endpoint, headers, repo_id, filename, revision, limit, ranged=ranged)
            except TooLarge as e:
                raise PublishError(f"{filename} is {e.size} bytes, more than a card re-render reads", where=repo_id) from None

        try:
            return self.retry.call(read, f"reading {repo_id}/{filename}", self.token)
        except PublishError:
            raise
        except Exception as e:
            from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError

            if isinstance(e, EntryNotFoundError):
                raise
            if isinstance(e, HfHubHTTPError | OSError) or type(e).__module__.startswith("httpx"):
                raise HubError(f"cannot read {repo_id}/{filename}@{revision[:7]}: {describe(e, self.token)}") from None
            raise


def _session() -> httpx2.Client:
    from huggingface_hub.utils import get_session

    return get_session()


