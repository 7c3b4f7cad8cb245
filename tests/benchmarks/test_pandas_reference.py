"""The pandas reference implementation against values worked out by hand from the contract.

The landing folders are written here, row by row; every expected value below is derived in
the comment beside it from contract sections 2-3, not from running any implementation.

Dates: D = 2026-04-01 (a Wednesday). D-364 = 2025-04-02 is the first day of the 12-month
window (2025-04-01 is outside it); D-89 = 2026-01-02 is the first day of the 90-day window
(2026-01-01 is outside it). The next contact day is Monday 2026-04-06: Apr 2-3 are Holy
Thursday and Good Friday 2026, then a weekend.
"""

from __future__ import annotations

import datetime as dt
import sys
from decimal import Decimal
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchmarks.pandas_reference import DropRejected, run_reference  # noqa: E402
from landing_builder import customer, loan, payment, write_drop  # noqa: E402

D = dt.date(2026, 4, 1)
H0, H1, H2, H3 = dt.date(2025, 4, 1), dt.date(2025, 4, 2), dt.date(2026, 1, 1), dt.date(2026, 1, 2)
NEXT_CONTACT = dt.date(2026, 4, 6)


def customers_all():
    rows = [customer(f"C{i:02d}") for i in range(1, 30)]
    by_id = {r["customer_id"]: r for r in rows}
    by_id["C02"]["digital_contact_consent"] = "false"
    by_id["C12"]["ubigeo"] = "250101"  # Ucayali: outside field coverage
    by_id["C14"]["ubigeo"] = "040101"  # Arequipa: covered
    by_id["C26"]["ubigeo"] = "150101"  # Lima: covered
    return rows


# loan -> {date: dpd} for the history dates (D's rows are in D_LOANS)
HISTORY = {
    "L01": {H0: 0, H1: 5, H2: 0, H3: 3},
    "L02": {H0: 40, H1: 50},
    "L03": {H0: 100, H1: 0},
    "L04": {H3: 7},
    "L05": {H3: 0},
    "L28": {H3: 30},
    "L29": {H3: 31},
    "L99": {H1: 0},  # left the portfolio; a later payment on it is still valid
}

D_LOANS = [
    loan("L01", "C01", dpd=4),
    loan("L02", "C02", dpd=0),
    loan("L03", "C03", dpd=0),
    loan("L04", "C04", dpd=7),
    loan("L05", "C05", dpd=0, principal="3.00", currency="USD"),
    loan("L06", "C06", dpd=70, principal="100.00"),
    loan("L07", "C06", dpd=0, principal="9900.00"),
    loan("L08", "C08", dpd=70, principal="99.99"),
    loan("L09", "C08", dpd=0, principal="9900.00"),
    loan("L10", "C10", dpd=10, principal="200.00"),
    loan("L11", "C10", dpd=0, principal="19800.01"),
    loan("L12", "C12", dpd=45, principal="16500.00"),
    loan("L13", "C12", dpd=0, principal="2000000.00", credit_type="hipotecario", guarantee="preferida"),
    loan("L14", "C14", dpd=100),
    loan("L15", "C15", dpd=8, credit_type="microempresa"),
    loan("L16", "C16", dpd=9, credit_type="microempresa"),
    loan("L17", "C17", dpd=30, credit_type="hipotecario"),
    loan("L18", "C18", dpd=366, credit_type="hipotecario"),
    loan("L19", "C19", dpd=365, credit_type="hipotecario"),
    loan("L20", "C20", dpd=0, credit_type="corporativo"),
    loan("L21", "C21", dpd=1, credit_type="corporativo"),
    loan("L22", "C22", dpd=0, status="castigado"),
    loan("L23", "C23", dpd=0, status="judicial"),
    loan("L24", "C24", dpd=121, principal="30000.00"),
    loan("L25", "C25", dpd=120, principal="30000.00"),
    loan("L26", "C26", dpd=31, credit_type="microempresa"),
    loan("L27", "C27", dpd=0, status="refinanciado"),
    loan("L28", "C28", dpd=30, credit_type="microempresa"),
    loan("L29", "C29", dpd=5, credit_type="microempresa"),
]

