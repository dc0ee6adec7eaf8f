"""Tokenizers for pre-training: a BPE trained on the corpus, GPT-2's BPE, any HF tokenizer.

Every tokenizer exposes the same small interface (:class:`TextTokenizer`) and is saved next
to the prepared data, so that training and evaluation use exactly the one that made it.

- ``bpe8k`` (or ``bpeN`` with N a vocab size): a byte-level BPE trained with `tokenizers`.
- ``gpt2``: GPT-2's BPE through `tiktoken`, read from the ``gpt2.tiktoken`` file that the
  ``openai-whisper`` package ships (found without importing whisper) or from
  GENESYS_GPT2_TIKTOKEN; nothing is downloaded.
- anything else: a `tokenizer.json` path, a folder holding one, or a HF hub name.
"""

from __future__ import annotations

import base64
import importlib.util
import os
import re
from collections.abc import Iterable
from pathlib import Path

EOT = "<|endoftext|>"
_EOT_CANDIDATES = (EOT, "</s>", "<eos>", "<|end_of_text|>")


class TokenizerError(RuntimeError):
    """A tokenizer could not be built or loaded; the message says why."""


class TextTokenizer:
    """Common interface. ``eot_id`` separates documents in the token stream."""

    kind: str
    name: str
    vocab_size: int
    eot_id: int

    def encode(self, text: str) -> list[int]:
        return self.encode_batch([text])[0]

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        raise NotImplementedError

    def decode(self, ids: Iterable[int]) -> str:
        raise NotImplementedError

    def save(self, folder: Path) -> dict:
        """Write what :func:`load_tokenizer` needs into folder; return the manifest spec."""
        raise NotImplementedError


class HFTokenizer(TextTokenizer):
    """A `tokenizers.Tokenizer` (trained here, or loaded from a file or the hub)."""

    def __init__(self, tok, kind: str, name: str):
        self._tok = tok
        self.kind, self.name = kind, name
        self.vocab_size = tok.get_vocab_size(with_added_tokens=True)
        eot = next(
            (tok.token_to_id(t) for t in _EOT_CANDIDATES if tok.token_to_id(t) is not None), None
        )
        if eot is None:
            raise TokenizerError(f"tokenizer {name!r} has no end-of-text token ({_EOT_CANDIDATES})")
        self.eot_id = eot

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return [e.ids for e in self._tok.encode_batch(texts, add_special_tokens=False)]

    def decode(self, ids: Iterable[int]) -> str:
        return self._tok.decode(list(ids), skip_special_tokens=False)

    def save(self, folder: Path) -> dict:
        self._tok.save(str(folder / "tokenizer.json"))
        return {"kind": self.kind, "name": self.name, "file": "tokenizer.json"}


class GPT2Tokenizer(TextTokenizer):
    kind = name = "gpt2"

    def __init__(self):
        import tiktoken

        path = gpt2_ranks_file()
        ranks = {}
        for line in path.read_bytes().splitlines():
            if line:
                token, rank = line.split()
                ranks[base64.b64decode(token)] = int(rank)
        self._enc = tiktoken.Encoding(
            name="gpt2",
            explicit_n_vocab=len(ranks) + 1,
            pat_str=r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""",
            mergeable_ranks=ranks,
            special_tokens={EOT: len(ranks)},
        )
        self.vocab_size = self._enc.n_vocab
        self.eot_id = len(ranks)

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return self._enc.encode_ordinary_batch(texts)

    def decode(self, ids: Iterable[int]) -> str:
        return self._enc.decode(list(ids))

    def save(self, folder: Path) -> dict:
        return {"kind": "gpt2", "name": "gpt2"}


def gpt2_ranks_file() -> Path:
    """Locate gpt2.tiktoken: GENESYS_GPT2_TIKTOKEN, else the openai-whisper package's asset."""
    override = os.environ.get("GENESYS_GPT2_TIKTOKEN")
    if override:
        return Path(override)
    spec = importlib.util.find_spec("whisper")  # locates the package without importing it
    if spec and spec.submodule_search_locations:
        for root in spec.submodule_search_locations:
            candidate = Path(root) / "assets" / "gpt2.tiktoken"
            if candidate.exists():
                return candidate
    raise TokenizerError(
        "GPT-2 BPE file not found: `pip install --no-deps openai-whisper` ships it "
        "(whisper/assets/gpt2.tiktoken), or set GENESYS_GPT2_TIKTOKEN to a gpt2.tiktoken file"
    )


def train_bpe(texts: Iterable[str], vocab_size: int = 8192) -> HFTokenizer:
    """Train a byte-level BPE with an end-of-text special token."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOT],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return HFTokenizer(tok, kind="bpe", name=f"bpe{vocab_size}")


def parse_bpe_name(name: str) -> int | None:
    """'bpe8k' -> 8192, 'bpe4096' -> 4096, anything else -> None."""
    m = re.fullmatch(r"bpe(\d+)(k?)", name)
    if not m:
        return None
    return int(m.group(1)) * (1024 if m.group(2) else 1)


def external_tokenizer(name: str) -> TextTokenizer:
    """GPT-2 or a HF tokenizer (tokenizer.json path, folder, or hub name)."""
    if name == "gpt2":
        return GPT2Tokenizer()
    from tokenizers import Tokenizer

    path = Path(name).expanduser()
    if path.is_dir():
        path = path / "tokenizer.json"
    try:
        tok = Tokenizer.from_file(str(path)) if path.exists() else Tokenizer.from_pretrained(name)
    except Exception as e:
        raise TokenizerError(
            f"tokenizer {name!r} is neither a tokenizer.json file/folder nor reachable on the "
            f"Hugging Face hub ({e})"
        ) from None
    return HFTokenizer(tok, kind="hf", name=name)


def load_tokenizer(folder: Path, spec: dict) -> TextTokenizer:
    """Load the tokenizer that :meth:`TextTokenizer.save` wrote for a prepared dataset."""
    if spec["kind"] == "gpt2":
        return GPT2Tokenizer()
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(folder / spec["file"]))
    return HFTokenizer(tok, kind=spec["kind"], name=spec["name"])
