"""Coordinator records <-> what a DESIGN job works with (shared by the agent and the CLI):
parent and sibling entries of a design payload, and the SubmitDesignRequest of a result."""

from __future__ import annotations

import contextlib
import json

from genesys.design import DesignFormatError, load_design
from genesys.v1 import design_pb2, evolution_pb2
from google.protobuf import json_format

OPERATIONS = {"mutation": design_pb2.DESIGN_OPERATION_MUTATION,
              "crossover": design_pb2.DESIGN_OPERATION_CROSSOVER,
              "scratch": design_pb2.DESIGN_OPERATION_SCRATCH}


def parent_entry(design: design_pb2.Design) -> dict:
    """A payload "parents" entry: the source plus the per-rung metrics the proposer sees, and
    the fingerprint (functional duplicates of the parent are rejected)."""
    return {"id": design.id, "name": design.name, "source": design.source, "digest": design.digest,
            "label": design.label, "fingerprint": design.fingerprint,
            "results": {r.rung: dict(r.metrics) for r in design.results}}


def sibling_entries(designs: list[design_pb2.Design]) -> list[dict]:
    """Payload "siblings": earlier proposals from the same parent, with their reviews."""
    return [{"name": d.name, "proposal": d.trace.proposal[:2000], "review": d.trace.review[:1000],
             "rating": d.trace.review_rating} for d in designs if d.trace.proposal]


def submission(value: dict, experiment: str, parent_ids: list[str], agent: str
               ) -> tuple[evolution_pb2.SubmitDesignRequest, str]:
    """(SubmitDesignRequest, "" or why the source did not parse) for a designer's result;
    the coordinator parses the source again either way."""
    source, problem = value["source"], ""
    request = evolution_pb2.SubmitDesignRequest(
        experiment=experiment, name=value.get("name") or "", source=source,
        parents=value.get("parents") or parent_ids, digest=value.get("digest", ""))
    try:
        design = load_design(source, name=value.get("name") or None)
        request.tree.CopyFrom(design.to_proto())
        request.digest = design.digest
    except DesignFormatError as exc:
        problem = str(exc)
    trace = request.trace
    with contextlib.suppress(json_format.ParseError, TypeError):
        json_format.ParseDict(value.get("trace") or {}, trace, ignore_unknown_fields=True)
    if not trace.operation:
        trace.operation = OPERATIONS.get(value.get("operation", ""),
                                         design_pb2.DESIGN_OPERATION_UNSPECIFIED)
    if not trace.check_report_json and isinstance(value.get("check"), dict):
        # the coordinator refuses functional duplicates by the report's fingerprint
        trace.check_report_json = json.dumps(value["check"], default=str)
    trace.agent = f"{trace.agent or 'designer'}@{agent}"
    return request, problem
