"""The `genesys` command line.

Commands live next to the code they drive and are imported only when invoked, so that
`genesys --help` stays fast and the base install (no torch) can list every command.
Register a command by adding one line to COMMANDS: name -> ("module:attribute", help).
A nested dict is a command group whose own help is under the key "".
"""

from __future__ import annotations

import importlib
import sys

import click

from genesys import __version__

Registry = dict[str, "tuple[str, str] | Registry"]

COMMANDS: Registry = {
    "version": ("genesys.cli:version_cmd", "Print the installed Genesys version."),
    "check": ("genesys.lmade.checker_cli:check_cmd", "Check a design file or seed in the sandbox (exit 1 if invalid)."),
    "verify": ("genesys.lmade.verify_cli:verify_cmd", "Check, pre-train and evaluate a design at a scale (one JSON result)."),
    "data": {
        "": ("", "Pre-training corpora: tokenised, deduplicated train/val/test shards."),
        "prepare": ("genesys.lmade.verify_cli:prepare_cmd", "Build shards + manifest from Debian docs, files or a HF dataset."),
        "info": ("genesys.lmade.verify_cli:info_cmd", "Summary (and checksums) of a prepared dataset."),
    },
    "gateway": {
        "": ("", "Run the LLM gateway and prepare its embedded vLLM default."),
        "start": ("genesys.llm_gateway.cli:start_cmd", "Start the LLM gateway (and the vLLM servers it launches)."),
        "prepare-vllm": ("genesys.llm_gateway.cli:prepare_vllm_cmd", "Create the venv vLLM runs from (cached)."),
        "prepare-model": ("genesys.llm_gateway.cli:prepare_model_cmd", "HF-format copy of a packaged model (smollm2)."),
        "token": ("genesys.llm_gateway.cli:token_cmd", "Make a bearer token and its config entry."),
    },
    "llm": {
        "": ("", "Ask the LLM gateway for completions."),
        "models": ("genesys.cli.llm:models_cmd", "List models, roles and replicas."),
        "chat": ("genesys.cli.llm:chat_cmd", "One completion of a prompt (optionally JSON-schema constrained)."),
        "usage": ("genesys.cli.llm:usage_cmd", "Token accounting per caller and experiment."),
    },
    "kb": {
        "": ("", "The literature index (shared service or embedded) that designers search."),
        "ingest": ("genesys.cli.kb:ingest_cmd", "Ingest PDF/Markdown/text/LaTeX/Python files (--starter: the notes)."),
        "search": ("genesys.cli.kb:search_cmd", "Top-k passages for a query (hybrid dense + lexical)."),
        "list": ("genesys.cli.kb:list_cmd", "Indexed documents."),
        "show": ("genesys.cli.kb:show_cmd", "A document's metadata and chunks."),
        "delete": ("genesys.cli.kb:delete_cmd", "Delete a document."),
        "stats": ("genesys.cli.kb:stats_cmd", "Counts, embedder and backend of the index."),
    },
    "design": {
        "": ("", "Inspect designs locally and in the evolution tree."),
        "info": ("genesys.lmade.cli:design_info", "Unit tree, digest and tuned size per scale."),
        "submit": ("genesys.cli.design:submit_cmd", "Submit a design file to an experiment."),
        "list": ("genesys.cli.design:list_cmd", "List the designs of an experiment."),
        "show": ("genesys.cli.design:show_cmd", "Show a design: tree, results, source."),
        "lineage": ("genesys.cli.design:lineage_cmd", "Ancestors and descendants of a design."),
        "propose": ("genesys.cli.design:propose_cmd", "Run one LLM design here and submit it (exit 1: abandoned)."),
        "trace": ("genesys.cli.design:trace_cmd", "How a design was made: proposal, review, LLM calls, checks."),
    },
    "server": {
        "": ("", "Run the coordinator."),
        "start": ("genesys.server.cli:start_cmd", "Start the coordinator (gRPC) in the foreground."),
    },
    "experiment": {
        "": ("", "Create and inspect experiments on the coordinator."),
        "create": ("genesys.cli.experiment:create_cmd", "Create an experiment (registers seeds)."),
        "list": ("genesys.cli.experiment:list_cmd", "List experiments."),
        "show": ("genesys.cli.experiment:show_cmd", "Show an experiment and its config."),
        "update": ("genesys.cli.experiment:update_cmd", "Pause/resume/finish an experiment or replace its config."),
    },
    "leaderboard": ("genesys.cli.experiment:leaderboard_cmd", "Designs ranked by fitness or rung score."),
    "report": ("genesys.cli.report:report_cmd", "Write an experiment's report: PNG plots + HTML leaderboard."),
    "workers": ("genesys.cli.ops:workers_cmd", "Workers registered with the coordinator."),
    "jobs": ("genesys.cli.ops:jobs_cmd", "DESIGN/VERIFY jobs (or cancel one)."),
    "budget": {
        "": ("", "The ladder-of-scales budget of an experiment."),
        "show": ("genesys.cli.ops:budget_show_cmd", "Budget per rung: total, released, reserved, committed."),
        "set": ("genesys.cli.ops:budget_set_cmd", "Set a rung's total budget (admin)."),
    },
    "token": {
        "": ("", "Coordinator bearer tokens (admin)."),
        "create": ("genesys.cli.ops:token_create_cmd", "Create a token with a role."),
        "revoke": ("genesys.cli.ops:token_revoke_cmd", "Revoke a token."),
    },
    "watch": ("genesys.cli.ops:watch_cmd", "Stream experiment events."),
    "ui": ("genesys.dashboard.cli:ui_cmd", "Serve the live web dashboard (experiments, leaderboard, designs, jobs)."),
    "agent": {
        "": ("", "Run a GPU agent (worker) that leases DESIGN/VERIFY jobs."),
        "start": ("genesys.gpu_agent.cli:start_cmd", "Start an agent against a coordinator."),
    },
    "demo": ("genesys.gpu_agent.demo:demo_cmd", "The whole loop locally: seeds verified, N designs evolved, report."),
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def __init__(self, *args, registry: Registry, **kwargs):
        super().__init__(*args, **kwargs)
        self._registry = registry

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(name for name in self._registry if name)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        entry = self._registry.get(name)
        if entry is None or name == "":
            return None
        if isinstance(entry, dict):
            group_help = entry.get("", ("", ""))[1]
            return LazyGroup(name=name, registry=entry, help=group_help, short_help=group_help)
        target, _ = entry
        module_name, attr = target.split(":")
        command = getattr(importlib.import_module(module_name), attr)
        if not isinstance(command, click.Command):
            raise TypeError(f"{target} is not a click command")
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Short help comes from the registry, so listing commands imports nothing.
        rows = []
        for name in self.list_commands(ctx):
            entry = self._registry[name]
            rows.append((name, entry[""][1] if isinstance(entry, dict) else entry[1]))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.command("version")
def version_cmd() -> None:
    """Print the installed Genesys version."""
    click.echo(__version__)


cli = LazyGroup(
    name="genesys",
    registry=COMMANDS,
    help="Genesys: LLM agents that discover language-model block architectures.",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def main() -> None:
    try:
        cli.main(prog_name="genesys", standalone_mode=True)
    except KeyboardInterrupt:
        sys.exit(130)
