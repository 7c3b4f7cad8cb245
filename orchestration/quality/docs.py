"""The quality page of one business date: what was checked and what failed.

``<warehouse>/quality/quality_<D>.html`` is one self-contained HTML file (inline CSS, no
scripts, no network) an auditor can open from disk: the drop's outcome, each file with its
digest and counts, then each suite's rules with pass/fail, failing rows and a sample.
Written for landed and rejected drops alike; a re-run overwrites it.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

from orchestration.quality.suites import rule_specs, suite_version

STATUS_LABEL = {"landed": "CARGADO", "rejected": "RECHAZADO"}

CSS = """
body{font-family:system-ui,Segoe UI,Arial,sans-serif;margin:2em;color:#1d2430}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ccd}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em}
th,td{border:1px solid #ccd;padding:.3em .6em;text-align:left;vertical-align:top}
th{background:#eef1f6}.ok{color:#14722b;font-weight:600}.ko{color:#b3261e;font-weight:600}
.banner{padding:.8em 1em;border-radius:4px;margin:1em 0}
.banner.landed{background:#e6f4ea}.banner.rejected{background:#fce8e6}
code{font-size:.85em;word-break:break-all}.muted{color:#667}
"""


def quality_page_path(warehouse_dir: Path, as_of_date: str) -> Path:
    return Path(warehouse_dir) / "quality" / f"quality_{as_of_date}.html"


def write_quality_page(result, warehouse_dir: Path) -> Path:
    """Render ``result`` (an ingest DropResult) to its page; returns the path."""
    path = quality_page_path(warehouse_dir, result.as_of_date)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".html.tmp")
    tmp.write_text(render(result), encoding="utf-8")
    tmp.replace(path)
    return path


def _e(value) -> str:
    return html.escape("" if value is None else str(value))


def _checked(kwargs: dict | None) -> str:
    """The expectation's parameters in a line an auditor can read."""
    if not kwargs:
        return ""
    parts = []
    for key, value in kwargs.items():
        if key in ("column", "column_A", "column_B", "ignore_row_if"):
            continue
        if key == "row_condition" and isinstance(value, dict):
            col = value.get("column", {}).get("name")
            parts.append(f"solo filas con {col} {value.get('operator')} {value.get('parameter')!r}")
        elif isinstance(value, dict) and "$PARAMETER" in value:
            parts.append(f"{key} = D (fecha del corte)")
        else:
            parts.append(f"{key} = {json.dumps(value, ensure_ascii=False)}")
    return "; ".join(parts)


def render(result) -> str:
    from orchestration.ingest.pipeline import _ordered

    status = result.status
    parts = [
        "<!DOCTYPE html><html lang='es'><head><meta charset='utf-8'>",
        f"<title>Calidad de datos {_e(result.as_of_date)}</title><style>{CSS}</style></head><body>",
        f"<h1>Control de calidad de la entrega del {_e(result.as_of_date)}</h1>",
        f"<div class='banner {_e(status)}'><strong>{_e(STATUS_LABEL.get(status, status))}</strong>"
        f" &mdash; {_e(result.message)}</div>",
        f"<p class='muted'>Ejecución (run_id): <code>{_e(result.run_id)}</code>",
    ]
    if result.reason == "structure":
        parts.append(
            " &middot; Falló un control estructural: la entrega se rechaza completa y no se "
            "cargó ninguna fila de esta fecha.</p>"
        )
    elif result.reason == "rules":
        parts.append(
            " &middot; Demasiadas filas en cuarentena: la entrega se rechaza y no se cargó "
            "ninguna fila de esta fecha; las filas en cuarentena quedan en raw.quarantine.</p>"
        )
    else:
        parts.append("</p>")

    files = _ordered(result.files)
    parts.append("<h2>Archivos y controles estructurales</h2><table><tr>")
    parts.append(
        "".join(
            f"<th>{h}</th>"
            for h in (
                "Archivo", "Estructura", "Filas leídas", "Filas cargadas", "En cuarentena",
                "% cuarentena", "Umbral", "Total de control", "Separador / codificación / fechas",
                "sha256",
            )
        )
        + "</tr>"
    )
    for f in files:
        ok = f.extract in result.structure_done
        structure = "<span class='ok'>OK</span>" if ok else "<span class='ko'>FALLA</span>"
        if result.reason == "structure" and result.failed_extract == f.extract:
            structure = "<span class='ko'>FALLA</span>"
        read = f.read
        control = ""
        if read and read.control_total_read is not None and f.control:
            control = f"esperado {f.control.control_total} / leído {read.control_total_read}"
        variant = ""
        if read:
            dates = ", ".join(f"{k}={v}" for k, v in read.date_formats.items())
            variant = f"'{read.delimiter}' / {read.encoding}" + (f" / {dates}" if dates else "")
        landed = f.rows_landed if result.landed else 0
        parts.append(
            "<tr>"
            f"<td>{_e(f.file_name)}</td><td>{structure}</td><td>{f.rows_read}</td>"
            f"<td>{landed}</td><td>{f.rows_quarantined if result.rules_done else ''}</td>"
            f"<td>{f'{f.share:.2%}' if result.rules_done else ''}</td><td>{f.threshold:.2%}</td>"
            f"<td>{_e(control)}</td><td>{_e(variant)}</td>"
            f"<td><code>{_e(read.scan.sha256 if read else '')}</code></td></tr>"
        )
    parts.append("</table>")

    if not result.rules_done:
        parts.append(
            "<p class='muted'>Las reglas por fila no se evaluaron porque la entrega no pasó "
            "los controles estructurales.</p></body></html>"
        )
        return "".join(parts)

    for f in files:
        version = suite_version(f.extract)
        parts.append(
            f"<h2>{_e(f.file_name)} &mdash; suite <code>expectations/{_e(f.extract)}.json</code>"
            f" versión {_e(version)}</h2>"
        )
        parts.append(
            "<table><tr><th>Regla</th><th>Descripción</th><th>Expectativa</th><th>Parámetros</th>"
            "<th>Resultado</th><th>Filas que fallan</th><th>Muestra (línea y valores)</th></tr>"
        )
        kwargs = {spec.rule: spec.kwargs for spec in rule_specs(f.extract)}
        for rule in f.rules:
            verdict = (
                "<span class='ok'>cumple</span>" if rule.passed else "<span class='ko'>falla</span>"
            )
            sample = "<br>".join(
                _e(json.dumps(s, ensure_ascii=False)) for s in rule.sample
            )
            parts.append(
                f"<tr><td><code>{_e(rule.rule)}</code></td><td>{_e(rule.description)}</td>"
                f"<td><code>{_e(rule.expectation_type)}</code></td>"
                f"<td>{_e(_checked(kwargs.get(rule.rule)))}</td><td>{verdict}</td>"
                f"<td>{rule.failing_count}</td><td>{sample}</td></tr>"
            )
        parts.append("</table>")
    parts.append(
        "<p class='muted'>Una fila que rompe varias reglas aparece una vez por regla en "
        "raw.quarantine y se cuenta una sola vez en la cuarentena del archivo.</p>"
        "</body></html>"
    )
    return "".join(parts)
