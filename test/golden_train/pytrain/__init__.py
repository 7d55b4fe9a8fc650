"""PyTorch reference of V-Reflection's training step on the tiny golden checkpoint (see ../README.md)."""
