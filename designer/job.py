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

from .operators import Candidate, NoCandidate, child_name, config_changes, make_label, propose
from .perturb import perturb

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


def load_entries(entries: Iterable[dict], rejected: list[dict]) -> list[tuple[str, Design]]:
    """(id, Design) for payload entries {"id"?, "name", "source"}; bad sources are reported."""
    out = []
    for entry in entries:
        try:
            out.append((entry.get("id", ""), load_design(entry["source"], name=entry.get("name") or None)))
        except (DesignFormatError, KeyError, SyntaxError) as e:
            rejected.append({"name": entry.get("name", ""), "digest": "", "reason": f"unreadable: {e}"})
    return out


def library_of(payload: dict, parents: list[tuple[str, Design]], rejected: list[dict]) -> list[Design]:
    """Donor designs: the parents, the payload's "library" and "seeds", the installed seeds."""
    extra = load_entries([*(payload.get("library") or []), *(payload.get("seeds") or [])], rejected)
    seeds = load_entries(({"name": n, "source": s} for n, s in seed_sources().items()), rejected)
    return list({d.digest: d for _, d in [*parents, *extra, *seeds]}.values())


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


def passed(report: dict) -> bool:
    return bool(report.get("ok", report.get("valid", report.get("passed", False))))


def failure(report: dict) -> str:
    """Why a checker report failed: its first failed check, else its message."""
    failed = next((c for c in report.get("checks") or [] if not c.get("passed")), None)
    if failed:
        return f"{failed.get('name')}: {failed.get('message')}"
    return str(report.get("message") or report.get("error") or "checker failed")


def _unseen(candidate: Candidate, known: set[str], rng: random.Random, tries: int = 3) -> Design | None:
    """The candidate's design, moved by hyperparameter steps while its digest is already
    known (a crossover of the same two parents often repeats itself); None if it stays known."""
    design = candidate.design
    for _ in range(tries):
        if design.digest not in known:
            break
        try:
            moved, note = perturb(design, rng)
        except ValueError:
            return None
        candidate.notes.append(f"{note} (the recombination alone was a duplicate)")
        candidate.label = make_label(candidate.label, config_changes(design, moved))
        design = moved
    if design.digest in known:
        return None
    candidate.design = dataclasses.replace(design, name=child_name(candidate.design.name, candidate.operation, design))
    return candidate.design


class _Behaviours:
    """Fingerprints the experiment already holds (payload "known_fingerprints": {fp: id},
    and the parents' "fingerprint"). A first parent without one (a seed: the coordinator
    runs no checker) is checked once, when the first candidate needs the comparison, and
    reported back in ``measured`` (a child that changed nothing effective behaves like its
    first parent: mutations change it, crossovers start from it)."""

    def __init__(self, payload: dict, parents: list[tuple[str, Design]], check: Check):
        given = {p.get("id", ""): p["fingerprint"] for p in payload.get("parents") or []
                 if p.get("fingerprint")}
        self.known = dict(payload.get("known_fingerprints") or {})
        self.known.update({fp: design_id for design_id, fp in given.items()})
        self.missing = [(i, d) for i, d in parents[:1] if i not in given]
        self.check = check
        self.measured: dict[str, str] = {}

    def same_as(self, fingerprint: str) -> str:
        """The id (or name) of a design with this fingerprint, "" if none."""
        if not fingerprint:
            return ""
        for design_id, parent in self.missing:
            found = report_dict(self.check(parent)).get("fingerprint") or ""
            if found:
                self.measured[design_id or parent.name] = found
                self.known.setdefault(found, design_id or parent.name)
        self.missing = []
        return self.known.get(fingerprint, "")


def default_check(scale: str) -> Check:
    def check(design: Design) -> Any:
        from genesys.lmade.checker import check as lmade_check  # imported only when checking

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

    parents = load_entries(payload.get("parents") or [], rejected)
    library = library_of(payload, parents, rejected)
    known = set(payload.get("known_digests") or []) | {d.digest for _, d in parents}
    parent_designs = [d for _, d in parents]
    labels = {p["name"]: p["label"] for p in payload.get("parents") or []
              if p.get("label") and p.get("name")}
    behaviours = _Behaviours(payload, parents, check)

    for attempt in range(1, budget + 1):
        emit({"stage": "propose", "attempt": attempt, "fraction": (attempt - 1) / budget,
              "message": f"{operation} candidate {attempt}/{budget}"})
        try:
            candidate = propose(parent_designs, operation, rng, library, labels)
        except NoCandidate as e:
            rejected.append({"name": "", "digest": "", "reason": f"{operation}: {e}"})
            if operation == "mutation":
                break
            operation = "mutation"  # crossover of incompatible parents: mutate instead
            continue
        design = _unseen(candidate, known, rng)
        if design is None:
            rejected.append({"name": candidate.design.name, "digest": candidate.design.digest,
                             "reason": "duplicate digest"})
            continue
        known.add(design.digest)
        report: dict | None = None
        if checking:
            emit({"stage": "check", "attempt": attempt, "fraction": (attempt - 0.5) / budget,
                  "message": f"checking {design.name}"})
            report = report_dict(check(design))
            if not passed(report):
                rejected.append({"name": design.name, "digest": design.digest,
                                 "reason": failure(report)[:2000]})
                continue
            same = behaviours.same_as(report.get("fingerprint") or "")
            if same:
                rejected.append({"name": design.name, "digest": design.digest,
                                 "reason": f"functional duplicate of {same} (same fingerprint)"})
                continue
        used = parents[: len(candidate.parents)] if candidate.operation != "scratch" else []
        trace = {
            "operation": f"DESIGN_OPERATION_{candidate.operation.upper()}",
            "notes": candidate.notes,
            "agent": AGENT,
            "attempts": attempt,
            "metadata_json": json.dumps({"seed": seed, "check": report, "rejected": rejected,
                                         "parent_names": candidate.parents,
                                         "label": candidate.label}, default=str),
            "check_report_json": json.dumps(report, default=str) if report else "",
        }
        return {"ok": True, "checked": bool(checking), "source": design.to_source(),
                "name": design.name, "label": candidate.label, "digest": design.digest,
                "parents": [i for i, _ in used],
                "operation": candidate.operation, "trace": trace, "check": report,
                "rejected": rejected, "parent_fingerprints": behaviours.measured}
    return {"ok": False, "checked": bool(checking), "operation": operation, "parents": [],
            "check": None, "rejected": rejected, "parent_fingerprints": behaviours.measured,
            "error": f"no candidate passed after {budget} attempt(s): "
                     + "; ".join(r["reason"] for r in rejected[-3:])}
