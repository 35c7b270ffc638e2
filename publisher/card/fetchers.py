"""Reading files of parents' Hub repos: through huggingface_hub, or from a mirror folder.

A fetcher answers ``None`` when the repo exists but has no such file and raises
``FetchError`` when the repo cannot be read at all (the ancestry is then *unknown*).
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol


class FetchError(Exception):
    """A card could not be read (network, missing repo, bad revision): the ancestry is unknown."""


class CardFetcher(Protocol):
    """Reads files of Hub repos. ``None`` means the repo exists but has no such file."""

    def read(self, repo_id: str, filename: str, revision: str | None) -> str | None: ...


class HubFetcher:
    """Files through huggingface_hub (``hf_hub_download``) from an endpoint, cached on disk and in memory."""

    def __init__(self, endpoint: str | None = None, token: str | bool | None = None, cache_dir: Path | None = None) -> None:
        self.endpoint = endpoint
        self.token = token
        self.cache_dir = cache_dir
        self._memo: dict[tuple[str, str, str | None], str | None] = {}

    def read(self, repo_id: str, filename: str, revision: str | None) -> str | None:
        key = (repo_id, filename, revision)
        if key not in self._memo:
            self._memo[key] = self._download(repo_id, filename, revision)
        return self._memo[key]

    def _download(self, repo_id: str, filename: str, revision: str | None) -> str | None:
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import (
            EntryNotFoundError,
            GatedRepoError,
            HfHubHTTPError,
            LocalEntryNotFoundError,
            OfflineModeIsEnabled,
            RemoteEntryNotFoundError,
            RepositoryNotFoundError,
            RevisionNotFoundError,
        )

        where = f"{repo_id}@{revision}" if revision else repo_id
        try:
            path = hf_hub_download(
                repo_id,
                filename,
                revision=revision,
                endpoint=self.endpoint,
                token=self.token,
                cache_dir=self.cache_dir,
            )
        except GatedRepoError as e:
            raise FetchError(f"{where} is gated (set HF_TOKEN with access)") from e
        except RepositoryNotFoundError as e:
            raise FetchError(f"{where} does not exist or is private") from e
        except RevisionNotFoundError as e:
            raise FetchError(f"revision {revision} of {repo_id} does not exist") from e
        except RemoteEntryNotFoundError:
            return None  # the repo answered: it has no such file
        except (LocalEntryNotFoundError, OfflineModeIsEnabled) as e:
            raise FetchError(f"{where} cannot be reached and is not in the cache") from e
        except EntryNotFoundError:
            return None
        except (HfHubHTTPError, OSError, ValueError) as e:
            raise FetchError(f"{where}: {' '.join(str(e).split())[:200]}") from e
        try:
            return Path(path).read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as e:
            raise FetchError(f"{where}/{filename} is unreadable ({e})") from e


class FolderFetcher:
    """Cards from a folder laid out like the Hub, ``root/<namespace>/<name>/README.md`` (a mirror).

    Revisions are not kept in such a folder: every revision reads the one copy.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def read(self, repo_id: str, filename: str, revision: str | None) -> str | None:
        repo_dir = self.root / repo_id
        if not repo_dir.is_dir():
            raise FetchError(f"{repo_id} is not in {self.root}")
        path = repo_dir / filename
        if not path.is_file():
            return None
        try:
            return path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as e:
            raise FetchError(f"{path} is unreadable ({e})") from e
