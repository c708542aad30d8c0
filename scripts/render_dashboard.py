"""Render deploy/grafana/arbiter-dashboard.json's panels against a Prometheus, as one PNG.

Grafana is not packaged for Debian, so the screenshot in docs/ is made by
this script instead: every panel's PromQL is run through Prometheus'
``/api/v1/query_range`` over the given interval and drawn with matplotlib
in the dashboard's order and titles (rows become section headings in the
panel titles). What Grafana would show, minus its styling.

    .venv/bin/python scripts/render_dashboard.py --prometheus http://127.0.0.1:9090 \\
        --start 1733340000 --end 1733340300 --out docs/images/dashboard.png

``$__rate_interval`` becomes ``--rate-interval`` (default 20s: four scrapes
at the 5 s interval of scripts/dashboard_screenshot.py).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DASHBOARD = ROOT / "deploy" / "grafana" / "arbiter-dashboard.json"
_LABEL = re.compile(r"\{\{\s*(\w+)\s*\}\}")


def query_range(prometheus: str, expr: str, start: float, end: float, step: float) -> list[Any]:
    params = urllib.parse.urlencode({"query": expr, "start": start, "end": end, "step": step})
    with urllib.request.urlopen(f"{prometheus}/api/v1/query_range?{params}", timeout=30) as r:
        body = json.loads(r.read())
    if body.get("status") != "success":
        raise RuntimeError(f"{expr}: {body}")
    result: list[Any] = body["data"]["result"]
    return result


def _legend(template: str, labels: dict[str, str]) -> str:
    return _LABEL.sub(lambda m: labels.get(m.group(1), ""), template)


def panels(dashboard: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(section, panel) for every panel that is not a row, in order."""
    out, section = [], ""
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            section = panel["title"]
        else:
            out.append((section, panel))
    return out


def render(
    prometheus: str, start: float, end: float, out: Path, *, rate_interval: str, step: float
) -> int:
    import matplotlib

    matplotlib.use("Agg")
    from datetime import UTC, datetime

    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    dashboard = json.loads(DASHBOARD.read_text())
    items = panels(dashboard)
    cols = 3
    rows = math.ceil(len(items) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(6.2 * cols, 3.1 * rows), squeeze=False)
    empty = 0
    for ax, (section, panel) in zip(axes.flat, items, strict=False):
        drawn = 0
        for target in panel["targets"]:
            expr = target["expr"].replace("$__rate_interval", rate_interval)
            for series in query_range(prometheus, expr, start, end, step):
                name = _legend(target["legendFormat"], series["metric"])
                xs = [datetime.fromtimestamp(float(t), tz=UTC) for t, _ in series["values"]]
                ys = [
                    float(v) if v not in ("NaN", "+Inf", "-Inf") else math.nan
                    for _, v in series["values"]
                ]
                ax.plot(xs, ys, linewidth=1.2, label=name.strip() or target["refId"])
                drawn += 1
        unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit", "")
        ax.set_title(f"{section} / {panel['title']}", fontsize=9, loc="left")
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M", tz=UTC))
        ax.tick_params(labelsize=7)
        if unit:
            ax.set_ylabel(unit, fontsize=7)
        if drawn:
            handles, names = ax.get_legend_handles_labels()
            ax.legend(handles[:8], names[:8], fontsize=6, loc="upper left", ncol=2)
        else:
            empty += 1
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
        ax.set_xlim(datetime.fromtimestamp(start, tz=UTC), datetime.fromtimestamp(end, tz=UTC))
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(items) :]:
        ax.axis("off")
    window = f"{datetime.fromtimestamp(start, tz=UTC):%Y-%m-%d %H:%M}-{datetime.fromtimestamp(end, tz=UTC):%H:%M} UTC"
    fig.suptitle(
        f"{dashboard['title']} dashboard ({DASHBOARD.relative_to(ROOT)}), every panel's PromQL "
        f"against Prometheus, {window}, rate window {rate_interval}",
        fontsize=11,
    )
    fig.tight_layout(rect=(0, 0, 1, 0.98))
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=72)
    return empty


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--prometheus", default="http://127.0.0.1:9090")
    parser.add_argument("--start", type=float, required=True, help="Unix seconds")
    parser.add_argument("--end", type=float, required=True, help="Unix seconds")
    parser.add_argument("--step", type=float, default=5.0)
    parser.add_argument("--rate-interval", default="20s")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images" / "dashboard.png")
    args = parser.parse_args(argv)
    empty = render(
        args.prometheus,
        args.start,
        args.end,
        args.out,
        rate_interval=args.rate_interval,
        step=args.step,
    )
    print(f"wrote {args.out} ({empty} panels without data)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
