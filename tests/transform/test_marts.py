"""End to end with real dbt: a small hand-made portfolio over four business dates goes
through staging, features, the rulebook and the marts; the marts are checked against
values computed here, independently of the SQL and of the rulebook module (the contract's
rule table, strategy catalogue and coverage list are restated below as plain Python).

Each test works on its own copy of the dbt project, so editing the rulebook never touches
the repository and parallel runs do not share dbt's target folder.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections import Counter, defaultdict
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import duckdb
import pytest

from orchestration.calendar import next_business_day
from orchestration.config import DBT_PROJECT_DIR
from orchestration.ingest.schema import ensure_raw_schema
from orchestration.transform.explain import explain_loan
from orchestration.transform.rulebook import compile_rulebook, load_rulebook

pytestmark = pytest.mark.slow

PROJECT_ROOT = DBT_PROJECT_DIR.parent
DBT = str(Path(sys.executable).parent / "dbt")
DATES = ["2026-01-05", "2026-01-06", "2026-01-08", "2026-01-09"]  # Mon, Tue, Thu, Fri (no 01-07 drop)
USD_RATE = {"2026-01-05": Decimal("3.750000"), "2026-01-06": Decimal("3.760000"),
            "2026-01-08": Decimal("3.740000"), "2026-01-09": Decimal("3.731500")}
MARTS = {"marts.segment_assignments": "as_of_date, loan_id",
         "marts.segment_summary": "as_of_date, segment_code",
         "marts.segment_migration": "as_of_date, from_segment, to_segment",
         "restricted.daily_actions": "as_of_date, priority"}

# ---- the contract (section 3), restated independently of rulebook.yml and the seeds ---------
COVERED_DEPARTMENTS = {"15", "07", "04", "13", "14", "20", "12", "08"}
CATALOGUE = {  # strategy: (primary channel, needs coverage, fallback, offer, assignee)
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


def contract_segment(f: dict, alto_monto: Decimal = Decimal(10000)) -> tuple[int, str, str]:
    """(rule order, segment, strategy) of the contract's table; first match wins."""
    dpd, bal = f["dpd"], f["balance_pen"]
    table = [
        (f["accounting_status"] == "castigado", "CASTIGO_RECUPERO", "RECUPERO_AGENCIA"),
        (f["accounting_status"] == "judicial", "JUDICIAL", "SEGUIMIENTO_JUDICIAL"),
        (dpd > 120 and bal >= 30000, "DEMANDA", "DEMANDA_JUDICIAL"),
        (dpd > 120, "AGENCIA_EXTERNA", "AGENCIA_DESCUENTO"),
        (91 <= dpd <= 120, "PREJUDICIAL", "PREJUDICIAL_VISITA"),
        (31 <= dpd <= 90 and f["credit_type"] in ("microempresa", "pequena_empresa"), "TARDIA_MYPE", "ASESOR_NEGOCIOS"),
        (31 <= dpd <= 90 and bal >= alto_monto, "TARDIA_ALTO_MONTO", "REFINANCIACION"),
        (31 <= dpd <= 90, "TARDIA", "CALL_CENTER_PLAN"),
        (1 <= dpd <= 30 and f["episodes"] <= 1 and f["max_dpd"] <= 30, "TEMPRANA_BUEN_HISTORIAL", "FLEXIBLE_DIGITAL"),
        (1 <= dpd <= 30, "TEMPRANA_REINCIDENTE", "CALL_CENTER_TEMPRANA"),
        (dpd == 0 and f["max_dpd"] > 30, "PREVENTIVA", "RECORDATORIO_PREVENTIVO"),
        (True, "AL_DIA", "SIN_ACCION"),
    ]
    return next((order, seg, strat) for order, (hit, seg, strat) in enumerate(table, start=1) if hit)


