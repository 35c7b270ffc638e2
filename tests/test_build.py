"""`publisher plan` and `publisher build` on real stand-in parents: complete folders that
transformers loads, deterministic bytes, resumable after a kill, and bad input refused with a
one-line message, exit code 2 and nothing written."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from publisher.build import BuildOptions, build
from publisher.check.run import CheckOptions
from publisher.manifest import load_manifest
from publisher.tensors import ModelFiles, ShardWriter, sha256_file

SLERP = """\
name: test/slerp
version: 1.0.0
slices:
  - sources:
      - model: {a}
        layer_range: [0, 32]
      - model: {b}
        layer_range: [0, 32]
merge_method: slerp
base_model: {a}
parameters:
  t:
    - filter: self_attn
      value: [0, 0.5, 0.3, 0.7, 1]
    - filter: mlp
      value: [1, 0.5, 0.7, 0.3, 0]
    - value: 0.5
dtype: bfloat16
"""

LINEAR = """\
models:
  - model: {a}
    parameters: {weight: 0.3}
  - model: {b}
    parameters: {weight: 0.7}
merge_method: linear
dtype: bfloat16
"""

TASK_ARITHMETIC = """\
models:
  - model: {ft1}
    parameters: {weight: 0.6}
  - model: {ft2}
    parameters: {weight: 0.4}
merge_method: task_arithmetic
base_model: {base}
parameters:
  lambda: 0.9
dtype: bfloat16
"""

FRANKEN = """\
slices:
  - sources:
      - model: {a}
        layer_range: [0, 20]
  - sources:
      - model: {b}
        layer_range: [12, 32]
        parameters:
          scale:
            - filter: o_proj
              value: 0.5
            - value: 1.0
