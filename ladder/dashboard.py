"""One CloudWatch dashboard per stack, drawn from the same specs as its alarms.

Each alarm becomes a graph of the metric (or metric math) it watches, with the alarm's
threshold as a horizontal annotation: a team sees how close the stack is to the next rung.
Body format: CloudWatch API Reference, "Dashboard Body Structure and Syntax" (widgets on a
24-column grid, a `metrics` array of `[namespace, name, dim, value, ..., {options}]` rows or
`{"expression": ...}` rows, `annotations.horizontal` of `{label, value}`; at most 500 widgets).

`python -m ladder dashboard STACK` prints the body of the stack's offline plan (`--markdown`:
a table); `ladder docs` writes one table per phase into docs/.
"""

from __future__ import annotations

import argparse
import json
import re
from dataclasses import dataclass, field
from typing import Any

WIDTH, HEIGHT, COLUMNS = 12, 6, 24
MAX_WIDGETS = 500
# PutDashboard DashboardName: "can contain only alphanumerics, dash (-), and underscore (_)",
# at most 255 characters (CloudWatch API Reference, PutDashboard).
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
DASHBOARD = "aws:cloudwatch/dashboard:Dashboard"


@dataclass(frozen=True)
class Line:
    namespace: str
    metric: str
    dimensions: dict[str, str]
    stat: str
    id: str = ""  # set for the inputs of a metric-math panel


@dataclass(frozen=True)
class Panel:
    """One alarm, as the dashboard draws it."""

    title: str
    alarm: str
    threshold: float
    period: int
    comparison: str
    missing: str
    metrics: list[Line] = field(default_factory=list)
    expression: str = ""


def widget(panel: Panel, region: str, index: int) -> dict[str, Any]:
    rows: list[list[Any]] = []
    for line in panel.metrics:
        options: dict[str, Any] = {"stat": line.stat}
        if line.id:
            options.update(id=line.id, visible=False)  # the inputs; the expression is what is drawn
        dims = [part for k, v in sorted(line.dimensions.items()) for part in (k, v)]
        rows.append([line.namespace, line.metric, *dims, options])
    if panel.expression:
        rows.append([{"expression": panel.expression, "label": panel.alarm, "id": "e1"}])
    below = panel.comparison.startswith("Less")
    return {
        "type": "metric", "width": WIDTH, "height": HEIGHT,
        "x": (index * WIDTH) % COLUMNS, "y": (index * WIDTH) // COLUMNS * HEIGHT,
        "properties": {
            "title": panel.title[:255], "region": region, "view": "timeSeries", "period": panel.period,
            "metrics": rows,
            "annotations": {"horizontal": [{"label": f"{'under' if below else 'over'} this: alarm {panel.alarm}",
                                            "value": panel.threshold}]},
        },
    }


def body(region: str, panels: list[Panel]) -> str:
    if len(panels) > MAX_WIDGETS:
        raise ValueError(f"{len(panels)} alarms: a dashboard holds at most {MAX_WIDGETS} widgets")
    return json.dumps({"widgets": [widget(p, region, i) for i, p in enumerate(panels)]}, sort_keys=True)


def _metric_text(rows: list[list[Any]]) -> str:
    out = []
    for row in rows:
        if isinstance(row[0], dict):
            out.append(f"`{row[0]['expression']}`")
            continue
        *names, options = row
        ns, name, *dims = names
        label = f"{options.get('id')} = " if options.get("id") else ""
        dim_text = ", ".join(f"{dims[i]}={dims[i + 1]}" for i in range(0, len(dims), 2))
        out.append(f"{label}{options['stat']}({ns} {name}{' ' + dim_text if dim_text else ''})")
    return "<br>".join(out)


def markdown(body_json: str) -> str:
    """A table of the dashboard's graphs: what each draws and where its line is."""
    rows = ["| graph | metric(s) | period | threshold line |", "|---|---|---|---|"]
    for w in json.loads(body_json)["widgets"]:
        p = w["properties"]
        line = p["annotations"]["horizontal"][0]
        rows.append(f"| {p['title']} | {_metric_text(p['metrics']).replace('|', chr(92) + '|')} | {p['period']} s "
                    f"| {line['value']:g} ({line['label']}) |")
    return "\n".join(rows)


def plan_body(plan: Any) -> str:
    """The dashboard body of an offline plan (the one Dashboard resource)."""
    boards = plan.of_type(DASHBOARD)
    if len(boards) != 1:
        raise ValueError(f"expected one {DASHBOARD} in the plan of {plan.stack}, found {len(boards)}")
    return str(boards[0].inputs["dashboardBody"])


HELP = "the stack's CloudWatch dashboard (offline plan): JSON body, or --markdown"


def dashboard_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("stack", help="preset stack name, e.g. phase2")
    p.add_argument("--markdown", action="store_true", help="a Markdown table instead of the JSON body")


def cmd_dashboard(args: argparse.Namespace) -> int:
    from . import engine

    text = plan_body(engine.run(args.stack))
    print(markdown(text) if args.markdown else json.dumps(json.loads(text), indent=2, sort_keys=True))
    return 0
