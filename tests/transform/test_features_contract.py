"""int_loan_features against contract section 2, computed independently in Python.

A hand-built portfolio (9 loans, 4 customers, USD and PEN, payments and reversals) over six
non-contiguous business dates spanning more than a year is loaded into raw.* of a fresh
DuckDB file and transformed by the real dbt project three ways:

- date by date (the daily run);
- as one range over all dates (the onboarding backfill);
- as two ranges, the second after history exists (a backfill on top of earlier runs).

Every way must give, for every date, exactly the rows a plain reading of the contract gives
(`expected_features` below: no SQL, no seeds, just the definitions), and the three ways must
leave identical history tables. The scenario puts dates exactly on the window edges: D-364
and D-89 of some dates are business dates, a loan comes back after a gap of more than a year,
a payment is posted while its loan is away, a USD payment is reversed at another rate, a
customer's loan sits exactly on the alignment threshold (floor 100 and the 3 UIT cap).
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import duckdb
import pytest

ROOT = Path(__file__).resolve().parents[2]
DBT_PROJECT = ROOT / "dbt_project"
DBT = str(Path(sys.executable).parent / "dbt")

D = dt.date.fromisoformat
DATES = [D("2025-01-06"), D("2025-01-07"), D("2025-10-09"), D("2026-01-05"), D("2026-01-06"), D("2026-01-08")]
# 2026-01-05 - 364 = 2025-01-06 (in), 2026-01-06 - 364 = 2025-01-07 (in), 2026-01-08 - 364 = 2025-01-09;
# 2026-01-06 - 89 = 2025-10-09 (in), 2026-01-08 - 89 = 2025-10-11 (2025-10-09 out).

RAW_DDL = [
    "CREATE SCHEMA IF NOT EXISTS raw",
    """CREATE TABLE raw.loans (as_of_date DATE, loan_id VARCHAR, customer_id VARCHAR, credit_type VARCHAR,
        product_code VARCHAR, currency VARCHAR, disbursement_date DATE, maturity_date DATE,
        original_amount DECIMAL(18,2), outstanding_principal DECIMAL(18,2), overdue_amount DECIMAL(18,2),
        installment_amount DECIMAL(18,2), next_due_date DATE, days_past_due INTEGER, accounting_status VARCHAR,
        guarantee_type VARCHAR, branch_code VARCHAR, source_line INTEGER)""",
    """CREATE TABLE raw.payments (as_of_date DATE, payment_id VARCHAR, loan_id VARCHAR, payment_date DATE,
        amount DECIMAL(18,2), currency VARCHAR, channel VARCHAR, is_reversal BOOLEAN, source_line INTEGER)""",
    """CREATE TABLE raw.customers (as_of_date DATE, customer_id VARCHAR, document_type VARCHAR,
        document_number VARCHAR, full_name VARCHAR, phone VARCHAR, email VARCHAR, ubigeo VARCHAR,
        digital_contact_consent BOOLEAN, source_line INTEGER)""",
    "CREATE TABLE raw.fx_rates (as_of_date DATE, currency VARCHAR, rate_to_pen DECIMAL(18,6), source_line INTEGER)",
    """CREATE TABLE raw.quarantine (as_of_date DATE, run_id VARCHAR, file_name VARCHAR, line_number INTEGER,
        rule VARCHAR, column_name VARCHAR, raw_values VARCHAR)""",
    """CREATE TABLE raw.ingest_files (as_of_date DATE, run_id VARCHAR, file_name VARCHAR, sha256 VARCHAR,
        rows_read INTEGER, rows_quarantined INTEGER, rows_landed INTEGER, ingested_at TIMESTAMP)""",
    "CREATE TABLE raw.drops (as_of_date DATE, run_id VARCHAR, status VARCHAR, message VARCHAR, ingested_at TIMESTAMP)",
]

# ---------------------------------------------------------------------------------------
# The scenario. loans: loan_id -> (customer, credit_type, currency, guarantee) and, per date
# index, (outstanding_principal, days_past_due, accounting_status) or None when absent.
LOANS = {
    # episodes start on D2 and D4; a 50.00 payment on D3 reversed on D5
    "L1": (("C1", "microempresa", "PEN", "ninguna"),
           [("1000.00", 0, "vigente"), ("990.00", 5, "vigente"), ("900.00", 0, "vigente"),
            ("880.00", 40, "vencido"), ("880.00", 41, "vencido"), ("700.00", 0, "vigente")]),
    # new with dpd > 0 (episode), away on D3, back on D4 still delinquent (no new episode)
    "L2": (("C1", "hipotecario", "USD", "preferida"),
           [("20000.00", 10, "vigente"), ("19990.00", 11, "vigente"), None,
            ("19500.01", 70, "vencido"), ("19500.01", 71, "vencido"), ("19500.01", 72, "vencido")]),
    # away for a year (its previous snapshot is before the window); paid while away
    "L3": (("C2", "corporativo", "PEN", "ninguna"),
           [("5000.00", 0, "vigente"), None, None, None, ("4800.00", 3, "vigente"), ("4800.00", 4, "vigente")]),
    # castigado from its first snapshot: always PER
    "L4": (("C2", "consumo_revolvente", "PEN", "ninguna"),
           [None, None, ("300.00", 400, "castigado"), ("300.00", 488, "castigado"), ("300.00", 489, "castigado"),
            ("300.00", 491, "castigado")]),
    # C3: a large USD loan whose 1% exceeds 3 UIT (cap), a DEF loan on / under the cap
    "L5": (("C3", "gran_empresa", "USD", "preferida_muy_rapida_realizacion"),
           [None, None, None, ("600000.00", 0, "vigente"), ("600000.00", 0, "vigente"), ("600000.00", 0, "vigente")]),
    "L6": (("C3", "pequena_empresa", "PEN", "ninguna"),
           [None, None, None, ("16500.00", 35, "vencido"), ("16500.00", 36, "vencido"), ("16499.99", 38, "vencido")]),
    # C4: a PER loan under the floor of 100 (no alignment), then at it
    "L7": (("C4", "consumo_no_revolvente", "PEN", "ninguna"),
           [("99.99", 130, "vencido"), ("99.99", 131, "vencido"), ("100.00", 407, "judicial"), None, None, None]),
    "L8": (("C4", "consumo_no_revolvente", "PEN", "preferida"),
           [("5000.00", 0, "refinanciado"), ("5000.00", 0, "refinanciado"), ("4900.00", 0, "reprogramado"),
            ("4800.00", 31, "refinanciado"), ("4800.00", 91, "refinanciado"), ("4800.00", 0, "vigente")]),
    # paid off on D3: payment on a date it is no longer in the portfolio
    "L9": (("C1", "mediana_empresa", "PEN", "ninguna"),
           [("2500.00", 0, "vigente"), ("2500.00", 1, "vigente"), None, None, None, None]),
}

CUSTOMERS = {"C1": ("150101", True), "C2": ("040101", False), "C3": ("070101", True), "C4": ("200101", False)}

USD_RATES = ["3.700000", "3.710000", "3.755000", "3.375500", "3.400000", "3.410000"]

# (date index, payment_id, loan_id, amount, currency, is_reversal)
PAYMENTS = [
    (0, "P1", "L1", "100.00", "PEN", False),
    (1, "P2", "L2", "100.00", "USD", False),
    (2, "P3", "L1", "50.00", "PEN", False),
    (2, "P4", "L3", "30.00", "PEN", False),      # L3 is away on D3
    (2, "P5", "L9", "2500.00", "PEN", False),    # payoff: L9 left on D3
    (3, "P6", "L2", "100.00", "USD", True),      # reversal of P2 at D4's rate
    (3, "P7", "L5", "1234.57", "USD", False),
    (4, "P8", "L1", "50.00", "PEN", True),       # reversal of P3
    (4, "P9", "L6", "0.01", "PEN", False),
    (5, "P10", "L1", "200.00", "PEN", False),
    (5, "P11", "L5", "0.03", "USD", False),
]


def load_scenario(db_path: Path, date_indexes: list[int] | None = None) -> None:
    """Create raw.* (design.md schema) and insert the scenario's rows of the given dates."""
    indexes = range(len(DATES)) if date_indexes is None else date_indexes
    with duckdb.connect(str(db_path)) as con:
        for ddl in RAW_DDL:
            con.execute(ddl.replace("CREATE TABLE", "CREATE TABLE IF NOT EXISTS"))
        for i in indexes:
            day = DATES[i]
            for line, (loan_id, ((customer, credit_type, currency, guarantee), states)) in enumerate(LOANS.items(), 2):
                if states[i] is None:
                    continue
                principal, dpd, status = states[i]
                con.execute(
                    "INSERT INTO raw.loans VALUES (?, ?, ?, ?, 'PROD', ?, DATE '2024-06-01', DATE '2030-06-01', "
                    "100000, ?, 0, 100, NULL, ?, ?, ?, 'B01', ?)",
                    [day, loan_id, customer, credit_type, currency, principal, dpd, status, guarantee, line],
                )
            for line, (customer, (ubigeo, consent)) in enumerate(CUSTOMERS.items(), 2):
                con.execute(
                    "INSERT INTO raw.customers VALUES (?, ?, 'DNI', '12345678', 'Nombre Peña', NULL, NULL, ?, ?, ?)",
                    [day, customer, ubigeo, consent, line],
                )
            con.execute("INSERT INTO raw.fx_rates VALUES (?, 'USD', ?, 2)", [day, USD_RATES[i]])
            for line, (j, payment_id, loan_id, amount, currency, reversal) in enumerate(PAYMENTS, 2):
                if j == i:
                    con.execute(
                        "INSERT INTO raw.payments VALUES (?, ?, ?, ?, ?, ?, 'agencia', ?, ?)",
                        [day, payment_id, loan_id, day, amount, currency, reversal, line],
                    )