def contract_channel(strategy: str, department: str, consent: bool) -> str:
    primary, needs_coverage, fallback, _, _ = CATALOGUE[strategy]
    channel = fallback if needs_coverage and department not in COVERED_DEPARTMENTS else primary
    if channel in ("whatsapp", "sms", "email") and not consent:
        channel = "llamada"
    return channel


# ---- the hand-made portfolio ----------------------------------------------------------------
CUSTOMERS = {  # customer: (name, phone, email, ubigeo, digital consent)
    "C01": ("José Ñúñez Peña", "+51911111111", "jose@example.pe", "150101", True),     # Lima
    "C02": ("María Quispe", "+51922222222", None, "050101", False),                     # Ayacucho: no field staff
    "C03": ("Empresa Ándes SAC", None, "andes@example.pe", "210101", True),             # Puno: no field staff
    "C04": ("Luis Huamán", "+51944444444", None, "070101", False),                      # Callao
    "C05": ("Rosa Mamani", "+51955555555", "rosa@example.pe", "080101", True),          # Cusco
    "C06": ("Pedro Rojas", "=cmd|' /C calc'!A0", None, "150101", False),                # Lima
}
# loan: (customer, credit_type, currency, accounting status per date, principal, dpd per date)
# A None dpd means the loan is not in that date's file.
LOANS = {
    "L01": ("C01", "consumo_no_revolvente", "PEN", "castigado", "50000.00", [200, 201, 203, 204]),
    "L02": ("C02", "consumo_no_revolvente", "PEN", "judicial", "800.00", [10, 11, 13, 14]),
    "L03": ("C03", "consumo_no_revolvente", "PEN", "vencido", "30000.00", [150, 151, 153, 154]),
    "L04": ("C03", "consumo_no_revolvente", "PEN", "vencido", "29999.99", [150, 151, 153, 154]),
    "L05": ("C02", "microempresa", "PEN", "vencido", "7000.00", [100, 101, 103, 104]),
    "L06": ("C01", "microempresa", "PEN", "vigente", "50000.00", [45, 46, 48, 49]),
    "L07": ("C04", "consumo_no_revolvente", "PEN", "vigente", "12300.00", [45, 46, 48, 49]),
    "L08": ("C02", "consumo_no_revolvente", "USD", "vigente", "3000.00", [45, 46, 48, 49]),
    "L09": ("C06", "consumo_no_revolvente", "PEN", "vigente", "500.00", [60, 61, 0, 0]),
    "L10": ("C05", "consumo_revolvente", "PEN", "vigente", "800.00", [10, 11, 13, 0]),
    "L11": ("C04", "consumo_revolvente", "PEN", "vigente", "14000.00", [10, None, None, None]),
    "L12": ("C06", "hipotecario", "PEN", "vigente", "90000.00", [0, 0, 0, 0]),
    "L13": ("C05", "pequena_empresa", "USD", "vigente", "2666.67", [None, 40, 42, 43]),
    "L14": ("C01", "consumo_revolvente", "PEN", "vigente", "1500.00", [5, 0, 3, 4]),
    "L15": ("C04", "consumo_no_revolvente", "PEN", "vigente", "13000.00", [35, 36, 38, 39]),
}
PAYMENTS = [  # payment, loan, date, amount, currency, reversal
    ("P1", "L09", "2026-01-08", "300.00", "PEN", False),
    ("P2", "L10", "2026-01-09", "120.00", "PEN", False),
    ("P3", "L13", "2026-01-06", "100.00", "USD", False),
]


