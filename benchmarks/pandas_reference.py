"""A pandas reference implementation of the cartera contract (shared/spec/contract.md).

What a capable analyst would write with pandas alone, reading the landing folders and
nothing of cartera's code: it re-reads every drop dated on or before D, applies the row
rules of contract section 1 (bad rows go to a quarantine DataFrame, a drop above the
threshold or with a structural fault is rejected and left out of history), and computes
for D every column of ``segment_assignments`` from sections 2-3, with the default rulebook
and strategy catalogue written out in Python below.

It serves two purposes:

* the B4 benchmark's competitor (cartera must beat it by doing only the day's work), and
* an independent oracle: the harness and ``tests/benchmarks`` assert that its output equals
  the ``segment_assignments`` cartera publishes, value for value.

Money is exact: amounts are held as integer cents and rates as integer millionths, so
every product is an exact integer and the one rounding per value (half away from zero)
is integer arithmetic, never float.

History is streamed date by date (oldest first) into per-loan state arrays, so memory
stays at one day's files plus a few integers per loan however long the history is.

Usage::

    python benchmarks/pandas_reference.py --landing DIR --date YYYY-MM-DD --out out.parquet
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import gzip
import io
import json
import re
import sys
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

ROOT = Path(__file__).resolve().parent.parent
HOLIDAYS_SEED = ROOT / "dbt_project" / "seeds" / "pe_holidays.csv"
RULEBOOK_FILE = ROOT / "dbt_project" / "rulebook.yml"

# ---------------------------------------------------------------------------------------
# The contract's configuration, written out as an analyst would (sections 1-3).
# ---------------------------------------------------------------------------------------
QUARANTINE_THRESHOLD = 0.01  # share of a file's rows; above it the drop is rejected

CREDIT_TYPES = ("corporativo", "gran_empresa", "mediana_empresa", "pequena_empresa", "microempresa",
                "consumo_revolvente", "consumo_no_revolvente", "hipotecario")
CURRENCIES = ("PEN", "USD")
ACCOUNTING_STATUSES = ("vigente", "reprogramado", "refinanciado", "vencido", "judicial", "castigado")
GUARANTEES = ("ninguna", "preferida", "preferida_muy_rapida_realizacion")
PAYMENT_CHANNELS = ("agencia", "agente", "banca_movil", "banca_internet", "debito_automatico",
                    "transferencia", "recaudadora")
DOCUMENT_TYPES = ("DNI", "CE", "RUC", "PAS")
TRUE_WORDS, FALSE_WORDS = ("true", "t", "1"), ("false", "f", "0")
MAX_DPD = 10000

REQUIRED_COLUMNS = {
    "loans": ["loan_id", "customer_id", "credit_type", "product_code", "currency", "disbursement_date",
              "maturity_date", "original_amount", "outstanding_principal", "overdue_amount",
              "installment_amount", "next_due_date", "days_past_due", "accounting_status",
              "guarantee_type", "branch_code"],
    "payments": ["payment_id", "loan_id", "payment_date", "amount", "currency", "channel", "is_reversal"],
    "customers": ["customer_id", "document_type", "document_number", "full_name", "phone", "email",
                  "ubigeo", "digital_contact_consent"],
    "fx_rates": ["currency", "rate_to_pen"],
}
NULLABLE = {"next_due_date", "phone", "email"}
CONTROL_TOTAL_COLUMN = {"loans": "outstanding_principal", "payments": "amount"}

# SBS Res. 11356-2008: the largest dpd of NOR, CPP, DEF and DUD per credit-type group.
SBS_CATEGORIES = ("NOR", "CPP", "DEF", "DUD", "PER")
SBS_UPPER_DPD = {
    **dict.fromkeys(("pequena_empresa", "microempresa", "consumo_revolvente", "consumo_no_revolvente"),
                    (8, 30, 60, 120)),
    "hipotecario": (30, 60, 120, 365),
    **dict.fromkeys(("corporativo", "gran_empresa", "mediana_empresa"), (0, 60, 120, 365)),
}
UIT_PEN = {2024: 5150, 2025: 5350, 2026: 5500}
ALIGN_MIN_PEN, ALIGN_SHARE_DIVISOR, ALIGN_UIT_MULTIPLE = 100, 100, 3  # max(100, min(1% total, 3 UIT))

# provision rates in millionths (0.70% = 7000)
NOR_RATE_LOW, NOR_RATE_DEFAULT = 7_000, 10_000
NOR_LOW_CREDIT_TYPES = ("corporativo", "gran_empresa", "hipotecario")
PROVISION_RATE = {  # category -> guarantee_type -> millionths
    "CPP": {"ninguna": 50_000, "preferida": 25_000, "preferida_muy_rapida_realizacion": 12_500},
    "DEF": {"ninguna": 250_000, "preferida": 125_000, "preferida_muy_rapida_realizacion": 62_500},
    "DUD": {"ninguna": 600_000, "preferida": 300_000, "preferida_muy_rapida_realizacion": 150_000},
    "PER": {"ninguna": 1_000_000, "preferida": 600_000, "preferida_muy_rapida_realizacion": 300_000},
}

DPD_BUCKETS = ((0, "0"), (8, "1-8"), (30, "9-30"), (60, "31-60"), (90, "61-90"), (120, "91-120"),
               (180, "121-180"), (365, "181-365"))  # upper bound -> label; above: ">365"

# Default rulebook (contract section 3): first match wins.
RULES = [  # (segment_code, strategy_code, condition over the features frame f)
    ("CASTIGO_RECUPERO", "RECUPERO_AGENCIA", lambda f: f.accounting_status == "castigado"),
    ("JUDICIAL", "SEGUIMIENTO_JUDICIAL", lambda f: f.accounting_status == "judicial"),
    ("DEMANDA", "DEMANDA_JUDICIAL", lambda f: (f.dpd > 120) & (f.balance_cents >= 30_000_00)),
    ("AGENCIA_EXTERNA", "AGENCIA_DESCUENTO", lambda f: f.dpd > 120),
    ("PREJUDICIAL", "PREJUDICIAL_VISITA", lambda f: f.dpd.between(91, 120)),
    ("TARDIA_MYPE", "ASESOR_NEGOCIOS",
     lambda f: f.dpd.between(31, 90) & f.credit_type.isin(["microempresa", "pequena_empresa"])),
    ("TARDIA_ALTO_MONTO", "REFINANCIACION", lambda f: f.dpd.between(31, 90) & (f.balance_cents >= 10_000_00)),
    ("TARDIA", "CALL_CENTER_PLAN", lambda f: f.dpd.between(31, 90)),
    ("TEMPRANA_BUEN_HISTORIAL", "FLEXIBLE_DIGITAL",
     lambda f: f.dpd.between(1, 30) & (f.delinquency_episodes_12m <= 1) & (f.max_dpd_12m <= 30)),
    ("TEMPRANA_REINCIDENTE", "CALL_CENTER_TEMPRANA", lambda f: f.dpd.between(1, 30)),
    ("PREVENTIVA", "RECORDATORIO_PREVENTIVO", lambda f: (f.dpd == 0) & (f.max_dpd_12m > 30)),
    ("AL_DIA", "SIN_ACCION", lambda f: pd.Series(True, index=f.index)),
]

# strategy -> (primary_channel, needs_field_coverage, fallback_channel, offer, assignee)
STRATEGIES = {
    "RECUPERO_AGENCIA": ("agencia_externa", False, None, "descuento", "agencia_externa"),
    "SEGUIMIENTO_JUDICIAL": ("estudio_juridico", False, None, "ninguna", "estudio_juridico"),
    "DEMANDA_JUDICIAL": ("estudio_juridico", False, None, "ninguna", "estudio_juridico"),
    "AGENCIA_DESCUENTO": ("agencia_externa", False, None, "descuento", "agencia_externa"),
    "PREJUDICIAL_VISITA": ("visita_campo", True, "llamada", "plan_pagos", "interno"),
    "ASESOR_NEGOCIOS": ("visita_asesor", True, "llamada", "reprogramacion", "asesor_negocios"),
    "REFINANCIACION": ("visita_campo", True, "llamada", "refinanciacion", "interno"),
    "CALL_CENTER_PLAN": ("llamada", False, None, "plan_pagos", "interno"),
    "FLEXIBLE_DIGITAL": ("whatsapp", False, None, "reprogramacion", "interno"),
    "CALL_CENTER_TEMPRANA": ("llamada", False, None, "ninguna", "interno"),
    "RECORDATORIO_PREVENTIVO": ("sms", False, None, "ninguna", "interno"),
    "SIN_ACCION": ("ninguno", False, None, "ninguna", None),
}
NO_ACTION_STRATEGY = "SIN_ACCION"
FIELD_COVERAGE_DEPARTMENTS = ("15", "07", "04", "13", "14", "20", "12", "08")
DIGITAL_CHANNELS = ("whatsapp", "sms", "email")
NO_CONSENT_CHANNEL = "llamada"

OUTPUT_COLUMNS = [
    "as_of_date", "loan_id", "customer_id", "credit_type", "product_code", "currency", "accounting_status",
    "guarantee_type", "department_code", "digital_contact_consent", "balance_pen", "dpd", "dpd_bucket",
    "max_dpd_12m", "delinquency_episodes_12m", "paid_90d_pen", "days_since_last_payment", "sbs_category",
    "sbs_category_aligned", "provision_rate", "provision_pen", "ifrs9_stage", "segment_code", "rule_id",
    "strategy_code", "channel", "offer", "assignee", "next_contact_date",
]
QUARANTINE_COLUMNS = ["as_of_date", "file_name", "line_number", "rule", "column_name", "raw_values"]


class DropRejected(Exception):
    """A structural fault or too many bad rows: the whole drop is not ingested."""


# ---------------------------------------------------------------------------------------
# Configuration read from the project's data files (labels and calendar, never logic)
# ---------------------------------------------------------------------------------------
def load_holidays(path: Path = HOLIDAYS_SEED) -> set[dt.date]:
    with open(path, encoding="utf-8", newline="") as fh:
        return {dt.date.fromisoformat(row["holiday_date"]) for row in csv.DictReader(fh)}


def next_contact_day(day: dt.date, holidays: set[dt.date]) -> dt.date:
    """The first day after ``day`` that is Monday-Friday and not a national holiday."""
    years = {h.year for h in holidays}
    nxt = day + dt.timedelta(days=1)
    while True:
        if nxt.year not in years:
            raise ValueError(f"{HOLIDAYS_SEED.name} has no holidays for {nxt.year}")
        if nxt.weekday() < 5 and nxt not in holidays:
            return nxt
        nxt += dt.timedelta(days=1)


def load_rule_ids(path: Path = RULEBOOK_FILE) -> dict[str, str]:
    """segment_code -> rule id as named in the project's rulebook file (ids are labels an
    analyst chose; without the file the segment code is the id)."""
    ids = {segment: segment for segment, _, _ in RULES}
    if not path.exists():
        return ids
    import yaml

    doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    rules = doc.get("rules", doc) if isinstance(doc, dict) else doc
    for rule in rules or []:
        if isinstance(rule, dict):
            segment = rule.get("segment_code") or rule.get("segment")
            if segment in ids and rule.get("id") is not None:
                ids[segment] = str(rule["id"])
    return ids


# ---------------------------------------------------------------------------------------
# Reading one extract
# ---------------------------------------------------------------------------------------
def _find_file(folder: Path, extract: str) -> Path | None:
    for name in (f"{extract}.csv", f"{extract}.csv.gz"):
        if (folder / name).exists():
            return folder / name
    return None


def read_extract(path: Path) -> pd.DataFrame:
    """Every cell as text ('' = empty), header names lower-cased.

    Gunzipped if .gz; UTF-8 when the bytes decode as such, otherwise Latin-1; the delimiter
    is whichever of ',' and ';' the header line holds more of.
    """
    data = path.read_bytes()
    if path.name.endswith(".gz"):
        data = gzip.decompress(data)
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        data.decode("utf-8")
        encoding = "utf-8"
    except UnicodeDecodeError:
        encoding = "latin-1"
    header = data.split(b"\n", 1)[0]
    sep = ";" if header.count(b";") > header.count(b",") else ","
    df = pd.read_csv(io.BytesIO(data), sep=sep, dtype=str, keep_default_na=False, encoding=encoding,
                     engine="pyarrow")
    df.columns = [str(c).strip().lower() for c in df.columns]
    return df


def isin(s: pd.Series, values) -> np.ndarray:
    """Vectorised membership of text values (pandas' own isin is slow for large sets)."""
    value_set = pa.array(values.tolist() if hasattr(values, "tolist") else list(values), pa.string())
    return pc.is_in(pa.array(s).cast(pa.string()), value_set=value_set).to_numpy(zero_copy_only=False)


# ---------------------------------------------------------------------------------------
# Parsing helpers: vectorised, strict, returning NaN/NaT where the text is not valid
# ---------------------------------------------------------------------------------------
def parse_scaled(s: pd.Series, scale: int) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Decimal text -> exact integer in units of 10**-scale.

    Returns (value as float64 holding an integer, or NaN; is_number; has_too_many_decimals).
    Exact because values are bounded well below 2**53 / 10**scale (checked).
    """
    is_number = s.str.fullmatch(r"-?[0-9]+(?:\.[0-9]+)?").fillna(False).to_numpy(bool)
    fits = s.str.fullmatch(r"-?[0-9]+(?:\.[0-9]{1,%d})?" % scale).fillna(False).to_numpy(bool)
    too_many = is_number & ~fits
    value = pd.to_numeric(s.where(is_number & ~too_many), errors="coerce").to_numpy(float)
    if np.nanmax(np.abs(value), initial=0) * 10**scale >= 2**52:
        raise DropRejected(f"a value in {s.name} is too large for exact arithmetic")
    return pd.Series(np.rint(value * 10**scale), index=s.index), is_number, too_many


def parse_dates(s: pd.Series) -> pd.Series:
    """ISO YYYY-MM-DD or DD/MM/YYYY; anything else (or an impossible date) -> NaT."""
    is_iso = s.str.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}").fillna(False)
    iso = pd.to_datetime(s.where(is_iso), format="%Y-%m-%d", errors="coerce")
    if is_iso.all():
        return iso
    is_dmy = s.str.fullmatch(r"[0-9]{2}/[0-9]{2}/[0-9]{4}").fillna(False)
    dmy = pd.to_datetime(s.where(is_dmy), format="%d/%m/%Y", errors="coerce")
    return iso.where(is_iso, dmy)


def parse_bool(s: pd.Series) -> pd.Series:
    low = s.str.lower()
    return pd.Series(np.where(low.isin(TRUE_WORDS), 1.0, np.where(low.isin(FALSE_WORDS), 0.0, np.nan)),
                     index=s.index)


class RowRules:
    """Collects, per row of one file, the first rule it breaks."""

    def __init__(self, df: pd.DataFrame, file_name: str, day: dt.date, parsed: dict | None = None):
        self.df, self.file_name, self.day = df, file_name, day
        self.parsed = parsed or {}  # column -> parse_scaled() result already computed
        self.bad = np.zeros(len(df), dtype=bool)
        self.rule = np.full(len(df), None, dtype=object)
        self.column = np.full(len(df), None, dtype=object)

    def fail(self, mask, rule: str, column: str) -> None:
        mask = np.asarray(mask, dtype=bool) & ~self.bad
        if mask.any():
            self.bad |= mask
            self.rule[mask] = rule
            self.column[mask] = column

    @property
    def ok(self) -> np.ndarray:
        return ~self.bad

    def not_null(self, *columns: str) -> None:
        for col in columns:
            self.fail((self.df[col] == "").to_numpy(bool), "not_null", col)

    def enum(self, col: str, values) -> None:
        s = self.df[col]
        self.fail((s != "").to_numpy(bool) & ~isin(s, values), f"accepted_values {'|'.join(values)}", col)

    def unique(self, col: str) -> None:
        s = self.df[col]
        self.fail((s != "") & s.duplicated(keep=False), "unique", col)

    def money(self, col: str, scale: int = 2, positive: bool = False) -> pd.Series:
        s = self.df[col]
        value, is_number, too_many = self.parsed.get(col) or parse_scaled(s, scale)
        present = (s != "").to_numpy()
        self.fail(present & ~is_number, "decimal", col)
        self.fail(too_many, f"at most {scale} decimals", col)
        if positive:
            self.fail(present & ~(value > 0), "> 0", col)
        else:
            self.fail(present & ~(value >= 0), ">= 0", col)
        return value

    def date(self, col: str) -> pd.Series:
        s = self.df[col]
        value = parse_dates(s)
        self.fail((s != "") & value.isna(), "date YYYY-MM-DD or DD/MM/YYYY", col)
        return value

    def boolean(self, col: str) -> pd.Series:
        s = self.df[col]
        value = parse_bool(s)
        self.fail((s != "") & value.isna(), "boolean", col)
        return value

    def quarantine(self) -> pd.DataFrame:
        bad = np.flatnonzero(self.bad)
        if not len(bad):
            return pd.DataFrame(columns=QUARANTINE_COLUMNS)
        rows = self.df.iloc[bad]
        return pd.DataFrame({
            "as_of_date": self.day,
            "file_name": self.file_name,
            # header is line 1; records spanning lines (quoted newlines) would shift this
            "line_number": bad + 2,
            "rule": self.rule[bad],
            "column_name": self.column[bad],
            "raw_values": [json.dumps(r, ensure_ascii=False) for r in rows.to_dict("records")],
        }, columns=QUARANTINE_COLUMNS)


# ---------------------------------------------------------------------------------------
# One drop: structural checks, row rules, valid typed rows
# ---------------------------------------------------------------------------------------
@dataclass
class Drop:
    day: dt.date
    loans: pd.DataFrame        # valid rows, typed
    payments: pd.DataFrame     # valid rows: loan_id, payment_id, amount_units (cents x rate millionths), is_reversal
    customers: pd.DataFrame    # valid rows
    rates: dict[str, int]      # currency -> millionths of PEN (PEN = 1_000_000)
    quarantine: pd.DataFrame


def _sum_as_read(s: pd.Series, parsed) -> Decimal:
    """Exact sum of every cell that reads as a number (bad rows included: it is what was read)."""
    cents, is_number, too_many = parsed
    total = Decimal(int(np.nansum(cents.to_numpy()[is_number & ~too_many]))).scaleb(-2)
    for text in s[too_many]:
        total += Decimal(text)
    return total


def read_drop(folder: Path, day: dt.date, known_loans: pd.Index, known_payment_ids: set[str],
              threshold: float = QUARANTINE_THRESHOLD) -> Drop:
    """Read and check one landing folder; raise DropRejected when it cannot be ingested."""
    control_path = folder / "_control.csv"
    if not control_path.exists():
        raise DropRejected(f"{folder}: _control.csv missing (drop incomplete)")
    with open(control_path, encoding="utf-8", newline="") as fh:
        control = {row["file_name"]: row for row in csv.DictReader(fh)}

    frames: dict[str, pd.DataFrame] = {}
    names: dict[str, str] = {}
    parsed: dict[str, dict] = {}
    for extract, required in REQUIRED_COLUMNS.items():
        path = _find_file(folder, extract)
        if path is None:
            raise DropRejected(f"{folder}: {extract}.csv missing")
        try:
            df = read_extract(path)
        except Exception as exc:  # unreadable file
            raise DropRejected(f"{path}: unreadable: {exc}") from exc
        for col in required:
            if col not in df.columns:
                raise DropRejected(f"{path.name}: required column {col} missing")
        row = control.get(path.name)
        if row is None:
            raise DropRejected(f"_control.csv has no row for {path.name}")
        if int(row["row_count"]) != len(df):
            raise DropRejected(f"{path.name}: {len(df)} rows read, _control.csv says {row['row_count']}")
        if extract in CONTROL_TOTAL_COLUMN:
            column = CONTROL_TOTAL_COLUMN[extract]
            parsed[extract] = {column: parse_scaled(df[column], 2)}
            total = _sum_as_read(df[column], parsed[extract][column]).quantize(Decimal("0.01"), ROUND_HALF_UP)
            if total != Decimal(row["control_total"]):
                raise DropRejected(f"{path.name}: control total {total}, _control.csv says {row['control_total']}")
        frames[extract], names[extract] = df[required], path.name

    quarantines = []

    def finish(checks: RowRules, extract: str) -> np.ndarray:
        q = checks.quarantine()
        n = len(checks.df)
        if n and len(q) / n > threshold:
            raise DropRejected(f"{names[extract]}: {len(q)} of {n} rows broke a rule (> {threshold:.0%})")
        quarantines.append(q)
        return checks.ok

    # fx_rates -------------------------------------------------------------------------
    fx = RowRules(frames["fx_rates"], names["fx_rates"], day)
    fx.not_null("currency", "rate_to_pen")
    fx.unique("currency")
    rate = fx.money("rate_to_pen", scale=6, positive=True)
    ok = finish(fx, "fx_rates")
    rates = {"PEN": 1_000_000}
    rates.update({c: int(r) for c, r in zip(fx.df.currency[ok], rate[ok]) if c != "PEN"})

    # customers ------------------------------------------------------------------------
    cu = RowRules(frames["customers"], names["customers"], day)
    c = cu.df
    cu.not_null("customer_id", "document_type", "document_number", "full_name", "ubigeo",
                "digital_contact_consent")
    cu.unique("customer_id")
    cu.enum("document_type", DOCUMENT_TYPES)
    doc_ok = (
        ((c.document_type == "DNI") & c.document_number.str.fullmatch(r"[0-9]{8}"))
        | ((c.document_type == "CE") & c.document_number.str.fullmatch(r"[0-9A-Za-z]{9,12}"))
        | ((c.document_type == "RUC") & c.document_number.str.fullmatch(r"(10|15|17|20)[0-9]{9}"))
        | (c.document_type == "PAS")
    )
    cu.fail(~doc_ok.fillna(False), "document_number format for document_type", "document_number")
    cu.fail(~c.ubigeo.str.fullmatch(r"[0-9]{6}").fillna(False), "ubigeo 6 digits", "ubigeo")
    consent = cu.boolean("digital_contact_consent")
    ok = finish(cu, "customers")
    customers = pd.DataFrame({
        "customer_id": c.customer_id[ok],
        "department_code": c.ubigeo[ok].str[:2],
        "digital_contact_consent": consent[ok].astype(bool),
    })

    # loans -------------------------------------------------------------------------------
    lo = RowRules(frames["loans"], names["loans"], day, parsed.get("loans"))
    ln = lo.df
    lo.not_null(*[col for col in REQUIRED_COLUMNS["loans"] if col not in NULLABLE])
    lo.unique("loan_id")
    lo.fail((ln.customer_id != "").to_numpy(bool) & ~isin(ln.customer_id, customers.customer_id),
            "customer exists", "customer_id")
    lo.enum("credit_type", CREDIT_TYPES)
    lo.enum("currency", CURRENCIES)
    lo.enum("accounting_status", ACCOUNTING_STATUSES)
    lo.enum("guarantee_type", GUARANTEES)
    disbursed = lo.date("disbursement_date")
    matures = lo.date("maturity_date")
    lo.date("next_due_date")
    lo.fail(disbursed > pd.Timestamp(day), "<= as_of_date", "disbursement_date")
    lo.fail(matures < disbursed, ">= disbursement_date", "maturity_date")
    lo.money("original_amount")
    principal = lo.money("outstanding_principal")
    lo.money("overdue_amount")
    lo.money("installment_amount")
    dpd_text = ln.days_past_due
    dpd = pd.to_numeric(dpd_text.where(dpd_text.str.fullmatch(r"-?[0-9]+").fillna(False)), errors="coerce")
    lo.fail((dpd_text != "") & dpd.isna(), "integer", "days_past_due")
    lo.fail(~dpd.between(0, MAX_DPD) & dpd.notna(), f"between 0 and {MAX_DPD}", "days_past_due")
    ok = finish(lo, "loans")
    loans = ln.loc[ok, ["loan_id", "customer_id", "credit_type", "product_code", "currency",
                        "accounting_status", "guarantee_type"]].copy()
    loans["principal_cents"] = principal[ok].astype("int64")
    loans["dpd"] = dpd[ok].astype("int64")
    missing = sorted(set(loans.currency.unique()) - set(rates))
    if missing:
        raise DropRejected(f"{names['fx_rates']}: no rate_to_pen for {', '.join(missing)} on {day}")

    # payments ------------------------------------------------------------------------------
    pm = RowRules(frames["payments"], names["payments"], day, parsed.get("payments"))
    p = pm.df
    pm.not_null(*REQUIRED_COLUMNS["payments"])
    pm.unique("payment_id")
    seen_before = np.array([pid in known_payment_ids for pid in p.payment_id.tolist()], dtype=bool)
    pm.fail(seen_before, "unique across days", "payment_id")
    loan_known = isin(p.loan_id, loans.loan_id) | (known_loans.get_indexer(p.loan_id) >= 0)
    pm.fail((p.loan_id != "").to_numpy(bool) & ~loan_known, "loan exists on or before as_of_date", "loan_id")
    paid_on = pm.date("payment_date")
    pm.fail(paid_on.notna() & (paid_on != pd.Timestamp(day)), "= as_of_date", "payment_date")
    amount = pm.money("amount", positive=True)
    pm.enum("currency", CURRENCIES)
    pm.enum("channel", PAYMENT_CHANNELS)
    reversal = pm.boolean("is_reversal")
    ok = finish(pm, "payments")
    payments = pd.DataFrame({"payment_id": p.payment_id[ok], "loan_id": p.loan_id[ok],
                             "currency": p.currency[ok], "amount_cents": amount[ok].astype("int64"),
                             "is_reversal": reversal[ok].astype(bool)})
    missing = sorted(set(payments.currency.unique()) - set(rates))
    if missing:
        raise DropRejected(f"{names['fx_rates']}: no rate_to_pen for {', '.join(missing)} on {day}")
    # cents x millionths = units of 1e-8 PEN; reversals count negative
    units = payments.amount_cents * payments.currency.map(rates).astype("int64")
    payments["amount_units"] = np.where(payments.is_reversal, -units, units)

    return Drop(day, loans, payments, customers, rates, pd.concat(quarantines, ignore_index=True))


# ---------------------------------------------------------------------------------------
# History, streamed oldest first into per-loan state
# ---------------------------------------------------------------------------------------
@dataclass
class History:
    """Per-loan running state for the business date ``as_of`` (D)."""

    as_of: dt.date
    ids: pd.Index = field(default_factory=lambda: pd.Index([], dtype=object))
    last_dpd: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))      # -1: no snapshot yet
    max_dpd_12m: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))   # -1: none in window
    episodes_12m: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    paid_90d_units: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # 1e-8 PEN
    last_payment_day: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # ordinal, -1 none
    known_payment_ids: set = field(default_factory=set)

    def codes(self, loan_ids: pd.Series) -> np.ndarray:
        """Integer position of each loan in the state arrays (new loans appended)."""
        new = pd.Index(loan_ids.unique()).difference(self.ids, sort=False)
        if len(new):
            self.ids = self.ids.append(new)
            grow = len(new)
            self.last_dpd = np.concatenate([self.last_dpd, np.full(grow, -1)])
            self.max_dpd_12m = np.concatenate([self.max_dpd_12m, np.full(grow, -1)])
            self.episodes_12m = np.concatenate([self.episodes_12m, np.zeros(grow, np.int64)])
            self.paid_90d_units = np.concatenate([self.paid_90d_units, np.zeros(grow, np.int64)])
            self.last_payment_day = np.concatenate([self.last_payment_day, np.full(grow, -1)])
        return self.ids.get_indexer(loan_ids)

    def add(self, drop: Drop) -> None:
        days_before = (self.as_of - drop.day).days
        # loan snapshots: 12-month window D-364 ..= D
        code = self.codes(drop.loans.loan_id)
        dpd = drop.loans.dpd.to_numpy()
        if days_before <= 364:
            prev = self.last_dpd[code]
            started = (dpd > 0) & (prev <= 0)  # previous snapshot dpd = 0 or none (-1)
            self.episodes_12m[code] += started
            self.max_dpd_12m[code] = np.maximum(self.max_dpd_12m[code], dpd)
        self.last_dpd[code] = dpd
        # payments: 90-day window D-89 ..= D, and the latest non-reversal payment ever
        if len(drop.payments):
            pcode = self.codes(drop.payments.loan_id)
            if days_before <= 89:
                np.add.at(self.paid_90d_units, pcode, drop.payments.amount_units.to_numpy())
            paid = pcode[~drop.payments.is_reversal.to_numpy()]
            self.last_payment_day[paid] = drop.day.toordinal()
            self.known_payment_ids.update(drop.payments.payment_id.tolist())


# ---------------------------------------------------------------------------------------
# Exact rounding helpers (integers in, integers out)
# ---------------------------------------------------------------------------------------
def round_half_away(units: np.ndarray, divisor: int) -> np.ndarray:
    """units / divisor rounded half away from zero, for int64 arrays."""
    units = np.asarray(units, dtype=np.int64)
    q = (np.abs(units) + divisor // 2) // divisor
    return np.where(units < 0, -q, q)


def decimal_array(units: np.ndarray, scale: int, precision: int = 18, mask=None) -> pd.arrays.ArrowExtensionArray:
    """int64 units of 10**-scale -> exact Arrow decimal128(precision, scale) column."""
    units = np.asarray(units, dtype=np.int64)
    words = np.empty((len(units), 2), dtype=np.int64)  # little-endian 128-bit two's complement
    words[:, 0] = units
    words[:, 1] = np.where(units < 0, -1, 0)
    validity = None if mask is None else pa.array(~np.asarray(mask, bool)).buffers()[1]
    arr = pa.Array.from_buffers(pa.decimal128(precision, scale), len(units),
                                [validity, pa.py_buffer(words.tobytes())])
    return pd.arrays.ArrowExtensionArray(arr)


# ---------------------------------------------------------------------------------------
# The date D: features, categories, provisions, rulebook, strategy
# ---------------------------------------------------------------------------------------
@dataclass
class ReferenceResult:
    assignments: pd.DataFrame
    quarantine: pd.DataFrame
    rejected_drops: dict = field(default_factory=dict)  # date -> reason


def landing_dates(landing_dir: Path, as_of: dt.date) -> list[dt.date]:
    out = []
    for entry in Path(landing_dir).iterdir():
        if entry.is_dir() and re.fullmatch(r"\d{4}-\d{2}-\d{2}", entry.name):
            day = dt.date.fromisoformat(entry.name)
            if day <= as_of and (entry / "_control.csv").exists():
                out.append(day)
    return sorted(out)


def run_reference(landing_dir, as_of_date, threshold: float = QUARANTINE_THRESHOLD) -> ReferenceResult:
    """Read every complete drop dated <= D and compute D's segment assignments."""
    landing_dir = Path(landing_dir)
    as_of = dt.date.fromisoformat(str(as_of_date))
    dates = landing_dates(landing_dir, as_of)
    if as_of not in dates:
        raise DropRejected(f"{landing_dir / as_of.isoformat()}: no complete drop (_control.csv) for {as_of}")
    history = History(as_of)
    quarantines, rejected, today = [], {}, None
    for day in dates:
        try:
            # loans ever ingested = the loans the history holds state for
            drop = read_drop(landing_dir / day.isoformat(), day, history.ids,
                             history.known_payment_ids, threshold)
        except DropRejected as exc:
            if day == as_of:
                raise
            rejected[day] = str(exc)  # never ingested: not part of history
            continue
        history.add(drop)
        quarantines.append(drop.quarantine)
        if day == as_of:
            today = drop
    quarantine = pd.concat(quarantines, ignore_index=True) if quarantines else pd.DataFrame(columns=QUARANTINE_COLUMNS)
    return ReferenceResult(assignments_for(today, history), quarantine, rejected)


def compute_segment_assignments(landing_dir, as_of_date) -> pd.DataFrame:
    """D's segment_assignments (one row per valid loan of D, sorted by loan_id)."""
    return run_reference(landing_dir, as_of_date).assignments


def sbs_category_rank(credit_type: pd.Series, dpd: pd.Series, status: pd.Series) -> np.ndarray:
    """0..4 = NOR..PER from the dpd thresholds of the loan's credit-type group."""
    bounds = np.array([SBS_UPPER_DPD[t] for t in credit_type]) if len(credit_type) else np.zeros((0, 4), int)
    rank = (dpd.to_numpy()[:, None] > bounds).sum(axis=1)
    return np.where(status.to_numpy() == "castigado", 4, rank)


def assignments_for(drop: Drop, history: History) -> pd.DataFrame:
    D = drop.day
    f = drop.loans.merge(drop.customers, on="customer_id", how="left", validate="many_to_one")
    code = history.ids.get_indexer(f.loan_id)

    # balance_pen = principal x rate, rounded once to cents
    rate = f.currency.map(drop.rates).astype("int64").to_numpy()
    f["balance_cents"] = round_half_away(f.principal_cents.to_numpy() * rate, 1_000_000)

    # history features (the state arrays include D itself)
    f["max_dpd_12m"] = history.max_dpd_12m[code]
    f["delinquency_episodes_12m"] = history.episodes_12m[code]
    f["paid_90d_cents"] = round_half_away(history.paid_90d_units[code], 1_000_000)
    last_paid = history.last_payment_day[code]
    f["days_since_last_payment"] = pd.arrays.IntegerArray(D.toordinal() - last_paid, last_paid < 0)

    # dpd bucket
    labels = [label for _, label in DPD_BUCKETS] + [">365"]
    edges = [upper for upper, _ in DPD_BUCKETS]
    f["dpd_bucket"] = np.array(labels, dtype=object)[np.searchsorted(edges, f.dpd.to_numpy(), side="left")]

    # SBS category and alignment within the institution
    own = sbs_category_rank(f.credit_type, f.dpd, f.accounting_status)
    f["own_rank"] = own
    if D.year not in UIT_PEN:
        raise ValueError(f"no UIT configured for {D.year}")
    total = f.groupby("customer_id").balance_cents.transform("sum").to_numpy()
    bal = f.balance_cents.to_numpy()
    # balance >= max(100, min(total / 100, 3 UIT)), compared exactly in cents
    reaches = (bal >= ALIGN_MIN_PEN * 100) & (
        (bal * ALIGN_SHARE_DIVISOR >= total) | (bal >= ALIGN_UIT_MULTIPLE * UIT_PEN[D.year] * 100))
    f["qualifying_rank"] = np.where(reaches, own, -1)
    worst = f.groupby("customer_id").qualifying_rank.transform("max").to_numpy()
    aligned = np.maximum(own, worst)
    cats = np.array(SBS_CATEGORIES, dtype=object)
    f["sbs_category"] = cats[own]
    f["sbs_category_aligned"] = cats[aligned]

    # provision
    nor = np.where(f.credit_type.isin(NOR_LOW_CREDIT_TYPES), NOR_RATE_LOW, NOR_RATE_DEFAULT)
    prov = nor.copy()
    for rank, category in enumerate(SBS_CATEGORIES[1:], start=1):
        by_guarantee = f.guarantee_type.map(PROVISION_RATE[category]).to_numpy()
        prov = np.where(aligned == rank, by_guarantee, prov)
    prov = prov.astype(np.int64)
    f["provision_micros"] = prov
    f["provision_cents"] = round_half_away(bal * prov, 1_000_000)

    # IFRS 9
    status, dpd = f.accounting_status, f.dpd
    f["ifrs9_stage"] = np.select(
        [(dpd > 90) | status.isin(["judicial", "castigado"]), (dpd > 30) | (status == "refinanciado")],
        [3, 2], 1)

    # rulebook: first match wins
    rule_ids = load_rule_ids()
    conditions = [cond(f).to_numpy(bool) for _, _, cond in RULES]
    f["segment_code"] = np.select(conditions, [s for s, _, _ in RULES], default=None)
    f["rule_id"] = f.segment_code.map(rule_ids)
    f["strategy_code"] = f.segment_code.map({s: st for s, st, _ in RULES})

    # strategy: coverage fallback, then consent substitution
    strategy = f.strategy_code
    primary = strategy.map({k: v[0] for k, v in STRATEGIES.items()})
    needs = strategy.map({k: v[1] for k, v in STRATEGIES.items()}).astype(bool)
    fallback = strategy.map({k: v[2] for k, v in STRATEGIES.items()})
    channel = primary.where(~(needs & ~f.department_code.isin(FIELD_COVERAGE_DEPARTMENTS)), fallback)
    channel = channel.where(~(channel.isin(DIGITAL_CHANNELS) & ~f.digital_contact_consent.astype(bool)),
                            NO_CONSENT_CHANNEL)
    f["channel"] = channel
    f["offer"] = strategy.map({k: v[3] for k, v in STRATEGIES.items()})
    f["assignee"] = strategy.map({k: v[4] for k, v in STRATEGIES.items()})
    contact = next_contact_day(D, load_holidays())

    f = f.sort_values("loan_id", kind="stable").reset_index(drop=True)
    no_action = (f.strategy_code == NO_ACTION_STRATEGY).to_numpy()
    n = len(f)
    out = pd.DataFrame({
        "as_of_date": pd.arrays.ArrowExtensionArray(pa.array([D] * n, pa.date32())),
        "loan_id": f.loan_id.to_numpy(object),
        "customer_id": f.customer_id.to_numpy(object),
        "credit_type": f.credit_type.to_numpy(object),
        "product_code": f.product_code.to_numpy(object),
        "currency": f.currency.to_numpy(object),
        "accounting_status": f.accounting_status.to_numpy(object),
        "guarantee_type": f.guarantee_type.to_numpy(object),
        "department_code": f.department_code.to_numpy(object),
        "digital_contact_consent": f.digital_contact_consent.to_numpy(bool),
        "balance_pen": decimal_array(f.balance_cents.to_numpy(), 2),
        "dpd": f.dpd.to_numpy(np.int64),
        "dpd_bucket": f.dpd_bucket.to_numpy(object),
        "max_dpd_12m": f.max_dpd_12m.to_numpy(np.int64),
        "delinquency_episodes_12m": f.delinquency_episodes_12m.to_numpy(np.int64),
        "paid_90d_pen": decimal_array(f.paid_90d_cents.to_numpy(), 2),
        "days_since_last_payment": f.days_since_last_payment.astype("Int64").array,
        "sbs_category": f.sbs_category.to_numpy(object),
        "sbs_category_aligned": f.sbs_category_aligned.to_numpy(object),
        "provision_rate": decimal_array(f.provision_micros.to_numpy(), 6, precision=9),
        "provision_pen": decimal_array(f.provision_cents.to_numpy(), 2),
        "ifrs9_stage": f.ifrs9_stage.to_numpy(np.int64),
        "segment_code": f.segment_code.to_numpy(object),
        "rule_id": f.rule_id.to_numpy(object),
        "strategy_code": f.strategy_code.to_numpy(object),
        "channel": f.channel.to_numpy(object),
        "offer": f.offer.to_numpy(object),
        "assignee": f.assignee.to_numpy(object),
        "next_contact_date": pd.arrays.ArrowExtensionArray(
            pa.array([None if skip else contact for skip in no_action], pa.date32())),
    })
    return out[OUTPUT_COLUMNS]


# ---------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--landing", required=True, help="landing folder holding <YYYY-MM-DD>/ drops")
    parser.add_argument("--date", required=True, help="business date D (YYYY-MM-DD)")
    parser.add_argument("--out", required=True, help="Parquet file to write D's segment_assignments to")
    parser.add_argument("--quarantine-out", help="optional Parquet file for the quarantined rows")
    args = parser.parse_args(argv)
    try:
        result = run_reference(args.landing, args.date)
    except (DropRejected, ValueError) as exc:
        print(f"pandas_reference: {exc}", file=sys.stderr)
        return 1
    result.assignments.to_parquet(args.out, index=False)
    if args.quarantine_out:
        result.quarantine.to_parquet(args.quarantine_out, index=False)
    for day, reason in result.rejected_drops.items():
        print(f"pandas_reference: drop {day} rejected (not in history): {reason}", file=sys.stderr)
    print(f"{len(result.assignments)} loans for {args.date} -> {args.out} "
          f"({len(result.quarantine)} rows quarantined)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
