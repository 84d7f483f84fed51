"""The offline engine: the unchanged Pulumi program run under mocks.

It reads a preset stack file, applies the same config rules as the Pulumi CLI
(declared types in Pulumi.yaml) and the config model, runs `__main__.py` with
`pulumi.runtime.set_mocks`, and records every resource registration with its
type, name, URN, parent, inputs (secrets kept marked) and resource options.
No credentials, no Pulumi CLI.
"""

from __future__ import annotations

import asyncio
import runpy
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from google.protobuf import json_format
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import settings as pulumi_settings
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _ensure_event_loop, _sync_await

from . import stackconfig
from .config import NAMESPACE, ConfigError, StackConfig, from_cli_values, unused_keys
from .mocks import AwsMocks

REPO = stackconfig.REPO

_SIG = "4dabf18193072939515e22adb298388d"
_SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
_RESOURCE_SIG = "5cf8f73096256a8f31e491e813e4eb8e"
_UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"


@dataclass(frozen=True)
class Secret:
    """A value the program marked secret. Its text is never serialised."""

    value: Any

    def __repr__(self) -> str:
        return "[secret]"


@dataclass
class Resource:
    urn: str
    type: str
    name: str
    parent: str | None
    custom: bool
    inputs: dict[str, Any]
    options: dict[str, Any]
    id: str = ""  # the (mock) cloud id other resources reference
    state: dict[str, Any] = field(default_factory=dict)  # outputs the mocks answered (offline only)
    outputs: dict[str, Any] = field(default_factory=dict)  # register_outputs of components

    def to_json(self) -> dict[str, Any]:
        return {
            "urn": self.urn,
            "id": self.id,
            "type": self.type,
            "name": self.name,
            "parent": self.parent,
            "custom": self.custom,
            "inputs": public(self.inputs),
            "options": self.options,
        }


@dataclass
class Plan:
    project: str
    stack: str
    config: StackConfig
    resources: list[Resource]
    outputs: dict[str, Any]
    unused_keys: list[str]

    @property
    def by_urn(self) -> dict[str, Resource]:
        return {r.urn: r for r in self.resources}

    def of_type(self, type_: str) -> list[Resource]:
        return [r for r in self.resources if r.type == type_]

    def one(self, type_: str, name: str | None = None) -> Resource:
        found = [r for r in self.of_type(type_) if name is None or r.name == name]
        if len(found) != 1:
            raise LookupError(f"expected one {type_} named {name!r}, found {[r.name for r in found]}")
        return found[0]

    def children(self, parent: Resource) -> list[Resource]:
        return [r for r in self.resources if r.parent == parent.urn]

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.resources:
            out[r.type] = out.get(r.type, 0) + 1
        return dict(sorted(out.items()))

    def to_json(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "stack": self.stack,
            "phase": self.config.phase,
            "region": self.config.region,
            "resourceCount": len(self.resources),
            "counts": self.counts(),
            "unusedKeys": self.unused_keys,
            "outputs": public(self.outputs),
            "resources": [r.to_json() for r in self.resources],
        }


def public(value: Any) -> Any:
    """The value with every secret replaced by the marker "[secret]"."""
    if isinstance(value, Secret):
        return "[secret]"
    if isinstance(value, dict):
        return {k: public(v) for k, v in value.items()}
    if isinstance(value, list):
        return [public(v) for v in value]
    return value


def strings(value: Any) -> Iterator[str]:
    """Every string inside nested inputs or outputs (for scans: secrets, references)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings(v)


def _decode(value: Any) -> Any:
    """Turn the wire format (secret/resource signatures) into plain data and Secret markers."""
    if isinstance(value, dict):
        sig = value.get(_SIG)
        if sig == _SECRET_SIG:
            return Secret(_decode(value.get("value")))
        if sig == _RESOURCE_SIG:
            return value.get("urn")
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if value == _UNKNOWN:
        return "<unknown>"
    if isinstance(value, float) and value.is_integer():  # protobuf Structs carry every number as a double
        return int(value)
    return value


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """MockMonitor that also keeps what a plan needs: parent, options, raw inputs."""

    def __init__(self, mocks: pulumi.runtime.Mocks):
        super().__init__(mocks)
        self.recorded: list[Resource] = []
        self._by_urn: dict[str, Resource] = {}

    def RegisterResource(self, request):  # noqa: N802 - gRPC method name
        response = super().RegisterResource(request)
        if request.type == "pulumi:pulumi:Stack":
            return response
        inputs = _decode(json_format.MessageToDict(request.object, preserving_proto_field_name=True))
        options = {
            "protect": bool(request.protect),
            "retainOnDelete": bool(request.retainOnDelete),
            "dependsOn": sorted(request.dependencies),
            "ignoreChanges": list(request.ignoreChanges),
            "replaceOnChanges": list(request.replaceOnChanges),
            "deleteBeforeReplace": bool(request.deleteBeforeReplace),
            "additionalSecretOutputs": list(request.additionalSecretOutputs),
            "provider": request.provider or None,
        }
        res = Resource(
            urn=response.urn,
            type=request.type,
            name=request.name,
            parent=request.parent if request.parent and "::pulumi:pulumi:Stack::" not in request.parent else None,
            custom=bool(request.custom),
            inputs=inputs,
            options=options,
            id=response.id,
            state=dict(self.resources[response.urn].state) if response.urn in self.resources else {},
        )
        self.recorded.append(res)
        self._by_urn[res.urn] = res
        return response

    def RegisterResourceOutputs(self, request):  # noqa: N802
        res = self._by_urn.get(request.urn)
        if res is not None:
            res.outputs = _decode(json_format.MessageToDict(request.outputs, preserving_proto_field_name=True))
        return super().RegisterResourceOutputs(request)


# ---------------------------------------------------------------------------
# Stack files, and the config the CLI hands the program (ladder.stackconfig)

project_file = stackconfig.project_file
project_defaults = stackconfig.project_defaults


def stack_names(root: Path = REPO) -> list[str]:
    directory = root / project_file(root).get("stackConfigDir", ".")
    names = [p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in directory.glob("Pulumi.*.yaml")]
    return sorted(names, key=lambda n: (len(n), n))


def read_stack(stack: str, root: Path = REPO) -> dict[str, Any]:
    path = stackconfig.stack_file_path(stack, root)
    if not path.exists():
        raise ConfigError([f"stack {stack!r}: no file {path.relative_to(root)}; stacks: {', '.join(stack_names(root))}"])
    data = yaml.safe_load(path.read_text()) or {}
    return data.get("config") or {}


def cli_config(stack: str, values: dict[str, Any], root: Path = REPO) -> stackconfig.CliConfig:
    """The stack file's values as the Pulumi CLI hands them to the program (its checks applied)."""
    return stackconfig.cli_config(stack, values, root)


