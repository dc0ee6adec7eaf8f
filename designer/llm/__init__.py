"""LLM designers: agents that write new designs through the LLM gateway.

Modes (payload "designer"): ``llm`` (proposal and review, then unit-by-unit implementation
with the checker in the loop), ``llm-direct`` (the whole design file in one go, the paper's
baseline) and ``llm-edit`` (the model picks one valid recombination operation from a JSON
enum; small models can drive it). Run it in the agent's design child, never inside the
sandbox: the checker starts its own sandboxed child for every candidate::

    design_job(payload, emit=None, *, check=None, llm=None, knowledge=None) -> dict

payload keys, besides those of the recombination designer (operation, parents [{"id",
"name", "source", "results"?}], library, seeds, seed, known_digests, scale): "designer",
"experiment", "gateway" (address; default GENESYS_LLM_ADDRESS), "caller", "llm"
(DesignerSettings overrides), "llm_roles" (ExperimentConfig.llm_roles as dicts; several
per role: a bandit picks), "model_stats" (file keeping the bandit's record across jobs),
"siblings" [{"name", "proposal", "review", "rating"}], "checkpoint" (journal file: a job
run again with the same file resumes without repeating an LLM call or a check).

Returns the recombination designer's result shape ("ok", "source", "name", "digest",
"parents", "operation", "check", "rejected", "trace", "error"); "trace" is a
genesys.v1.DesignTrace dict, present also when the design was abandoned (ok false, the
reason in its abandoned_reason, "failure_kind": design | infrastructure | budget | config).
"""

from .job import design_job

__all__ = ["design_job"]
