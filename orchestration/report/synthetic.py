"""A synthetic serving file, for the report's tests and benchmark only (never the pipeline).

The report reads nothing but the published tables, so it can be exercised without running
ingest, dbt and publish: :func:`build_serving_file` writes ``segment_assignments``,
``segment_summary``, ``segment_migration``, ``bucket_roll_rates`` and ``run_audit`` with the published columns
(docs/design.md, ``customer_key`` instead of customer_id) and plausible rows. Everything is
DuckDB SQL, one date at a time (bounded memory): 2,000 loans x 6 dates take well under a
second, 1,000,000 loans x 30 dates about 3 minutes on 2 cores.

The rows are *plausible*, not contract-exact: segments follow a shortened rulebook and the
alignment ignores the balance threshold. Tests recompute every expected figure from these
tables with SQL; nothing here is an expected value.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path


def business_dates(start: dt.date, count: int) -> list[dt.date]:
    """``count`` weekdays from ``start`` (holidays ignored: the data is synthetic)."""
    out, day = [], start
    while len(out) < count:
        if day.weekday() < 5:
            out.append(day)
        day += dt.timedelta(days=1)
    return out


# SQL templates; {n}, {dates_sql}, {seed}, ... are filled in below. hash() gives stable
# pseudo-random integers per (loan, seed) without Python loops (made signed by _signed).
_SETUP = """
CREATE TEMP TABLE d AS
SELECT k, as_of_date FROM (VALUES {dates_sql}) t(k, as_of_date);

