"""Parent tensors read from the Hub one Range request each, when asked, in any order.

``RangeSource`` (range_reader.py) serves the engine: it reads every parent file once, front
to back, ahead of the merge, and checks each file's sha256. A streaming build's measured pass
wants a few tensors at a time in the model's layer order (layers 0, 1, 2, ... while the files
hold them sorted by name), so it reads each tensor by itself instead; what it computes from
them is checked against the sha256 of the tensors the build published (check/recompute.py).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

from publisher.errors import PublisherError, SourceError
from publisher.hub.range_reader import RemoteInput
from publisher.hub.ranged import RangeClient
from publisher.hub.remote import Retry, describe
from publisher.hub.remote_source import request_headers
from publisher.lazy import torch
from publisher.tensors import TensorInfo, TensorReader


class RangeReads:
    """Reads a tensor of a Hub parent by one Range request; one of a local file by pread."""

    def __init__(self, remote: dict[Path, RemoteInput], *, retry: Retry | None = None) -> None:
        self.remote = remote
        self.retry = retry or Retry()
        self.local = TensorReader()
        self.bytes_fetched = 0
        self._local = threading.local()  # a RangeClient per reading thread
        self._clients: list[RangeClient] = []
        self._lock = threading.Lock()

    def start(self, order: Sequence[TensorInfo]) -> None:
        """Nothing is read ahead: each read is its own request."""

    def read(self, info: TensorInfo) -> torch.Tensor:
        r = self.remote.get(info.path)
        if r is None:
            return self.local.read(info)
        buf = torch.empty(info.nbytes, dtype=torch.uint8)
        if info.nbytes:
            self._fetch(r, info.offset, info.nbytes, memoryview(buf.numpy()).cast("B"))  # type: ignore[arg-type]
            self.bytes_fetched += info.nbytes
        return buf.view(info.torch_dtype).reshape(info.shape)

    def _client(self) -> RangeClient:
        client: RangeClient | None = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = RangeClient()
            with self._lock:
                self._clients.append(client)
        return client

    def _fetch(self, r: RemoteInput, offset: int, nbytes: int, view: memoryview) -> None:
        client = self._client()
        url = r.parent.url(r.file.path)
        what = f"reading {r.parent.repo_id}/{r.file.path}@{r.parent.commit[:7]}"
        headers = request_headers(r.parent.token)
        try:
            self.retry.call(lambda: client.read_into(url, headers, offset, nbytes, [view]), what, r.parent.token)
        except PublisherError:
            raise
        except Exception as e:
            raise SourceError(f"{what} failed: {describe(e, r.parent.token)}", where=r.parent.repo_id, exit_code=1) from None

    def finish(self) -> dict[Path, str]:
        self.close()
        return {}

    def abort(self) -> None:
        self.close()

    def close(self) -> None:
        self.local.close()
        with self._lock:
            for client in self._clients:
                client.close()
