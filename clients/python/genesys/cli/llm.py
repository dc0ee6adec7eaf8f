"""`genesys llm ...`: talk to the LLM gateway (models, chat, usage)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import click

address_option = click.option(
    "--address", envvar="GENESYS_LLM_ADDRESS", default="127.0.0.1:50061", show_default=True,
    help="Gateway host:port (env GENESYS_LLM_ADDRESS).",
)
token_option = click.option("--token", envvar="GENESYS_LLM_TOKEN", default=None,
                            help="Bearer token (env GENESYS_LLM_TOKEN).")
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


def _client(address: str, token: str | None, **kwargs):
    from genesys.client.llm import LLM

    return LLM(address, token=token, **kwargs)


def _fail(exc: Exception) -> click.ClickException:
    return click.ClickException(str(exc))


@click.command("models")
@address_option
@token_option
@json_option
def models_cmd(address: str, token: str | None, as_json: bool) -> None:
    """List the gateway's models, their roles and replicas."""
    from google.protobuf.json_format import MessageToDict

    from genesys.client.llm import LLMError
    from genesys.v1 import llm_gateway_pb2 as pb

    try:
        with _client(address, token) as llm:
            models = llm.models()
    except LLMError as exc:
        raise _fail(exc) from exc
    if as_json:
        click.echo(json.dumps([MessageToDict(m, preserving_proto_field_name=True) for m in models], indent=2))
        return
    for m in models:
        roles = ",".join(MessageToDict(m).get("roles", [])).replace("LLM_ROLE_", "").lower() or "-"
        healthy = sum(r.state == pb.REPLICA_STATE_HEALTHY for r in m.replicas)
        click.echo(f"{m.name}  roles={roles}  replicas={healthy}/{len(m.replicas)} healthy  "
                   f"in_flight={m.in_flight} queued={m.queued} max_context={m.max_context}")


@click.command("chat")
@click.argument("prompt")
@click.option("--model", default=None, help="Model name (see `genesys llm models`).")
@click.option("--role", type=click.Choice(["proposer", "reviewer", "planner", "coder", "observer"]),
              default=None, help="Designer role; the gateway maps it to a model.")
@click.option("--system", default=None, help="System message.")
@click.option("--max-tokens", type=int, default=0, help="Completion tokens (0 = model default).")
@click.option("--temperature", type=float, default=None)
@click.option("--seed", type=int, default=None)
@click.option("--json-schema", "schema_file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Constrain the answer to this JSON Schema file.")
@click.option("--stream/--no-stream", default=False, help="Print text as it is generated.")
@click.option("--caller", default="", help="Accounting caller id (ignored with auth on).")
@click.option("--experiment", default="", help="Accounting experiment.")
@address_option
@token_option
@json_option
def chat_cmd(prompt: str, model: str | None, role: str | None, system: str | None, max_tokens: int,
             temperature: float | None, seed: int | None, schema_file: str | None, stream: bool,
             caller: str, experiment: str, address: str, token: str | None, as_json: bool) -> None:
    """Ask the gateway for one completion of PROMPT."""
    from genesys.client.llm import LLMError

    schema = None
    if schema_file:
        try:
            schema = json.loads(Path(schema_file).read_text())
        except json.JSONDecodeError as exc:
            raise click.UsageError(f"--json-schema {schema_file}: not valid JSON: {exc}") from exc
    options = dict(model=model, role=role, system=system, max_tokens=max_tokens,
                   temperature=temperature, seed=seed, json_schema=schema)
    try:
        with _client(address, token, caller=caller, experiment=experiment) as llm:
            if stream and not as_json:
                for delta in llm.stream(prompt, **options):
                    click.echo(delta, nl=False)
                click.echo()
                return
            result = llm.chat(prompt, **options)
    except LLMError as exc:
        raise _fail(exc) from exc
    if as_json:
        click.echo(json.dumps(dataclasses.asdict(result)))
    else:
        click.echo(result.text)


@click.command("usage")
@click.option("--caller", default="", help="Only this caller.")
@click.option("--experiment", default="", help="Only this experiment.")
@address_option
@token_option
@json_option
def usage_cmd(caller: str, experiment: str, address: str, token: str | None, as_json: bool) -> None:
    """Token accounting per caller, experiment and model."""
    from google.protobuf.json_format import MessageToDict

    from genesys.client.llm import LLMError

    try:
        with _client(address, token) as llm:
            records = llm.usage(caller, experiment)
    except LLMError as exc:
        raise _fail(exc) from exc
    if as_json:
        click.echo(json.dumps([MessageToDict(r, preserving_proto_field_name=True,
                                             always_print_fields_with_no_presence=True)
                               for r in records], indent=2))
        return
    for r in records:
        click.echo(f"{r.caller or '-'}  {r.experiment or '-'}  {r.model or '-'}  requests={r.requests} "
                   f"errors={r.errors} prompt_tokens={r.prompt_tokens} "
                   f"completion_tokens={r.completion_tokens}")
