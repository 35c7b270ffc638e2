"""The mergekit agreement cases: one mergekit config per case, over the tiny stand-in family.

Model paths are placeholders (``FAMILY_BF16/base``, ``FAMILY_F32/ft1``) that both the
regenerate script and the agreement test replace with the locally generated family.
Random methods (DARE, DELLA) are absent: mergekit draws their masks from a global RNG in
execution order, so its bytes are no target (issue 3, "Agreement").
"""

from __future__ import annotations

from typing import Any

BF16 = "FAMILY_BF16"
F32 = "FAMILY_F32"
# Few-layer, 7B-band-sized parents (publisher.standins.WIDE), sharded like real checkpoints
# (three files, layer 0 split across two): their cases keep per-tensor sha256 digests of
# mergekit's output instead of its ~55 MB of weights.
WIDE = "FAMILY_WIDE"
VOCAB = "FAMILY_VOCAB"  # stand-ins with another vocabulary (publisher.standins_vocab)
LORA = "FAMILY_LORA"  # PEFT adapters for the tiny family (publisher.standins_lora)

# The widespread LazyMergekit slerp setting (issue 2, "Recipes for the seed models").
LAZY_T: list[dict[str, Any]] = [
    {"filter": "self_attn", "value": [0, 0.5, 0.3, 0.7, 1]},
    {"filter": "mlp", "value": [1, 0.5, 0.7, 0.3, 0]},
    {"value": 0.5},
]


def _m(fam: str, name: str, **params: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"model": f"{fam}/{name}"}
    if params:
        out["parameters"] = params
    return out


def _fts(fam: str, *params: dict[str, Any]) -> list[dict[str, Any]]:
    return [_m(fam, f"ft{i + 1}", **p) for i, p in enumerate(params)]


def _slerp_slices(fam: str, a: str, b: str) -> list[dict[str, Any]]:
    return [
        {
            "sources": [
                {"model": f"{fam}/{a}", "layer_range": [0, 32]},
                {"model": f"{fam}/{b}", "layer_range": [0, 32]},
            ]
        }
    ]


def _wide_slices(a: str, b: str) -> list[dict[str, Any]]:
    return [{"sources": [{"model": f"{WIDE}/{a}", "layer_range": [0, 2]}, {"model": f"{WIDE}/{b}", "layer_range": [0, 2]}]}]


# Every method that works in row bands (linear, the task-arithmetic family) or chunks (slerp),
# past those thresholds.
WIDE_CASES: dict[str, dict[str, Any]] = {
    "wide_linear": {
        "merge_method": "linear",
        "models": [_m(WIDE, "a", weight=0.3), _m(WIDE, "b", weight=0.7)],
        "dtype": "bfloat16",
    },
    "wide_slerp": {
        "merge_method": "slerp",
        "slices": _wide_slices("a", "b"),
        "base_model": f"{WIDE}/a",
        "parameters": {"t": LAZY_T},
        "dtype": "bfloat16",
    },
    "wide_task_arithmetic": {
        "merge_method": "task_arithmetic",
        "base_model": f"{WIDE}/base",
        "models": _fts(WIDE, {"weight": 0.7}, {"weight": 0.4}),
        "dtype": "bfloat16",
    },
    "wide_ties": {
        "merge_method": "ties",
        "base_model": f"{WIDE}/base",
        "models": _fts(WIDE, {"weight": 0.6, "density": 0.5}, {"weight": 0.5, "density": 0.7}),
        "parameters": {"normalize": True},
        "dtype": "bfloat16",
    },
    # density 1 keeps every element, so mergekit's global-RNG masks are no obstacle: this checks
    # DARE's banded path (and its TIES sign election) at full size.
    "wide_dare_ties_dense": {
        "merge_method": "dare_ties",
        "base_model": f"{WIDE}/base",
        "models": _fts(WIDE, {"weight": 0.6, "density": 1.0}, {"weight": 0.5, "density": 1.0}),
        "parameters": {"rescale": False},
        "dtype": "bfloat16",
    },
    "wide_breadcrumbs_ties": {
        "merge_method": "breadcrumbs_ties",
        "base_model": f"{WIDE}/base",
        "models": _fts(WIDE, {"weight": 0.6, "density": 0.8, "gamma": 0.05}, {"weight": 0.5, "density": 0.7, "gamma": 0.02}),
        "dtype": "bfloat16",
    },
}