def write_raw(db_path: Path) -> None:
    con = duckdb.connect(str(db_path))
    try:
        ensure_raw_schema(con)
        for day in DATES:
            con.execute("insert into raw.fx_rates values (?, 'USD', ?, 2)", [day, USD_RATE[day]])
            for line, (cid, (name, phone, email, ubigeo, consent)) in enumerate(sorted(CUSTOMERS.items()), start=2):
                con.execute("insert into raw.customers values (?, ?, 'DNI', ?, ?, ?, ?, ?, ?, ?)",
                            [day, cid, f"4{line:07d}", name, phone, email, ubigeo, consent, line])
            index = DATES.index(day)
            for line, (loan, (cid, credit, cur, status, principal, dpds)) in enumerate(sorted(LOANS.items()), start=2):
                if dpds[index] is None:
                    continue
                con.execute(
                    "insert into raw.loans values (?, ?, ?, ?, 'PROD', ?, '2025-01-15', '2027-01-15', ?, ?, 0, 100, "
                    "'2026-02-15', ?, ?, 'ninguna', 'B01', ?)",
                    [day, loan, cid, credit, cur, principal, principal, dpds[index], status, line])
            for line, (pid, loan, pay_day, amount, cur, reversal) in enumerate(PAYMENTS, start=2):
                if pay_day == day:
                    con.execute("insert into raw.payments values (?, ?, ?, ?, ?, ?, 'agencia', ?, ?)",
                                [day, pid, loan, pay_day, amount, cur, reversal, line])
    finally:
        con.close()


# ---- independent expectations ---------------------------------------------------------------
def money(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def expected_assignments(upto: list[str], alto_monto: Decimal = Decimal(10000)) -> dict[tuple, dict]:
    """(date, loan) -> what the contract says, from the raw values above."""
    out = {}
    for index, day in enumerate(DATES):
        if day not in upto:
            continue
        for loan, (cid, credit, cur, status, principal, dpds) in LOANS.items():
            dpd = dpds[index]
            if dpd is None:
                continue
            history = [d for d in dpds[: index + 1] if d is not None]  # all within 12 months
            episodes = sum(1 for k, d in enumerate(history) if d > 0 and (k == 0 or history[k - 1] == 0))
            rate = USD_RATE[day] if cur == "USD" else Decimal(1)
            features = {"dpd": dpd, "balance_pen": money(Decimal(principal) * rate), "credit_type": credit,
                        "accounting_status": status, "max_dpd": max(history), "episodes": episodes}
            order, segment, strategy = contract_segment(features, alto_monto)
            name, phone, email, ubigeo, consent = CUSTOMERS[cid]
            channel = contract_channel(strategy, ubigeo[:2], consent)
            out[(day, loan)] = {
                **features, "customer_id": cid, "rule_order": order, "segment_code": segment,
                "strategy_code": strategy, "channel": channel, "offer": CATALOGUE[strategy][3],
                "assignee": CATALOGUE[strategy][4], "department_code": ubigeo[:2],
                "next_contact_date": None if strategy == "SIN_ACCION" else next_business_day(dt.date.fromisoformat(day)),
                "full_name": name, "phone": phone, "email": email}
    return out


# ---- dbt ----------------------------------------------------------------------------------------
def copy_project(dest: Path) -> Path:
    """The dbt project (dbt_project/ + models/) copied so dbt_project.yml's ../models resolves."""
    ignore = shutil.ignore_patterns("target", "logs", "dbt_packages", "generated", "*.duckdb*")
    shutil.copytree(DBT_PROJECT_DIR, dest / "dbt_project", ignore=ignore)
    shutil.copytree(PROJECT_ROOT / "models", dest / "models", ignore=ignore)
    compile_rulebook(dest / "dbt_project" / "rulebook.yml", dest / "dbt_project")
    return dest / "dbt_project"


UNIT_TESTED_MODELS = ["int_loan_segments", "int_contact_calendar", "int_loan_strategies", "segment_summary",
                      "segment_migration", "daily_actions"]


def run_dbt(project: Path, db_path: Path, start: str, end: str, command: str = "build", *extra: str) -> None:
    """One dbt invocation on a copied project. Unit tests are excluded from `build` (they pin
    the default rulebook) and run once, separately, by the fixture."""
    args = [DBT, command, "--project-dir", str(project), "--profiles-dir", str(project),
            "--vars", f"{{start_date: '{start}', end_date: '{end}'}}", *extra]
    if command == "build":
        args += ["--exclude-resource-type", "unit_test"]
    env = {**os.environ, "CARTERA_DUCKDB_PATH": str(db_path), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
           "DO_NOT_TRACK": "1"}
    done = subprocess.run(args, cwd=project, env=env, capture_output=True, text=True)
    assert done.returncode == 0, f"dbt {command} {start}..{end} failed:\n{done.stdout[-6000:]}\n{done.stderr[-2000:]}"


def read(db_path: Path, table: str, where: str = "true") -> list[dict]:
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        cur = con.execute(f"select * from {table} where {where} order by {MARTS.get(table, '1')}")
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row)) for row in cur.fetchall()]
    finally:
        con.close()


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Path]:
    """Warehouse A: the four dates one by one. Warehouse B: the same dates as one range."""
    root = tmp_path_factory.mktemp("marts")
    project = copy_project(root / "project")
    one_by_one, as_range = root / "one_by_one.duckdb", root / "range.duckdb"
    write_raw(one_by_one)
    write_raw(as_range)
    # data tests run on the first date and on the whole range; the other dates only build
    for k, day in enumerate(DATES):
        run_dbt(project, one_by_one, day, day, "build" if k == 0 else "run")
    run_dbt(project, as_range, DATES[0], DATES[-1])
    # the dbt unit tests of this stage (rules, channels, calendar, marts), once
    run_dbt(project, one_by_one, DATES[0], DATES[0], "test", "--select",
            *[f"test_type:unit,{model}" for model in UNIT_TESTED_MODELS])
    results = json.loads((project / "target" / "run_results.json").read_text(encoding="utf-8"))["results"]
    unit_tests = {r["unique_id"]: r["status"] for r in results if r["unique_id"].startswith("unit_test.")}
    return {"project": project, "one_by_one": one_by_one, "range": as_range, "unit_tests": unit_tests}


