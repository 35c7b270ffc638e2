"""Merging: which input tensors make each output tensor (plan), the math (methods), the streaming engine."""
