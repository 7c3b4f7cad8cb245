"""``generate_landing``: landing folders of a simulated Peruvian lender, one per business date."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pyarrow as pa

from orchestration.calendar import business_days
from orchestration.simulate.corrupt import Injector
from orchestration.simulate.extracts import EXTRACTS, Dialect, to_text_table, write_atomically, write_drop
from orchestration.simulate.portfolio import EPOCH, Simulation

MANIFEST_FILE = "_generator_manifest.json"


def generate_landing(
    out_dir,
    loans: int = 3000,
    days: int = 30,
    start: dt.date = dt.date(2026, 1, 5),
    seed: int = 7,
    *,
    delimiter: str = ",",
    encoding: str = "utf-8",
    gzip: bool = False,
    date_format: str = "iso",
    bad_row_share: float = 0.0,
    progress: bool = False,
) -> list[dt.date]:
    """Write ``<out_dir>/<YYYY-MM-DD>/`` for ``days`` business dates from ``start`` on.

    Business dates are Monday-Friday without Peruvian national holidays
    (``orchestration.calendar``). Each folder holds loans, payments, customers and
    fx_rates in the requested dialect and ``_control.csv`` written last. ``loans`` is the
    size of the opening portfolio (it then drifts with disbursements and pay-offs). The
    same arguments always give the same bytes; the dialect options change only how the
    same content is written. ``bad_row_share`` > 0 inserts that share of rule-breaking
    rows into loans, payments and customers and lists them in
    ``<out_dir>/_generator_manifest.json`` (written on every call). The folders of the
    dates written are replaced; any other folder in ``out_dir`` is left alone.
    Returns the business dates written, in order.
    """
    if isinstance(start, str):
        start = dt.date.fromisoformat(start)
    if int(loans) < 1:
        raise ValueError(f"loans must be at least 1, got {loans}")
    if int(days) < 0:
        raise ValueError(f"days must be 0 or more, got {days}")
    if not 0.0 <= float(bad_row_share) <= 0.5:
        raise ValueError(f"bad_row_share must be between 0 and 0.5, got {bad_row_share}")
    dialect = Dialect(delimiter=delimiter, encoding=encoding, gzip=gzip, date_format=date_format)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    dates = business_days(start, int(days))
    injector = Injector(seed, float(bad_row_share)) if bad_row_share > 0 else None

    if dates:
        epoch = EPOCH.astype(dt.date)
        sim = Simulation(int(loans), [(d - epoch).days for d in dates], int(seed))
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=len(dates), desc="generating", unit="date")
        for i, day in enumerate(dates):
            extract = sim.step(i)
            tables = {
                "loans": to_text_table(EXTRACTS["loans"][0], extract.loans, dialect.date_format),
                "payments": to_text_table(EXTRACTS["payments"][0], extract.payments, dialect.date_format),
                "customers": extract.customers,
                "fx_rates": pa.table({"currency": ["USD"], "rate_to_pen": [f"{extract.usd_rate:.4f}"]}),
            }
            if injector is not None:
                protected = {"loans": extract.paid_loan_ids, "customers": extract.customers_with_loans}
                for name in ("loans", "payments", "customers"):
                    tables[name] = injector.inject(
                        i, day, name, tables[name], dialect, dialect.file_name(name), protected.get(name)
                    )
            write_drop(out / day.isoformat(), tables, dialect)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(date=day.isoformat(), loans=extract.loans["days_past_due"].shape[0])
        if bar is not None:
            bar.close()

    manifest = {
        "generator": "orchestration.simulate.generate_landing",
        "arguments": dict(
            loans=int(loans), days=int(days), start=start.isoformat(), seed=int(seed), delimiter=delimiter,
            encoding=dialect.encoding, gzip=dialect.gzip, date_format=date_format, bad_row_share=float(bad_row_share),
        ),
        "dates": [d.isoformat() for d in dates],
        "line_numbers": "header = line 1, first data row = line 2",
        "bad_rows": injector.entries if injector is not None else [],
    }
    write_atomically(out / MANIFEST_FILE, (json.dumps(manifest, indent=1, ensure_ascii=False) + "\n").encode("utf-8"))
    return dates