CASES: dict[str, dict[str, Any]] = {
    # --- linear ---------------------------------------------------------------
    "linear_scalar": {
        "merge_method": "linear",
        "models": [_m(BF16, "a", weight=0.3), _m(BF16, "b", weight=0.7)],
        "dtype": "bfloat16",
    },
    "linear_gradient_filtered": {
        "merge_method": "linear",
        "models": [
            _m(BF16, "ft1", weight=[{"filter": "mlp", "value": [1, 0.2]}, {"value": 0.5}]),
            _m(BF16, "ft2", weight=[0.2, 0.9, 0.4]),
            _m(BF16, "ft3", weight=0.25),
        ],
        "parameters": {"normalize": False},
        "dtype": "bfloat16",
    },
    "linear_f32_out_bf16": {
        "merge_method": "linear",
        "models": [_m(F32, "a", weight=1.0), _m(F32, "b", weight=2.0), _m(F32, "ft1", weight=0.5)],
        "dtype": "float32",
        "out_dtype": "bfloat16",
    },
    "linear_f32": {
        "merge_method": "linear",
        "models": [_m(F32, "a", weight=[0.1, 0.9]), _m(F32, "b", weight=0.6)],
        "dtype": "float32",
    },
    # --- slerp ----------------------------------------------------------------
    "slerp_scalar": {
        "merge_method": "slerp",
        "slices": _slerp_slices(BF16, "a", "b"),
        "base_model": f"{BF16}/a",
        "parameters": {"t": 0.3},
        "dtype": "bfloat16",
    },
    "slerp_lazymergekit": {
        "merge_method": "slerp",
        "slices": _slerp_slices(BF16, "a", "b"),
        "base_model": f"{BF16}/a",
        "parameters": {"t": LAZY_T},
        "dtype": "bfloat16",
    },
    "slerp_family_bf16": {
        "merge_method": "slerp",
        "slices": _slerp_slices(BF16, "base", "ft1"),
        "base_model": f"{BF16}/base",
        "parameters": {"t": LAZY_T},
        "dtype": "bfloat16",
    },
    "slerp_f32": {
        "merge_method": "slerp",
        "slices": _slerp_slices(F32, "a", "b"),
        "base_model": f"{F32}/a",
        "parameters": {"t": LAZY_T},
        "dtype": "float32",
    },
    "slerp_f32_family": {
        "merge_method": "slerp",
        "slices": _slerp_slices(F32, "base", "ft2"),
        "base_model": f"{F32}/base",
        "parameters": {"t": [0.1, 0.8, 0.4]},
        "dtype": "float32",
    },
    # --- task arithmetic --------------------------------------------------------
    "task_arithmetic_scalar": {
        "merge_method": "task_arithmetic",
        "base_model": f"{BF16}/base",
        "models": _fts(BF16, {"weight": 0.5}, {"weight": 0.3}, {"weight": -0.2}),
        "dtype": "bfloat16",
    },
    "task_arithmetic_gradient_normalize_lambda": {
        "merge_method": "task_arithmetic",
        "base_model": f"{BF16}/base",
        "models": [_m(BF16, "base"), *_fts(BF16, {"weight": [{"filter": "self_attn", "value": [0.2, 1.0]}, {"value": 0.7}]}, {"weight": 0.4})],
        "parameters": {"normalize": True, "lambda": 1.3},
        "dtype": "bfloat16",
    },
    "task_arithmetic_f32": {
        "merge_method": "task_arithmetic",
        "base_model": f"{F32}/base",
        "models": _fts(F32, {"weight": [0.3, 0.9]}, {"weight": 0.6}),
        "dtype": "float32",
    },
    # --- passthrough / frankenmerge ---------------------------------------------
    "passthrough_frankenmerge": {
        "merge_method": "passthrough",
        "slices": [
            {"sources": [{"model": f"{BF16}/a", "layer_range": [0, 20]}]},
            {
                "sources": [{"model": f"{BF16}/b", "layer_range": [12, 32]}],
                "parameters": {"scale": [{"filter": "o_proj", "value": 0.5}, {"filter": "down_proj", "value": 0.5}, {"value": 1.0}]},
            },
        ],
        "dtype": "bfloat16",
    },
    "passthrough_slices_f32": {
        "merge_method": "passthrough",
        "slices": [
            {"sources": [{"model": f"{F32}/a", "layer_range": [0, 8]}]},
            {"sources": [{"model": f"{F32}/b", "layer_range": [4, 10]}]},
            {"sources": [{"model": f"{F32}/a", "layer_range": [28, 32]}]},
        ],
        "dtype": "float32",
    },
    # --- TIES / breadcrumbs -------------------------------------------------------
    "ties_scalar": {
        "merge_method": "ties",
        "base_model": f"{BF16}/base",
        "models": _fts(BF16, {"weight": 0.5, "density": 0.5}, {"weight": 0.5, "density": 0.5}, {"weight": 0.3, "density": 0.7}),
        "dtype": "bfloat16",
    },
    "ties_gradient_int8_nonorm": {
        "merge_method": "ties",
        "base_model": f"{BF16}/base",
        "models": _fts(
            BF16,
            {"weight": [0.2, 0.8], "density": [{"filter": "mlp", "value": 0.3}, {"value": 0.6}]},
            {"weight": 0.5, "density": [0.9, 0.2]},
        ),
        "parameters": {"normalize": False, "int8_mask": True, "lambda": 0.9},
        "dtype": "bfloat16",
    },
    "ties_f32": {
        "merge_method": "ties",
        "base_model": f"{F32}/base",
        "models": _fts(F32, {"weight": 0.6, "density": 0.4}, {"weight": 0.4, "density": [0.3, 0.8]}, {"weight": 0.5, "density": 0.5}),
        "dtype": "float32",
    },
    "breadcrumbs": {
        "merge_method": "breadcrumbs",
        "base_model": f"{BF16}/base",
        "models": _fts(BF16, {"weight": 0.5, "density": 0.8, "gamma": 0.05}, {"weight": 0.5, "density": [0.9, 0.6], "gamma": 0.02}),
        "dtype": "bfloat16",
    },
    "breadcrumbs_ties_f32": {
        "merge_method": "breadcrumbs_ties",
        "base_model": f"{F32}/base",
        "models": _fts(F32, {"weight": 0.7, "density": 0.7}, {"weight": 0.4, "density": 0.8, "gamma": 0.1}, {"weight": 0.3, "density": 0.9}),
        "parameters": {"normalize": True, "rescale": True},
        "dtype": "float32",
    },
    "breadcrumbs_ties": {
        "merge_method": "breadcrumbs_ties",
        "base_model": f"{BF16}/base",
        "models": _fts(BF16, {"weight": 0.7, "density": 0.7}, {"weight": 0.4, "density": 0.8, "gamma": 0.1}),
        "dtype": "bfloat16",
    },
    # --- model stock --------------------------------------------------------------
    "model_stock": {
        "merge_method": "model_stock",
        "base_model": f"{BF16}/base",
        "models": _fts(BF16, {}, {}, {}),
        "dtype": "bfloat16",
    },
    "model_stock_filter_wise_f32": {
        "merge_method": "model_stock",
        "base_model": f"{F32}/base",
        "models": _fts(F32, {}, {}),
        "parameters": {"filter_wise": True},
        "dtype": "float32",
    },
    # --- nuslerp --------------------------------------------------------------------
    "nuslerp_no_base": {
        "merge_method": "nuslerp",
        "models": [_m(BF16, "a", weight=0.3), _m(BF16, "b", weight=[{"filter": "mlp", "value": [0.2, 0.9]}, {"value": 0.7}])],
        "dtype": "bfloat16",
    },
    "nuslerp_base_rowwise": {
        "merge_method": "nuslerp",
        "base_model": f"{BF16}/base",
        "models": _fts(BF16, {"weight": 0.4}, {"weight": 0.6}),
        "parameters": {"nuslerp_flatten": False, "nuslerp_row_wise": True},
        "dtype": "bfloat16",
    },
    "nuslerp_noflatten_f32": {
        "merge_method": "nuslerp",
        "base_model": f"{F32}/base",
        "models": _fts(F32, {"weight": 1.0}, {"weight": 2.0}),
        "parameters": {"nuslerp_flatten": False},
        "dtype": "float32",
    },
    # --- multislerp / karcher --------------------------------------------------------
    "multislerp": {
        "merge_method": "multislerp",
        "models": [_m(BF16, "a", weight=0.2), _m(BF16, "b", weight=0.5), _m(BF16, "ft1", weight=0.3)],
        "dtype": "bfloat16",
    },
    "multislerp_base_f32": {
        "merge_method": "multislerp",
        "base_model": f"{F32}/base",
        "models": _fts(F32, {"weight": 1.0}, {"weight": 2.0}, {"weight": [0.5, 1.5]}),
        "parameters": {"normalize_weights": True},
        "dtype": "float32",
    },
    "karcher": {
        "merge_method": "karcher",
        "models": [_m(BF16, "a"), _m(BF16, "b"), _m(BF16, "ft1")],
        "dtype": "bfloat16",
    },
    "karcher_f32": {
        "merge_method": "karcher",
        "models": [_m(F32, "a"), _m(F32, "b")],
        "parameters": {"max_iter": 20, "tol": 1e-6},
        "dtype": "float32",
    },
    # --- SCE / RAM ----------------------------------------------------------------------
    "sce": {
        "merge_method": "sce",
        "base_model": f"{BF16}/base",
        "models": _fts(BF16, {}, {}, {}),
        "parameters": {"select_topk": 0.5},
        "dtype": "bfloat16",
    },
    "sce_f32": {
        "merge_method": "sce",
        "base_model": f"{F32}/base",
        "models": _fts(F32, {}, {}),
        "parameters": {"select_topk": [{"filter": "mlp", "value": 0.3}, {"value": 1.0}]},
        "dtype": "float32",
    },
    "ram": {
        "merge_method": "ram",
        "base_model": f"{BF16}/base",
        "models": _fts(BF16, {}, {}, {}),
        "parameters": {"epsilon": 0.004},
        "dtype": "bfloat16",
    },
    "ramplus_tl": {
        "merge_method": "ramplus_tl",
        "base_model": f"{BF16}/base",
        "models": _fts(BF16, {}, {}),
        "parameters": {"r": 0.5, "alpha": 0.4, "epsilon": 0.003},
        "dtype": "bfloat16",
    },
    "ramplus_tl_f32": {
        "merge_method": "ramplus_tl",
        "base_model": f"{F32}/base",
        "models": _fts(F32, {}, {}, {}),
        "parameters": {"epsilon": 0.002},
        "dtype": "float32",
    },
    # --- nearswap / arcee fusion -----------------------------------------------------------
    "nearswap": {
        "merge_method": "nearswap",
        "base_model": f"{BF16}/base",
        "models": [_m(BF16, "ft1")],
        "parameters": {"t": [0.001, 0.004]},
        "dtype": "bfloat16",
    },
    "nearswap_f32": {
        "merge_method": "nearswap",
        "base_model": f"{F32}/a",
        "models": [_m(F32, "b")],
        "parameters": {"t": 0.01},
        "dtype": "float32",
    },
    "arcee_fusion": {
        "merge_method": "arcee_fusion",
        "base_model": f"{BF16}/base",
        "models": [_m(BF16, "ft2")],
        "dtype": "bfloat16",
    },
    "arcee_fusion_f32": {
        "merge_method": "arcee_fusion",
        "base_model": f"{F32}/a",
        "models": [_m(F32, "b")],
        "dtype": "float32",
    },
    # --- leniency (issue 11): what mergekit 0.1.5 accepts and ignores or reads as numbers -----
    "lenient_ties_numeric_flags": {
        "merge_method": "ties",
        "base_model": f"{BF16}/base",
        "models": _fts(BF16, {"weight": 0.6, "density": 0.5, "gamma": 0.1}, {"weight": 0.4, "density": 0.7}),
        "parameters": {"normalize": 1.0, "int8_mask": 1.0, "select_topk": 0.5},
        "dype": "float16",
        "dtype": "bfloat16",
    },
    "lenient_ram_string_epsilon": {
        "merge_method": "ram",
        "base_model": f"{BF16}/base",
        "models": _fts(BF16, {}, {}),
        "parameters": {"epsilon": "3e-3", "allow_negative_weights": True},
        "dtype": "bfloat16",
    },
    "lenient_model_stock_weight": {
        "merge_method": "model_stock",
        "base_model": f"{BF16}/base",
        "models": _fts(BF16, {"weight": 0.2}, {"weight": 0.5}, {"weight": 0.3}),
        "dtype": "bfloat16",
    },
    "lenient_multislerp_normalize": {
        "merge_method": "multislerp",
        "models": [_m(BF16, "a", weight=0.4), _m(BF16, "b", weight=0.6)],
        "parameters": {"normalize": True},
        "dtype": "bfloat16",
    },
    "task_arithmetic_base_only": {
        "merge_method": "task_arithmetic",
        "base_model": f"{BF16}/base",
        "models": [_m(BF16, "base", weight=1.0)],
        "dtype": "bfloat16",
    },
    # override_architecture (a ModelReference field): the output config says the base's
    # override; every parent is overridden alike (mergekit refuses mixed architectures)
    "override_architecture_base": {
        "merge_method": "task_arithmetic",
        "base_model": {"model": {"path": f"{BF16}/base"}, "override_architecture": "LlamaForCausalLM"},
        "models": [
            {"model": {"model": {"path": f"{BF16}/ft{i}"}, "override_architecture": "LlamaForCausalLM"}, "parameters": {"weight": w}}
            for i, w in ((1, 0.7), (2, 0.3))
        ],
        "dtype": "bfloat16",
    },
}
CASES.update(
    {
        # --- LoRA references (issue 11): mergekit merges the adapter into the base with PEFT first ---
        "lora_task_arithmetic_bake": {
            "merge_method": "task_arithmetic",
            "base_model": f"{BF16}/base",
            "models": [_m(BF16, "base+" + LORA + "/lora1", weight=1.0)],
            "dtype": "bfloat16",
        },
        "lora_linear_rslora_saved_modules": {
            "merge_method": "linear",
            "models": [_m(BF16, "a+" + LORA + "/lora2", weight=0.6), _m(BF16, "b", weight=0.4)],
            "dtype": "bfloat16",
        },
        "lora_slerp_f32": {
            "merge_method": "slerp",
            "slices": [
                {
                    "sources": [
                        {"model": f"{F32}/a+{LORA}/lora1", "layer_range": [0, 32]},
                        {"model": f"{F32}/b", "layer_range": [0, 32]},
                    ]
                }
            ],
            "base_model": f"{F32}/a+{LORA}/lora1",
            "parameters": {"t": [0.2, 0.7]},
            "dtype": "float32",
        },
    }
)
CASES.update(
    {
        # --- tokenizer merges (issue 11): union vocabulary, tokens, padding; rows compared by token ---
        "union_linear": {
            "merge_method": "linear",
            "base_model": f"{BF16}/base",
            "models": [_m(BF16, "base", weight=0.5), _m(VOCAB, "v1", weight=0.5)],
            "tokenizer_source": "union",
            "dtype": "bfloat16",
        },
        "tokenizer_block_slerp": {
            "merge_method": "slerp",
            "base_model": f"{BF16}/ft1",
            "slices": [
                {
                    "sources": [
                        {"model": f"{BF16}/ft1", "layer_range": [0, 32]},
                        {"model": f"{VOCAB}/v1", "layer_range": [0, 32]},
                    ]
                }
            ],
            "parameters": {"t": 0.4},
            "tokenizer": {
                "source": "union",
                "tokens": {
                    "<|im_start|>": {"source": {"kind": "zero"}},
                    "w5": {"source": f"{VOCAB}/v1", "force": True},
                    "y3": {"source": {"kind": "model_token", "model": f"{BF16}/ft1", "token": "w7"}},
                },
                "pad_to_multiple_of": 64,
            },
            "dtype": "bfloat16",
        },
        "tokenizer_source_model_task_arithmetic": {
            "merge_method": "task_arithmetic",
            "base_model": f"{BF16}/base",
            "models": [_m(BF16, "ft1", weight=0.7), _m(VOCAB, "v1", weight=0.3)],
            "tokenizer_source": f"{VOCAB}/v1",
            "dtype": "bfloat16",
        },
    }
)
VOCAB_CASES = ("union_linear", "tokenizer_block_slerp", "tokenizer_source_model_task_arithmetic")
LORA_CASES = ("lora_task_arithmetic_bake", "lora_linear_rslora_saved_modules", "lora_slerp_f32")
LENIENCY_CASES = (
    "lenient_ties_numeric_flags",
    "lenient_ram_string_epsilon",
    "lenient_model_stock_weight",
    "lenient_multislerp_normalize",
    "task_arithmetic_base_only",
    "override_architecture_base",
)