# ---------------------------------------------------------------------------------------
# Contract section 2, read literally.
UIT = {2024: Decimal(5150), 2025: Decimal(5350), 2026: Decimal(5500)}
RISK = ["NOR", "CPP", "DEF", "DUD", "PER"]
SBS_TABLE = {  # credit types -> (max dpd of NOR, CPP, DEF, DUD); above: PER
    ("pequena_empresa", "microempresa", "consumo_revolvente", "consumo_no_revolvente"): (8, 30, 60, 120),
    ("hipotecario",): (30, 60, 120, 365),
    ("corporativo", "gran_empresa", "mediana_empresa"): (0, 60, 120, 365),
}
BUCKETS = [(0, "0"), (8, "1-8"), (30, "9-30"), (60, "31-60"), (90, "61-90"), (120, "91-120"),
           (180, "121-180"), (365, "181-365")]
PROVISION = {  # guarantee -> CPP, DEF, DUD, PER (%)
    "ninguna": ("5", "25", "60", "100"),
    "preferida": ("2.5", "12.5", "30", "60"),
    "preferida_muy_rapida_realizacion": ("1.25", "6.25", "15", "30"),
}
CENT = Decimal("0.01")


def money(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)  # half away from zero


def sbs_category(credit_type: str, dpd: int, status: str) -> str:
    if status == "castigado":
        return "PER"
    limits = next(v for k, v in SBS_TABLE.items() if credit_type in k)
    for category, limit in zip(RISK, limits):
        if dpd <= limit:
            return category
    return "PER"