PAYMENTS = {
    H2: [payment("P1", "L01", H2, "100.00")],                     # outside the 90-day window
    H3: [payment("P2", "L01", H3, "50.00"),
         payment("P4", "L05", H3, "1.00", currency="USD"),        # at H3's rate 3.700000 -> 3.70
         payment("P6", "L99", H3, "10.00")],                      # loan seen on H1 only: valid
    D: [payment("P3", "L01", D, "100.00", reversal=True),         # reverses P1 (outside window)
        payment("P5", "L05", D, "1.00", currency="USD", reversal=True)],  # at D's 3.655000 -> -3.655
}
USD_RATE = {H0: "3.700000", H1: "3.700000", H2: "3.700000", H3: "3.700000", D: "3.655000"}


def build_landing(landing: Path, **variant) -> Path:
    template = {row["loan_id"]: row for row in D_LOANS}
    for day in (H0, H1, H2, H3):
        loans = [dict(template.get(lid, loan(lid, "C01")), days_past_due=str(by_day[day]))
                 for lid, by_day in HISTORY.items() if day in by_day]
        write_drop(landing, day, loans, customers_all(), PAYMENTS.get(day, []), USD_RATE[day], **variant)
    write_drop(landing, D, D_LOANS, customers_all(), PAYMENTS[D], USD_RATE[D], **variant)
    return landing


