"""UpdateExperiment: which fields a request changes (its field mask, or the fields it
sets), and what a new ladder means for the budget ledger."""

from __future__ import annotations

from genesys.v1 import evolution_pb2, experiment_pb2
from google.protobuf import field_mask_pb2
from google.protobuf.message import Message

from .errors import FailedPrecondition, InvalidArgument
from .store import LedgerRow

MAX_PATHS = 100


def _set_paths(message: Message, prefix: str) -> list[str]:
    """Paths of the fields set in a message; singular messages are walked into."""
    paths = []
    for field, value in message.ListFields():
        path = prefix + field.name
        if field.type == field.TYPE_MESSAGE and not field.is_repeated:
            paths.extend(_set_paths(value, path + ".") or [path])
        else:
            paths.append(path)
    return paths


def changed(current: experiment_pb2.Experiment, req: evolution_pb2.UpdateExperimentRequest
            ) -> experiment_pb2.Experiment:
    """The experiment with the request's fields applied (config not yet defaulted)."""
    if req.HasField("update_mask"):
        paths = list(req.update_mask.paths)
        if len(paths) > MAX_PATHS:
            raise InvalidArgument("update_mask.paths", f"more than {MAX_PATHS} paths")
        for i, path in enumerate(paths):
            if path != "state" and path != "config" and not path.startswith("config."):
                raise InvalidArgument(f"update_mask.paths[{i}]", "only state and config.* change")
    else:
        paths = _set_paths(req.config, "config.") if req.HasField("config") else []
        paths += ["state"] if req.state else []
    mask = field_mask_pb2.FieldMask(paths=paths)
    if not mask.IsValidForDescriptor(experiment_pb2.Experiment.DESCRIPTOR):
        raise InvalidArgument("update_mask", "names a field that does not exist")
    if "state" in paths and not req.state:
        raise InvalidArgument("state", "required when the mask names it")
    source = experiment_pb2.Experiment(config=req.config, state=req.state)
    out = experiment_pb2.Experiment()
    out.CopyFrom(current)
    mask.MergeMessage(source, out, replace_message_field=True, replace_repeated_field=True)
    _keep_rung_settings(current.config, out.config)
    return out


def _keep_rung_settings(old: experiment_pb2.ExperimentConfig,
                        new: experiment_pb2.ExperimentConfig) -> None:
    """A rung the ladder keeps keeps the settings the new one leaves unset (zero), e.g.
    its budget; only new rungs take the server defaults."""
    before = {r.name: r for r in old.ladder.rungs}
    for rung in new.ladder.rungs:
        kept = before.get(rung.name)
        if kept is None:
            continue
        for field in experiment_pb2.Rung.DESCRIPTOR.fields:
            if not getattr(rung, field.name):
                setattr(rung, field.name, getattr(kept, field.name))


def budget_changes(old: experiment_pb2.ExperimentConfig, new: experiment_pb2.ExperimentConfig,
                   rows: list[LedgerRow]) -> dict[str, int]:
    """rung -> new total for every rung whose budget changed or has no ledger row; raises
    FailedPrecondition (before anything is written) below what a rung already used."""
    before = {r.name: r.budget for r in old.ladder.rungs}
    used = {r.rung: r.reserved + r.committed for r in rows}
    out = {}
    for i, rung in enumerate(new.ladder.rungs):
        if rung.name in used and before.get(rung.name) == rung.budget:
            continue
        if rung.budget < used.get(rung.name, 0):
            raise FailedPrecondition(f"config.ladder.rungs[{i}].budget {rung.budget} < "
                                     f"{used[rung.name]} already reserved or committed")
        out[rung.name] = rung.budget
    return out


def removed_rungs(old: experiment_pb2.ExperimentConfig, new: experiment_pb2.ExperimentConfig
                  ) -> list[str]:
    kept = {r.name for r in new.ladder.rungs}
    return [r.name for r in old.ladder.rungs if r.name not in kept]