CASES.update(WIDE_CASES)

# A SLERP slice whose base model is neither source (published configs of Dec 2023 / Jan 2024):
# mergekit >= 0.0.4 refuses it, mergekit <= 0.0.3.2 interpolates from the slice's SECOND source
# (t = 0) to its first. 0.1.5 computes the same bytes when the second source is named the base:
# tests/merge/test_legacy_slerp.py builds LEGACY_SLERP with our code against this fixture.
CASES["slerp_second_source_as_base"] = {
    "merge_method": "slerp",
    "slices": _slerp_slices(BF16, "a", "b"),
    "base_model": f"{BF16}/b",
    "parameters": {"t": LAZY_T},
    "dtype": "bfloat16",
}
LEGACY_SLERP: dict[str, Any] = {**CASES["slerp_second_source_as_base"], "base_model": f"{BF16}/base"}

# Cases whose reference is mergekit v0.0.3.2 itself (regenerate.py --legacy-src, see README.md):
# the agreement test builds them like every other case.
LEGACY_CASES: dict[str, dict[str, Any]] = {"v0032_slerp_base_outside_sources": LEGACY_SLERP}


def resolve_paths(config: Any, family: dict[str, str]) -> Any:
    """Replace the FAMILY_* placeholders with real folders, recursively."""
    if isinstance(config, dict):
        return {k: resolve_paths(v, family) for k, v in config.items()}
    if isinstance(config, list):
        return [resolve_paths(v, family) for v in config]
    if isinstance(config, str) and "+" in config:  # base+lora: each part is a placeholder path
        return "+".join(resolve_paths(part, family) for part in config.split("+"))
    if isinstance(config, str):
        for key, root in family.items():
            if config.startswith(key + "/"):
                return root + config[len(key) :]
    return config