# ---- tests --------------------------------------------------------------------------------------
def test_dbt_unit_tests_of_the_stage_ran(built):
    """The fixture ran them (a failure fails the fixture); check they were really selected."""
    names = {uid.rsplit(".", 1)[-1] for uid in built["unit_tests"]}
    assert {"rules_first_match_wins", "rules_reason_from_matched_values", "calendar_holy_week_2026",
            "calendar_fiestas_patrias_2026", "channel_substitutions", "channel_both_substitutions",
            "migration_previous_processed_date", "actions_priority_and_contacts"} <= names
    assert set(built["unit_tests"].values()) == {"pass"}


def test_assignments_follow_the_contract(built):
    rows = read(built["one_by_one"], "marts.segment_assignments")
    expected = expected_assignments(DATES)
    assert {(r["as_of_date"].isoformat(), r["loan_id"]) for r in rows} == set(expected)
    version = load_rulebook(built["project"] / "rulebook.yml", dbt_project_dir=built["project"]).version
    for row in rows:
        want = expected[(row["as_of_date"].isoformat(), row["loan_id"])]
        key = (row["as_of_date"], row["loan_id"])
        got = {k: row[k] for k in ("dpd", "balance_pen", "max_dpd_12m", "delinquency_episodes_12m", "segment_code",
                                   "strategy_code", "channel", "offer", "assignee", "department_code",
                                   "next_contact_date", "customer_id")}
        assert got == {"dpd": want["dpd"], "balance_pen": want["balance_pen"], "max_dpd_12m": want["max_dpd"],
                       "delinquency_episodes_12m": want["episodes"], "segment_code": want["segment_code"],
                       "strategy_code": want["strategy_code"], "channel": want["channel"], "offer": want["offer"],
                       "assignee": want["assignee"], "department_code": want["department_code"],
                       "next_contact_date": want["next_contact_date"], "customer_id": want["customer_id"]}, key
        assert row["rulebook_version"] == version
    # every segment of the contract is exercised by the hand-made portfolio
    assert {r["segment_code"] for r in rows} == {
        "CASTIGO_RECUPERO", "JUDICIAL", "DEMANDA", "AGENCIA_EXTERNA", "PREJUDICIAL", "TARDIA_MYPE",
        "TARDIA_ALTO_MONTO", "TARDIA", "TEMPRANA_BUEN_HISTORIAL", "TEMPRANA_REINCIDENTE", "PREVENTIVA", "AL_DIA"}
    by_key = {(r["as_of_date"].isoformat(), r["loan_id"]): r for r in rows}
    assert by_key[("2026-01-05", "L07")]["reason"] == "días de atraso 45 en 31–90; saldo S/ 12,300.00 >= 10,000"
    assert by_key[("2026-01-05", "L08")]["reason"] == "días de atraso 45 en 31–90; saldo S/ 11,250.00 >= 10,000"
    assert by_key[("2026-01-09", "L09")]["reason"] == "días de atraso 0; atraso máximo 12 meses 61 > 30"
    assert by_key[("2026-01-05", "L12")]["reason"] == "sin atraso ni alertas: al día"
    # Friday -> Monday
    assert by_key[("2026-01-09", "L07")]["next_contact_date"] == dt.date(2026, 1, 12)


