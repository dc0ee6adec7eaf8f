"""Designers: agents that create new designs from parents of the evolution tree.

The recombination designer (no LLM) works by genetic operators on unit trees. It only
parses and rewrites design source (genesys.design, no torch); candidate designs run only
inside the checker's sandbox.

DESIGN-job entry point (call it in the agent's process, NOT inside run_sandboxed: the
checker starts its own sandboxed child for each candidate)::

    design_job(payload: dict, emit: Callable[[dict], None] | None = None, *,
               check: Callable[[Design], report] | None = None) -> dict

payload keys: "operation" (mutation | crossover | scratch; crossover needs 2 parents and
falls back to mutation), "parents" [{"id", "name", "source", "label"?}], optional "library" /
"seeds" [{"name", "source"}] of extra donor designs (the installed seeds are always
donors), "seed" (int; same payload -> same result), "known_digests" [sha256] to skip,
"max_candidates" (default 6), "scale" (checker scale, default "check"), "check" (bool,
default true). ``check`` defaults to ``genesys.lmade.checker.check(design, scale=...)``; a
report passes when its ``ok`` (or ``valid``, as CheckReport has) is true. ``emit``
receives {"stage", "attempt", "fraction", "message"} progress events.

Returns {"ok", "checked", "source", "name", "label" (what changed, e.g.
gpt+MultiScaleRetention), "digest", "parents" (ids), "operation", "trace" (a dict for
json_format.ParseDict into genesys.v1.DesignTrace: operation enum name, notes, agent,
attempts, metadata_json with "label", check_report_json), "check" (report dict),
"rejected" [{"name", "digest", "reason"}]}, plus "error" when ok is false.

Lower level: ``propose(parents, operation, rng, library, labels=None) -> Candidate(design,
operation, parents, notes, label)``, raising ``NoCandidate`` when no operator applies.
"""

from .job import design_job
from .operators import OPERATIONS, Candidate, NoCandidate, propose

__all__ = ["OPERATIONS", "Candidate", "NoCandidate", "design_job", "propose"]