CREATE TEMP TABLE base AS
SELECT
    i,
    'L' || lpad(i::VARCHAR, 8, '0') AS loan_id,
    -- about a third of the customers hold two loans
    'ck_' || md5(CASE WHEN hash(i // 2, {seed}) % 3 = 0 THEN 'g' || (i // 2) ELSE 'c' || i END)[:16] AS customer_key,
    ['microempresa','pequena_empresa','consumo_no_revolvente','consumo_revolvente',
     'consumo_no_revolvente','microempresa','hipotecario','mediana_empresa',
     'consumo_revolvente','gran_empresa','corporativo','microempresa'][1 + hash(i, {seed}, 1) % 12] AS credit_type,
    ['MYPE_CAPITAL','MYPE_CAPITAL','PERSONAL','TARJETA','VEHICULAR','HIPOTECARIO'][1 + hash(i, {seed}, 2) % 6] AS product_code,
    CASE WHEN hash(i, {seed}, 3) % 10 = 0 THEN 'USD' ELSE 'PEN' END AS currency,
    -- Lima-heavy spread over the 25 departments
    CASE WHEN hash(i, {seed}, 4) % 100 < 45 THEN '15'
         ELSE lpad((1 + hash(i, {seed}, 5) % 25)::VARCHAR, 2, '0') END AS department_code,
    ['ninguna','ninguna','ninguna','preferida','preferida_muy_rapida_realizacion'][1 + hash(i, {seed}, 6) % 5] AS guarantee_type,
    round(500 + (hash(i, {seed}, 7) % 1000000) / 1000000.0 * (hash(i, {seed}, 8) % 60000), 2)::DECIMAL(18,2) AS balance0,
    -- delinquency profile: most loans current, some delinquent from the start
    CASE WHEN hash(i, {seed}, 9) % 100 < 82 THEN 0 ELSE 1 + hash(i, {seed}, 10) % 400 END AS dpd0,
    hash(i, {seed}, 11) % ({dates} * 6) AS event_k,      -- when a current loan falls behind / a late one cures
    hash(i, {seed}, 12) % ({dates} * 40) AS leave_k,     -- paid off / sold (absent from then on)
    CASE WHEN hash(i, {seed}, 13) % 100 < 4 THEN 1 + hash(i, {seed}, 14) % {dates} ELSE 0 END AS enter_k,
    hash(i, {seed}, 15) % 100 < 3 AS written_off,
    hash(i, {seed}, 16) % 100 < 2 AS in_court
FROM range({n}) t(i);

"""

# One business date of segment_assignments (k = index of the date): a SELECT, run per date
# so memory stays at one day's rows however many dates are built.
_DAY = """
WITH snap AS (
SELECT
    d.as_of_date, b.*,
    CASE
        WHEN b.dpd0 = 0 AND d.k >= b.event_k THEN (d.as_of_date - first_d.as_of_date) - (b.event_k * 7 // 5) + 1
        WHEN b.dpd0 > 0 AND d.k >= b.event_k THEN 0
        WHEN b.dpd0 > 0 THEN b.dpd0 + (d.as_of_date - first_d.as_of_date)
        ELSE 0
    END AS dpd_raw
FROM base b
CROSS JOIN d
CROSS JOIN (SELECT as_of_date FROM d WHERE k = 0) first_d
WHERE d.k = {k} AND d.k >= b.enter_k AND d.k < b.leave_k
),
feat AS (
SELECT
    as_of_date, loan_id, customer_key, credit_type, product_code, currency, department_code,
    CASE WHEN written_off AND dpd > 120 THEN 'castigado'
         WHEN in_court AND dpd > 90 THEN 'judicial'
         WHEN dpd > 30 THEN 'vencido' ELSE 'vigente' END AS accounting_status,
    guarantee_type,
    round(balance0 * (1 - 0.002 * (as_of_date - DATE '{first}')), 2)::DECIMAL(18,2) AS balance_pen,
    dpd,
    CASE WHEN dpd = 0 THEN '0' WHEN dpd <= 8 THEN '1-8' WHEN dpd <= 30 THEN '9-30'
         WHEN dpd <= 60 THEN '31-60' WHEN dpd <= 90 THEN '61-90' WHEN dpd <= 120 THEN '91-120'
         WHEN dpd <= 180 THEN '121-180' WHEN dpd <= 365 THEN '181-365' ELSE '>365' END AS dpd_bucket,
    greatest(dpd, dpd0) AS max_dpd_12m,
    (dpd > 0)::INTEGER + (dpd0 > 0)::INTEGER AS delinquency_episodes_12m,
    round((hash(i, as_of_date) % 300000) / 100.0, 2)::DECIMAL(18,2) AS paid_90d_pen,
    CASE WHEN hash(i, as_of_date, 1) % 10 = 0 THEN NULL ELSE least(dpd, 400) + hash(i, 2) % 30 END AS days_since_last_payment,
    CASE
        WHEN credit_type IN ('corporativo','gran_empresa','mediana_empresa') THEN
            CASE WHEN dpd = 0 THEN 'NOR' WHEN dpd <= 60 THEN 'CPP' WHEN dpd <= 120 THEN 'DEF' WHEN dpd <= 365 THEN 'DUD' ELSE 'PER' END
        WHEN credit_type = 'hipotecario' THEN
            CASE WHEN dpd <= 30 THEN 'NOR' WHEN dpd <= 60 THEN 'CPP' WHEN dpd <= 120 THEN 'DEF' WHEN dpd <= 365 THEN 'DUD' ELSE 'PER' END
        ELSE
            CASE WHEN dpd <= 8 THEN 'NOR' WHEN dpd <= 30 THEN 'CPP' WHEN dpd <= 60 THEN 'DEF' WHEN dpd <= 120 THEN 'DUD' ELSE 'PER' END
    END AS sbs_category
FROM (SELECT *, greatest(dpd_raw, 0)::INTEGER AS dpd FROM snap)
),
aligned AS (
SELECT * EXCLUDE (worst),
    -- riskiest category among the customer's loans (threshold ignored in this fixture)
    ['NOR','CPP','DEF','DUD','PER'][worst] AS sbs_category_aligned
FROM (SELECT *, max(list_position(['NOR','CPP','DEF','DUD','PER'], sbs_category))
                    OVER (PARTITION BY as_of_date, customer_key) AS worst
      FROM feat)
),
seg AS (
SELECT *,
    CASE WHEN accounting_status = 'castigado' THEN 'CASTIGO_RECUPERO'
         WHEN accounting_status = 'judicial' THEN 'JUDICIAL'
         WHEN dpd > 120 AND balance_pen >= 30000 THEN 'DEMANDA'
         WHEN dpd > 120 THEN 'AGENCIA_EXTERNA'
         WHEN dpd > 90 THEN 'PREJUDICIAL'
         WHEN dpd > 30 AND credit_type IN ('microempresa','pequena_empresa') THEN 'TARDIA_MYPE'
         WHEN dpd > 30 AND balance_pen >= 10000 THEN 'TARDIA_ALTO_MONTO'
         WHEN dpd > 30 THEN 'TARDIA'
         WHEN dpd > 0 AND delinquency_episodes_12m <= 1 AND max_dpd_12m <= 30 THEN 'TEMPRANA_BUEN_HISTORIAL'
         WHEN dpd > 0 THEN 'TEMPRANA_REINCIDENTE'
         WHEN max_dpd_12m > 30 THEN 'PREVENTIVA'
         ELSE 'AL_DIA' END AS segment_code,
    CASE sbs_category_aligned WHEN 'NOR' THEN
            CASE WHEN credit_type IN ('corporativo','gran_empresa','hipotecario') THEN 0.007 ELSE 0.01 END
        ELSE (CASE guarantee_type WHEN 'ninguna' THEN 1.0 WHEN 'preferida' THEN 0.5 ELSE 0.25 END)
             * CASE sbs_category_aligned WHEN 'CPP' THEN 0.05 WHEN 'DEF' THEN 0.25 WHEN 'DUD' THEN 0.60 ELSE 1.0 END
    END::DECIMAL(9,6) AS provision_rate
FROM aligned
)
SELECT
    s.as_of_date, s.loan_id, s.customer_key, s.credit_type, s.product_code, s.currency,
    s.department_code, s.accounting_status, s.guarantee_type, s.balance_pen, s.dpd, s.dpd_bucket,
    s.max_dpd_12m, s.delinquency_episodes_12m, s.paid_90d_pen, s.days_since_last_payment,
    s.sbs_category, s.sbs_category_aligned, s.provision_rate,
    round(s.balance_pen * s.provision_rate, 2)::DECIMAL(18,2) AS provision_pen,
    CASE WHEN s.dpd > 90 OR s.accounting_status IN ('judicial','castigado') THEN 3
         WHEN s.dpd > 30 THEN 2 ELSE 1 END AS ifrs9_stage,
    s.segment_code,
    'R' || lpad(list_position(['CASTIGO_RECUPERO','JUDICIAL','DEMANDA','AGENCIA_EXTERNA','PREJUDICIAL',
        'TARDIA_MYPE','TARDIA_ALTO_MONTO','TARDIA','TEMPRANA_BUEN_HISTORIAL','TEMPRANA_REINCIDENTE',
        'PREVENTIVA','AL_DIA'], s.segment_code)::VARCHAR, 2, '0') AS rule_id,
    'synthetic0001' AS rulebook_version,
    'dpd=' || s.dpd AS reason,
    c.strategy_code,
    CASE WHEN c.channel = 'whatsapp' AND hash(s.customer_key) % 4 = 0 THEN 'llamada'
         WHEN c.channel = 'visita_campo' AND s.department_code NOT IN ('15','07','04','13','14','20','12','08') THEN 'llamada'
         ELSE c.channel END AS channel,
    c.offer, c.assignee,
    CASE WHEN c.strategy_code = 'SIN_ACCION' THEN NULL ELSE s.as_of_date + 1 END AS next_contact_date
FROM seg s
JOIN (VALUES
    ('CASTIGO_RECUPERO','RECUPERO_AGENCIA','agencia_externa','descuento','agencia_externa'),
    ('JUDICIAL','SEGUIMIENTO_JUDICIAL','estudio_juridico','ninguna','estudio_juridico'),
    ('DEMANDA','DEMANDA_JUDICIAL','estudio_juridico','ninguna','estudio_juridico'),
    ('AGENCIA_EXTERNA','AGENCIA_DESCUENTO','agencia_externa','descuento','agencia_externa'),
    ('PREJUDICIAL','PREJUDICIAL_VISITA','visita_campo','plan_pagos','interno'),
    ('TARDIA_MYPE','ASESOR_NEGOCIOS','visita_asesor','reprogramacion','asesor_negocios'),
    ('TARDIA_ALTO_MONTO','REFINANCIACION','visita_campo','refinanciacion','interno'),
    ('TARDIA','CALL_CENTER_PLAN','llamada','plan_pagos','interno'),
    ('TEMPRANA_BUEN_HISTORIAL','FLEXIBLE_DIGITAL','whatsapp','reprogramacion','interno'),
    ('TEMPRANA_REINCIDENTE','CALL_CENTER_TEMPRANA','llamada','ninguna','interno'),
    ('PREVENTIVA','RECORDATORIO_PREVENTIVO','sms','ninguna','interno'),
    ('AL_DIA','SIN_ACCION','ninguno','ninguna',NULL)
) c(segment_code, strategy_code, channel, offer, assignee) USING (segment_code)
ORDER BY s.loan_id
"""

_MIGRATION = """
INSERT INTO segment_migration
WITH cur AS (SELECT loan_id, segment_code, balance_pen FROM segment_assignments WHERE as_of_date = DATE '{day}'),
prev AS (SELECT loan_id, segment_code, balance_pen FROM segment_assignments WHERE as_of_date = DATE '{prev}')
SELECT DATE '{day}' AS as_of_date,
       coalesce(prev.segment_code, 'NUEVO') AS from_segment,
       coalesce(cur.segment_code, 'SALIDA') AS to_segment,
       count(*) AS loans,
       sum(coalesce(cur.balance_pen, prev.balance_pen))::DECIMAL(18,2) AS balance_pen
FROM cur FULL JOIN prev USING (loan_id)
GROUP BY ALL ORDER BY ALL
"""

# bucket_roll_rates of one date (what the dbt model of that name computes, written here as
# one plain join): dpd bucket on the previous date x dpd bucket today, with both balances.
# {prev_sql} is the previous date literal, or NULL on the first date (all rows NUEVO then).
_ROLLS = """
INSERT INTO bucket_roll_rates
SELECT DATE '{day}' AS as_of_date, {prev_sql}::DATE AS previous_date, m.from_bucket, m.to_bucket,
       fb.min_dpd AS from_bucket_min_dpd, tb.min_dpd AS to_bucket_min_dpd,
       m.loans, m.previous_balance_pen, m.balance_pen
FROM (
    SELECT coalesce(prev.dpd_bucket, 'NUEVO') AS from_bucket, coalesce(cur.dpd_bucket, 'SALIDA') AS to_bucket,
           count(*)::INTEGER AS loans,
           sum(coalesce(prev.balance_pen, 0))::DECIMAL(18,2) AS previous_balance_pen,
           sum(coalesce(cur.balance_pen, 0))::DECIMAL(18,2) AS balance_pen
    FROM (SELECT loan_id, dpd_bucket, balance_pen FROM segment_assignments WHERE as_of_date = DATE '{day}') cur
    FULL JOIN (SELECT loan_id, dpd_bucket, balance_pen FROM segment_assignments
               WHERE as_of_date = {prev_sql}::DATE) prev USING (loan_id)
    GROUP BY ALL
) m
LEFT JOIN dpd_buckets fb ON fb.dpd_bucket = m.from_bucket
LEFT JOIN dpd_buckets tb ON tb.dpd_bucket = m.to_bucket
ORDER BY m.from_bucket, m.to_bucket
"""

# The dbt seed that configures the buckets (read for bucket_roll_rates' min_dpd columns).
DPD_BUCKETS_SEED = Path(__file__).resolve().parents[2] / "dbt_project" / "seeds" / "dpd_buckets.csv"

_FINAL = """
CREATE TABLE segment_summary AS
SELECT as_of_date, segment_code, strategy_code, count(*) AS loans,
       count(DISTINCT customer_key) AS customers,
       sum(balance_pen)::DECIMAL(18,2) AS balance_pen, sum(provision_pen)::DECIMAL(18,2) AS provision_pen,
       (sum(balance_pen) / sum(sum(balance_pen)) OVER (PARTITION BY as_of_date))::DOUBLE AS balance_share
FROM segment_assignments GROUP BY 1, 2, 3 ORDER BY 1, 2;

CREATE TABLE run_audit AS
SELECT 'synthetic-run-' || strftime(d.as_of_date, '%Y%m%d') AS run_id, d.as_of_date,
       {input_files_sql} AS input_files,
       (x.loans + {quarantined}) AS rows_read, {quarantined} AS rows_quarantined, x.loans AS rows_published,
       'synthetic0001' AS rulebook_version, 'synthetic' AS code_version,
       d.as_of_date::TIMESTAMP + INTERVAL 20 HOUR AS started_at,
       d.as_of_date::TIMESTAMP + INTERVAL 20 HOUR + INTERVAL 42 SECOND AS ended_at,
       'published' AS outcome
FROM d JOIN (SELECT as_of_date, count(*) AS loans FROM segment_assignments GROUP BY 1) x USING (as_of_date);
"""


def build_serving_file(
    path: Path,
    *,
    loans: int = 2000,
    dates: int = 5,
    start: dt.date = dt.date(2026, 3, 2),
    seed: int = 7,
    quarantined_per_date: int = 3,
    memory_limit: str = "3GB",
    with_roll_rates: bool = True,
) -> list[dt.date]:
    """Write a serving file at ``path`` and return its business dates (ascending).

    ``with_roll_rates=False`` leaves ``bucket_roll_rates`` empty, like a warehouse published
    before that mart existed (the report then joins the dates itself).
    """
    import duckdb

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        path.unlink()
    days = business_dates(start, dates)
    dates_sql = ", ".join(f"({k}, DATE '{d.isoformat()}')" for k, d in enumerate(days))
    # loans.csv counts are filled per date by SQL; payments.csv is an empty file
    input_files_sql = (
        "json_array(json_object('file_name','loans.csv','sha256',sha256(d.as_of_date::VARCHAR),"
        f"'rows_read',x.loans + {quarantined_per_date},'rows_quarantined',{quarantined_per_date},"
        "'rows_landed',x.loans),"
        "json_object('file_name','payments.csv','sha256',sha256('p' || d.as_of_date::VARCHAR),"
        "'rows_read',0,'rows_quarantined',0,'rows_landed',0))::VARCHAR"
    )
    values = dict(
        n=int(loans), dates=len(days), dates_sql=dates_sql, seed=int(seed),
        first=days[0].isoformat(), input_files_sql=input_files_sql,
        quarantined=int(quarantined_per_date),
    )
    con = duckdb.connect(str(path))
    try:
        # bounded memory: other processes share this machine; DuckDB spills past the limit
        con.execute(f"SET memory_limit = '{memory_limit}'")
        con.execute(_signed(_SETUP).format(**values))
        con.execute(
            "CREATE TABLE segment_migration (as_of_date DATE, from_segment VARCHAR, to_segment VARCHAR, "
            "loans BIGINT, balance_pen DECIMAL(18,2))"
        )
        con.execute(
            "CREATE TABLE bucket_roll_rates (as_of_date DATE, previous_date DATE, from_bucket VARCHAR, "
            "to_bucket VARCHAR, from_bucket_min_dpd INTEGER, to_bucket_min_dpd INTEGER, loans INTEGER, "
            "previous_balance_pen DECIMAL(18,2), balance_pen DECIMAL(18,2))"
        )
        con.execute(
            "CREATE TEMP TABLE dpd_buckets AS SELECT dpd_bucket::VARCHAR AS dpd_bucket, min_dpd::INTEGER AS min_dpd "
            f"FROM read_csv('{DPD_BUCKETS_SEED}', header = true, all_varchar = true)"
        )
        for k, day in enumerate(days):
            select = _signed(_DAY).format(k=k, **values)
            if k == 0:
                con.execute(f"CREATE TABLE segment_assignments AS {select}")
            else:
                con.execute(f"INSERT INTO segment_assignments {select}")
                con.execute(_MIGRATION.format(day=day.isoformat(), prev=days[k - 1].isoformat()))
            if with_roll_rates:
                prev_sql = f"DATE '{days[k - 1].isoformat()}'" if k else "NULL"
                con.execute(_ROLLS.format(day=day.isoformat(), prev_sql=prev_sql))
        con.execute(_signed(_FINAL).format(**values))
        con.execute("CHECKPOINT")
    finally:
        con.close()
    return days


def _signed(sql: str) -> str:
    """DuckDB's hash() is UBIGINT, which list indexing and arithmetic with negatives reject."""
    return re.sub(r"hash\(([^()]*)\)", r"(hash(\1) % 1000000007)::BIGINT", sql)