def test_summary_migration_and_actions_follow_the_assignments(built):
    db = built["one_by_one"]
    expected = expected_assignments(DATES)
    assignments = read(db, "marts.segment_assignments")

    totals, groups = defaultdict(Decimal), defaultdict(list)
    for (day, loan), want in expected.items():
        totals[day] += want["balance_pen"]
        groups[(day, want["segment_code"])].append(want)
    provisions = defaultdict(Decimal)
    for row in assignments:
        provisions[(row["as_of_date"].isoformat(), row["segment_code"])] += row["provision_pen"]
    summary = {(r["as_of_date"].isoformat(), r["segment_code"]): r for r in read(db, "marts.segment_summary")}
    assert set(summary) == set(groups)
    for key, members in groups.items():
        balance = sum(m["balance_pen"] for m in members)
        assert summary[key]["loans"] == len(members)
        assert summary[key]["customers"] == len({m["customer_id"] for m in members})
        assert summary[key]["balance_pen"] == balance
        assert summary[key]["provision_pen"] == provisions[key]
        assert summary[key]["balance_share"] == (balance / totals[key[0]]).quantize(Decimal("0.000001"), ROUND_HALF_UP)

    moves: Counter = Counter()
    balances: defaultdict = defaultdict(Decimal)
    for index, day in enumerate(DATES):
        today = {loan: v for (d, loan), v in expected.items() if d == day}
        before = {loan: v for (d, loan), v in expected.items() if index and d == DATES[index - 1]}
        for loan in today.keys() | before.keys():
            src = before[loan]["segment_code"] if loan in before else "NUEVO"
            dst = today[loan]["segment_code"] if loan in today else "SALIDA"
            moves[(day, src, dst)] += 1
            balances[(day, src, dst)] += (today.get(loan) or before[loan])["balance_pen"]
    migration = {(r["as_of_date"].isoformat(), r["from_segment"], r["to_segment"]): (r["loans"], r["balance_pen"])
                 for r in read(db, "marts.segment_migration")}
    assert migration == {key: (n, balances[key]) for key, n in moves.items()}
    # 2026-01-08 follows 2026-01-06 (no drop on 01-07); L11 left on 01-06 with its 01-05 balance
    assert migration[("2026-01-06", "TEMPRANA_BUEN_HISTORIAL", "SALIDA")] == (1, Decimal("14000.00"))
    assert migration[("2026-01-08", "TARDIA", "PREVENTIVA")] == (1, Decimal("500.00"))

    actions = read(db, "restricted.daily_actions")
    for day in DATES:
        todo = sorted(((v["rule_order"], -v["balance_pen"], loan), v) for (d, loan), v in expected.items()
                      if d == day and v["strategy_code"] != "SIN_ACCION")
        got = [r for r in actions if r["as_of_date"].isoformat() == day]
        assert [(r["priority"], r["loan_id"]) for r in got] == [(k, key[2]) for k, (key, _) in enumerate(todo, 1)]
        for row, (_, want) in zip(got, todo):
            assert (row["full_name"], row["phone"], row["email"], row["channel"], row["next_contact_date"]) == (
                want["full_name"], want["phone"], want["email"], want["channel"], want["next_contact_date"])
            assert (row["contact_window_start"], row["contact_window_end"]) == ("07:00", "20:00")


