"""Helpers for make_golden.py: they build the golden parity fixtures against Hugging Face transformers."""
