"""The untrusted half of the checker: builds the design and answers the grader's requests.

Sandbox session target (``serve(payload, emit, inbox)``, see ``genesys.lmade.sandbox``).
It holds no verdict logic and sees no reference model: it runs design code on the inputs
that the trusted grader (``checker_grade``) sends and returns raw outputs (logits,
per-parameter gradient facts, per-step gradient norms). Whatever it returns may have been
altered by the design; the grader treats every reply as a claim to check.

Ops: ``build`` -> {params, shape, warning}; ``logits`` {tokens} -> {logits};
``grads`` {tokens} -> {params: [[name, owner, used, has_grad, finite, max_abs]]};
``train`` {batches, lr} -> {grad_norms, zero_grad}; ``steps`` {tokens, n} (timed by the
grader from outside); ``peak`` {tokens} -> {peak_mb}. A failure answers {"error": message},
the message pointing into the design's own lines.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import traceback
from collections.abc import Callable
from typing import Any

import torch
from genesys.design import Design, execute_design, load_design
from genesys.lmade import sandbox_guard
from genesys.lmade.checker_measure import lm_loss, peak_mb
from genesys.lmade.gau import GAUBase
from genesys.lmade.model import GenesysLM, autotune, count_params
from genesys.lmade.scales import get_scale
from genesys.lmade.wire import pack, unpack
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten

Emit = Callable[[dict], None]


@dataclasses.dataclass(frozen=True)
class SourceDesign(Design):
    """A Design that executes its original file text (once), so that tracebacks carry the
    design file's own line numbers under the filename ``<design:NAME>``."""

    source_text: str = ""

    @functools.cached_property
    def _namespace(self) -> dict[str, Any]:
        return execute_design(self.source_text, design_filename(self.name), self.digest)

    def namespace(self) -> dict[str, Any]:
        return self._namespace


def design_filename(name: str) -> str:
    return f"<design:{name}>"


def explain(exc: BaseException, name: str) -> str:
    """The exception and the design's own frames (file line numbers), innermost last."""
    filename = design_filename(name)
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == filename]
    text = f"{type(exc).__name__}: {exc}"
    if frames:
        lines = [f"  line {f.lineno}, in {f.name}: {(f.line or '').strip()}" for f in frames[-8:]]
        text += "\nin the design:\n" + "\n".join(lines)
    if sandbox_guard.failure_reason(exc) == "memory_limit":
        text = "out of memory (the sandbox's limit): " + text
    return text


def _load(source: str, name: str) -> SourceDesign:
    design = load_design(source, name=name)
    fields = {f.name: getattr(design, f.name) for f in dataclasses.fields(Design)}
    return SourceDesign(**fields, source_text=source)


def owner(model: nn.Module, param_name: str) -> str:
    """'blocks.0.mha.qkv.weight' -> 'blocks.0.mha.qkv.weight (unit MHA)'."""
    unit = None
    module: nn.Module = model
    for part in param_name.split(".")[:-1]:
        module = getattr(module, part)
        if isinstance(module, GAUBase):
            unit = type(module).__name__
    return f"{param_name} (unit {unit})" if unit else param_name


class _UsedTensors(TorchFunctionMode):
    """Records every tensor that a torch function or method touches during forward."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[int] = set()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        for value in tree_flatten((args, kwargs or {}))[0]:
            if isinstance(value, torch.Tensor):
                self.ids.add(id(value))
        return func(*args, **(kwargs or {}))


class Worker:
    def __init__(self, payload: dict):
        self.source, self.name = payload["source"], payload["name"]
        self.seed = int(payload.get("seed", 0))
        self.scale = str(payload.get("scale", "check"))
        self.vocab_size = int(payload["vocab_size"])
        self.context = int(payload["context"])
        self.model: GenesysLM | None = None

    def build(self, data: dict) -> dict:
        torch.manual_seed(self.seed)
        design = _load(self.source, self.name)
        scale = get_scale(self.scale)
        warning = ""
        try:
            d_model, n_block = autotune(design, scale, self.vocab_size)
        except ValueError as exc:
            d_model, n_block = scale.d_model, scale.n_block
            warning = f"could not size the design to the {scale.name} target: {exc}"
        torch.manual_seed(self.seed)
        self.model = GenesysLM(design, d_model, n_block, self.vocab_size, self.context)
        return {"params": count_params(self.model), "shape": [d_model, n_block],
                "warning": warning}

    def _tokens(self, data: dict, key: str = "tokens") -> torch.Tensor:
        return torch.from_numpy(unpack(data[key], dtypes=("int64",)).copy())

    @torch.no_grad()
    def logits(self, data: dict) -> dict:
        out = self.model.eval()(self._tokens(data))
        if not isinstance(out, torch.Tensor):
            return {"error": f"the model returned {type(out).__name__}, not a tensor of logits"}
        return {"logits": pack(out.detach())}

    def grads(self, data: dict) -> dict:
        model = self.model.train()
        model.zero_grad(set_to_none=True)
        tracker = _UsedTensors()
        with tracker:
            loss = lm_loss(model, self._tokens(data))
        loss.backward()
        params = []
        for name, p in model.named_parameters():
            grad = p.grad
            params.append([name, owner(model, name), id(p) in tracker.ids, grad is not None,
                           bool(grad is None or torch.isfinite(grad).all()),
                           float(grad.abs().max()) if grad is not None and grad.numel() else 0.0])
        model.zero_grad(set_to_none=True)
        return {"params": params}

    def train(self, data: dict) -> dict:
        model = self.model.train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=float(data["lr"]), weight_decay=0.0)
        batches = self._tokens(data, "batches")
        touched: dict[str, bool] = {n: False for n, _ in model.named_parameters()}
        norms = []
        for x in batches:
            optimizer.zero_grad(set_to_none=True)
            lm_loss(model, x).backward()
            for n, p in model.named_parameters():
                if p.grad is not None and not touched[n] and bool((p.grad != 0).any()):
                    touched[n] = True
            norms.append(float(nn.utils.clip_grad_norm_(model.parameters(), math.inf)))
            optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return {"grad_norms": norms,
                "zero_grad": [owner(model, n) for n, hit in touched.items() if not hit]}

    def steps(self, data: dict) -> dict:
        model = self.model.train()
        x = self._tokens(data)
        for _ in range(int(data["n"])):
            model.zero_grad(set_to_none=True)
            lm_loss(model, x).backward()
        model.zero_grad(set_to_none=True)
        return {}

    def peak(self, data: dict) -> dict:
        return {"peak_mb": peak_mb(self.model.train(), self._tokens(data))}


OPS = ("build", "logits", "grads", "train", "steps", "peak")


def serve(payload: dict, emit: Emit, inbox) -> dict:
    """Sandbox session target: answer the grader's requests until it closes the inbox."""
    torch.set_flush_denormal(True)
    worker = Worker(payload)
    served = 0
    for request in inbox:
        served += 1
        if request.op not in OPS or (worker.model is None and request.op != "build"):
            request.reply(error=f"unknown or premature request {request.op!r}")
            continue
        try:
            answer = getattr(worker, request.op)(request.data)
        except Exception as exc:  # noqa: BLE001 - design code fails in any way
            answer = {"error": explain(exc, worker.name)}
        request.reply(**answer)
    return {"served": served}