merge_method: passthrough
dtype: bfloat16
"""


def _safetensors(folder: Path) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for f in sorted(folder.glob("*.safetensors")):
        out.update(load_file(f))
    return out


def test_plan_prints_a_summary(cli: Callable[..., object], recipe_file: Callable[..., Path], family: dict[str, Path]) -> None:
    path = recipe_file(SLERP, a=family["a"], b=family["b"])
    res = cli("plan", path, "--json")
    assert res.code == 0, res.err
    summary = json.loads(res.out)
    assert summary["method"] == "slerp" and summary["layers"] == 32 and summary["tensors"] == 291
    assert summary["out_dtype"] == "BF16"
    groups = summary["parameter_groups"]
    assert groups["t=0"] == 7  # layer 0: q,k,v,o at t=0 plus embed/norm/lm_head (t evaluated at 0)
    assert sum(groups.values()) == 291
    parent = ModelFiles.open(family["a"])
    assert summary["output_bytes"] == sum(t.nbytes for t in parent.tensors.values())
    assert summary["parameters"] == parent.parameter_count
    human = cli("plan", path)
    assert human.code == 0 and "estimated peak memory" in human.out


def test_slerp_build_is_a_complete_model_folder(
    cli: Callable[..., object], recipe_file: Callable[..., Path], family: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    res = cli("build", recipe_file(SLERP, a=family["a"], b=family["b"]), "--out", out, "--quiet", "--max-shard-size", "60KB")
    assert res.code == 0, res.err
    names = sorted(p.name for p in out.iterdir())
    shards = [n for n in names if n.endswith(".safetensors")]
    assert len(shards) >= 3 and shards[0] == f"model-00001-of-{len(shards):05d}.safetensors"
    for required in ("config.json", "model.safetensors.index.json", "tokenizer.json", "tokenizer_config.json", "generation_config.json", "recipe.yaml", "manifest.json"):
        assert required in names
    assert not list(tmp_path.glob(".out.partial"))
    config = json.loads((out / "config.json").read_text())
    assert config["num_hidden_layers"] == 32 and config["dtype"] == "bfloat16"
    manifest = load_manifest(out)
    merged = manifest.variant("merged")
    for f in merged.files:
        assert sha256_file(out / f.path) == f.sha256, f.path
    assert {(i.ref, i.kind) for i in manifest.inputs} == {("a", "local"), ("b", "local")}  # names, not paths
    assert all(i.files and i.files[0].sha256 == sha256_file(family[i.ref] / i.files[0].path) for i in manifest.inputs)
    index = json.loads((out / "model.safetensors.index.json").read_text())
    assert set(index["weight_map"]) == set(_safetensors(out))
    # The slerp at t=0 (layer 0 self_attn) is exactly the base; at t=1 (layer 31 self_attn) exactly the other.
    a, b, m = _safetensors(family["a"]), _safetensors(family["b"]), _safetensors(out)
    assert torch.equal(m["model.layers.0.self_attn.q_proj.weight"], a["model.layers.0.self_attn.q_proj.weight"])
    assert torch.equal(m["model.layers.31.self_attn.q_proj.weight"], b["model.layers.31.self_attn.q_proj.weight"])
    assert torch.equal(m["model.layers.0.mlp.up_proj.weight"], b["model.layers.0.mlp.up_proj.weight"])
    mid = m["model.layers.15.input_layernorm.weight"].float()
    assert not torch.equal(mid, a["model.layers.15.input_layernorm.weight"].float())


def test_transformers_loads_the_merge_and_its_tokenizer(
    recipe_file: Callable[..., Path], family: dict[str, Path], tmp_path: Path
) -> None:
    transformers = pytest.importorskip("transformers")
    out = tmp_path / "out"
    build(recipe_file(SLERP, a=family["a"], b=family["b"]), out, BuildOptions(quiet=True))
    model = transformers.AutoModelForCausalLM.from_pretrained(out)
    tok = transformers.AutoTokenizer.from_pretrained(out)
    ids = tok("w5 w6 w7", return_tensors="pt")
    logits = model(**ids).logits
    assert logits.shape == (1, 3, 128) and torch.isfinite(logits).all()
    assert model.config.num_hidden_layers == 32
    assert "[INST]" in tok.apply_chat_template([{"role": "user", "content": "w5"}], tokenize=False)


def test_linear_and_task_arithmetic_values(recipe_file: Callable[..., Path], family: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "lin"
    build(recipe_file(LINEAR, a=family["a"], b=family["b"]), out, BuildOptions(quiet=True, check_options=CheckOptions(measure=False)))
    a, b, m = _safetensors(family["a"]), _safetensors(family["b"]), _safetensors(out)
    name = "model.layers.3.mlp.down_proj.weight"
    # mergekit 0.1.5: float32 weights, fused multiply-adds into a float32 buffer, / sum, cast back
    w = torch.tensor([0.3, 0.7], dtype=torch.float32)
    acc = torch.zeros(a[name].shape, dtype=torch.float32)
    acc.addcmul_(a[name], w[0]).addcmul_(b[name], w[1]).div_(w.sum())
    expected = acc.to(torch.bfloat16)
    assert torch.equal(m[name], expected)
    out2 = tmp_path / "ta"
    build(recipe_file(TASK_ARITHMETIC, ft1=family["ft1"], ft2=family["ft2"], base=family["base"], name="ta.yaml"), out2, BuildOptions(quiet=True, check_options=CheckOptions(measure=False)))
    base, f1, f2, m2 = (_safetensors(family[k]) for k in ("base",)), _safetensors(family["ft1"]), _safetensors(family["ft2"]), _safetensors(out2)
    base_t = next(base)[name].float()
    approx = base_t + 0.9 * (0.6 * (f1[name].float() - base_t) + 0.4 * (f2[name].float() - base_t))
    assert torch.allclose(m2[name].float(), approx, atol=2e-3)


def test_frankenmerge_changes_the_layer_count(recipe_file: Callable[..., Path], family: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "franken"
    build(recipe_file(FRANKEN, a=family["a"], b=family["b"]), out, BuildOptions(quiet=True, check_options=CheckOptions(measure=False)))
    config = json.loads((out / "config.json").read_text())
    assert config["num_hidden_layers"] == 40
    a, b, m = _safetensors(family["a"]), _safetensors(family["b"]), _safetensors(out)
    assert torch.equal(m["model.layers.19.mlp.up_proj.weight"], a["model.layers.19.mlp.up_proj.weight"])
    assert torch.equal(m["model.layers.20.mlp.up_proj.weight"], b["model.layers.12.mlp.up_proj.weight"])
    assert torch.equal(m["model.layers.39.self_attn.o_proj.weight"], b["model.layers.31.self_attn.o_proj.weight"] * 0.5)
    assert torch.equal(m["lm_head.weight"], b["lm_head.weight"])  # post weights come from the last slice
    assert torch.equal(m["model.embed_tokens.weight"], a["model.embed_tokens.weight"])


def test_output_is_identical_for_any_thread_count(recipe_file: Callable[..., Path], family: dict[str, Path], tmp_path: Path) -> None:
    recipe = recipe_file(TASK_ARITHMETIC, ft1=family["ft1"], ft2=family["ft2"], base=family["base"])
    hashes = []
    for threads in (1, 2, 4):
        out = tmp_path / f"t{threads}"
        build(recipe, out, BuildOptions(quiet=True, threads=threads, shard_bytes=50_000, memory_budget=20_000, check_options=CheckOptions(measure=False)))
        hashes.append({f.name: sha256_file(f) for f in out.glob("*.safetensors")})
    assert hashes[0] == hashes[1] == hashes[2]
    assert len(hashes[0]) > 2


def test_interrupted_build_resumes_to_identical_bytes(
    recipe_file: Callable[..., Path], family: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recipe = recipe_file(SLERP, a=family["a"], b=family["b"])
    options = BuildOptions(quiet=True, shard_bytes=30_000, check_options=CheckOptions(measure=False))
    reference = tmp_path / "ref"
    build(recipe, reference, options)
    out = tmp_path / "out"
    real_close = ShardWriter.close
    calls = {"n": 0}

    def flaky_close(self: ShardWriter, *, fsync: bool = True) -> object:
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return real_close(self, fsync=fsync)

    monkeypatch.setattr(ShardWriter, "close", flaky_close)
    with pytest.raises(KeyboardInterrupt):
        build(recipe, out, options)
    monkeypatch.setattr(ShardWriter, "close", real_close)
    partial = tmp_path / ".out.partial"
    assert not out.exists() and partial.is_dir()
    progress = json.loads((partial / "progress.json").read_text())
    assert len(progress["shards"]) == 3
    assert not list(partial.glob("*.partial"))  # the interrupted shard's temp file was removed
    before = _shard_identities(partial)
    assert len(before) == 3
    build(recipe, out, options)
    assert not partial.exists()
    after = _shard_identities(out)
    assert {name: after[name] for name in before} == before  # the whole shards were not rewritten
    for f in reference.glob("*.safetensors"):
        assert sha256_file(out / f.name) == sha256_file(f)
    # and the resumed run skipped the whole shards: their files were not rewritten
    assert load_manifest(out).variant("merged").files == load_manifest(reference).variant("merged").files


# A child that runs the real CLI and SIGKILLs itself right after its second whole shard is
# recorded: the kill lands mid-build on every machine, however fast.
_KILL_AFTER_TWO_SHARDS = """
import os, signal, sys
from publisher.merge import engine
saved = engine.Engine._save_progress
def save_then_die(self, done):
    saved(self, done)
    if len(done) >= 2:
        os.kill(os.getpid(), signal.SIGKILL)
