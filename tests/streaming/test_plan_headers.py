"""``publisher plan`` over Hub parents reads configs, tokenizer, card and safetensors headers only."""

from __future__ import annotations

import json
import struct
from pathlib import Path

from tests.streaming.conftest import Parents
from tests.streaming.kit import cli, recipe_text


def _header_bytes(path: Path) -> int:
    with path.open("rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
    return 8 + n


def test_plan_sends_headers_only_and_pins(parents: Parents, tmp_path: Path) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text(recipe_text("acme/base-a", "acme/base-b"))
    hf_home, tmp = tmp_path / "hf-home", tmp_path / "tmp"
    tmp.mkdir()
    env = {"HF_ENDPOINT": parents.url, "HF_TOKEN": parents.token, "HF_HOME": str(hf_home), "TMPDIR": str(tmp),
           "HF_HUB_OFFLINE": "1"}  # the project's setting: a loopback Hub stays reachable
    parents.server.app.sent.clear()
    done = cli("plan", str(recipe), "--json", env=env)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["pinned"] == {repo: parents.commits[repo] for repo in ("acme/base-a", "acme/base-b")}

    # The same plan as from the folders themselves (same headers, same config).
    local = tmp_path / "local.yaml"
    local.write_text(recipe_text(str(parents.folders["acme/base-a"]), str(parents.folders["acme/base-b"])))
    from_folders = json.loads(cli("plan", str(local), "--json", env=env).stdout)
    for key in ("tensors", "parameters", "layers", "output_bytes", "disk_bytes", "parameter_groups", "variants"):
        assert summary[key] == from_folders[key], key

    # What the server sent for each safetensors file: exactly its header, nothing of the tensors.
    sent = parents.server.app.sent
    shards = 0
    for repo, folder in parents.folders.items():
        for shard in sorted(folder.glob("*.safetensors")):
            path = f"/{repo}/resolve/{parents.commits[repo]}/{shard.name}"
            assert sent[path] == _header_bytes(shard), (path, sent[path])
            assert shard.stat().st_size > 4 * _header_bytes(shard)
            shards += 1
    assert shards >= 4
    weights = sum(n for p, n in sent.items() if p.endswith(".safetensors"))
    assert weights == sum(_header_bytes(s) for f in parents.folders.values() for s in f.glob("*.safetensors"))
    assert any(p.endswith("/tokenizer.json") for p in sent) and any(p.endswith("/config.json") for p in sent)

    # Nothing of the weights in the Hugging Face cache, and no copy left behind.
    cached = [p for p in hf_home.rglob("*") if p.is_file()] if hf_home.exists() else []
    assert not [p for p in cached if p.suffix == ".safetensors" or p.stat().st_size > 64 << 10], cached
    assert not list(tmp.iterdir())


def test_plan_pins_a_tag_to_its_commit(parents: Parents, tmp_path: Path) -> None:
    api = parents.api()
    api.create_tag("acme/base-b", tag="v1", revision=parents.commits["acme/base-b"])
    api.upload_file(path_or_fileobj=b"{}\n", path_in_repo="extra.json", repo_id="acme/base-b")  # main moves on
    recipe = tmp_path / "r.yaml"
    recipe.write_text(recipe_text("acme/base-a", "acme/base-b@v1"))
    done = cli("plan", str(recipe), "--json", env={"HF_ENDPOINT": parents.url, "HF_TOKEN": parents.token,
                                                   "HF_HOME": str(tmp_path / "hf")})
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["pinned"]["acme/base-b@v1"] == parents.commits["acme/base-b"]


def test_plan_of_a_missing_repo_is_one_line(parents: Parents, tmp_path: Path) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text(recipe_text("acme/base-a", "acme/nope"))
    done = cli("plan", str(recipe), env={"HF_ENDPOINT": parents.url, "HF_TOKEN": parents.token,
                                         "HF_HOME": str(tmp_path / "hf")})
    assert done.returncode == 2
    assert "does not exist" in done.stderr and "no repo acme/nope at" in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_a_pickle_only_hub_parent_is_refused_in_one_line(parents: Parents, tmp_path: Path) -> None:
    api = parents.api()
    api.create_repo("acme/pickled")
    api.upload_file(path_or_fileobj=b"\x80\x04not really a pickle", path_in_repo="pytorch_model.bin", repo_id="acme/pickled")
    api.upload_file(path_or_fileobj=b"{}\n", path_in_repo="config.json", repo_id="acme/pickled")
    recipe = tmp_path / "r.yaml"
    recipe.write_text(recipe_text("acme/base-a", "acme/pickled"))
    env = {"HF_ENDPOINT": parents.url, "HF_TOKEN": parents.token, "HF_HOME": str(tmp_path / "hf")}
    for command in ("plan", "build"):
        args = (command, str(recipe)) if command == "plan" else (command, str(recipe), "--out", str(tmp_path / "out"))
        done = cli(*args, env=env)
        assert done.returncode == 2, done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and "acme/pickled has only pickle checkpoints (pytorch_model.bin)" in lines[0], done.stderr
        assert "never unpickles" in lines[0] and "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()
