"""Token log-probabilities: computed by a model, or asked of a sandboxed worker and checked.

A scorer is called as ``scorer(tokens, query) -> (logprobs, argmax)``: ``tokens`` (B, W)
are input rows, ``query`` (B, W, K) names K tokens per position whose log-probability
of coming next is wanted, and ``argmax`` (B, W) is the most likely next token.
``ModelScorer`` runs a model it holds (inside the sandbox, or for trusted models).
``RemoteScorer`` is the trusted side's view of an untrusted worker: it checks every reply
(shapes, log-probabilities <= 0 whose probabilities sum to at most 1), asks about a random
decoy token beside each real one, and re-sends a share of the rows with their tail changed
in later requests: the outputs up to the change must not move (a design that looks ahead
only on real work is caught on the work itself). ``finish()`` runs those spot checks.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .wire import WireError, pack, unpack

Scorer = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


class ScoringRefused(RuntimeError):
    """The worker's answers are not those of a causal language model; says why."""


class ModelScorer:
    def __init__(self, model: nn.Module, device: torch.device | str | None = None):
        self.model = model.eval()
        self.device = torch.device(device) if device else next(model.parameters()).device
        self.autocast = self.device.type == "cuda"

    @torch.no_grad()
    def __call__(self, tokens: torch.Tensor, query: torch.Tensor):
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
            logits = self.model(tokens.to(self.device)).float()
        logprobs = F.log_softmax(logits, dim=-1)
        picked = logprobs.gather(-1, query.to(self.device)).cpu()
        return picked, logits.argmax(-1).cpu()


class RemoteScorer:
    def __init__(self, session, vocab_size: int, seed: int, spot_share: float = 0.05,
                 max_spots: int = 24, tolerance: float = 1e-3):
        self.box, self.vocab_size = session, vocab_size
        self.rng = random.Random(seed)
        self.spot_share, self.max_spots, self.tolerance = spot_share, max_spots, tolerance
        # (changed row, its query, the cut, the original row's log-probs up to the cut)
        self.pending: list[tuple[torch.Tensor, torch.Tensor, int, torch.Tensor]] = []
        self.spot_checked = 0

    def _ask(self, tokens: torch.Tensor, query: torch.Tensor):
        reply = self.box.call("score", tokens=pack(tokens), query=pack(query))
        if "error" in reply:
            raise ScoringRefused(f"the design failed while scoring: {str(reply['error'])[:2000]}")
        b, w, k = query.shape
        try:
            logprobs = unpack(reply.get("logprobs"), shape=(b, w, k), dtypes=("float32",))
            argmax = unpack(reply.get("argmax"), shape=(b, w), dtypes=("int64",))
        except WireError as exc:
            raise ScoringRefused(f"the worker's scores could not be read: {exc}") from None
        finite = np.where(np.isneginf(logprobs), 0.0, logprobs)
        if np.isnan(logprobs).any() or np.isposinf(logprobs).any():
            raise ScoringRefused("the model's log-probabilities hold NaN or +Inf")
        if (finite > 1e-4).any() or (np.exp(finite).sum(-1) > 1 + 1e-3).any():
            raise ScoringRefused("the worker's log-probabilities are not a distribution "
                                 "(a probability above 1, or several summing above 1)")
        if ((argmax < 0) | (argmax >= self.vocab_size)).any():
            raise ScoringRefused("the worker's most likely tokens are outside the vocabulary")
        return torch.from_numpy(logprobs.copy()), torch.from_numpy(argmax.copy())

    def __call__(self, tokens: torch.Tensor, query: torch.Tensor):
        width = tokens.shape[1]
        chosen = []  # (row, the row with its tail changed, its query, the cut)
        if query.shape[2] > 1 and width > 2:
            for row in range(tokens.shape[0]):
                if len(self.pending) + len(chosen) < self.max_spots \
                        and self.rng.random() < self.spot_share:
                    cut = self.rng.randrange(width - 1)
                    changed = tokens[row].clone()
                    g = torch.Generator().manual_seed(self.rng.randrange(2**31))
                    changed[cut + 1:] = torch.randint(0, self.vocab_size, (width - cut - 1,),
                                                      generator=g)
                    query[row, cut, 1] = int(changed[cut + 1])  # asked like any decoy
                    chosen.append((row, changed, query[row].clone(), cut))
        logprobs, argmax = self._ask(tokens, query)
        self.pending += [(changed, q, cut, logprobs[row, :cut + 1].clone())
                         for row, changed, q, cut in chosen]
        return logprobs, argmax

    def finish(self) -> int:
        """Send the changed rows (in shuffled order, one request each) and compare; returns
        how many rows were spot-checked. Raises ScoringRefused on a look-ahead."""
        pending, self.pending = self.pending, []
        self.rng.shuffle(pending)
        for changed, q, cut, before in pending:
            after, _ = self._ask(changed[None], q[None])
            moved = (after[0, :cut + 1] - before).abs().nan_to_num(nan=0.0)
            self.spot_checked += 1
            if float(moved.max()) > self.tolerance:
                p = int((moved.amax(-1) > self.tolerance).nonzero()[0])
                raise ScoringRefused(
                    f"not causal on the evaluation data: changing the tokens after position "
                    f"{cut} of a scored row changed the log-probabilities at position {p} by "
                    f"{float(moved.max()):.3g} (tolerance {self.tolerance:g})")
        return self.spot_checked


def next_token_query(rows: torch.Tensor, pad: int, decoys: random.Random | None,
                     vocab_size: int) -> torch.Tensor:
    """(B, W, 2): the real next token of every position (``pad`` past the end) and a
    random decoy, so that rows asked about differently cannot be told apart."""
    query = torch.full((*rows.shape, 2), pad, dtype=torch.long)
    query[:, :-1, 0] = rows[:, 1:]
    seed = decoys.randrange(2**31) if decoys else 0
    query[:, :, 1] = torch.randint(0, vocab_size, rows.shape,
                                   generator=torch.Generator().manual_seed(seed))
    return query
