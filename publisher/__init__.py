"""publisher: declarative recipes to merged, FP8-quantized, carded and published LLMs."""

__version__ = "0.1.0"
