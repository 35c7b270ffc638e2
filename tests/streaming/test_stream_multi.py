"""``publisher build --publish`` of a mergekit-multi file on the local Hub: the stages are built
in full (the documents after them read their weights), a stage named with a repo id is
published first, and the final merge streams; the repos hold the same bytes as ``build`` then
``publish`` of the same file."""

from __future__ import annotations

from pathlib import Path

from huggingface_hub import HfApi

from tests.multi_texts import fill, staged
from tests.streaming.conftest import Parents
from tests.streaming.kit import cli

SHARD = 400_000
HUB_PARENTS = {"a": "acme/base-a", "b": "acme/base-b", "base": "acme/base-b"}


def _env(parents: Parents, home: Path) -> dict[str, str]:
    (home / "tmp").mkdir(parents=True, exist_ok=True)
    return {"HF_ENDPOINT": parents.url, "HF_TOKEN": parents.token, "HF_HOME": str(home / "hf-home"),
            "PUBLISHER_CACHE": str(home / "pcache"), "TMPDIR": str(home / "tmp")}


def _files(api: HfApi, repo_id: str, tag: str) -> dict[str, str]:
    """path → sha256 (LFS) or git blob id, at the tag."""
    return {f.path: (f.lfs.sha256 if f.lfs else f.blob_id) for f in api.list_repo_tree(repo_id, revision=tag, recursive=True)
            if hasattr(f, "lfs")}


def test_streamed_multi_document_build_publishes_the_same_bytes(parents: Parents, tmp_path: Path) -> None:
    api = parents.api()
    plain, streamed = tmp_path / "plain.yaml", tmp_path / "streamed.yaml"
    plain.write_text(fill(staged("acme/plain-stage", "alice/plain-final", layers=4), HUB_PARENTS))
    streamed.write_text(fill(staged("acme/streamed-stage", "alice/streamed-final", layers=4), HUB_PARENTS))

    env = _env(parents, tmp_path / "plain-home")
    done = cli("build", str(plain), "--out", str(tmp_path / "plain"), "--max-shard-size", str(SHARD), "--quiet", env=env)
    assert done.returncode == 0, done.stderr
    done = cli("publish", str(tmp_path / "plain"), env=env)
    assert done.returncode == 0, done.stderr

    client = tmp_path / "client"
    done = cli("build", str(streamed), "--out", str(client / "out"), "--max-shard-size", str(SHARD), "--quiet", "--publish",
               env=_env(parents, client))
    assert done.returncode == 0, done.stderr

    for kind in ("stage", "final"):
        owner = "acme" if kind == "stage" else "alice"
        a, b = _files(api, f"{owner}/plain-{kind}", "v1.0.0"), _files(api, f"{owner}/streamed-{kind}", "v1.0.0")
        weights = {p for p in a if p.endswith(".safetensors")}
        assert weights and {p for p in b if p.endswith(".safetensors")} == weights, kind
        for p in (*weights, "config.json", "tokenizer.json"):
            assert a[p] == b[p], (kind, p)
        assert [c.title for c in api.list_repo_commits(f"{owner}/streamed-{kind}")] == ["Publish v1.0.0", "initial commit"]
    # the final merge was streamed: its folder keeps header-only stubs; the stage's weights are whole
    stubs = [p for p in (client / "out").glob("*.safetensors")]
    assert stubs and all(p.stat().st_blocks * 512 <= 64 << 10 for p in stubs)
    stage = client / "out.stages" / "acme--streamed-stage"
    assert sum(p.stat().st_size for p in stage.glob("*.safetensors")) > 64 << 10
    # the final names the stage at the commit it got
    commit = api.list_repo_refs("acme/streamed-stage").tags[0].target_commit
    card = Path(api.hf_hub_download("alice/streamed-final", "README.md", revision="v1.0.0", cache_dir=tmp_path / "c")).read_text()
    assert f"model: acme/streamed-stage@{commit}" in card

    again = cli("build", str(streamed), "--out", str(client / "out"), "--max-shard-size", str(SHARD), "--quiet", "--publish",
                env=_env(parents, client))
    assert again.returncode == 0, again.stderr
    assert [c.title for c in api.list_repo_commits("alice/streamed-final")] == ["Publish v1.0.0", "initial commit"]
