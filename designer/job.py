"""The DESIGN-job entry point of the recombination designer (contract: designer/__init__.py).

Runs in the agent's process: it parses and recombines design sources without executing
them; only the checker runs candidates, in its own sandboxed child.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import random
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from genesys.design import Design, DesignFormatError, load_design

from .operators import NoCandidate, propose

AGENT = "genesys.designer.recombination"
DEFAULT_CANDIDATES = 6
Emit = Callable[[dict], None]
Check = Callable[[Design], Any]


def seed_sources() -> dict[str, str]:
    """The installed seed design files as text, read without importing genesys.lmade (torch)."""
    spec = importlib.util.find_spec("genesys.lmade")
    if spec is None or not spec.submodule_search_locations:
        return {}
    folder = Path(list(spec.submodule_search_locations)[0]) / "seeds"
    return {p.stem: p.read_text() for p in sorted(folder.glob("*.py")) if p.name != "__init__.py"}


def _designs(entries: Iterable[dict], rejected: list[dict]) -> list[tuple[str, Design]]:
    """(id, Design) for payload entries {"id"?, "name", "source"}; bad sources are reported."""
    out = []
    for entry in entries:
        try:
            out.append((entry.get("id", ""), load_design(entry["source"], name=entry.get("name") or None)))
        except (DesignFormatError, KeyError, SyntaxError) as e:
            rejected.append({"name": entry.get("name", ""), "digest": "", "reason": f"unreadable: {e}"})
    return out


def report_dict(report: Any) -> dict:
    """A checker report as a JSON-able dict, whatever shape the checker returns."""
    if report is None:
        return {}
    if isinstance(report, dict):
        return report
    if hasattr(report, "to_dict"):
        return report.to_dict()
    if dataclasses.is_dataclass(report):
        return dataclasses.asdict(report)
    return {"ok": bool(getattr(report, "ok", False)), "repr": repr(report)}


def _passed(report: dict) -> bool:
    return bool(report.get("ok", report.get("passed", False)))


def default_check(scale: str) -> Check:
    def check(design: Design) -> Any:
        from genesys.lmade import check as lmade_check  # torch: imported only when checking

        return lmade_check(design, scale=scale)
    return check


def design_job(payload: dict, emit: Emit | None = None, *, check: Check | None = None) -> dict:
    """Produce one new design for a DESIGN job; see designer/__init__.py for the contract."""
    emit = emit or (lambda event: None)
    operation = payload.get("operation") or "mutation"
    seed = int(payload.get("seed") or 0)
    rng = random.Random(seed)
    budget = max(1, int(payload.get("max_candidates") or DEFAULT_CANDIDATES))
    checking = payload.get("check", True)
    check = check or default_check(payload.get("scale") or "check")
    rejected: list[dict] = []

    parents = _designs(payload.get("parents") or [], rejected)
    extra = _designs([*(payload.get("library") or []), *(payload.get("seeds") or [])], rejected)
    seeds = _designs(({"name": n, "source": s} for n, s in seed_sources().items()), rejected)
    library = list({d.digest: d for _, d in [*parents, *extra, *seeds]}.values())
    known = set(payload.get("known_digests") or []) | {d.digest for _, d in parents}
    parent_designs = [d for _, d in parents]

    for attempt in range(1, budget + 1):
        emit({"stage": "propose", "attempt": attempt, "fraction": (attempt - 1) / budget,
              "message": f"{operation} candidate {attempt}/{budget}"})
        try:
            candidate = propose(parent_designs, operation, rng, library)
        except NoCandidate as e:
            rejected.append({"name": "", "digest": "", "reason": f"{operation}: {e}"})
            if operation == "mutation":
                break
            operation = "mutation"  # crossover of incompatible parents: mutate instead
            continue
        design = candidate.design
        if design.digest in known:
            rejected.append({"name": design.name, "digest": design.digest, "reason": "duplicate digest"})
            continue
        known.add(design.digest)
        report: dict | None = None
        if checking:
            emit({"stage": "check", "attempt": attempt, "fraction": (attempt - 0.5) / budget,
                  "message": f"checking {design.name}"})
            report = report_dict(check(design))
            if not _passed(report):
                reason = report.get("message") or report.get("error") or "checker failed"
                rejected.append({"name": design.name, "digest": design.digest, "reason": str(reason)[:2000]})
                continue
        used = parents[: len(candidate.parents)] if candidate.operation != "scratch" else []
        trace = {
            "operation": f"DESIGN_OPERATION_{candidate.operation.upper()}",
            "notes": candidate.notes,
            "agent": AGENT,
            "attempts": attempt,
            "metadata_json": json.dumps({"seed": seed, "check": report, "rejected": rejected,
                                         "parent_names": candidate.parents}, default=str),
        }
        return {"ok": True, "checked": bool(checking), "source": design.to_source(),
                "name": design.name, "digest": design.digest, "parents": [i for i, _ in used],
                "operation": candidate.operation, "trace": trace, "check": report,
                "rejected": rejected}
    return {"ok": False, "checked": bool(checking), "operation": operation, "parents": [],
            "check": None, "rejected": rejected,
            "error": f"no candidate passed after {budget} attempt(s): "
                     + "; ".join(r["reason"] for r in rejected[-3:])}