def dpd_bucket(dpd: int) -> str:
    return next((label for limit, label in BUCKETS if dpd <= limit), ">365")


def provision_rate(category: str, guarantee: str, credit_type: str) -> Decimal:
    if category == "NOR":
        return Decimal("0.007") if credit_type in ("corporativo", "gran_empresa", "hipotecario") else Decimal("0.01")
    return Decimal(PROVISION[guarantee][RISK.index(category) - 1]) / 100


def ifrs9_stage(dpd: int, status: str) -> int:
    if dpd > 90 or status in ("judicial", "castigado"):
        return 3
    if dpd > 30 or status == "refinanciado":
        return 2
    return 1


def rate(i: int, currency: str) -> Decimal:
    return Decimal(1) if currency == "PEN" else Decimal(USD_RATES[i])


def expected_features() -> dict[tuple[dt.date, str], dict]:
    """Every feature of every loan on every date, straight from the contract's wording."""
    snapshots = defaultdict(list)  # loan -> [(date, dpd)] in date order
    for loan_id, (_, states) in LOANS.items():
        for i, state in enumerate(states):
            if state is not None:
                snapshots[loan_id].append((DATES[i], state[1]))
    payments = [(DATES[i], loan, Decimal(amount) * rate(i, cur) * (-1 if rev else 1), rev)
                for i, _, loan, amount, cur, rev in PAYMENTS]

    rows = {}
    for i, day in enumerate(DATES):
        present = {loan: (meta, states[i]) for loan, (meta, states) in LOANS.items() if states[i] is not None}
        for loan, ((customer, credit_type, currency, guarantee), (principal, dpd, status)) in present.items():
            history = [(d, p) for d, p in snapshots[loan] if d <= day]
            in_12m = [(d, p) for d, p in history if day - dt.timedelta(days=364) <= d]
            episodes = 0
            for d, p in in_12m:
                earlier = [q for e, q in history if e < d]
                if p > 0 and (not earlier or earlier[-1] == 0):
                    episodes += 1
            paid = [a for d, l, a, _ in payments if l == loan and day - dt.timedelta(days=89) <= d <= day]
            paid_dates = [d for d, l, _, rev in payments if l == loan and d <= day and not rev]
            ubigeo, consent = CUSTOMERS[customer]
            rows[(day, loan)] = {
                "customer_id": customer, "credit_type": credit_type, "product_code": "PROD",
                "currency": currency, "accounting_status": status, "guarantee_type": guarantee,
                "department_code": ubigeo[:2], "digital_contact_consent": consent,
                "balance_pen": money(Decimal(principal) * rate(i, currency)),
                "dpd": dpd, "dpd_bucket": dpd_bucket(dpd),
                "max_dpd_12m": max(p for _, p in in_12m),
                "delinquency_episodes_12m": episodes,
                "paid_90d_pen": money(sum(paid, Decimal(0))),
                "days_since_last_payment": (day - max(paid_dates)).days if paid_dates else None,
                "sbs_category": sbs_category(credit_type, dpd, status),
                "ifrs9_stage": ifrs9_stage(dpd, status),
            }
        # alineamiento interno, per customer on the date
        for customer in {row["customer_id"] for (d, _), row in rows.items() if d == day}:
            loans = [row for (d, _), row in rows.items() if d == day and row["customer_id"] == customer]
            total = sum(row["balance_pen"] for row in loans)
            threshold = max(Decimal(100), min(total * Decimal("0.01"), 3 * UIT[day.year]))
            reaching = [RISK.index(row["sbs_category"]) for row in loans if row["balance_pen"] >= threshold]
            worst = max(reaching, default=0)
            for row in loans:
                row["sbs_category_aligned"] = RISK[max(RISK.index(row["sbs_category"]), worst)]
                row["provision_rate"] = provision_rate(row["sbs_category_aligned"], row["guarantee_type"],
                                                       row["credit_type"])
                row["provision_pen"] = money(row["balance_pen"] * row["provision_rate"])
    return rows


