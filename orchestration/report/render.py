"""Turn :class:`ReportData` into one self-contained HTML page (Spanish).

The page makes no network request: plotly.js (the cartesian partial bundle, vendored in
``vendor/``) is inlined once, every figure is a small JSON object built with plotly's
Python graph objects, and a Content-Security-Policy forbids any fetch. Each chart lives in
``<div data-chart="<id>">`` and each headline figure carries ``data-kpi`` / ``data-value``
attributes, so tests and scripts can find them without scraping text.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import os
import tempfile
import textwrap
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterable

from orchestration.report import labels
from orchestration.report.data import (
    GONE_SEGMENT,
    NEW_SEGMENT,
    PAR_DAYS,
    Check,
    ReportData,
    load_report_data,
)

VENDOR_DIR = Path(__file__).resolve().parent / "vendor"
PLOTLY_JS = VENDOR_DIR / "plotly-cartesian.min.js"

# Every chart the page draws, in page order (tests iterate over this).
CHART_IDS = (
    "segment-distribution",
    "segment-migration",
    "actions-by-channel",
    "roll-rates",
    "roll-matrix",
    "sbs-categories",
    "sbs-provisions",
    "department",
    "credit-type",
)

_COLORS = {
    "loans": "#4c78a8",
    "balance": "#f58518",
    "par30": "#e45756",
    "par90": "#9d1c1c",
    "own": "#72b7b2",
    "aligned": "#b279a2",
    "provision": "#54a24b",
    "empeoro": "#d62728",
    "se_mantuvo": "#ff9f40",
    "mejoro": "#bcbd22",
    "curo": "#2ca02c",
    "salio": "#7f7f7f",
    "entry": "#1f3b73",
}
_FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"


@lru_cache(maxsize=1)
def plotly_js() -> str:
    return PLOTLY_JS.read_text(encoding="utf-8")


# ---- formatting (Peru: comma thousands, point decimals, "S/" currency) ------------------
def money(value: Decimal | float | None) -> str:
    return "—" if value is None else f"S/ {value:,.2f}"


def count(value: int | None) -> str:
    return "—" if value is None else f"{int(value):,}"


def pct(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value * 100:.{digits}f} %"


def _delta(cur, prev, kind: str) -> str:
    if prev is None:
        return "sin fecha anterior"
    diff = cur - prev
    sign = "+" if diff > 0 else ("−" if diff < 0 else "±")
    if kind == "pp":
        return f"{sign}{abs(diff) * 100:.2f} pp"
    rel = f" ({sign}{abs(diff / prev) * 100:.2f} %)" if prev else ""
    if kind == "money":
        return f"{sign}S/ {abs(diff):,.2f}{rel}"
    return f"{sign}{abs(diff):,}{rel}"


def _f(value) -> float:
    return float(value) if value is not None else 0.0


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


# ---- figures ---------------------------------------------------------------------------
def _layout(fig, *, title: str, height: int = 420, top: int = 80, **extra) -> None:
    """Shared look; ``top`` leaves room for the title plus the legend rows above the plot."""
    fig.update_layout(
        title={"text": title, "x": 0, "xanchor": "left", "y": 0.98, "yanchor": "top", "font": {"size": 15}},
        template="plotly_white",
        height=height,
        margin={"l": 70, "r": 40, "t": top, "b": 40},
        font={"family": _FONT, "size": 12},
        separators=".,",
        legend={"orientation": "h", "x": 1, "xanchor": "right", "y": 1.02, "yanchor": "bottom"},
        **extra,
    )
    fig.update_xaxes(automargin=True)
    fig.update_yaxes(automargin=True)


def _segment_distribution(d: ReportData):
    from plotly.subplots import make_subplots
    import plotly.graph_objects as go

    rows = list(reversed(d.segments))  # largest balance on top
    names = [r["segment_code"] for r in rows]
    hover = [f"{r['segment_code']} → {r['strategy_code']}" for r in rows]
    fig = make_subplots(
        rows=1, cols=2, shared_yaxes=True, horizontal_spacing=0.04,
        subplot_titles=("Préstamos", "Saldo (S/)"),
    )
    fig.add_trace(
        go.Bar(y=names, x=[int(r["loans"]) for r in rows], orientation="h", name="Préstamos",
               marker_color=_COLORS["loans"], customdata=hover,
               hovertemplate="%{customdata}<br>%{x:,} préstamos<extra></extra>"),
        row=1, col=1,
    )
    fig.add_trace(
        go.Bar(y=names, x=[_f(r["balance_pen"]) for r in rows], orientation="h", name="Saldo (S/)",
               marker_color=_COLORS["balance"], customdata=hover,
               text=[pct(_f(r["balance_share"]), 1) for r in rows], textposition="auto",
               hovertemplate="%{customdata}<br>S/ %{x:,.2f}<extra></extra>"),
        row=1, col=2,
    )
    _layout(fig, title="Distribución por segmento", height=max(360, 34 * len(rows) + 120), showlegend=False)
    return fig


def _heatmap(x_labels, y_labels, counts, shares, balances, *, title, x_title, y_title, count_label):
    import plotly.graph_objects as go

    text = [[(f"{c:,}" if c else "") for c in row] for row in counts]
    custom = [
        [[f"{c:,}", f"{b:,.2f}", f"{s * 100:.1f}" if s is not None else "—"] for c, b, s in zip(cr, br, sr)]
        for cr, br, sr in zip(counts, balances, shares)
    ]
    fig = go.Figure(
        go.Heatmap(
            x=x_labels, y=y_labels, z=[[None if s is None else s * 100 for s in row] for row in shares],
            text=text, texttemplate="%{text}", customdata=custom, colorscale="Blues", zmin=0, zmax=100,
            colorbar={"title": {"text": "% de la fila"}, "ticksuffix": " %"}, hoverongaps=False,
            hovertemplate=(
                f"{y_title}: %{{y}}<br>{x_title}: %{{x}}<br>{count_label}: %{{customdata[0]}}"
                "<br>Saldo: S/ %{customdata[1]}<br>% del saldo de la fila: %{customdata[2]} %<extra></extra>"
            ),
        )
    )
    _layout(
        fig, title=title, height=max(380, 32 * len(y_labels) + 160),
        xaxis={"title": {"text": x_title}, "type": "category", "tickangle": -35},
        yaxis={"title": {"text": y_title}, "type": "category", "autorange": "reversed"},
    )
    return fig


def _matrix(rows: list[dict], from_key: str, to_key: str, order_from: list[str], order_to: list[str]):
    """Counts, balances and row shares (of balance) for a from x to table."""
    cells = {(r[from_key], r[to_key]): r for r in rows}
    counts, balances, shares = [], [], []
    for f in order_from:
        row_total = sum(_f(cells[(f, t)]["balance_pen"]) for t in order_to if (f, t) in cells)
        counts.append([int(cells[(f, t)]["loans"]) if (f, t) in cells else 0 for t in order_to])
        balances.append([_f(cells[(f, t)]["balance_pen"]) if (f, t) in cells else 0.0 for t in order_to])
        shares.append(
            [(_f(cells[(f, t)]["balance_pen"]) / row_total if row_total else 0.0) if (f, t) in cells else None
             for t in order_to]
        )
    return counts, balances, shares


def _segment_migration(d: ReportData):
    present_from = {r["from_segment"] for r in d.migration}
    present_to = {r["to_segment"] for r in d.migration}
    order_from = ([NEW_SEGMENT] if NEW_SEGMENT in present_from else []) + [
        s for s in d.segment_order if s in present_from
    ]
    order_to = [s for s in d.segment_order if s in present_to] + (
        [GONE_SEGMENT] if GONE_SEGMENT in present_to else []
    )
    counts, balances, shares = _matrix(d.migration, "from_segment", "to_segment", order_from, order_to)
    return _heatmap(
        [labels.MIGRATION_SPECIAL.get(s, s) for s in order_to],
        [labels.MIGRATION_SPECIAL.get(s, s) for s in order_from],
        counts, shares, balances,
        title=f"Migración de segmentos: {d.previous_date} → {d.as_of_date} (color: % del saldo de la fila)",
        x_title="Segmento actual", y_title="Segmento anterior", count_label="Préstamos",
    )


def _actions_by_channel(d: ReportData):
    import plotly.graph_objects as go

    channels = sorted({r["channel"] for r in d.actions},
                      key=lambda c: -sum(int(r["loans"]) for r in d.actions if r["channel"] == c))
    strategies = sorted({r["strategy_code"] for r in d.actions})
    cells = {(r["channel"], r["strategy_code"]): r for r in d.actions}
    fig = go.Figure([
        go.Bar(x=channels, y=[int(cells[(c, s)]["loans"]) if (c, s) in cells else 0 for c in channels], name=s,
               customdata=[_f(cells[(c, s)]["balance_pen"]) if (c, s) in cells else 0.0 for c in channels],
               hovertemplate=f"{s}<br>%{{x}}: %{{y:,}} préstamos<br>S/ %{{customdata:,.2f}}<extra></extra>")
        for s in strategies
    ])
    _layout(fig, title="Acciones programadas por canal y estrategia (préstamos)", barmode="stack",
            height=480, top=60 + 25 * ((len(strategies) + 3) // 4),
            xaxis={"type": "category", "title": {"text": "Canal"}}, yaxis={"title": {"text": "Préstamos"}})
    return fig


def _roll_matrix(d: ReportData):
    present_from = {r["from_bucket"] for r in d.roll_matrix}
    present_to = {r["to_bucket"] for r in d.roll_matrix}
    order_from = ([NEW_SEGMENT] if NEW_SEGMENT in present_from else []) + [
        b for b in d.bucket_order if b in present_from
    ]
    order_to = [b for b in d.bucket_order if b in present_to] + (
        [GONE_SEGMENT] if GONE_SEGMENT in present_to else []
    )
    counts, balances, shares = _matrix(d.roll_matrix, "from_bucket", "to_bucket", order_from, order_to)
    name = lambda b: labels.MIGRATION_SPECIAL.get(b, f"{b} días")  # noqa: E731
    return _heatmap(
        [name(b) for b in order_to], [name(b) for b in order_from], counts, shares, balances,
        title=f"Matriz de transición por tramo de atraso: {d.previous_date} → {d.as_of_date}",
        x_title="Tramo actual", y_title="Tramo anterior", count_label="Préstamos",
    )


def roll_rate_series(d: ReportData) -> dict[str, Any]:
    """Per later date: share of the previously past-due balance by outcome (sums to 1)."""
    dates = d.roll_window[1:]
    totals = {day: 0.0 for day in dates}
    by = {(r["as_of_date"], r["outcome"]): _f(r["balance_pen"]) for r in d.roll_rates}
    for (day, _), bal in by.items():
        totals[day] = totals.get(day, 0.0) + bal
    series = {
        outcome: [(by.get((day, outcome), 0.0) / totals[day]) if totals.get(day) else None for day in dates]
        for outcome in labels.ROLL_OUTCOMES
    }
    entries = {r["as_of_date"]: r for r in d.roll_entries}
    entry = [
        (_f(entries[day]["entered_balance_pen"]) / _f(entries[day]["current_balance_pen"]))
        if day in entries and _f(entries[day]["current_balance_pen"]) else None
        for day in dates
    ]
    return {"dates": dates, "series": series, "entry": entry, "totals": totals}


def _roll_rates(d: ReportData):
    import plotly.graph_objects as go

    s = roll_rate_series(d)
    x = [day.isoformat() for day in s["dates"]]
    fig = go.Figure()
    for outcome, label in labels.ROLL_OUTCOMES.items():
        fig.add_trace(
            go.Bar(x=x, y=[None if v is None else v * 100 for v in s["series"][outcome]], name=label,
                   marker_color=_COLORS[outcome],
                   hovertemplate=f"{label}<br>%{{x}}: %{{y:.2f}} % del saldo vencido anterior<extra></extra>")
        )
    fig.add_trace(
        go.Scatter(x=x, y=[None if v is None else v * 100 for v in s["entry"]], name="Entrada a mora (% del saldo al día)",
                   mode="lines+markers", yaxis="y2", line={"color": _COLORS["entry"], "width": 2},
                   hovertemplate="Entrada a mora<br>%{x}: %{y:.2f} % del saldo al día anterior<extra></extra>")
    )
    _layout(
        fig, title=f"Roll rates por fecha publicada (últimas {len(d.roll_window)} fechas)",
        barmode="stack", height=500, top=130,
        xaxis={"type": "category", "title": {"text": "Fecha (comparada con la fecha publicada anterior)"}},
        yaxis={"title": {"text": "% del saldo vencido en la fecha anterior"}, "ticksuffix": " %", "range": [0, 100]},
        yaxis2={"title": {"text": "Entrada a mora"}, "overlaying": "y", "side": "right", "ticksuffix": " %",
                "tickformat": ".1f", "rangemode": "tozero", "showgrid": False},
    )
    return fig


def _sbs_tick(code: str) -> str:
    """Code over its name, the name wrapped so five ticks fit side by side."""
    name = labels.SBS_CATEGORIES.get(str(code))
    return "<br>".join([str(code), *textwrap.wrap(name, 13)]) if name else str(code)


def _sbs_categories(d: ReportData):
    import plotly.graph_objects as go

    x = [_sbs_tick(r["category"]) for r in d.sbs]
    fig = go.Figure([
        go.Bar(x=x, y=[_f(r["balance_own"]) for r in d.sbs], name="Categoría propia", marker_color=_COLORS["own"],
               customdata=[int(r["loans_own"]) for r in d.sbs],
               hovertemplate="Propia · %{x}<br>S/ %{y:,.2f}<br>%{customdata:,} préstamos<extra></extra>"),
        go.Bar(x=x, y=[_f(r["balance_aligned"]) for r in d.sbs], name="Categoría alineada", marker_color=_COLORS["aligned"],
               customdata=[int(r["loans_aligned"]) for r in d.sbs],
               hovertemplate="Alineada · %{x}<br>S/ %{y:,.2f}<br>%{customdata:,} préstamos<extra></extra>"),
    ])
    _layout(fig, title="Saldo por categoría SBS: propia vs alineada", barmode="group",
            xaxis={"tickangle": 0}, yaxis={"title": {"text": "Saldo (S/)"}})
    return fig


def _sbs_provisions(d: ReportData):
    import plotly.graph_objects as go

    x = [_sbs_tick(r["category"]) for r in d.sbs]
    rate = [(_f(r["provision_pen"]) / _f(r["balance_aligned"])) if _f(r["balance_aligned"]) else 0.0 for r in d.sbs]
    fig = go.Figure(
        go.Bar(x=x, y=[_f(r["provision_pen"]) for r in d.sbs], marker_color=_COLORS["provision"],
               name="Provisión estimada", text=[f"{v * 100:.1f} % del saldo" for v in rate], textposition="outside",
               textangle=0, cliponaxis=False,
               hovertemplate="%{x}<br>Provisión: S/ %{y:,.2f}<br>%{text}<extra></extra>")
    )
    _layout(fig, title="Provisión estimada por categoría alineada", xaxis={"tickangle": 0},
            yaxis={"title": {"text": "Provisión (S/)"}}, showlegend=False)
    return fig


def _breakdown(rows: list[dict], label, title: str, height: int = 440):
    import plotly.graph_objects as go

    x = [label(r["key"]) for r in rows]
    par30 = [(_f(r["par30_balance_pen"]) / _f(r["balance_pen"]) * 100) if _f(r["balance_pen"]) else 0 for r in rows]
    par90 = [(_f(r["par90_balance_pen"]) / _f(r["balance_pen"]) * 100) if _f(r["balance_pen"]) else 0 for r in rows]
    fig = go.Figure([
        go.Bar(x=x, y=[_f(r["balance_pen"]) for r in rows], name="Saldo (S/)", marker_color=_COLORS["balance"],
               customdata=[int(r["loans"]) for r in rows],
               hovertemplate="%{x}<br>S/ %{y:,.2f}<br>%{customdata:,} préstamos<extra></extra>"),
        go.Scatter(x=x, y=par30, name=f"PAR {PAR_DAYS[0]}", yaxis="y2", mode="markers", marker_size=9,
                   marker_color=_COLORS["par30"], hovertemplate=f"%{{x}}<br>PAR {PAR_DAYS[0]}: %{{y:.2f}} %<extra></extra>"),
        go.Scatter(x=x, y=par90, name=f"PAR {PAR_DAYS[1]}", yaxis="y2", mode="markers", marker_size=9,
                   marker_symbol="diamond",
                   marker_color=_COLORS["par90"], hovertemplate=f"%{{x}}<br>PAR {PAR_DAYS[1]}: %{{y:.2f}} %<extra></extra>"),
    ])
    _layout(
        fig, title=title, height=height,
        xaxis={"type": "category", "tickangle": -40},
        yaxis={"title": {"text": "Saldo (S/)"}},
        yaxis2={"title": {"text": "Morosidad (% del saldo)"}, "overlaying": "y", "side": "right",
                "ticksuffix": " %", "tickformat": ".1f", "rangemode": "tozero", "showgrid": False},
    )
    return fig


def build_figures(d: ReportData) -> dict[str, Any]:
    """chart id -> plotly Figure, in page order (charts without data are omitted)."""
    figs: dict[str, Any] = {"segment-distribution": _segment_distribution(d)}
    if d.migration:
        figs["segment-migration"] = _segment_migration(d)
    if d.actions:
        figs["actions-by-channel"] = _actions_by_channel(d)
    if len(d.roll_window) > 1:
        figs["roll-rates"] = _roll_rates(d)
    if d.roll_matrix:
        figs["roll-matrix"] = _roll_matrix(d)
    figs["sbs-categories"] = _sbs_categories(d)
    figs["sbs-provisions"] = _sbs_provisions(d)
    figs["department"] = _breakdown(d.departments, labels.department, "Saldo y morosidad por departamento", 480)
    figs["credit-type"] = _breakdown(d.credit_types, labels.credit_type, "Saldo y morosidad por tipo de crédito")
    return figs


# ---- HTML --------------------------------------------------------------------------------
_CSS = """
:root { --ink:#1d2733; --muted:#5b6877; --line:#dde3ea; --bg:#f5f7fa; --ok:#1e7b34; --bad:#b3261e; }
* { box-sizing: border-box; }
body { margin:0; font-family:%(font)s; color:var(--ink); background:var(--bg); }
header { background:#12355b; color:#fff; padding:20px 32px; }
header h1 { margin:0 0 4px; font-size:22px; }
header p { margin:2px 0; color:#d4e1f0; font-size:13px; }
main { max-width:1280px; margin:0 auto; padding:16px 32px 48px; }
section { background:#fff; border:1px solid var(--line); border-radius:8px; padding:16px 20px; margin:16px 0; }
h2 { font-size:18px; margin:0 0 8px; }
p.note { color:var(--muted); font-size:13px; margin:6px 0 10px; }
.kpis { display:grid; grid-template-columns:repeat(auto-fit, minmax(190px, 1fr)); gap:12px; }
.kpis.three { grid-template-columns:repeat(3, 1fr); }
@media (max-width: 700px) { .kpis.three { grid-template-columns:1fr; } }
.kpi { border:1px solid var(--line); border-radius:8px; padding:12px; }
.kpi .label { color:var(--muted); font-size:12px; text-transform:uppercase; letter-spacing:.03em; }
.kpi .value { font-size:22px; font-weight:600; margin:4px 0; white-space:nowrap; }
.kpi .delta { font-size:12px; color:var(--muted); }
.chart { min-height:360px; margin:8px 0 16px; }
.grid2 { display:grid; grid-template-columns:1fr 1fr; gap:16px; }
@media (max-width: 900px) { .grid2 { grid-template-columns:1fr; } }
.table-wrap { overflow-x:auto; }
table { border-collapse:collapse; width:100%%; font-size:13px; margin:8px 0; }
th, td { border-bottom:1px solid var(--line); padding:5px 8px; text-align:left; vertical-align:top; }
th { background:#eef2f6; font-weight:600; }
.checks td { overflow-wrap:anywhere; }
td code { white-space:nowrap; }
td.num, th.num { text-align:right; font-variant-numeric:tabular-nums; white-space:nowrap; }
.ok { color:var(--ok); font-weight:600; } .bad { color:var(--bad); font-weight:600; }
code { font-size:12px; background:#eef2f6; padding:1px 4px; border-radius:3px; }
footer { color:var(--muted); font-size:12px; text-align:center; padding:16px; }
""" % {"font": _FONT}

_BOOT = """
(function () {
  var specs = JSON.parse(document.getElementById('cartera-charts').textContent);
  var config = {displaylogo: false, responsive: true, modeBarButtonsToRemove: ['select2d', 'lasso2d']};
  document.querySelectorAll('[data-chart]').forEach(function (el) {
    var spec = specs[el.getAttribute('data-chart')];
    if (!spec) { return; }
    Plotly.newPlot(el, spec.data, spec.layout, config).then(function () {
      el.setAttribute('data-rendered', 'true');
    });
  });
})();
"""


def _table(headers: list[tuple[str, bool]], rows: Iterable[list[str]], attrs: Iterable[str] | None = None) -> str:
    head = "".join(f'<th class="num">{_e(h)}</th>' if num else f"<th>{_e(h)}</th>" for h, num in headers)
    body = []
    attrs = list(attrs) if attrs is not None else None
    for i, row in enumerate(rows):
        cells = "".join(
            f'<td class="num">{c}</td>' if headers[j][1] else f"<td>{c}</td>" for j, c in enumerate(row)
        )
        extra = f" {attrs[i]}" if attrs else ""
        body.append(f"<tr{extra}>{cells}</tr>")
    return f'<div class="table-wrap"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


def _kpi_cards(d: ReportData) -> str:
    k, p = d.kpis, d.previous_kpis
    cards = [
        ("loans", "Préstamos", count(k.loans), k.loans, _delta(k.loans, p and p.loans, "count")),
        ("customers", "Clientes", count(k.customers), k.customers, _delta(k.customers, p and p.customers, "count")),
        ("balance", "Saldo de cartera", money(k.balance_pen), k.balance_pen,
         _delta(k.balance_pen, p and p.balance_pen, "money")),
        ("par30", f"PAR {PAR_DAYS[0]}", pct(k.par30), repr(k.par30), _delta(k.par30, p and p.par30, "pp")),
        ("par90", f"PAR {PAR_DAYS[1]}", pct(k.par90), repr(k.par90), _delta(k.par90, p and p.par90, "pp")),
        ("provision", "Provisión estimada", money(k.provision_pen), k.provision_pen,
         _delta(k.provision_pen, p and p.provision_pen, "money")),
    ]
    out = []
    for key, label, shown, raw, delta in cards:
        out.append(
            f'<div class="kpi" data-kpi="{key}" data-value="{_e(raw)}"><div class="label">{_e(label)}</div>'
            f'<div class="value">{_e(shown)}</div><div class="delta">{_e(delta)} vs fecha anterior</div></div>'
        )
    return f'<div class="kpis three">{"".join(out)}</div>'


def _segments_table(d: ReportData) -> str:
    rows, attrs = [], []
    for r in d.segments:
        prev_bal = r.get("prev_balance_pen")
        rows.append([
            f"<code>{_e(r['segment_code'])}</code>", f"<code>{_e(r['strategy_code'])}</code>",
            _e(r.get("main_channel") or "—"), _e(r.get("main_offer") or "—"), _e(r.get("main_assignee") or "—"),
            count(r["loans"]), count(r["customers"]), _e(money(r["balance_pen"])), pct(_f(r["balance_share"])),
            _e(money(r["provision_pen"])),
            _e(_delta(r["balance_pen"], prev_bal, "money")) if prev_bal is not None else "nuevo segmento" if d.previous_date else "—",
        ])
        attrs.append(
            f'data-segment="{_e(r["segment_code"])}" data-loans="{int(r["loans"])}" '
            f'data-balance="{_e(r["balance_pen"])}" data-provision="{_e(r["provision_pen"])}"'
        )
    return _table(
        [("Segmento", False), ("Estrategia", False), ("Canal principal", False), ("Oferta", False),
         ("Responsable", False), ("Préstamos", True), ("Clientes", True), ("Saldo", True), ("% saldo", True),
         ("Provisión", True), ("Δ saldo vs anterior", True)],
        rows, attrs,
    )


def _breakdown_table(rows: list[dict], label, key_name: str, data_attr: str) -> str:
    body, attrs = [], []
    for r in rows:
        bal = _f(r["balance_pen"])
        body.append([
            _e(label(r["key"])), count(r["loans"]), _e(money(r["balance_pen"])),
            pct(_f(r["par30_balance_pen"]) / bal if bal else 0.0), pct(_f(r["par90_balance_pen"]) / bal if bal else 0.0),
            _e(money(r["provision_pen"])),
        ])
        attrs.append(f'data-{data_attr}="{_e(r["key"])}" data-loans="{int(r["loans"])}" '
                     f'data-balance="{_e(r["balance_pen"])}" data-par30-balance="{_e(r["par30_balance_pen"])}" '
                     f'data-par90-balance="{_e(r["par90_balance_pen"])}"')
    return _table(
        [(key_name, False), ("Préstamos", True), ("Saldo", True), (f"PAR {PAR_DAYS[0]}", True),
         (f"PAR {PAR_DAYS[1]}", True), ("Provisión", True)],
        body, attrs,
    )


def _sbs_table(d: ReportData) -> str:
    rows = [
        [_e(labels.sbs_category(r["category"])), count(r["loans_own"]), _e(money(r["balance_own"])),
         count(r["loans_aligned"]), _e(money(r["balance_aligned"])), _e(money(r["provision_pen"]))]
        for r in d.sbs
    ]
    return _table(
        [("Categoría", False), ("Préstamos (propia)", True), ("Saldo (propia)", True),
         ("Préstamos (alineada)", True), ("Saldo (alineada)", True), ("Provisión", True)],
        rows, [f'data-sbs="{_e(r["category"])}" data-balance-own="{_e(r["balance_own"])}" '
               f'data-balance-aligned="{_e(r["balance_aligned"])}" data-provision="{_e(r["provision_pen"])}"'
               for r in d.sbs],
    )


def _next_contact(d: ReportData) -> str:
    dates = sorted({r["next_contact_date"] for r in d.actions if r["next_contact_date"]})
    return f" ({', '.join(x.isoformat() for x in dates)})" if dates else ""


def _actions_table(d: ReportData) -> str:
    if not d.actions:
        return '<p class="note">No hay acciones programadas para esta fecha.</p>'
    by_channel: dict[str, list] = {}
    for r in d.actions:
        agg = by_channel.setdefault(r["channel"], [0, Decimal(0)])
        agg[0] += int(r["loans"])
        agg[1] += r["balance_pen"]
    rows = sorted(by_channel.items(), key=lambda kv: -kv[1][0])
    return _table([("Canal", False), ("Préstamos", True), ("Saldo", True)],
                  [[_e(c), count(n), _e(money(b))] for c, (n, b) in rows],
                  [f'data-channel="{_e(c)}" data-loans="{n}" data-balance="{b}"' for c, (n, b) in rows])


def _roll_table(d: ReportData) -> str:
    s = roll_rate_series(d)
    if not s["dates"]:
        return ""
    # whole window: balance-weighted over every pair
    total = sum(s["totals"].values())
    agg = {o: sum((r["balance_pen"] for r in d.roll_rates if r["outcome"] == o), Decimal(0))
           for o in labels.ROLL_OUTCOMES}
    rows = [[_e(labels.ROLL_OUTCOMES[o]), _e(money(agg[o])), pct(float(agg[o]) / total if total else None)]
            for o in labels.ROLL_OUTCOMES]
    return _table([("Resultado", False), ("Saldo (suma de los pares de fechas)", True), ("% del saldo vencido", True)],
                  rows, [f'data-roll="{o}" data-balance="{agg[o]}"' for o in labels.ROLL_OUTCOMES])


def _quality(d: ReportData, checks: list[Check]) -> str:
    a = d.audit or {}
    parts = []
    summary = [
        ("Filas leídas", count(a.get("rows_read")), a.get("rows_read"), "rows-read"),
        ("Filas en cuarentena", count(a.get("rows_quarantined")), a.get("rows_quarantined"), "rows-quarantined"),
        ("Filas publicadas", count(a.get("rows_published")), a.get("rows_published"), "rows-published"),
        ("Verificaciones superadas", f"{sum(c.passed for c in checks)} de {len(checks)}",
         f"{sum(c.passed for c in checks)}/{len(checks)}", "checks-passed"),
    ]
    parts.append('<div class="kpis">' + "".join(
        f'<div class="kpi" data-quality="{key}" data-value="{_e(raw)}"><div class="label">{_e(label)}</div>'
        f'<div class="value">{_e(shown)}</div></div>'
        for label, shown, raw, key in summary
    ) + "</div>")
    if d.input_files:
        parts.append("<h3>Archivos recibidos</h3>")
        parts.append(_table(
            [("Archivo", False), ("Leídas", True), ("Cuarentena", True), ("Cargadas", True), ("SHA-256", False)],
            [[_e(f.get("file_name")), count(f.get("rows_read")), count(f.get("rows_quarantined")),
              count(f.get("rows_landed")), f"<code>{_e(str(f.get('sha256') or '')[:16])}…</code>"]
             for f in d.input_files],
        ))
    parts.append("<h3>Cuarentena por regla</h3>")
    if d.quarantine is None:
        parts.append(f'<p class="note">Detalle no disponible: {_e(d.quarantine_note)}.</p>')
    elif not d.quarantine:
        parts.append('<p class="note">Ninguna fila fue puesta en cuarentena en esta fecha.</p>')
    else:
        parts.append(_table(
            [("Archivo", False), ("Regla", False), ("Columna", False), ("Filas", True)],
            [[_e(r["file_name"]), f"<code>{_e(r['rule'])}</code>", _e(r["column_name"] or "—"), count(r["rows"])]
             for r in d.quarantine],
        ))
    parts.append("<h3>Verificaciones</h3>")
    parts.append('<div class="checks">' + _table(
        [("Verificación", False), ("Resultado", False), ("Detalle", False), ("Fuente", False)],
        [[_e(c.name), '<span class="ok">superada</span>' if c.passed else '<span class="bad">fallida</span>',
          _e(c.detail), _e(c.source)] for c in checks],
        [f'data-check-passed="{str(c.passed).lower()}"' for c in checks],
    ) + "</div>")
    return "".join(parts)


def _chart(chart_id: str, figs: dict) -> str:
    if chart_id not in figs:
        return f'<p class="note" data-chart-missing="{_e(chart_id)}">Sin datos suficientes para este gráfico (se necesita una fecha publicada anterior).</p>'
    return f'<div class="chart" id="chart-{_e(chart_id)}" data-chart="{_e(chart_id)}"></div>'


def _charts_json(figs: dict) -> str:
    specs = ",".join(f"{json.dumps(cid)}:{fig.to_json(validate=False)}" for cid, fig in figs.items())
    # keep "</script>" and HTML comments impossible inside the JSON block
    return "{" + specs.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026") + "}"


def render_html(
    d: ReportData,
    *,
    extra_checks: list[Check] | None = None,
    generated_at: dt.datetime | None = None,
    quality_href: str | None = None,
) -> str:
    """The whole page as one string."""
    figs = build_figures(d)
    checks = [*(extra_checks or []), *d.checks]
    generated_at = generated_at or dt.datetime.now().astimezone()
    a = d.audit or {}
    prev = d.previous_date.isoformat() if d.previous_date else "ninguna (primera fecha publicada)"
    window = f"{d.roll_window[0]} a {d.roll_window[-1]}" if d.roll_window else "—"
    csp = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
           "img-src data: blob:; font-src data:; connect-src 'none'")
    body = f"""<!DOCTYPE html>
<html lang="es">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{csp}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="cartera-as-of-date" content="{d.as_of_date.isoformat()}">
<title>Cartera · reporte diario {d.as_of_date.isoformat()}</title>
<style>{_CSS}</style>
</head>
<body>
<header>
<h1>Reporte diario de cartera y cobranza — {d.as_of_date.isoformat()}</h1>
<p>Fecha publicada anterior: {_e(prev)} · Reglas (rulebook): <code>{_e(a.get("rulebook_version") or "—")}</code> ·
Versión de código: <code>{_e(a.get("code_version") or "—")}</code> · Corrida: <code>{_e(a.get("run_id") or "—")}</code></p>
<p>Fuente: tablas publicadas (segment_assignments, segment_summary, segment_migration, run_audit). Generado {generated_at:%Y-%m-%d %H:%M %Z}.</p>
</header>
<main>
<section id="kpis">
<h2>Indicadores de la cartera</h2>
<p class="note">Saldo en soles (saldo capital × tipo de cambio SBS del día). PAR {PAR_DAYS[0]} y PAR {PAR_DAYS[1]}: porcentaje del saldo
con más de {PAR_DAYS[0]} y {PAR_DAYS[1]} días de atraso. Provisión: estimación de referencia según categoría alineada y garantía (no es reporte regulatorio).
Las variaciones comparan con la fecha publicada anterior.</p>
{_kpi_cards(d)}
</section>
<section id="segmentos">
<h2>Segmentos y estrategias</h2>
<p class="note">Cada préstamo recibe el primer segmento cuya regla cumple; el segmento define la estrategia de cobranza.
Canal, oferta y responsable: el valor más frecuente en el segmento (el canal cambia por cobertura de campo y consentimiento digital).</p>
{_chart("segment-distribution", figs)}
{_segments_table(d)}
</section>
<section id="migracion">
<h2>Migración de segmentos</h2>
<p class="note">Filas: segmento en la fecha anterior (NUEVO = préstamo que no estaba); columnas: segmento hoy (SALIDA = préstamo
que ya no está, con su saldo anterior). El número es la cantidad de préstamos; el color, el porcentaje del saldo de la fila.
Los segmentos van ordenados de menor a mayor atraso promedio: lo que queda a la derecha de la diagonal empeoró.</p>
{_chart("segment-migration", figs)}
</section>
<section id="acciones">
<h2>Acciones de cobranza programadas</h2>
<p class="note">Préstamos con una acción para el próximo día hábil de contacto{_e(_next_contact(d))}, por canal efectivo
(después de aplicar cobertura de campo y consentimiento digital) y estrategia. Son los mismos préstamos de la lista de
trabajo de operaciones, sin sus datos personales. Horario de contacto permitido: 07:00–20:00, de lunes a viernes no feriados.</p>
{_chart("actions-by-channel", figs)}
{_actions_table(d)}
</section>
<section id="roll-rates">
<h2>Roll rates por tramo de atraso</h2>
<p class="note"><b>Definición.</b> Para cada par de fechas publicadas consecutivas de la ventana ({_e(window)}) se unen los
préstamos por <code>loan_id</code>. Se toma el saldo de los préstamos con atraso (&gt; 0 días) en la fecha anterior y se clasifica
según su situación en la fecha siguiente: <b>empeoró</b> (pasó a un tramo de mayor atraso), <b>se mantuvo</b> (mismo tramo),
<b>mejoró</b> (tramo menor pero aún vencido), <b>se curó</b> (0 días de atraso) o <b>salió</b> de la cartera (pagado, vendido o retirado).
Cada barra suma 100 % del saldo vencido de la fecha anterior. La línea muestra la <b>entrada a mora</b>: el saldo al día en la fecha
anterior que tiene atraso en la siguiente, como % de todo el saldo al día. Tramos: {_e(", ".join(d.bucket_order))} días.</p>
{_chart("roll-rates", figs)}
{_roll_table(d)}
{_chart("roll-matrix", figs)}
</section>
<section id="sbs">
<h2>Categorías SBS y provisiones</h2>
<p class="note">Categoría propia: según días de atraso y tipo de crédito. Categoría alineada: la de mayor riesgo entre los préstamos
significativos del mismo cliente (alineamiento interno, SBS). La provisión usa la categoría alineada.</p>
<div class="grid2">{_chart("sbs-categories", figs)}{_chart("sbs-provisions", figs)}</div>
{_sbs_table(d)}
</section>
<section id="departamentos">
<h2>Saldo y morosidad por departamento</h2>
{_chart("department", figs)}
{_breakdown_table(d.departments, labels.department, "Departamento", "department")}
</section>
<section id="tipos-credito">
<h2>Saldo y morosidad por tipo de crédito</h2>
{_chart("credit-type", figs)}
{_breakdown_table(d.credit_types, labels.credit_type, "Tipo de crédito", "credit-type")}
</section>
<section id="calidad">
<h2>Calidad de datos del día</h2>
<p class="note">Filas leídas de los archivos del día, filas apartadas en cuarentena (por regla incumplida) y verificaciones.
Una fecha solo se publica si pasó las verificaciones estructurales y bloqueantes.</p>
{_quality(d, checks)}
{f'<p class="note">Detalle de cada regla y muestras de filas fallidas: <a href="{_e(quality_href)}">página de calidad del día</a>.</p>' if quality_href else ""}
</section>
</main>
<footer>cartera · reporte generado automáticamente a partir de las tablas publicadas; no contiene datos personales.</footer>
<script>{plotly_js()}</script>
<script type="application/json" id="cartera-charts">{_charts_json(figs)}</script>
<script>{_BOOT}</script>
</body>
</html>
"""
    return body


def report_path(reports_dir: Path, as_of_date: dt.date | str) -> Path:
    day = as_of_date.isoformat() if isinstance(as_of_date, dt.date) else as_of_date
    return Path(reports_dir) / f"report_{day}.html"


def write_report(
    serving_db: Path,
    as_of_date: dt.date | str,
    reports_dir: Path,
    *,
    warehouse_db: Path | None = None,
    checks_for_run: Callable[[str | None, dt.date], list[Check]] | None = None,
    quarantine_threshold: float | None = None,
) -> Path:
    """Render the report of one published date to ``reports_dir/report_<date>.html``.

    Written to a temporary file in the same folder and swapped in with ``os.replace``, so a
    reader never opens half a report. ``checks_for_run(run_id, date)`` may add check results
    recorded elsewhere (the Dagster asset passes the quality checks of the publishing run).
    """
    reports_dir = Path(reports_dir)
    data = load_report_data(serving_db, as_of_date, warehouse_db=warehouse_db,
                            quarantine_threshold=quarantine_threshold)
    extra = checks_for_run((data.audit or {}).get("run_id"), data.as_of_date) if checks_for_run else []
    quality_href = None
    if warehouse_db is not None:  # the quality page ingest writes beside the reports folder
        quality_page = Path(warehouse_db).parent / "quality" / f"quality_{data.as_of_date.isoformat()}.html"
        if quality_page.exists():
            quality_href = Path(os.path.relpath(quality_page, reports_dir)).as_posix()
    page = render_html(data, extra_checks=extra, quality_href=quality_href)
    reports_dir.mkdir(parents=True, exist_ok=True)
    target = report_path(reports_dir, data.as_of_date)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=reports_dir)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(page)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
