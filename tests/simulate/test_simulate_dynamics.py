"""The loans move the way a loan book moves: dpd follows payments, statuses follow dpd.

Rules checked between two consecutive dates Dp < D for a loan in both snapshots
(they hold by the contract's meaning of days past due, whatever the generator's code):
  * a loan overdue on Dp that received no payment on D is overdue by exactly the calendar
    days in between more;
  * a loan current on Dp with no payment on D can be at most (D - Dp) days late (an
    installment fell due in between);
  * dpd goes back to 0 only on a day the loan received a payment;
  * outstanding principal never grows, and falls only on a day with a payment.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from decimal import Decimal

from sim_contract import dpd_bucket, parse_date

VENCIDO_AFTER = {  # SBS: whole credit booked vencido after 15 / 30 / 90 days (documented in the generator)
    "corporativo": 15, "gran_empresa": 15, "mediana_empresa": 15, "hipotecario": 90,
}


def paid_loans(drop) -> set[str]:
    return {p["loan_id"] for p in drop.payments if p["is_reversal"] == "false"}


def test_dpd_follows_payments_between_consecutive_dates(landing):
    checked = Counter()
    for prev, cur in zip(landing.drops, landing.drops[1:]):
        gap = (cur.day - prev.day).days
        paid = paid_loans(cur)
        for loan_id, row in cur.loans.items():
            before = prev.loans.get(loan_id)
            if before is None:
                continue
            dpd, dpd_prev = int(row["days_past_due"]), int(before["days_past_due"])
            if loan_id not in paid:
                if dpd_prev > 0:
                    assert dpd == dpd_prev + gap, (cur.day, loan_id, dpd_prev, dpd)
                    checked["grew"] += 1
                else:
                    assert dpd <= gap, (cur.day, loan_id, dpd)
                    checked["current"] += 1
            if dpd == 0 and dpd_prev > 0:
                assert loan_id in paid, (cur.day, loan_id)
                checked["cured"] += 1
            principal, principal_prev = Decimal(row["outstanding_principal"]), Decimal(before["outstanding_principal"])
            assert principal <= principal_prev, (cur.day, loan_id)
            if principal < principal_prev:
                assert loan_id in paid, (cur.day, loan_id)
                checked["amortised"] += 1
            for col in ("customer_id", "credit_type", "currency", "disbursement_date", "original_amount"):
                assert row[col] == before[col], (cur.day, loan_id, col)
    assert min(checked.values()) > 20, checked  # every rule was exercised many times


def test_loans_enter_only_when_disbursed_and_leave_paid_or_written_off(landing):
    entered = left_paid = 0
    gone: set[str] = set()
    for prev, cur in zip(landing.drops, landing.drops[1:]):
        paid = paid_loans(cur)
        # a loan that left the portfolio never comes back and nothing is posted to it later
        assert not gone & cur.loans.keys()
        assert not gone & {p["loan_id"] for p in cur.payments}, cur.day
        gone |= prev.loans.keys() - cur.loans.keys()
        for loan_id in cur.loans.keys() - prev.loans.keys():
            disb = parse_date(cur.loans[loan_id]["disbursement_date"])
            assert prev.day < disb <= cur.day, loan_id
            assert cur.loans[loan_id]["days_past_due"] == "0"
            entered += 1
        for loan_id in prev.loans.keys() - cur.loans.keys():
            # paid off on D (its last payment is in D's payments) or a write-off whose recovery ended
            assert loan_id in paid or prev.loans[loan_id]["accounting_status"] == "castigado", loan_id
            left_paid += loan_id in paid
    assert entered > 0 and left_paid > 0


def test_each_snapshot_is_internally_consistent(landing):
    for drop in landing.drops:
        for row in drop.loan_rows:
            dpd = int(row["days_past_due"])
            overdue = Decimal(row["overdue_amount"])
            assert (dpd > 0) == (overdue > 0), row
            assert Decimal(row["outstanding_principal"]) > 0
            assert Decimal(row["installment_amount"]) > 0
            assert Decimal(row["outstanding_principal"]) <= Decimal(row["original_amount"]) * 2
            if row["next_due_date"]:
                assert parse_date(row["next_due_date"]) >= drop.day
            status = row["accounting_status"]
            if status in ("judicial", "castigado"):
                assert dpd > 120, row
                continue
            limit = VENCIDO_AFTER.get(row["credit_type"], 30)
            assert (status == "vencido") == (dpd > limit), row
            assert parse_date(row["maturity_date"]) >= parse_date(row["disbursement_date"])


def balance_pen(row, rate) -> Decimal:
    return Decimal(row["outstanding_principal"]) * (rate if row["currency"] == "USD" else 1)


def test_every_dpd_bucket_and_every_default_segment_is_populated(landing):
    """The default rulebook (contract section 3) must find loans for every segment."""
    buckets: Counter = Counter()
    segments: Counter = Counter()
    history: dict[str, list[tuple]] = defaultdict(list)
    for drop in landing.drops:
        rate = Decimal(drop.fx[0]["rate_to_pen"])
        for row in drop.loan_rows:
            dpd = int(row["days_past_due"])
            history[row["loan_id"]].append((drop.day, dpd))
            max12 = max(d for day, d in history[row["loan_id"]] if (drop.day - day).days <= 364)
            buckets[dpd_bucket(dpd)] += 1
            bal = balance_pen(row, rate)
            status = row["accounting_status"]
            if status == "castigado":
                seg = "CASTIGO_RECUPERO"
            elif status == "judicial":
                seg = "JUDICIAL"
            elif dpd > 120:
                seg = "DEMANDA" if bal >= 30000 else "AGENCIA_EXTERNA"
            elif dpd > 90:
                seg = "PREJUDICIAL"
            elif dpd > 30:
                if row["credit_type"] in ("microempresa", "pequena_empresa"):
                    seg = "TARDIA_MYPE"
                else:
                    seg = "TARDIA_ALTO_MONTO" if bal >= 10000 else "TARDIA"
            elif dpd > 0:
                seg = "TEMPRANA"
            else:
                seg = "PREVENTIVA" if max12 > 30 else "AL_DIA"
            segments[seg] += 1
    assert set(buckets) == {"0", "1-8", "9-30", "31-60", "61-90", "91-120", "121-180", "181-365", ">365"}, buckets
    expected = {"CASTIGO_RECUPERO", "JUDICIAL", "DEMANDA", "AGENCIA_EXTERNA", "PREJUDICIAL", "TARDIA_MYPE",
                "TARDIA_ALTO_MONTO", "TARDIA", "TEMPRANA", "PREVENTIVA", "AL_DIA"}
    assert set(segments) == expected, segments
    assert all(segments[s] >= 5 for s in expected), segments
    assert segments["AL_DIA"] > 0.8 * sum(segments.values())


def test_roll_and_cure_rates_are_plausible(landing):
    """~3-6% of current loans go late within a month; most new delinquencies cure."""
    first = landing.drops[0]
    month = [d for d in landing.drops if (d.day - first.day).days <= 30]
    current = [lid for lid, r in first.loans.items() if r["days_past_due"] == "0"]
    went_late = {lid for d in month[1:] for lid in current if lid in d.loans and d.loans[lid]["days_past_due"] != "0"}
    assert 0.02 <= len(went_late) / len(current) <= 0.08, len(went_late) / len(current)

    # loans that became delinquent in the first half of the run: share back at 0 by the end
    half = landing.drops[: len(landing.drops) // 2]
    new_late = set()
    for prev, cur in zip(half, half[1:]):
        new_late |= {lid for lid, r in cur.loans.items()
                     if r["days_past_due"] != "0" and prev.loans.get(lid, {}).get("days_past_due") == "0"}
    last = landing.drops[-1]
    cured = [lid for lid in new_late if lid in last.loans and last.loans[lid]["days_past_due"] == "0"]
    still = [lid for lid in new_late if lid in last.loans]
    assert len(still) > 20
    assert len(cured) / len(still) > 0.5, (len(cured), len(still))


def test_portfolio_mix_is_that_of_a_peruvian_mid_size_lender(landing):
    rows = landing.drops[0].loan_rows
    n = len(rows)
    types = Counter(r["credit_type"] for r in rows)
    assert set(types) == {
        "corporativo", "gran_empresa", "mediana_empresa", "pequena_empresa", "microempresa",
        "consumo_revolvente", "consumo_no_revolvente", "hipotecario",
    }
    assert types["consumo_revolvente"] + types["consumo_no_revolvente"] > 0.45 * n
    assert types["microempresa"] + types["pequena_empresa"] > 0.15 * n
    assert types["corporativo"] + types["gran_empresa"] < 0.02 * n
    usd = sum(r["currency"] == "USD" for r in rows) / n
    assert 0.10 <= usd <= 0.20, usd
    products = Counter((r["credit_type"], r["product_code"]) for r in rows)
    assert ("consumo_revolvente", "TARJETA") in products and ("microempresa", "MYPE_CAPITAL") in products
    assert {p for t, p in products if t == "hipotecario"} <= {"HIPOTECARIO", "MIVIVIENDA"}

    def median(ctype):
        values = sorted(Decimal(r["original_amount"]) for r in rows
                        if r["credit_type"] == ctype and r["currency"] == "PEN")
        return values[len(values) // 2]

    assert median("hipotecario") > 100_000 > median("consumo_no_revolvente") > median("consumo_revolvente")
    assert median("microempresa") < 20_000 < median("pequena_empresa")
    # mortgages carry a preferred guarantee; cards carry none
    assert all(r["guarantee_type"] == "preferida" for r in rows if r["credit_type"] == "hipotecario")
    assert all(r["guarantee_type"] == "ninguna" for r in rows if r["product_code"] == "TARJETA")
    per_customer = n / len({r["customer_id"] for r in rows})
    assert 1.15 <= per_customer <= 1.5, per_customer


def test_companies_borrow_with_a_ruc_20(landing):
    drop = landing.drops[-1]
    for row in drop.loan_rows:
        if row["credit_type"] in ("corporativo", "gran_empresa", "mediana_empresa"):
            customer = drop.customers[row["customer_id"]]
            assert customer["document_type"] == "RUC" and customer["document_number"].startswith("20"), customer