# loan -> the columns the case is about, each derived by hand (see the comments)
EXPECTED = {
    # episodes: H1 (5 after 0 on H0, H0 itself outside the window) and H3 (3 after 0); D
    # continues H3's episode. paid: 50.00 (H3) - 100.00 (reversal on D of a payment outside
    # the window) = -50.00; last non-reversal payment H3 -> 89 days.
    "L01": dict(dpd_bucket="1-8", max_dpd_12m=5, delinquency_episodes_12m=2, paid_90d_pen=Decimal("-50.00"),
                days_since_last_payment=89, sbs_category="NOR", segment_code="TEMPRANA_REINCIDENTE",
                strategy_code="CALL_CENTER_TEMPRANA", channel="llamada", offer="ninguna", assignee="interno",
                provision_pen=Decimal("10.00"), ifrs9_stage=1),
    # 40 on H0 is outside the window; 50 on H1 follows 40 (no new episode)
    "L02": dict(dpd_bucket="0", max_dpd_12m=50, delinquency_episodes_12m=0, paid_90d_pen=Decimal("0.00"),
                days_since_last_payment=None, segment_code="PREVENTIVA", strategy_code="RECORDATORIO_PREVENTIVO",
                channel="llamada"),  # sms without consent -> llamada
    "L03": dict(max_dpd_12m=0, delinquency_episodes_12m=0, segment_code="AL_DIA", strategy_code="SIN_ACCION",
                channel="ninguno", offer="ninguna", assignee=None, next_contact_date=None),
    # first snapshot ever (H3) is delinquent: one episode
    "L04": dict(max_dpd_12m=7, delinquency_episodes_12m=1, segment_code="TEMPRANA_BUEN_HISTORIAL",
                strategy_code="FLEXIBLE_DIGITAL", channel="whatsapp", offer="reprogramacion"),
    # 3.00 USD x 3.655 = 10.965 -> 10.97 (half away from zero); paid 3.70 - 3.655 = 0.045 -> 0.05
    "L05": dict(balance_pen=Decimal("10.97"), paid_90d_pen=Decimal("0.05"), days_since_last_payment=89,
                provision_pen=Decimal("0.11")),  # 10.97 x 1% = 0.1097
    # C06 total 10,000.00 -> threshold max(100, min(100, 16,500)) = 100: L06 (DUD) reaches it
    "L06": dict(sbs_category="DUD", sbs_category_aligned="DUD", provision_pen=Decimal("60.00"),
                dpd_bucket="61-90", segment_code="TARDIA", strategy_code="CALL_CENTER_PLAN", ifrs9_stage=2),
    "L07": dict(sbs_category="NOR", sbs_category_aligned="DUD", provision_rate=Decimal("0.6"),
                provision_pen=Decimal("5940.00"), segment_code="AL_DIA"),
    # C08: 99.99 < 100 -> no alignment; 99.99 x 60% = 59.994 -> 59.99
    "L08": dict(sbs_category="DUD", sbs_category_aligned="DUD", provision_pen=Decimal("59.99")),
    "L09": dict(sbs_category="NOR", sbs_category_aligned="NOR", provision_pen=Decimal("99.00")),
    # C10: total 20,000.01 -> 1% = 200.0001 (not rounded) > 200.00: L10 does not reach it
    "L10": dict(sbs_category="CPP", sbs_category_aligned="CPP", provision_pen=Decimal("10.00"),
                segment_code="TEMPRANA_BUEN_HISTORIAL", delinquency_episodes_12m=1, max_dpd_12m=10),
    "L11": dict(sbs_category="NOR", sbs_category_aligned="NOR", provision_pen=Decimal("198.00")),
    # C12: 1% of 2,016,500 = 20,165 > 3 UIT (16,500 in 2026): threshold 16,500 reached by L12 (DEF)
    "L12": dict(sbs_category="DEF", sbs_category_aligned="DEF", provision_pen=Decimal("4125.00"),
                segment_code="TARDIA_ALTO_MONTO", strategy_code="REFINANCIACION", channel="llamada",
                offer="refinanciacion", assignee="interno", ifrs9_stage=2),
    "L13": dict(sbs_category="NOR", sbs_category_aligned="DEF", provision_rate=Decimal("0.125"),
                provision_pen=Decimal("250000.00"), segment_code="AL_DIA"),
    "L14": dict(sbs_category="DUD", dpd_bucket="91-120", segment_code="PREJUDICIAL",
                strategy_code="PREJUDICIAL_VISITA", channel="visita_campo", offer="plan_pagos",
                provision_pen=Decimal("600.00"), ifrs9_stage=3),
    "L15": dict(sbs_category="NOR", dpd_bucket="1-8"),
    "L16": dict(sbs_category="CPP", dpd_bucket="9-30"),
    "L17": dict(sbs_category="NOR", provision_rate=Decimal("0.007"), provision_pen=Decimal("7.00"), ifrs9_stage=1),
    "L18": dict(sbs_category="PER", dpd_bucket=">365", segment_code="AGENCIA_EXTERNA",
                strategy_code="AGENCIA_DESCUENTO", channel="agencia_externa", assignee="agencia_externa"),
    "L19": dict(sbs_category="DUD", dpd_bucket="181-365"),
    "L20": dict(sbs_category="NOR", provision_pen=Decimal("7.00")),
    "L21": dict(sbs_category="CPP", provision_pen=Decimal("50.00")),
    "L22": dict(sbs_category="PER", provision_pen=Decimal("1000.00"), segment_code="CASTIGO_RECUPERO",
                strategy_code="RECUPERO_AGENCIA", ifrs9_stage=3),
    "L23": dict(segment_code="JUDICIAL", strategy_code="SEGUIMIENTO_JUDICIAL", channel="estudio_juridico",
                ifrs9_stage=3),
    "L24": dict(sbs_category="PER", segment_code="DEMANDA", strategy_code="DEMANDA_JUDICIAL"),
    "L25": dict(sbs_category="DUD", segment_code="PREJUDICIAL"),
    "L26": dict(sbs_category="DEF", segment_code="TARDIA_MYPE", strategy_code="ASESOR_NEGOCIOS",
                channel="visita_asesor", assignee="asesor_negocios"),
    "L27": dict(segment_code="AL_DIA", ifrs9_stage=2),
    # H3 30 then D 30: one episode, max 30 <= 30
    "L28": dict(max_dpd_12m=30, delinquency_episodes_12m=1, segment_code="TEMPRANA_BUEN_HISTORIAL"),
    # max 31 > 30
    "L29": dict(max_dpd_12m=31, delinquency_episodes_12m=1, segment_code="TEMPRANA_REINCIDENTE"),
}


