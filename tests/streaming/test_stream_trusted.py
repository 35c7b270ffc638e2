"""A streaming build and publish (shards uploaded as written) by trusted publishing: no HF_TOKEN."""

from __future__ import annotations

from pathlib import Path

from tests.hub.test_trusted import CLAIMS, ISSUER, Provider, _key, _pem
from tests.streaming.conftest import Parents
from tests.streaming.kit import cli, recipe_text


def test_streamed_release_without_hf_token(parents: Parents, tmp_path: Path) -> None:
    provider = Provider(_key())
    try:
        api = parents.api()
        pem = tmp_path / "issuer.pem"
        pem.write_text(_pem(provider.key))
        for repo in ("alice/streamed", "alice/streamed-FP8"):
            api.create_repo(repo)
            made = cli("hub", "trust", repo, "--issuer", ISSUER, "--public-key", str(pem),
                       *[f"--claim={k}={v}" for k, v in CLAIMS.items()], "--root", str(parents.server.root), env={})
            assert made.returncode == 0, made.stderr
        recipe = tmp_path / "streamed.yaml"
        recipe.write_text(recipe_text("acme/base-a", "acme/base-b", name="alice/streamed"))
        tmp = tmp_path / "tmp"
        tmp.mkdir()
        env = {"HF_ENDPOINT": parents.url, "HF_TOKEN": "", "HF_HOME": str(tmp_path / "no-login"),
               "PUBLISHER_CACHE": str(tmp_path / "pcache"), "TMPDIR": str(tmp), **provider.env()}
        done = cli("build", str(recipe), "--out", str(tmp_path / "out"), "--max-shard-size", "400000", "--quiet",
                   "--publish", env=env)
        assert done.returncode == 0, done.stderr
        for repo in ("alice/streamed", "alice/streamed-FP8"):
            commits = api.list_repo_commits(repo)
            assert commits[0].authors == ["[OIDC]"] and commits[0].title == "Publish v1.0.0"
            assert [t.name for t in api.list_repo_refs(repo).tags] == ["v1.0.0"]
            assert any(f.endswith(".safetensors") for f in api.list_repo_files(repo))
    finally:
        provider.server.shutdown()
        provider.server.server_close()
