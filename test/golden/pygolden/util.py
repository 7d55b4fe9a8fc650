"""Small shared helpers: hashing, JSON writing, float conversion."""
import hashlib
import json

import numpy as np


def sha256_f32(array):
    """sha256 of the little-endian float32 bytes of an array (C order)."""
    a = np.ascontiguousarray(np.asarray(array, dtype="<f4"))
    return hashlib.sha256(a.tobytes()).hexdigest()


def sha256_u8(array):
    return hashlib.sha256(np.ascontiguousarray(np.asarray(array, dtype=np.uint8)).tobytes()).hexdigest()


def f32_list(values):
    """float32 values as Python floats (exactly representable; JSON round-trips them)."""
    return [float(np.float32(v)) for v in np.asarray(values, dtype=np.float32).ravel()]


def write_json(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=1, ensure_ascii=False)
        f.write("\n")