def as_python(value):
    if value is None:
        return None
    try:
        import pandas as pd

        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return value.item() if hasattr(value, "item") else value


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    landing = build_landing(tmp_path_factory.mktemp("landing"))
    return run_reference(landing, D)


def test_every_loan_of_d_once_with_hand_derived_values(reference):
    out = reference.assignments
    assert list(out.loan_id) == sorted(r["loan_id"] for r in D_LOANS)  # L99 left the portfolio
    assert reference.quarantine.empty and not reference.rejected_drops
    rows = out.set_index("loan_id")
    for loan_id, expected in EXPECTED.items():
        for column, value in expected.items():
            got = as_python(rows.at[loan_id, column])
            assert got == value, f"{loan_id}.{column}: {got!r} != {value!r}"


def test_contact_date_and_balances(reference):
    rows = reference.assignments.set_index("loan_id")
    action = rows[rows.strategy_code != "SIN_ACCION"]
    assert set(action.next_contact_date) == {NEXT_CONTACT}
    assert rows.next_contact_date[rows.strategy_code == "SIN_ACCION"].isna().all()
    assert as_python(rows.at["L13", "balance_pen"]) == Decimal("2000000.00")
    assert (rows.as_of_date == D).all()
    assert rows.department_code.to_dict()["L12"] == "25"


@pytest.mark.parametrize("variant", [dict(delimiter=";", encoding="latin-1", gzipped=True, dmy_dates=True),
                                     dict(delimiter=";", encoding="utf-8", gzipped=False, dmy_dates=True)])
def test_file_variants_give_identical_assignments(reference, tmp_path, variant):
    other = run_reference(build_landing(tmp_path, **variant), D).assignments
    assert other.equals(reference.assignments)


def test_bad_rows_are_quarantined_and_the_rest_computed(tmp_path):
    good = [loan(f"L{i}", "C1") for i in range(1, 5)]
    bad = [
        loan("LX1", "C1", credit_type="leasing"),        # not in the enum
        loan("LD", "C1"), loan("LD", "C1", dpd=3),       # duplicated key: both
        loan("LX2", "C_MISSING"),                        # customer not in customers.csv
        loan("LX3", "C1", principal="10.005"),           # more than 2 decimals
        loan("LX4", "C1", dpd=10001),                    # dpd out of range
        loan("LX5", "C1", currency="EUR", principal="0.005"),  # (keeps the control total at 2 decimals)
    ]
    pays = [payment("P1", "L1", D, "5.00"), payment("P2", "NOPE", D, "5.00"),
            payment("P3", "L1", D - dt.timedelta(days=1), "5.00")]
    write_drop(tmp_path, D, good + bad, [customer("C1")], pays)
    result = run_reference(tmp_path, D, threshold=0.9)
    assert list(result.assignments.loan_id) == ["L1", "L2", "L3", "L4"]
    q = result.quarantine
    by_line = dict(zip(zip(q.file_name, q.line_number), zip(q.rule, q.column_name)))
    assert by_line[("loans.csv", 6)][1] == "credit_type"
    assert by_line[("loans.csv", 7)] == ("unique", "loan_id") and by_line[("loans.csv", 8)] == ("unique", "loan_id")
    assert by_line[("loans.csv", 9)][1] == "customer_id"
    assert by_line[("loans.csv", 10)][1] == "outstanding_principal"
    assert by_line[("loans.csv", 11)][1] == "days_past_due"
    assert by_line[("loans.csv", 12)][1] == "currency"
    assert by_line[("payments.csv", 3)][1] == "loan_id"
    assert by_line[("payments.csv", 4)][1] == "payment_date"
    assert len(q) == 9
    assert '"loan_id": "LX1"' in q.raw_values[q.line_number == 6].iloc[0]
    # L1 keeps its one valid payment
    assert result.assignments.set_index("loan_id").paid_90d_pen["L1"] == Decimal("5.00")
    # at the contract's default 1% the same drop is rejected as a whole
    with pytest.raises(DropRejected, match="loans.csv"):
        run_reference(tmp_path, D)