# ---------------------------------------------------------------------------------------
def dbt_build(db_path: Path, start: dt.date, end: dt.date, tmp: Path, command: str = "build",
              extra: tuple[str, ...] = ("--exclude-resource-type", "unit_test")) -> subprocess.CompletedProcess:
    """The real `dbt build` (or `command`) of the features models for [start, end] against db_path.
    Unit tests run once, in their own test below; cautious indirect selection leaves out the
    marts' tests that also touch staging models."""
    env = {**os.environ, "CARTERA_DUCKDB_PATH": str(db_path), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    return subprocess.run(
        [DBT, command, "--profiles-dir", str(DBT_PROJECT), "--project-dir", str(DBT_PROJECT),
         "--target-path", str(tmp / "target"), "--log-path", str(tmp / "logs"),
         "--select", "+int_loan_features", "--indirect-selection", "cautious", *extra,
         "--vars", f"{{start_date: '{start}', end_date: '{end}'}}"],
        cwd=DBT_PROJECT, env=env, capture_output=True, text=True, timeout=900,
    )


def run_ok(*args, **kwargs) -> None:
    result = dbt_build(*args, **kwargs)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def table(db_path: Path, name: str, order: str = "as_of_date, loan_id") -> list[tuple]:
    with duckdb.connect(str(db_path), read_only=True) as con:
        return con.execute(f"SELECT * FROM intermediate.{name} ORDER BY {order}").fetchall()


def features(db_path: Path) -> dict[tuple[dt.date, str], dict]:
    with duckdb.connect(str(db_path), read_only=True) as con:
        cursor = con.execute("SELECT * FROM intermediate.int_loan_features")
        names = [c[0] for c in cursor.description]
        return {(r[0], r[1]): dict(zip(names[2:], r[2:])) for r in cursor.fetchall()}


@pytest.fixture(scope="module")
def warehouses(tmp_path_factory) -> dict[str, Path]:
    """Three warehouses of the same scenario: date by date, one range, two ranges."""
    tmp = tmp_path_factory.mktemp("features")
    paths = {name: tmp / f"{name}.duckdb" for name in ("daily", "range", "two_ranges")}
    for path in paths.values():
        load_scenario(path)
    daily_features = {}
    for day in DATES:
        run_ok(paths["daily"], day, day, tmp)
        daily_features.update(features(paths["daily"]))
    run_ok(paths["range"], DATES[0], DATES[-1], tmp)
    run_ok(paths["two_ranges"], DATES[0], DATES[2], tmp)
    first_part = features(paths["two_ranges"])
    run_ok(paths["two_ranges"], DATES[3], DATES[-1], tmp)
    return {**paths, "tmp": tmp, "daily_features": daily_features,
            "two_range_features": {**first_part, **features(paths["two_ranges"])}}


EXPECTED = expected_features()
COLUMNS = ["customer_id", "credit_type", "product_code", "currency", "accounting_status", "guarantee_type",
           "department_code", "digital_contact_consent", "balance_pen", "dpd", "dpd_bucket", "max_dpd_12m",
           "delinquency_episodes_12m", "paid_90d_pen", "days_since_last_payment", "sbs_category",
           "sbs_category_aligned", "provision_rate", "provision_pen", "ifrs9_stage"]


def assert_matches_contract(actual: dict, expected: dict) -> None:
    assert sorted(actual) == sorted(expected)
    mismatches = [(key, column, actual[key][column], expected[key][column])
                  for key in sorted(expected) for column in COLUMNS
                  if actual[key][column] != expected[key][column]]
    assert not mismatches, "\n".join(map(str, mismatches))


def test_scenario_reaches_the_edges_it_claims():
    """Guard the scenario itself: without these values the comparisons below would prove less."""
    e = EXPECTED
    assert e[(D("2026-01-05"), "L1")]["delinquency_episodes_12m"] == 2   # D2's start is exactly D-364
    assert e[(D("2026-01-08"), "L1")]["delinquency_episodes_12m"] == 1   # ... and out two days later
    assert e[(D("2026-01-06"), "L2")]["delinquency_episodes_12m"] == 0   # delinquent since before the window
    assert e[(D("2026-01-06"), "L3")]["delinquency_episodes_12m"] == 1   # back after > 1 year, previous dpd 0
    assert e[(D("2026-01-06"), "L3")]["days_since_last_payment"] == 89   # paid while away
    assert e[(D("2026-01-06"), "L1")]["paid_90d_pen"] == Decimal("0.00")  # D-89 payment in, its reversal in
    assert e[(D("2026-01-08"), "L1")]["paid_90d_pen"] == Decimal("150.00")  # payment out, reversal in
    assert e[(D("2026-01-05"), "L2")]["paid_90d_pen"] == Decimal("-337.55")  # USD reversal at D4's rate
    assert e[(D("2026-01-05"), "L5")]["sbs_category_aligned"] == "DEF"    # L6 exactly at the 3 UIT cap
    assert e[(D("2026-01-08"), "L5")]["sbs_category_aligned"] == "NOR"    # L6 one cent under it
    assert e[(D("2025-01-06"), "L8")]["sbs_category_aligned"] == "NOR"    # L7 99.99 under the floor
    assert e[(D("2025-10-09"), "L8")]["sbs_category_aligned"] == "PER"    # L7 100.00 at the floor


def test_daily_runs_match_the_contract(warehouses):
    assert_matches_contract(warehouses["daily_features"], EXPECTED)


def test_one_range_matches_the_contract(warehouses):
    assert_matches_contract(features(warehouses["range"]), EXPECTED)


def test_range_after_history_matches_the_contract(warehouses):
    assert_matches_contract(warehouses["two_range_features"], EXPECTED)


@pytest.mark.parametrize("name", ["int_business_dates", "int_payment_history", "int_loan_departures",
                                  "int_loan_snapshot_history"])
def test_history_tables_are_the_same_whichever_way_dates_were_run(warehouses, name):
    order = "as_of_date" if name == "int_business_dates" else "as_of_date, 2"
    daily = table(warehouses["daily"], name, order)
    assert daily
    assert table(warehouses["range"], name, order) == daily
    assert table(warehouses["two_ranges"], name, order) == daily


def test_rerunning_a_date_replaces_it(warehouses):
    before = {name: table(warehouses["daily"], name, "as_of_date, 2")
              for name in ("int_payment_history", "int_loan_departures", "int_loan_snapshot_history")}
    run_ok(warehouses["daily"], DATES[-1], DATES[-1], warehouses["tmp"])
    for name, rows in before.items():
        assert table(warehouses["daily"], name, "as_of_date, 2") == rows
    last = {k: v for k, v in EXPECTED.items() if k[0] == DATES[-1]}
    assert_matches_contract(features(warehouses["daily"]), last)


def test_a_year_without_uit_stops_the_run_naming_the_year(tmp_path):
    db_path = tmp_path / "uit.duckdb"
    load_scenario(db_path, [0])
    with duckdb.connect(str(db_path)) as con:
        for name in ("loans", "customers", "fx_rates"):
            con.execute(f"UPDATE raw.{name} SET as_of_date = DATE '2027-01-04'")
        con.execute("DELETE FROM raw.payments")
    result = dbt_build(db_path, D("2027-01-04"), D("2027-01-04"), tmp_path)
    assert result.returncode != 0
    assert "No UIT configured for year 2027" in result.stdout
    assert "uit_by_year.csv" in result.stdout
    with duckdb.connect(str(db_path), read_only=True) as con:
        built = {r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'intermediate'").fetchall()}
    assert "int_loan_features" not in built


def test_unit_tests_of_the_features_models_pass(warehouses):
    """The dbt unit tests (boundaries of every rule) pass against the real seeds."""
    result = dbt_build(warehouses["range"], DATES[-1], DATES[-1], warehouses["tmp"],
                       command="test", extra=("--resource-type", "unit_test"))
    assert result.returncode == 0, result.stdout[-4000:]
    assert "PASS=18 " in result.stdout
