"""Roll figures recomputed from the loan history of a serving file, independently of the report
and of the bucket_roll_rates mart: LAG/LEAD per loan over the published dates instead of
joins of two dates."""

from __future__ import annotations

from decimal import Decimal

# Per loan and published date: the next published date, and the loan's row on it (if any).
_HISTORY = """
WITH d AS (SELECT as_of_date,
                  lag(as_of_date) OVER (ORDER BY as_of_date) AS prev_date,
                  lead(as_of_date) OVER (ORDER BY as_of_date) AS next_date
           FROM (SELECT DISTINCT as_of_date FROM segment_summary)),
s AS (SELECT a.loan_id, a.as_of_date, d.prev_date, d.next_date, a.dpd, a.dpd_bucket, a.balance_pen,
             lag(a.as_of_date) OVER w AS lag_date,
             lead(a.as_of_date) OVER w AS lead_date, lead(a.dpd) OVER w AS lead_dpd,
             lead(a.dpd_bucket) OVER w AS lead_bucket, lead(a.balance_pen) OVER w AS lead_balance
      FROM segment_assignments a JOIN d USING (as_of_date)
      WINDOW w AS (PARTITION BY a.loan_id ORDER BY a.as_of_date))
"""

OUTCOMES_SQL = _HISTORY + """
SELECT next_date,
       CASE WHEN dpd = 0 THEN (CASE WHEN lead_date = next_date AND lead_dpd > 0 THEN 'entro' ELSE 'al_dia' END)
            WHEN lead_date IS DISTINCT FROM next_date THEN 'salio'
            WHEN lead_dpd = 0 THEN 'curo'
            WHEN lead_bucket = dpd_bucket THEN 'se_mantuvo'
            WHEN lead_dpd > dpd THEN 'empeoro' ELSE 'mejoro' END AS outcome,
       count(*), sum(balance_pen)
FROM s WHERE next_date IS NOT NULL GROUP BY 1, 2
"""

# (as_of_date, previous_date, from_bucket, to_bucket, loans, previous_balance, balance)
FLOWS_SQL = _HISTORY + """
SELECT as_of_date, previous_date, from_bucket, to_bucket, count(*), sum(prev_balance), sum(balance)
FROM (
    SELECT next_date AS as_of_date, as_of_date AS previous_date, dpd_bucket AS from_bucket,
           CASE WHEN lead_date = next_date THEN lead_bucket ELSE 'SALIDA' END AS to_bucket,
           balance_pen AS prev_balance,
           CASE WHEN lead_date = next_date THEN lead_balance ELSE 0 END AS balance
    FROM s WHERE next_date IS NOT NULL
    UNION ALL
    SELECT as_of_date, prev_date, 'NUEVO', dpd_bucket, 0, balance_pen
    FROM s WHERE prev_date IS NULL OR lag_date IS DISTINCT FROM prev_date
) GROUP BY ALL
"""


def outcomes_by_date(con) -> dict[tuple, tuple[int, Decimal]]:
    """{(later date, outcome): (loans, balance on the earlier date)}, 'entro'/'al_dia' included."""
    return {(d, o): (int(n), b) for d, o, n, b in con.execute(OUTCOMES_SQL).fetchall()}


def flows(con) -> dict[tuple, tuple]:
    """{(as_of_date, from_bucket, to_bucket): (previous_date, loans, previous_balance, balance)}."""
    return {(d, f, t): (p, int(n), pb, b) for d, p, f, t, n, pb, b in con.execute(FLOWS_SQL).fetchall()}


def report_outcomes(data) -> dict[tuple, tuple[int, Decimal]]:
    """The same shape from a ReportData: rates plus the entry flow ('entro', balance only)."""
    out = {(r["as_of_date"], r["outcome"]): (r["loans"], r["balance_pen"]) for r in data.roll_rates}
    for e in data.roll_entries:
        if e["entered_balance_pen"]:
            out[(e["as_of_date"], "entro")] = e["entered_balance_pen"]
    return out


def expected_outcomes(con) -> dict[tuple, object]:
    """outcomes_by_date in report_outcomes' shape: 'entro' as a balance, 'al_dia' dropped."""
    out = {}
    for (d, o), (n, b) in outcomes_by_date(con).items():
        if o == "entro":
            if b:
                out[(d, o)] = b
        elif o != "al_dia":
            out[(d, o)] = (n, b)
    return out