def program_config(cli: stackconfig.CliConfig, root: Path = REPO) -> StackConfig:
    """What `config.from_pulumi` reads from the same hand-over: one parser for both engines."""
    return from_cli_values(cli.values, cli.secret_keys, root)


def validate_stack(values: dict[str, Any], root: Path = REPO, stack: str = "stack") -> StackConfig:
    return program_config(cli_config(stack, values, root), root)


def run(stack: str, *, root: Path = REPO, values: dict[str, Any] | None = None,
        previous_outputs: dict[str, Any] | None = None, preflight: bool = True,
        deployed: dict[str, dict[str, Any]] | None = None) -> Plan:
    """Plan `stack` offline. `values` replaces the stack file's config (tests use it).

    Like `pulumi preview`, a plan whose inputs the provider or AWS would refuse fails with
    the preflight's violations (`ladder.preflight`); `preflight=False` returns it anyway,
    for the tests of the preflight itself. `deployed` is what the mocked AWS reports for the
    resources `previous_outputs` name (ladder.mocks.AwsMocks; default: the outputs' values).
    """
    values = read_stack(stack, root) if values is None else values
    cli = cli_config(stack, values, root)
    cfg = program_config(cli, root)  # fail before any resource, as the program would
    monitor, outputs = execute(stack, cli, cfg.region, root=root, previous_outputs=previous_outputs,
                               deployed=deployed)
    ours = stackconfig.program_values(cli.values, NAMESPACE, root)
    stack_set = {k: v for k, v in ours.items() if f"{NAMESPACE}:{k}" in values}  # for the unused-key report
    plan = Plan(project_file(root)["name"], stack, cfg, monitor.recorded, outputs, unused_keys(stack_set, cfg.phase))
    if preflight:
        from . import preflight as preflight_rules

        violations = preflight_rules.check(plan, previous_outputs)
        if violations:
            raise preflight_rules.PreflightError(violations)
    return plan


def execute(stack: str, cli: stackconfig.CliConfig, region: str, *, root: Path = REPO,
            previous_outputs: dict[str, Any] | None = None, monitor: RecordingMonitor | None = None,
            deployed: dict[str, dict[str, Any]] | None = None) -> tuple[RecordingMonitor, dict[str, Any]]:
    """Run `__main__.py` under mocks with `cli` as the config the CLI hands over, unvalidated
    by the tooling (tests use it to show the program itself refuses bad config before any resource)."""
    monitor = monitor or RecordingMonitor(AwsMocks(region, previous_outputs, deployed))
    pulumi_settings.ROOT.set(None)  # a fresh root stack for every run
    pulumi_mocks.set_mocks(monitor.mocks, project=project_file(root)["name"], stack=stack, preview=False,
                           monitor=monitor)
    # MockSettings leaves the previous run's pending outputs in place: drop them so a
    # failed run cannot raise into the next one.
    pulumi_settings.SETTINGS.outputs = set()
    pulumi.runtime.set_all_config(dict(cli.values), list(cli.secret_keys))
    root_resource = pulumi_settings.get_root_resource()
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    main = str(root / "__main__.py")
    loop = _ensure_event_loop()
    loop.set_exception_handler(_quiet_config_errors)
    try:
        _sync_await(run_pulumi_func(lambda: None if runpy.run_path(main, run_name="__main__") else None))
    finally:
        for task in asyncio.all_tasks(_ensure_event_loop()):
            task.cancel()
    assert root_resource is not None  # set_mocks made one
    return monitor, {name: _resolve(value) for name, value in root_resource.outputs.items()}  # type: ignore[attr-defined]  # the root Stack resource has outputs


def _quiet_config_errors(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """A refused config already reached the caller as ConfigError; its copies held by other
    Outputs would otherwise be logged as 'never retrieved' when collected."""
    if not isinstance(context.get("exception"), ConfigError):
        loop.default_exception_handler(context)


def _resolve(value: Any) -> Any:
    out = pulumi.Output.from_input(value)
    resolved = _sync_await(out.future())
    return Secret(resolved) if _sync_await(out.is_secret()) else resolved