def test_a_rejected_earlier_drop_is_not_history(tmp_path):
    write_drop(tmp_path, H3, [loan("L1", "C1", dpd=60)], [customer("C1")])
    write_drop(tmp_path, D, [loan("L1", "C1", dpd=0)], [customer("C1")])
    assert run_reference(tmp_path, D).assignments.max_dpd_12m.tolist() == [60]
    control = tmp_path / H3.isoformat() / "_control.csv"
    control.write_text(control.read_text().replace("loans.csv,1,", "loans.csv,2,"))  # count mismatch
    result = run_reference(tmp_path, D)
    assert result.assignments.max_dpd_12m.tolist() == [0]
    assert H3 in result.rejected_drops and "loans.csv" in result.rejected_drops[H3]


def test_structural_faults_reject_the_drop(tmp_path):
    write_drop(tmp_path, D, [loan("L1", "C1", currency="USD")], [customer("C1")], usd_rate=None)
    with pytest.raises(DropRejected, match="USD"):
        run_reference(tmp_path, D)
    write_drop(tmp_path, D, [loan("L1", "C1")], [customer("C1")])
    path = tmp_path / D.isoformat() / "loans.csv"
    path.write_text(path.read_text().replace("guarantee_type", "garantia"))
    with pytest.raises(DropRejected, match="loans.csv: required column guarantee_type missing"):
        run_reference(tmp_path, D)


def test_single_query_agrees_with_the_reference(reference, tmp_path):
    """benchmarks/single_query.sql (B6's yardstick) on the same hand-made history, loaded
    into raw tables shaped as docs/design.md says, returns the same rows."""
    import duckdb

    from benchmarks.compare import compare

    landing = build_landing(tmp_path / "landing")
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    con.execute("create schema raw; create schema config")
    types = {"disbursement_date": "DATE", "maturity_date": "DATE", "next_due_date": "DATE", "payment_date": "DATE",
             "original_amount": "DECIMAL(18,2)", "outstanding_principal": "DECIMAL(18,2)",
             "overdue_amount": "DECIMAL(18,2)", "installment_amount": "DECIMAL(18,2)", "amount": "DECIMAL(18,2)",
             "days_past_due": "INTEGER", "is_reversal": "BOOLEAN", "digital_contact_consent": "BOOLEAN",
             "rate_to_pen": "DECIMAL(18,6)"}
    from landing_builder import COLUMNS

    for extract, cols in COLUMNS.items():
        select = ", ".join(f"CAST(nullif({c}, '') AS {types.get(c, 'VARCHAR')}) AS {c}" for c in cols)
        con.execute(
            f"create table raw.{extract} as select CAST(split_part(filename, '/', -2) AS DATE) AS as_of_date, {select} "
            f"from read_csv('{landing}/*/{extract}.csv', all_varchar=true, filename=true, header=true)")
    con.execute(f"create table config.pe_holidays as select * from read_csv('{ROOT}/dbt_project/seeds/pe_holidays.csv')")
    sql = (ROOT / "benchmarks" / "single_query.sql").read_text()
    table = con.sql(sql, params={"as_of_date": D.isoformat()}).to_arrow_table()
    result = compare(table, reference.assignments, "single_query", "reference")
    assert result.identical, result.summary()
    assert table.num_rows == len(D_LOANS)