engine.Engine._save_progress = save_then_die
from publisher.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _shard_identities(folder: Path) -> dict[str, tuple[int, int]]:
    """(inode, mtime in ns) per shard: equal after a resume only if the file was not rewritten."""
    return {f.name: (f.stat().st_ino, f.stat().st_mtime_ns) for f in folder.glob("model-*.safetensors")}


def test_killed_process_resumes(recipe_file: Callable[..., Path], tmp_path: Path) -> None:
    """A real SIGKILL mid-build; the rerun keeps the finished shards and writes only the rest."""
    from dataclasses import replace

    from publisher.standins import TINY, Recipe, generate_model, with_layers

    shape = replace(with_layers(TINY, 32), hidden=128, intermediate=512, heads=4, kv_heads=2)
    a = generate_model(tmp_path / "pa", shape, recipe=Recipe(seed=11))
    b = generate_model(tmp_path / "pb", shape, recipe=Recipe(seed=12))
    recipe = recipe_file(SLERP, a=a, b=b)
    out = tmp_path / "out"
    cli_args = ["build", str(recipe), "--out", str(out), "--quiet", "--max-shard-size", "400KB", "--threads", "1",
                "--no-measure"]  # resuming is what is tested, not the measured pass
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    killed = subprocess.run([sys.executable, "-c", _KILL_AFTER_TWO_SHARDS, *cli_args], env=env,
                            capture_output=True, text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert not out.exists()
    partial = tmp_path / ".out.partial"
    progress = json.loads((partial / "progress.json").read_text())
    assert len(progress["shards"]) == 2
    before = _shard_identities(partial)
    assert sorted(before) == sorted(progress["shards"])

    res = subprocess.run([sys.executable, "-m", "publisher.cli", *cli_args], env=env,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    after = _shard_identities(out)
    assert len(after) > len(before)  # the kill left work to do
    assert {name: after[name] for name in before} == before  # finished shards were kept, not rewritten
    reference = tmp_path / "ref"
    build(recipe, reference, BuildOptions(quiet=True, shard_bytes=400_000, check_options=CheckOptions(measure=False)))
    assert sorted(f.name for f in reference.glob("*.safetensors")) == sorted(after)
    for f in reference.glob("*.safetensors"):
        assert sha256_file(out / f.name) == sha256_file(f)


def test_existing_output_is_refused_unless_it_is_this_build(
    cli: Callable[..., object], recipe_file: Callable[..., Path], family: dict[str, Path], tmp_path: Path
) -> None:
    recipe = recipe_file(SLERP, a=family["a"], b=family["b"])
    out = tmp_path / "out"
    assert cli("build", recipe, "--out", out, "--quiet").code == 0
    again = cli("build", recipe, "--out", out, "--quiet")
    assert again.code == 0 and "nothing to do" in again.out
    other = tmp_path / "other"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    res = cli("build", recipe, "--out", other, "--quiet")
    assert res.code == 2 and "already exists" in res.err
    assert sorted(p.name for p in other.iterdir()) == ["keep.txt"]


def _assert_refused(res: object, *needles: str) -> None:
    assert res.code == 2, (res.code, res.err)  # type: ignore[attr-defined]
    err = res.err.strip()  # type: ignore[attr-defined]
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    for n in needles:
        assert n in err, err


@pytest.fixture
def odd_parents(tmp_path: Path, family: dict[str, Path]) -> dict[str, Path]:
    """Broken variants of a stand-in: a different shape, a missing tensor, NaNs, pickle, truncation."""
    import shutil

    out = {}
    tensors = load_file(family["b"] / "model.safetensors")
    for kind in ("shape", "missing", "nan", "pickle", "truncated"):
        folder = tmp_path / kind
        shutil.copytree(family["b"], folder)
        (folder / "model.safetensors").unlink()
        t = dict(tensors)
        if kind == "shape":
            t["model.layers.7.mlp.up_proj.weight"] = torch.zeros(31, 16, dtype=torch.bfloat16)
        elif kind == "missing":
            del t["model.layers.9.self_attn.v_proj.weight"]
        elif kind == "nan":
            x = t["model.layers.2.mlp.gate_proj.weight"].clone()
            x[0, 0] = float("inf")
            t["model.layers.2.mlp.gate_proj.weight"] = x
        if kind == "pickle":
            (folder / "pytorch_model.bin").write_bytes(b"\x80\x04fake")
        else:
            save_file(t, folder / "model.safetensors", metadata={"format": "pt"})
        if kind == "truncated":
            with (folder / "model.safetensors").open("r+b") as f:
                f.truncate((folder / "model.safetensors").stat().st_size - 1000)
        out[kind] = folder
    return out


@pytest.mark.parametrize(
    ("kind", "needles"),
    [
        ("shape", ("model.layers.7.mlp.up_proj.weight", "[32, 16]", "[31, 16]")),
        ("missing", ("model.layers.9.self_attn.v_proj.weight", "missing")),
        ("nan", ("model.layers.2.mlp.gate_proj.weight", "NaN/Inf")),
        ("pickle", ("never unpickles",)),
        ("truncated", ("truncated",)),
    ],
)
def test_bad_parents_are_refused_and_nothing_is_written(
    cli: Callable[..., object],
    recipe_file: Callable[..., Path],
    family: dict[str, Path],
    odd_parents: dict[str, Path],
    tmp_path: Path,
    kind: str,
    needles: tuple[str, ...],
) -> None:
    recipe = recipe_file(SLERP.replace("value: 0.5", "value: 0.5\n    - filter: gate\n      value: 0.5"), a=family["a"], b=odd_parents[kind])
    out = tmp_path / "out"
    res = cli("build", recipe, "--out", out, "--quiet")
    _assert_refused(res, *needles)
    assert not out.exists()


def test_layer_range_beyond_the_model(cli: Callable[..., object], recipe_file: Callable[..., Path], family: dict[str, Path], tmp_path: Path) -> None:
    recipe = recipe_file(FRANKEN.replace("[12, 32]", "[20, 40]"), a=family["a"], b=family["b"])
    res = cli("build", recipe, "--out", tmp_path / "out", "--quiet")
    _assert_refused(res, "layer_range [20, 40] goes beyond", "32 layers", "recipe.yaml:7")


def test_not_enough_disk_is_checked_before_starting(
    cli: Callable[..., object], recipe_file: Callable[..., Path], family: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr("publisher.build.shutil.disk_usage", lambda p: usage(10**9, 10**9 - 1000, 1000))
    res = cli("build", recipe_file(SLERP, a=family["a"], b=family["b"]), "--out", tmp_path / "out", "--quiet")
    _assert_refused(res, "not enough free disk")
    assert not (tmp_path / ".out.partial").exists()
    del shutil


def test_partial_folder_of_another_recipe_is_refused(
    cli: Callable[..., object], recipe_file: Callable[..., Path], family: dict[str, Path], tmp_path: Path
) -> None:
    partial = tmp_path / ".out.partial"
    partial.mkdir()
    (partial / "progress.json").write_text(json.dumps({"fingerprint": "something else", "shards": {}}))
    res = cli("build", recipe_file(SLERP, a=family["a"], b=family["b"]), "--out", tmp_path / "out", "--quiet")
    _assert_refused(res, "half-finished build of a different recipe")


def test_unknown_parent_reference(cli: Callable[..., object], recipe_file: Callable[..., Path], family: dict[str, Path], tmp_path: Path) -> None:
    res = cli("build", recipe_file(SLERP, a=family["a"], b="not a model!"), "--out", tmp_path / "out", "--quiet")
    _assert_refused(res, "neither an existing folder nor a Hub repo id")


def test_plan_reads_headers_only_and_never_imports_torch(recipe_file: Callable[..., Path], family: dict[str, Path]) -> None:
    """`publisher plan` of a 7B recipe takes ~0.5 s because it needs neither weights nor torch
    (importing torch alone costs ~1 s); this guards that."""
    recipe = recipe_file(SLERP, a=family["a"], b=family["b"])
    code = (
        "import sys; from publisher.cli import main; "
        f"rc = main(['plan', {str(recipe)!r}, '--json']); "
        "assert 'torch' not in sys.modules, 'plan imported torch'; sys.exit(rc)"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["tensors"] == 291