def test_a_range_gives_the_same_rows_as_dates_one_by_one(built):
    for table in MARTS:
        assert read(built["range"], table) == read(built["one_by_one"], table), table


def test_running_a_date_twice_gives_identical_rows(built, tmp_path):
    db = tmp_path / "again.duckdb"
    shutil.copy(built["one_by_one"], db)
    before = {table: read(db, table) for table in MARTS}
    run_dbt(built["project"], db, DATES[-1], DATES[-1], "run")
    assert {table: read(db, table) for table in MARTS} == before


def tree_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*.sql")):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()


def test_editing_the_rulebook_changes_segments_without_touching_sql(built, tmp_path):
    project = copy_project(tmp_path / "edited")
    db = tmp_path / "edited.duckdb"
    shutil.copy(built["one_by_one"], db)
    models_before = tree_digest(project.parent / "models")
    old_version = read(db, "marts.segment_assignments")[0]["rulebook_version"]

    rulebook = project / "rulebook.yml"
    text = rulebook.read_text(encoding="utf-8")
    rulebook.write_text(text.replace("and balance_pen >= 10000\n", "and balance_pen >= 15000\n"), encoding="utf-8")
    new_version = compile_rulebook(rulebook, project).version
    run_dbt(project, db, DATES[-1], DATES[-1])

    assert tree_digest(project.parent / "models") == models_before
    rows = read(db, "marts.segment_assignments", f"as_of_date = '{DATES[-1]}'")
    assert {r["rulebook_version"] for r in rows} == {new_version} != {old_version}
    expected = expected_assignments(DATES, alto_monto=Decimal(15000))
    assert {r["loan_id"]: r["segment_code"] for r in rows} == {
        loan: v["segment_code"] for (d, loan), v in expected.items() if d == DATES[-1]}
    moved = {r["loan_id"] for r in rows if r["segment_code"] == "TARDIA"} - {
        loan for (d, loan), v in expected_assignments(DATES).items() if d == DATES[-1] and v["segment_code"] == "TARDIA"}
    assert moved == {"L07", "L08", "L15"}  # balances 12,300 / 11,194.50 / 13,000 are now below 15,000
    # earlier dates keep the segments (and version) they were assigned with
    earlier = read(db, "marts.segment_assignments", f"as_of_date = '{DATES[0]}'")
    assert {r["rulebook_version"] for r in earlier} == {old_version}


def test_explain_replays_the_rules_and_the_channel(built):
    con = duckdb.connect(str(built["one_by_one"]), read_only=True)
    try:
        rulebook = load_rulebook(built["project"] / "rulebook.yml", dbt_project_dir=built["project"])
        text = explain_loan(con, "L08", "2026-01-05", rulebook, dbt_project_dir=built["project"])
    finally:
        con.close()
    assert "#7 tardia_alto_monto [APLICA]" in text
    assert "✗ tipo de crédito consumo_no_revolvente en [microempresa, pequena_empresa]  <- falla" in text
    assert "✓ saldo S/ 11,250.00 >= 10,000" in text
    assert "visita_campo -> llamada: departamento 05 sin cobertura de campo" in text
    assert "#8 " not in text  # later rules are not evaluated
