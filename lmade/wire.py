"""Arrays across the sandbox boundary: ``pack(array) -> dict``, ``unpack(dict) -> array``.

Replies come from untrusted code, so ``unpack`` checks everything it reads (dtype from a
short allowlist, shape against the byte count and the caller's expected shape, a size cap)
and raises ``WireError`` with a plain reason rather than trusting the sender.
"""

from __future__ import annotations

import base64
import math

import numpy as np

DTYPES = ("float32", "float16", "int64", "int32", "bool")
MAX_ELEMENTS = 16 * 2**20  # 64 MB of float32 in one array


class WireError(ValueError):
    """A reply's array is malformed or not what was asked for."""


def pack(array) -> dict:
    """A numpy array or a CPU torch tensor as a JSON-able dict."""
    if hasattr(array, "detach"):
        array = array.detach().cpu().numpy()
    array = np.ascontiguousarray(array)
    return {"dtype": str(array.dtype), "shape": list(array.shape),
            "data": base64.b64encode(array.tobytes()).decode("ascii")}


def unpack(value: object, shape: tuple[int | None, ...] | None = None,
           dtypes: tuple[str, ...] = DTYPES) -> np.ndarray:
    """The array in ``value``; ``shape`` entries that are not None must match exactly."""
    if not isinstance(value, dict):
        raise WireError(f"expected an array, got {type(value).__name__}")
    dtype, dims, data = value.get("dtype"), value.get("shape"), value.get("data")
    if dtype not in dtypes:
        raise WireError(f"array dtype {str(dtype)[:40]!r} is not one of {', '.join(dtypes)}")
    if not (isinstance(dims, list) and len(dims) <= 8
            and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in dims)):
        raise WireError("array shape is not a list of at most 8 non-negative integers")
    if math.prod(dims) > MAX_ELEMENTS:
        raise WireError(f"array of {math.prod(dims)} elements exceeds {MAX_ELEMENTS}")
    if shape is not None and (len(shape) != len(dims)
                              or any(w is not None and w != d for w, d in zip(shape, dims, strict=True))):
        raise WireError(f"array shape {tuple(dims)} is not the expected {shape}")
    if not isinstance(data, str):
        raise WireError("array data is not a base64 string")
    try:
        raw = base64.b64decode(data, validate=True)
    except ValueError:
        raise WireError("array data is not valid base64") from None
    if len(raw) != math.prod(dims) * np.dtype(dtype).itemsize:
        raise WireError("array data length does not match its shape")
    return np.frombuffer(raw, dtype=dtype).reshape(dims)
