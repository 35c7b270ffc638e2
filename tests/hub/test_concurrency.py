"""Two publishers racing on one repo: one version wins; the other finds it or reports a conflict."""

from __future__ import annotations

import threading
from pathlib import Path

from huggingface_hub import snapshot_download

from publisher.errors import PublishError
from publisher.hub.publish import PublishReport, publish
from tests.hub.helpers import FAST_RETRY, Hub, build_files, make_build, snapshot_files

REPO = "alice/tiny-merge"


def _race(hub: Hub, builds: list[Path]) -> list[PublishReport | Exception]:
    """Both publishers plan, then meet at the commit, so both commit on the same parent."""
    barrier = threading.Barrier(len(builds), timeout=30)
    results: list[PublishReport | Exception] = [RuntimeError("not run")] * len(builds)

    def log(msg: str) -> None:
        if "committing" in msg:
            barrier.wait()

    def run(i: int) -> None:
        try:
            results[i] = publish(builds[i], endpoint=hub.url, token=hub.token, retry=FAST_RETRY, log=log)
        except Exception as e:
            results[i] = e

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(builds))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return results


def test_two_publishers_same_build(hub: Hub, tmp_path: Path) -> None:
    build = make_build(tmp_path / "b", variants=False)
    results = _race(hub, [build, build])
    assert all(isinstance(r, PublishReport) for r in results), results
    actions = sorted(r.results[0].action for r in results)  # type: ignore[union-attr]
    assert actions[0] in ("published", "tagged", "up to date")
    titles = [c.title for c in hub.api().list_repo_commits(REPO)]
    assert titles == ["Publish v1.0.0", "initial commit"]
    path = snapshot_download(REPO, revision="v1.0.0", endpoint=hub.url, token=hub.token, cache_dir=tmp_path / "c")
    assert snapshot_files(Path(path)) == build_files(build)


def test_two_publishers_same_version_different_files(hub: Hub, tmp_path: Path) -> None:
    a = make_build(tmp_path / "a", seed=1, variants=False)
    b = make_build(tmp_path / "b", seed=2, variants=False)
    results = _race(hub, [a, b])
    errors = [r for r in results if isinstance(r, Exception)]
    assert len(errors) == 1 and isinstance(errors[0], PublishError), results
    assert "v1.0.0" in str(errors[0]) and "bump" in str(errors[0])
    winner = a if isinstance(results[0], PublishReport) else b
    path = snapshot_download(REPO, revision="v1.0.0", endpoint=hub.url, token=hub.token, cache_dir=tmp_path / "c")
    assert snapshot_files(Path(path)) == build_files(winner)
    titles = [c.title for c in hub.api().list_repo_commits(REPO)]
    assert titles == ["Publish v1.0.0", "initial commit"]  # the loser committed nothing


def test_stale_parent_is_rechecked_and_retried(hub: Hub, tmp_path: Path) -> None:
    build = make_build(tmp_path / "b", variants=False)
    publish(build, endpoint=hub.url, token=hub.token)
    v2 = make_build(tmp_path / "v2", version="1.1.0", seed=3, variants=False)
    api = hub.api()
    moved = threading.Event()

    def log(msg: str) -> None:
        if "committing" in msg and not moved.is_set():
            moved.set()  # someone edits the repo between our plan and our commit
            api.upload_file(path_or_fileobj=b"note", path_in_repo="NOTES.txt", repo_id=REPO)

    report = publish(v2, endpoint=hub.url, token=hub.token, retry=FAST_RETRY, log=log)
    assert report.results[0].action == "published"
    titles = [c.title for c in api.list_repo_commits(REPO)]
    assert titles[:2] == ["Publish v1.1.0", "Upload NOTES.txt with huggingface_hub"]
    path = snapshot_download(REPO, revision="v1.1.0", endpoint=hub.url, token=hub.token, cache_dir=tmp_path / "c")
    assert snapshot_files(Path(path)) == build_files(v2)  # the version is exactly the build
