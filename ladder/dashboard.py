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


# -- docs (`ladder docs`): what each phase watches, and what publishes it -------------------------

SIGNALS_DOC = "docs/signals.md"
README_BEGIN, README_END = "<!-- metrics:begin", "<!-- metrics:end -->"
_AWS_SERVICE = {"AWS/EC2": "EC2", "AWS/ApplicationELB": "the ALB", "AWS/NetworkELB": "the PgBouncer NLB",
                "AWS/RDS": "RDS", "AWS/ElastiCache": "ElastiCache", "AWS/AutoScaling": "EC2 Auto Scaling",
                "AWS/WAFV2": "AWS WAF"}


def publisher_of(namespace: str, metric_name: str, phase: int) -> str:
    """Who publishes a series, in words (the README/docs tables; tests/unit/test_signals.py checks it)."""
    from .metrics import BY_NAME

    if namespace.startswith("AWS/"):
        return f"AWS ({_AWS_SERVICE.get(namespace, namespace)})"
    m = BY_NAME[(namespace, metric_name)]
    return m.publisher_eks if phase == 6 and m.publisher_eks else m.publisher_hosts


def _alarm_rows(plan: Any) -> list[dict[str, Any]]:
    rows = []
    for a in plan.of_type("aws:cloudwatch/metricAlarm:MetricAlarm"):
        i = a.inputs
        if i.get("metricQueries"):
            used = [(q["metric"]["namespace"], q["metric"]["metricName"], q["metric"].get("stat", ""))
                    for q in i["metricQueries"] if "metric" in q]
            what = next(q["expression"] for q in i["metricQueries"] if q.get("returnData"))
        else:
            used = [(i["namespace"], i["metricName"], i.get("extendedStatistic") or i.get("statistic", ""))]
            what = f"{used[0][2]} of {used[0][1]}"
        rows.append({"name": a.name, "description": i.get("alarmDescription", ""), "used": used, "what": what,
                     "threshold": i["threshold"], "op": i["comparisonOperator"], "missing": i["treatMissingData"]})
    return rows


def signals_markdown(plans: dict[int, Any]) -> str:
    """docs/signals.md: per phase, the metrics its alarms watch with their publishers, the alarms, and
    the dashboard (the same tables `ladder dashboard phaseN --markdown` prints)."""
    lines = ["# Signals per phase", "",
             "<!-- Generated by `python -m ladder docs` from the preset stacks' offline plans and ladder/metrics.py. "
             "Do not edit by hand. -->", "",
             "Every alarm's metric is published by something in the same stack (tests/unit/test_signals.py). "
             "`missing` is CloudWatch's TreatMissingData for the alarm.", ""]
    for n, plan in sorted(plans.items()):
        lines += [f"## Phase {n}", ""]
        if isinstance(plan, Exception):
            lines += [f"The preset does not plan: {plan}", ""]
            continue
        rows = _alarm_rows(plan)
        watched = sorted({(ns, m) for r in rows for ns, m, _ in r["used"]})
        lines += ["### Metrics and who publishes them", "", "| namespace | metric | published by |", "|---|---|---|"]
        lines += [f"| `{ns}` | `{m}` | {publisher_of(ns, m, n)} |" for ns, m in watched]
        lines += ["", "### Alarms", "", "| alarm | fires on | threshold | missing |", "|---|---|---|---|"]
        for r in sorted(rows, key=lambda r: r["name"]):
            op = "<" if r["op"].startswith("Less") else ">"
            what = r["what"].replace("|", "\\|")
            lines.append(f"| `{r['name']}` | {r['description']}: `{what}` | {op} {r['threshold']:g} | {r['missing']} |")
        lines += ["", "### Dashboard", "", markdown(plan_body(plan)), ""]
    return "\n".join(lines)


def readme_with_metrics_table(readme: str) -> str:
    """README.md with the metrics contract table between its markers regenerated (ladder/metrics.py)."""
    from .metrics import markdown_table

    start = readme.index(README_BEGIN)
    head_end = readme.index("\n", start) + 1
    return readme[:head_end] + markdown_table() + "\n" + readme[readme.index(README_END):]
