"""FP8 variants: schemes, target selection, bitwise llm-compressor arithmetic, config block, writer.

The merge engine's same-pass API (see each module for details)::

    plan = plan_variant(merged_tensors, scheme, ignore, merged_config)   # validates, lays out
    writer = VariantWriter(folder, plan, max_shard_bytes)                # shards from plan.tensors
    for name, tensor in merged tensors, in the order given to plan_variant:
        writer.add(name, tensor)                                         # quantize + write
    files = writer.finish(merged_config, support_from=folder_with_tokenizer)

``publisher quantize`` uses the same plan and writer through ``quantize_model``.
"""

from publisher.quantize.config import (
    COMPRESSED_TENSORS_VERSION,
    config_bytes,
    quantization_config,
    variant_config,
)
from publisher.quantize.fp8 import dequantize, quantize_weight
from publisher.quantize.model import QuantizeResult, quantize_model
from publisher.quantize.plan import (
    VariantPlan,
    plan_tensors,
    plan_variant,
    quantize_tensor,
    scale_name,
)
from publisher.quantize.schemes import DEFAULT_SCHEME, SCHEMES, Scheme, get_scheme
from publisher.quantize.targets import IgnoreRules, is_target
from publisher.quantize.writer import (
    DEFAULT_MAX_SHARD_BYTES,
    VariantWriter,
    copy_support_files,
    support_files,
)

__all__ = [
    "COMPRESSED_TENSORS_VERSION",
    "DEFAULT_MAX_SHARD_BYTES",
    "DEFAULT_SCHEME",
    "SCHEMES",
    "IgnoreRules",
    "QuantizeResult",
    "Scheme",
    "VariantPlan",
    "VariantWriter",
    "config_bytes",
    "copy_support_files",
    "dequantize",
    "get_scheme",
    "is_target",
    "plan_tensors",
    "plan_variant",
    "quantization_config",
    "quantize_model",
    "quantize_tensor",
    "quantize_weight",
    "scale_name",
    "support_files",
    "variant_config",
]
