"""`python -m ladder`: the offline plan and the review tools around it.

Every command runs the Pulumi program under mocks (no credentials, no Pulumi
CLI). A user's config mistake exits 2 with one line per problem, never a
traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable

from rich.console import Console
from rich.markup import escape
from rich.tree import Tree

from . import dashboard, engine
from .config import ConfigError
from .preflight import PreflightError

console = Console(highlight=False, emoji=False)


def _plan_tree(plan: engine.Plan) -> Tree:
    root = Tree(f"[bold]{plan.project}-{plan.stack}[/] (phase {plan.config.phase}: {plan.config.phase_spec.name})")
    nodes: dict[str | None, Tree] = {None: root}
    for res in plan.resources:  # registration order: parents come before children
        parent = nodes.get(res.parent, root)
        marks = [m for m, on in (("protect", res.options["protect"]), ("retain", res.options["retainOnDelete"])) if on]
        label = f"{res.name} [dim]{res.type}[/]" + (f" [yellow]({', '.join(marks)})[/]" if marks else "")
        nodes[res.urn] = parent.add(label)
    return root


def cmd_plan(args: argparse.Namespace) -> int:
    plan = engine.run(args.stack)
    if args.json:
        print(json.dumps(plan.to_json(), indent=2, sort_keys=False))
        return 0
    if args.markdown:
        from .report import plan_markdown

        print(plan_markdown(plan))
        return 0
    console.print(_plan_tree(plan))
    console.print(f"\n[bold]{len(plan.resources)} resources[/] ({sum(r.custom for r in plan.resources)} cloud, "
                  f"{sum(not r.custom for r in plan.resources)} components)")
    for type_, n in plan.counts().items():
        console.print(f"  {n:3d}  {type_}")
    console.print("\n[bold]Outputs[/]")
    for name, value in engine.public(plan.outputs).items():
        console.print(f"  {name}: {escape(str(value))}")
    if plan.unused_keys:
        console.print(f"\n[yellow]Unused by phase {plan.config.phase}:[/] {', '.join(plan.unused_keys)}")
    return 0


def cmd_stacks(args: argparse.Namespace) -> int:
    for name in engine.stack_names():
        print(name)
    return 0


COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]] = {}


def command(name: str, help_: str):
    """Register a subcommand: the decorated function adds its arguments; `run` executes it."""

    def wrap(configure: Callable[[argparse.ArgumentParser], None]):
        def register(run: Callable[[argparse.Namespace], int]):
            COMMANDS[name] = (help_, configure, run)
            return run

        return register

    return wrap


def _plan_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("stack", help="preset stack name, e.g. phase2")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="machine-readable plan")
    fmt.add_argument("--markdown", action="store_true", help="PR-comment markdown with a Mermaid diagram")


COMMANDS["plan"] = ("offline plan of a stack: resource tree, counts, outputs", _plan_args, cmd_plan)
COMMANDS["stacks"] = ("list the preset stacks", lambda p: None, cmd_stacks)
COMMANDS["dashboard"] = (dashboard.HELP, dashboard.dashboard_args, dashboard.cmd_dashboard)


def _load_extensions() -> None:
    """Subcommands defined in their own modules register themselves on import."""
    import importlib

    for module in ("render", "diff", "cost", "review", "docs", "recommend", "prices_refresh", "policy", "ansible_vars",
                   "preflight.ami"):
        try:
            importlib.import_module(f"ladder.{module}")
        except ModuleNotFoundError as err:
            if err.name != f"ladder.{module}":
                raise


def main(argv: list[str] | None = None) -> int:
    _load_extensions()
    parser = argparse.ArgumentParser(prog="python -m ladder", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (help_, configure, _) in COMMANDS.items():
        configure(sub.add_parser(name, help=help_, description=help_))
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command][2](args)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except PreflightError as err:  # what `pulumi preview` (provider) or `pulumi up` (AWS) would refuse
        print(f"error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `| head` closed the pipe: not an error
        return 0
