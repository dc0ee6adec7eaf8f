"""Proposal and review: the proposer writes a design idea, the reviewer rates it.

Literature search rounds come first when a knowledge service is configured (the trace says
so when none is). A proposal too close to an earlier attempt, a sibling, or a past
proposal of the experiment is sent back without spending a review. Below the review
threshold the proposer tries again, seeing its last attempt and the review.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from .context import DesignContext
from .session import Abandoned

UNIT_NAME = r"^[A-Z][A-Za-z0-9_]{0,63}$"
SEARCH_SCHEMA = {"type": "object", "required": ["queries"], "additionalProperties": False,
                 "properties": {"queries": {"type": "array", "maxItems": 3,
                                            "items": {"type": "string", "maxLength": 200}}}}
REVIEW_SCHEMA = {"type": "object", "required": ["review", "rating"], "additionalProperties": False,
                 "properties": {"review": {"type": "string", "maxLength": 2000},
                                "rating": {"type": "integer", "minimum": 1, "maximum": 5}}}


@dataclass
class Proposal:
    title: str
    unit: str  # the unit to (re)write first: the selected unit, or the new root
    text: str
    rating: float = 0.0
    review: str = ""


def proposal_schema(ctx: DesignContext) -> dict:
    if ctx.operation == "scratch":
        unit = {"type": "string", "pattern": UNIT_NAME}
    else:
        unit = {"type": "string", "enum": list(ctx.parents[0].units)}
    return {"type": "object", "required": ["title", "unit", "proposal"], "additionalProperties": False,
            "properties": {"title": {"type": "string", "maxLength": 120}, "unit": unit,
                           "proposal": {"type": "string", "maxLength": 1500}}}


def similarity(a: str, b: str) -> float:
    return difflib.SequenceMatcher(None, a.lower().split(), b.lower().split()).ratio()


def _search(ctx: DesignContext, base: dict) -> list[dict]:
    if ctx.knowledge is None:
        ctx.trace.note("literature search skipped: no knowledge service is configured")
        return []
    passages: list[dict] = []
    for round_ in range(1, ctx.settings.search_rounds + 1):
        answer = ctx.session.ask("proposer", "search", {**base, "passages": passages},
                                 SEARCH_SCHEMA, attempt=round_)
        for query in answer.value["queries"]:
            for p in ctx.knowledge.search(query, k=3):
                passages.append({"title": p.title, "section": p.section, "text": p.text[:800]})
        ctx.trace.note(f"search round {round_}: {len(answer.value['queries'])} queries, "
                       f"{len(passages)} passages")
    return passages


def _too_similar(ctx: DesignContext, text: str, earlier: list[str]) -> str:
    """What the proposal repeats, or ""."""
    limit = ctx.settings.similarity_threshold
    for i, old in enumerate(earlier):
        if similarity(text, old) >= limit:
            return f"your attempt {i + 1}"
    for sibling in ctx.siblings:
        if sibling.get("proposal") and similarity(text, sibling["proposal"]) >= limit:
            return f"the sibling design {sibling.get('name')}"
    return ""


def _similar_past(ctx: DesignContext, text: str) -> list[dict]:
    if ctx.knowledge is None:
        return []
    hits = ctx.knowledge.similar_proposals(ctx.experiment, text, k=3)
    return [{"text": h.text[:1500], "rating": h.rating, "review": h.review[:600], "score": h.score}
            for h in hits]


def propose(ctx: DesignContext) -> Proposal:
    base = {"operation": ctx.operation, "parents": ctx.parents,
            "metrics": [ctx.parent_metrics(i) for i in range(len(ctx.parents))],
            "siblings": ctx.siblings}
    passages = _search(ctx, base)
    earlier: list[str] = []
    last: dict | None = None
    for attempt in range(1, ctx.settings.proposal_attempts + 1):
        answer = ctx.session.ask("proposer", "propose", {**base, "passages": passages, "last": last},
                                 proposal_schema(ctx), attempt=attempt)
        p = Proposal(answer.value["title"], answer.value["unit"], answer.value["proposal"])
        ctx.trace.proposal = f"{p.title}\n\n{p.text}"
        similar = _similar_past(ctx, p.text)
        repeated = _too_similar(ctx, p.text, earlier) or next(
            (f"past proposal {h['text'][:60]!r}" for h in similar
             if h["score"] >= ctx.settings.similarity_threshold), "")
        earlier.append(p.text)
        if repeated:
            ctx.session.credit(answer, False)
            ctx.trace.note(f"proposal {attempt} sent back unreviewed: too similar to {repeated}")
            last = {"proposal": p, "review": f"Not reviewed: it is too similar to {repeated}. "
                                             "Propose something different.", "rating": 0}
            continue
        review = ctx.session.ask("reviewer", "review", {**base, "proposal": p, "similar": similar},
                                 REVIEW_SCHEMA, attempt=attempt)
        p.rating, p.review = float(review.value["rating"]), review.value["review"]
        ctx.trace.review, ctx.trace.review_rating = p.review, p.rating
        accepted = p.rating >= ctx.settings.review_threshold
        ctx.session.credit(answer, accepted)
        ctx.session.credit(review, True)
        ctx.emit({"stage": "review", "attempt": attempt,
                  "message": f"proposal {attempt} rated {p.rating:g}: {p.title}"})
        if ctx.knowledge is not None:
            ctx.knowledge.add_proposal(ctx.experiment, f"{ctx.job_id or ctx.seed}-{attempt}", p.text, p.rating,
                                       p.review, metadata={"title": p.title, "unit": p.unit})
        if accepted:
            ctx.trace.metadata["proposal_attempts"] = attempt
            return p
        ctx.trace.note(f"proposal {attempt} refused (rating {p.rating:g}): {p.title}")
        last = {"proposal": p, "review": p.review, "rating": p.rating}
    raise Abandoned(f"no proposal reached the review threshold {ctx.settings.review_threshold:g} "
                    f"in {ctx.settings.proposal_attempts} attempts")
