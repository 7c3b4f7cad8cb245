"""The loan book, simulated day by day with NumPy (one array per attribute, no per-loan loops).

How a loan works here (and why the extracts are internally consistent):

* Every loan has a monthly schedule: installment ``j`` (0-based) falls due on day
  ``pay_day`` of month ``m0 + j``; ``n`` installments of ``A`` (French amortisation at the
  product's rate). ``paid`` is what the customer has paid towards the schedule, so
  ``k = paid // A`` installments are settled.
* Everything in loans.csv is derived from that state on D: the oldest unpaid
  installment ``k`` is overdue when its due date is before D, and then
  ``days_past_due = D - due(k)``; ``overdue_amount`` = installments due before D minus
  what was paid; ``outstanding_principal`` = the schedule's balance after ``k``
  installments. Hence: without a payment a late loan's dpd grows by exactly the calendar
  days between two dates, dpd falls only on a day the loan pays, and principal never grows.
* Behaviour: each loan carries a *plan* (the date of its next payment and what it pays:
  everything due, one installment, or part of one). Current loans mostly pay at or
  before the due date; about 5% a month pay late, most of those within 30 days (they
  cure), some never again (they roll to vencido, judicial, castigado). Delinquent loans
  pay again with a chance that falls with their dpd.
* Events: prepayment, reprogramming (schedule stretched, dpd 0 only), refinancing (a
  down payment on D, overdue capitalised into a new schedule), lawsuit (dpd > 120),
  write-off (dpd >= 150, mortgages 365) and the end of recovery of old write-offs; new
  loans are disbursed every day.
* Reversals: a small share of postings arrive twice (collector files sent twice); the
  duplicate is posted on D and reversed 1-3 business days later. The simulation never
  applied the duplicate, so reversals do not move dpd or balances.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from orchestration.simulate import catalog as cat
from orchestration.simulate.people import _prefixed, customer_id, make_customers

EPOCH = np.datetime64("1970-01-01", "D")
MONTH_START = (
    np.arange(np.datetime64("1970-01"), np.datetime64("2300-01"), dtype="datetime64[M]").astype("datetime64[D]")
    - EPOCH
).astype(np.int64)
NULL_DAY = np.iinfo(np.int64).min  # a date column value written as empty
NEVER = 10**9  # plan date of a loan that will not pay again
FULL, ONE, PARTIAL = 0, 1, 2  # what a planned payment covers

# product attributes as arrays indexed by product code
_P = cat.PRODUCTS
P_TYPE = np.array([p[1] for p in _P])
P_SHARE = np.array([p[2] for p in _P]) / sum(p[2] for p in _P)
P_MEDIAN = np.array([p[3] for p in _P], dtype=float)
P_LOGSD = np.array([p[4] for p in _P])
P_MIN = np.array([p[5] for p in _P], dtype=float)
P_MAX = np.array([p[6] for p in _P], dtype=float)
P_TERM_MIN = np.array([p[7] for p in _P])
P_TERM_MAX = np.array([p[8] for p in _P])
P_TEA_MIN = np.array([p[9] for p in _P])
P_TEA_MAX = np.array([p[10] for p in _P])
P_USD = np.array([p[11] for p in _P])
P_GUARANTEE_CUM = np.cumsum(np.array([p[12] for p in _P]), axis=1)
P_LATE = np.array([p[13] for p in _P])
P_PROFILE = np.array([cat.PROFILE_NAMES.index(p[14]) for p in _P])
CHANNEL_CUM = np.cumsum(np.array([cat.CHANNEL_PROFILES[n] for n in cat.PROFILE_NAMES]), axis=1)
TARJETA, PERSONAL = cat.PRODUCT_CODES.index("TARJETA"), cat.PRODUCT_CODES.index("PERSONAL")
VENCIDO_AFTER = np.array(cat.VENCIDO_AFTER_DAYS)
USD_PEN = 3.75  # only used to size dollar loans and to tell "large" balances apart
BRANCHES = np.array([d[4] for d in cat.DEPARTMENTS])

# Delinquency of the opening portfolio: (lowest dpd, highest dpd, share among delinquent loans)
OPENING_BUCKETS = (
    (1, 8, 0.22), (9, 30, 0.18), (31, 60, 0.12), (61, 90, 0.08),
    (91, 120, 0.07), (121, 180, 0.09), (181, 365, 0.13), (366, 1500, 0.11),
)
OPENING_DELINQUENT = 0.085  # at relative risk 1.0

# Monthly (30.4-day) rates of the events, turned into per-calendar-day hazards.
MONTHLY = dict(
    new_loans=0.05,  # disbursements, as a share of the opening portfolio
    prepay=0.012,
    reprogram=0.0015,
    refinance=0.025,  # of loans 31-150 dpd
    lawsuit=0.06,  # of loans > 120 dpd (x2.5 when large or guaranteed)
    write_off=0.22,  # of loans past the write-off threshold
    recovery_end=0.03,  # write-offs older than 720 dpd leaving the book
)
DUPLICATE_POSTING = 0.035  # share of postings that arrive twice and are reversed later


def month_and_day(days: np.ndarray | int):
    """(month index since 1970-01, day of month) of epoch-day numbers."""
    days = np.asarray(days, dtype=np.int64)
    month = (EPOCH + days).astype("datetime64[M]").astype(np.int64)
    return month, days - MONTH_START[month] + 1


def _hazard(monthly: float, gap: int) -> float:
    daily = 1 - (1 - monthly) ** (1 / 30.4)
    return 1 - (1 - daily) ** gap


def _pick_cum(rng: np.random.Generator, cum_rows: np.ndarray) -> np.ndarray:
    """One category per row from rows of cumulative probabilities."""
    u = rng.random(len(cum_rows)) * cum_rows[:, -1]
    return (u[:, None] >= cum_rows).sum(axis=1)


_FIELDS = {
    "serial": np.int64, "cust": np.int64, "product": np.int64, "ctype": np.int64, "ccy": np.int64,
    "guarantee": np.int64, "branch": np.int64, "disb": np.int64, "original": np.int64,
    "m0": np.int64, "pay_day": np.int64, "n": np.int64, "A": np.int64, "P0": np.int64, "r": np.float64,
    "paid": np.int64, "base": np.int64, "legal": np.int64, "risk": np.float64,
    "plan": np.int64, "kind": np.int64, "active": bool,
    "hold": np.int64,  # date index of the loan's last pending reversal: it stays in the book until then
}
LEGAL_NONE, LEGAL_JUDICIAL, LEGAL_WRITTEN_OFF = 0, 1, 2


class LoanBook:
    """Struct of arrays: one entry per loan ever booked (``active`` says who is in the book)."""

    def __init__(self):
        for name, dtype in _FIELDS.items():
            setattr(self, name, np.empty(0, dtype=dtype))

    def extend(self, **cols):
        for name, dtype in _FIELDS.items():
            setattr(self, name, np.concatenate([getattr(self, name), np.asarray(cols[name], dtype=dtype)]))

    # ---- schedule arithmetic ---------------------------------------------------------
    def due(self, idx, j):
        """Due date (epoch day) of installment j of loans idx."""
        j = np.minimum(j, self.n[idx] - 1)
        return MONTH_START[self.m0[idx] + j] + self.pay_day[idx] - 1

    def settled(self, idx):
        return np.minimum(self.paid[idx] // self.A[idx], self.n[idx])

    def due_count(self, idx, day, inclusive: bool):
        """Installments due before D (or on or before D when inclusive)."""
        month, dom = month_and_day(day)
        passed = (self.pay_day[idx] <= dom) if inclusive else (self.pay_day[idx] < dom)
        return np.clip(month - self.m0[idx] + passed, 0, self.n[idx])

    def dpd(self, idx, day):
        k = self.settled(idx)
        late = k < self.due_count(idx, day, inclusive=False)
        return np.where(late, day - self.due(idx, k), 0)

    def principal(self, idx, k):
        """Schedule balance after k installments, in cents (French amortisation)."""
        r, P0, A = self.r[idx], self.P0[idx], self.A[idx]
        g = (1 + r) ** k
        bal = np.rint(P0 * g - A * (g - 1) / r).astype(np.int64)
        return np.where(k >= self.n[idx], 0, np.clip(bal, 0, P0))


def installment(P0: np.ndarray, r: np.ndarray, n: np.ndarray) -> np.ndarray:
    return np.ceil(P0 * r / (1 - (1 + r) ** (-n.astype(float)))).astype(np.int64)


class _Postings:
    """The rows of one date's payments.csv, collected group by group."""

    def __init__(self):
        self.parts: list[tuple] = []

    def add(self, loans, amounts, channels, reversal: bool = False):
        self.parts.append((loans, amounts, channels, np.full(len(loans), reversal)))

    def arrays(self):
        if not self.parts:
            return (np.empty(0, np.int64),) * 3 + (np.empty(0, bool),)
        loans, amounts, channels, reversal = zip(*self.parts)
        return (np.concatenate(loans).astype(np.int64), np.concatenate(amounts).astype(np.int64),
                np.concatenate(channels).astype(np.int64), np.concatenate(reversal).astype(bool))


@dataclass
class DayExtract:
    """What one business date's files hold, before formatting (money in cents, dates as epoch days)."""

    day: int
    loans: dict
    payments: dict
    customers: pa.Table
    usd_rate: float
    paid_loan_ids: pa.Array  # loan ids with a payment row on D
    customers_with_loans: pa.Array  # customer ids with at least one loan in loans on D


class Simulation:
    """The portfolio of one seed, advanced one business date at a time."""

    def __init__(self, n_loans: int, days: list[int], seed: int):
        self.days = days
        self.n_target = n_loans
        self.rng = np.random.default_rng([seed, 2])
        self.people_rng = np.random.default_rng([seed, 3])
        self.salt = int(np.random.default_rng([seed, 4]).integers(0, 2**31))
        self.book = LoanBook()
        self.cust_table = pa.table({})
        self.cust_dept = np.empty(0, dtype=np.int64)
        self.cust_product = np.empty(0, dtype=np.int64)
        self.cust_risk = np.empty(0, dtype=np.float64)
        self.next_payment = 1
        self.pending_reversals: dict[int, list[tuple]] = {}
        self.usd_rate = round(3.70 + 0.10 * float(np.random.default_rng([seed, 5]).random()), 4)
        self.prev_day: int | None = None
        self._open(np.random.default_rng([seed, 1]), n_loans, days[0])

    # ---- customers ---------------------------------------------------------------------
    def _add_customers(self, rng, product: np.ndarray) -> np.ndarray:
        """Create customers whose first product is ``product``; returns their indexes."""
        start = len(self.cust_dept)
        serial = np.arange(start + 1, start + 1 + len(product))
        table, dept = make_customers(self.people_rng, serial, P_TYPE[product], self.salt)
        self.cust_table = table if start == 0 else pa.concat_tables([self.cust_table, table])
        self.cust_dept = np.concatenate([self.cust_dept, dept])
        self.cust_product = np.concatenate([self.cust_product, product])
        business = np.isin(P_TYPE[product], cat.BUSINESS_TYPES)
        risk = rng.lognormal(-0.18, np.where(business, 0.35, 0.6))
        self.cust_risk = np.concatenate([self.cust_risk, risk])
        return np.arange(start, start + len(product))

    @staticmethod
    def _cross_sell(rng, primary: np.ndarray) -> np.ndarray:
        """Product of a further loan of a customer whose first product is ``primary``."""
        u = rng.random(len(primary))
        person = ~np.isin(P_TYPE[primary], cat.BUSINESS_TYPES)
        return np.where(person & (u < 0.4), TARJETA, np.where(person & (u < 0.75), PERSONAL, primary))

    # ---- loans ---------------------------------------------------------------------------
    def _terms(self, rng, product):
        """Currency, amount (cents), term, monthly rate, installment and guarantee of new loans."""
        m = len(product)
        pen = np.exp(np.log(P_MEDIAN[product]) + P_LOGSD[product] * rng.standard_normal(m))
        pen = np.clip(pen, P_MIN[product], P_MAX[product])
        usd = rng.random(m) < P_USD[product]
        amount = np.where(usd, pen / USD_PEN, pen)
        step = np.where(amount >= 5000, 100.0, 50.0)
        cents = (np.maximum(np.round(amount / step), 1) * step * 100).astype(np.int64)
        term = rng.integers(P_TERM_MIN[product], P_TERM_MAX[product] + 1)
        term = np.where(term >= 12, np.round(term / 6) * 6, term).astype(np.int64)
        mortgage = P_TYPE[product] == cat.HIPOTECARIO
        term = np.where(mortgage, rng.choice(np.array([120, 180, 240, 300]), m), term)
        tea = rng.uniform(P_TEA_MIN[product], P_TEA_MAX[product])
        r = (1 + tea) ** (1 / 12) - 1
        guarantee = _pick_cum(rng, P_GUARANTEE_CUM[product])
        return usd.astype(np.int64), cents, term, r, installment(cents, r, term), guarantee

    def _branch(self, rng, cust):
        dept = self.cust_dept[cust]
        return dept * 100 + 1 + rng.integers(0, 10_000, len(cust)) % BRANCHES[dept]

    def _open(self, rng, n: int, day0: int):
        """The opening portfolio: ~1.3 loans per customer, delinquency spread over every bucket."""
        per = 1 + rng.poisson(0.3, int(n / 1.3 * 1.2) + 10)
        n_cust = min(int(np.searchsorted(np.cumsum(per), n)) + 1, len(per))
        per = per[:n_cust]
        per[-1] += n - per.sum()  # exactly n loans
        primary = rng.choice(len(_P), size=n_cust, p=P_SHARE)
        n_former = int(round(0.08 * n_cust))  # customers whose loans were all repaid
        cust_all = self._add_customers(rng, np.concatenate([primary, rng.choice(len(_P), size=n_former, p=P_SHARE)]))
        rng.shuffle(cust_all)  # former customers are interleaved with current ones
        cust = np.repeat(cust_all[:n_cust], per)
        first = np.r_[True, cust[1:] != cust[:-1]]
        product = np.where(first, self.cust_product[cust], self._cross_sell(rng, self.cust_product[cust]))
        ccy, P0, term, r, A, guarantee = self._terms(rng, product)
        risk = self.cust_risk[cust] * rng.lognormal(0, 0.25, n) * P_LATE[product]

        month0, dom0 = month_and_day(day0)
        delinquent = rng.random(n) < np.clip(OPENING_DELINQUENT * risk, 0, 0.7)
        bucket = rng.choice(len(OPENING_BUCKETS), size=n, p=[b[2] for b in OPENING_BUCKETS])
        lo = np.array([b[0] for b in OPENING_BUCKETS])[bucket]
        hi = np.array([b[1] for b in OPENING_BUCKETS])[bucket]
        dpd = np.where(delinquent, rng.integers(lo, hi + 1), 0)
        # delinquent: the oldest unpaid installment fell due dpd days ago (pay days 1..28)
        u_month, u_dom = month_and_day(day0 - dpd)
        shift = np.maximum(u_dom - 28, 0)
        dpd = np.where(delinquent, dpd + shift, 0)
        pay_day_cur = rng.integers(1, 29, n)
        pay_day = np.where(delinquent, u_dom - shift, pay_day_cur)
        u_month = np.where(delinquent, u_month, month0 + (pay_day_cur < dom0))
        k = np.where(
            delinquent,
            np.floor(rng.random(n) ** 1.5 * term * 0.8).astype(np.int64),
            rng.integers(0, term),
        )
        k = np.minimum(k, term - 1)
        m0 = u_month - k
        paid = k * A + np.where(delinquent & (rng.random(n) < 0.3), np.floor(rng.random(n) * A), 0).astype(np.int64)

        u = rng.random(n)
        base = np.where(u < 0.025, cat.REFINANCIADO, np.where(u < 0.04, cat.REPROGRAMADO, cat.VIGENTE))
        restructured = base != cat.VIGENTE
        disb_month = m0 - 1 - np.where(restructured, rng.integers(6, 37, n), 0)
        disb = MONTH_START[disb_month] + pay_day - 1
        original = np.where(restructured, np.ceil(P0 * rng.uniform(1.05, 1.5, n) / 10000) * 10000, P0)
        risk = np.where(base == cat.REFINANCIADO, risk * 1.6, risk)

        # lawsuits and write-offs among the long overdue
        large = (P0 * np.where(ccy == cat.USD, USD_PEN, 1.0)) >= 3_000_000  # 30,000 PEN in cents
        ctype = P_TYPE[product]
        mortgage = ctype == cat.HIPOTECARIO
        v = rng.random(n)
        legal = np.where((dpd > 120) & (v < np.where(large | (guarantee > 0), 0.40, 0.2)), LEGAL_JUDICIAL, LEGAL_NONE)
        p_wo = np.where(
            mortgage,
            np.where(dpd > 365, 0.5, 0.0),
            np.select([dpd > 365, dpd > 180, dpd >= 150], [0.9, 0.55, 0.25], 0.0),
        )
        legal = np.where(rng.random(n) < p_wo, LEGAL_WRITTEN_OFF, legal)

        order = np.argsort(disb, kind="stable")  # older loans carry lower numbers
        cols = dict(
            cust=cust, product=product, ctype=ctype, ccy=ccy, guarantee=guarantee,
            branch=self._branch(rng, cust), disb=disb, original=original, m0=m0, pay_day=pay_day, n=term,
            A=A, P0=P0, r=r, paid=paid, base=base, legal=legal, risk=risk,
            plan=np.full(n, NEVER), kind=np.zeros(n), active=np.ones(n, dtype=bool), hold=np.full(n, -1),
        )
        cols = {name: np.asarray(v)[order] for name, v in cols.items()}
        cols["serial"] = np.arange(1, n + 1)
        self.book.extend(**cols)
        self.next_loan = n + 1

        idx = np.arange(n)
        dpd = self.book.dpd(idx, day0)
        self._plan_current(idx[dpd == 0], day0 - 1, opening=True)
        self._plan_still_late(idx[(dpd > 0) & (dpd <= 30)], dpd[(dpd > 0) & (dpd <= 30)], day0 - 1)
        self._plan_delinquent(idx[dpd > 30], day0 - 1)

    # ---- behaviour -------------------------------------------------------------------------
    def _plan_current(self, idx, day, opening=False):
        """Next payment of loans with nothing overdue: mostly on time, ~5% a month late."""
        b, rng = self.book, self.rng
        m = len(idx)
        if m == 0:
            return
        due_next = b.due(idx, b.settled(idx))
        late = rng.random(m) < np.clip(cat.BASE_LATE_PER_CYCLE * b.risk[idx], 0, 0.6)
        early = np.minimum(rng.geometric(0.35, m) - 1, 12)
        plan = np.where(late, np.minimum(due_next + self._late_days(np.zeros(m, dtype=np.int64)), NEVER), due_next - early)
        if opening:  # installments due before the first date were paid: spread the rest over the cycle
            spread = day + 1 + np.floor(rng.random(m) * (np.maximum(due_next - day, 1))).astype(np.int64)
            plan = np.where(plan <= day, spread, plan)
        b.plan[idx] = np.maximum(plan, day + 1)
        b.kind[idx] = np.where(late & (rng.random(m) < 0.15), PARTIAL, FULL)

    def _late_days(self, already: np.ndarray) -> np.ndarray:
        """Days after the due date a late payer pays (NEVER: stops paying), given that it is
        still unpaid ``already`` days after the due date. Unconditionally: 55% within 8
        days, 25% in 9-30, 8% in 31-90, 12% never."""
        rng = self.rng
        lo = np.array([1, 9, 31])
        hi = np.array([8, 30, 90])
        density = np.array([0.55, 0.25, 0.08]) / (hi - lo + 1)
        start = np.maximum(lo[None, :], already[:, None])
        mass = np.clip(hi[None, :] - start + 1, 0, None) * density[None, :]
        mass = np.column_stack([mass, np.full(len(already), 0.12)])
        seg = _pick_cum(rng, np.cumsum(mass, axis=1))
        rows = np.arange(len(already))
        seg_c = np.minimum(seg, 2)
        first, last = start[rows, seg_c], hi[seg_c]
        days = first + np.floor(rng.random(len(already)) * np.maximum(last - first + 1, 1)).astype(np.int64)
        return np.where(seg == 3, NEVER, days)

    def _plan_still_late(self, idx, dpd, day):
        """Opening loans 1-30 days late: the same late-payment law, given they have not paid yet."""
        b, rng = self.book, self.rng
        if len(idx) == 0:
            return
        due = b.due(idx, b.settled(idx))
        plan = np.minimum(due + self._late_days(dpd), NEVER)
        b.plan[idx] = np.maximum(plan, day + 1)
        b.kind[idx] = np.where(rng.random(len(idx)) < 0.15, PARTIAL, FULL)

    def _plan_delinquent(self, idx, day):
        """Next payment of loans in arrears: less likely and further away the older the arrears."""
        b, rng = self.book, self.rng
        m = len(idx)
        if m == 0:
            return
        dpd = b.dpd(idx, day)
        band = np.select([b.legal[idx] > 0, dpd > 180, dpd > 90, dpd > 30], [3, 3, 2, 1], 0)
        never = np.array([0.06, 0.25, 0.50, 0.65])[band]
        mean_wait = np.array([8.0, 20.0, 40.0, 75.0])[band]
        kinds = np.array([[0.60, 0.85], [0.35, 0.75], [0.15, 0.50], [0.03, 0.20]])[band]
        wait = rng.geometric(1 / mean_wait)
        b.plan[idx] = np.where(rng.random(m) < never, NEVER, day + wait)
        b.kind[idx] = (rng.random(m)[:, None] >= kinds).sum(axis=1)

    def _replan(self, idx, day):
        cur = self.book.dpd(idx, day) == 0
        self._plan_current(idx[cur], day)
        self._plan_delinquent(idx[~cur], day)

    def _channels(self, idx):
        return _pick_cum(self.rng, CHANNEL_CUM[P_PROFILE[self.book.product[idx]]])

    def _reschedule(self, idx, day, extra_months, status):
        """New schedule for the current balance (reprogramming / refinancing): dpd back to 0."""
        b = self.book
        k = b.settled(idx)
        month, _ = month_and_day(day)
        P = b.principal(idx, k)
        n_new = np.maximum(b.n[idx] - k, 1) + extra_months
        b.P0[idx], b.n[idx], b.m0[idx], b.paid[idx] = P, n_new, month + 1, 0
        b.A[idx] = installment(P, b.r[idx], n_new)
        b.base[idx] = status

    # ---- one business date -----------------------------------------------------------------
    def step(self, i: int) -> DayExtract:
        """Advance the book to business date ``days[i]`` and return that date's extracts."""
        day = self.days[i]
        first = self.prev_day is None
        gap = 1 if first else day - self.prev_day  # calendar days since the previous date
        posts = _Postings()
        paid_today = self._planned_payments(i, day, first, posts)
        self._events(i, day, gap, first, paid_today, posts)
        for loans, amounts, chans in self.pending_reversals.pop(i, []):
            posts.add(loans, amounts, chans, reversal=True)
        self._disburse(day, gap)
        self.prev_day = day
        self._walk_fx(gap)
        payments = self._payments(day, posts)
        loans = self._loans_snapshot(day)
        return DayExtract(
            day=day, loans=loans, payments=payments, customers=self.cust_table, usd_rate=self.usd_rate,
            paid_loan_ids=pc.unique(payments["loan_id"]),
            customers_with_loans=pc.unique(loans["customer_id"]),
        )

    def _planned_payments(self, i, day, first, posts) -> np.ndarray:
        """Loans whose plan falls due pay; some postings arrive twice (reversed later).
        Returns a mask of the loans that paid."""
        b, rng = self.book, self.rng
        idx = np.flatnonzero(b.active & (b.plan <= day))
        k = b.settled(idx)
        remaining_inst = b.A[idx] * (k + 1) - b.paid[idx]
        everything_due = np.maximum(b.due_count(idx, day, inclusive=True), k + 1)
        target = np.minimum(np.where(b.kind[idx] == FULL, everything_due, k + 1), b.n[idx])
        amount = b.A[idx] * target - b.paid[idx]
        part = np.maximum(np.rint(rng.uniform(0.2, 0.8, len(idx)) * remaining_inst), 100).astype(np.int64)
        amount = np.where(b.kind[idx] == PARTIAL, np.minimum(part, remaining_inst), amount)
        # a loan leaves the book only if it is in an earlier snapshot (not on the first date)
        # and no reversal of its is still to come (nothing may be posted after it left)
        defer = (b.paid[idx] + amount >= b.A[idx] * b.n[idx]) & (first | (b.hold[idx] > i))
        b.plan[idx[defer]] = day + 1
        idx, amount = idx[~defer], amount[~defer]
        b.paid[idx] += amount
        chan = self._channels(idx)
        posts.add(idx, amount, chan)

        # collector files sent twice: the duplicate is posted now and reversed 1-3 dates later
        lag = rng.integers(1, 4, len(idx))
        dup = (rng.random(len(idx)) < DUPLICATE_POSTING) & (i + lag < len(self.days))
        dup &= b.paid[idx] < b.A[idx] * b.n[idx]  # the pay-off itself is never duplicated
        posts.add(idx[dup], amount[dup], chan[dup])
        for later in np.unique(lag[dup]):
            sel = dup & (lag == later)
            self.pending_reversals.setdefault(i + int(later), []).append((idx[sel], amount[sel], chan[sel]))
        b.hold[idx[dup]] = np.maximum(b.hold[idx[dup]], i + lag[dup])

        b.active[idx[b.paid[idx] >= b.A[idx] * b.n[idx]]] = False  # paid off
        self._replan(idx[b.active[idx]], day)
        paid_today = np.zeros(len(b.active), dtype=bool)
        paid_today[idx] = True
        return paid_today

    def _events(self, i, day, gap, first, paid_today, posts):
        """Refinancing, reprogramming, prepayment, lawsuits, write-offs, end of recovery."""
        b, rng = self.book, self.rng
        act = np.flatnonzero(b.active)
        dpd = b.dpd(act, day)
        legal = b.legal[act]
        busy = paid_today.copy()  # paying or restructured today: no further event today
        held = b.hold > i  # a reversal of theirs is still to come: they may not leave yet
        u = rng.random(len(act))

        refi = act[(legal == 0) & (dpd >= 31) & (dpd <= 150) & ~busy[act] & (u < _hazard(MONTHLY["refinance"], gap))]
        if len(refi):  # a down payment on D, the rest rescheduled
            overdue = b.A[refi] * b.due_count(refi, day, inclusive=False) - b.paid[refi]
            down = np.maximum(np.rint(overdue * rng.uniform(0.1, 0.3, len(refi))), 5000).astype(np.int64)
            posts.add(refi, np.minimum(down, overdue), np.full(len(refi), cat.CHANNELS.index("agencia")))
            self._reschedule(refi, day, rng.integers(6, 25, len(refi)), cat.REFINANCIADO)
            b.risk[refi] *= 1.5
            self._plan_current(refi, day)
            busy[refi] = True

        reprog = act[(legal == 0) & (dpd == 0) & (b.base[act] == cat.VIGENTE) & ~busy[act]
                     & (u > 1 - _hazard(MONTHLY["reprogram"], gap))]
        if len(reprog):
            self._reschedule(reprog, day, rng.integers(3, 13, len(reprog)), cat.REPROGRAMADO)
            self._plan_current(reprog, day)
            busy[reprog] = True

        v = rng.random(len(act))
        if not first:
            prepay = act[(legal == 0) & (dpd == 0) & ~busy[act] & ~held[act] & (b.base[act] != cat.REFINANCIADO)
                         & (v < _hazard(MONTHLY["prepay"], gap))]
            corporate = np.isin(b.ctype[prepay], cat.BUSINESS_TYPES)
            chan = np.where(corporate, cat.CHANNELS.index("transferencia"), cat.CHANNELS.index("agencia"))
            posts.add(prepay, b.principal(prepay, b.settled(prepay)), chan)
            b.active[prepay] = False

        calm = b.active[act] & ~busy[act]
        large = b.principal(act, b.settled(act)) * np.where(b.ccy[act] == cat.USD, USD_PEN, 1.0) >= 3_000_000
        p_suit = _hazard(MONTHLY["lawsuit"], gap) * np.where(large | (b.guarantee[act] > 0), 2.5, 1.0)
        suit = act[calm & (legal == 0) & (dpd > 120) & (rng.random(len(act)) < p_suit)]
        b.legal[suit] = LEGAL_JUDICIAL
        threshold = np.where(b.ctype[act] == cat.HIPOTECARIO, 365, 150)
        p_write_off = _hazard(MONTHLY["write_off"], gap)
        write_off = act[calm & (legal < 2) & (dpd >= threshold) & (rng.random(len(act)) < p_write_off)]
        b.legal[write_off] = LEGAL_WRITTEN_OFF
        self._plan_delinquent(np.union1d(suit, write_off), day)  # recovery payments, if any
        p_end = _hazard(MONTHLY["recovery_end"], gap)
        ended = act[calm & ~held[act] & (legal == 2) & (dpd > 720) & (rng.random(len(act)) < p_end)]
        b.active[ended] = False

    def _disburse(self, day, gap):
        rng, b = self.rng, self.book
        m = int(rng.poisson(self.n_target * _hazard(MONTHLY["new_loans"], gap)))
        if m == 0:
            return
        existing = rng.random(m) < 0.35
        n_new = int((~existing).sum())
        cust = np.empty(m, dtype=np.int64)
        cust[existing] = rng.integers(0, len(self.cust_dept), int(existing.sum()))
        cust[~existing] = self._add_customers(rng, rng.choice(len(_P), size=n_new, p=P_SHARE))
        product = np.where(existing, self._cross_sell(rng, self.cust_product[cust]), self.cust_product[cust])
        ccy, P0, term, r, A, guarantee = self._terms(rng, product)
        month, dom = month_and_day(day)
        start = len(b.active)
        b.extend(
            serial=np.arange(self.next_loan, self.next_loan + m), cust=cust, product=product, ctype=P_TYPE[product],
            ccy=ccy, guarantee=guarantee, branch=self._branch(rng, cust), disb=np.full(m, day), original=P0,
            m0=np.full(m, month + 1), pay_day=np.full(m, min(int(dom), 28)), n=term, A=A, P0=P0, r=r,
            paid=np.zeros(m), base=np.zeros(m), legal=np.zeros(m),
            risk=self.cust_risk[cust] * rng.lognormal(0, 0.25, m) * P_LATE[product],
            plan=np.full(m, NEVER), kind=np.zeros(m), active=np.ones(m, dtype=bool), hold=np.full(m, -1),
        )
        self.next_loan += m
        self._plan_current(np.arange(start, start + m), day)

    def _walk_fx(self, gap):
        step = self.rng.normal(0, 0.004 * np.sqrt(gap)) + 0.05 * (3.75 - self.usd_rate)
        self.usd_rate = round(float(np.clip(self.usd_rate + step, 3.55, 3.95)), 4)

    # ---- the day's extracts ------------------------------------------------------------------
    def _payments(self, day, posts: "_Postings"):
        loan, amount, channel, reversal = posts.arrays()
        order = self.rng.permutation(len(loan))  # posting order within the day
        loan, amount, channel, reversal = loan[order], amount[order], channel[order], reversal[order]
        m = len(loan)
        ids = np.arange(self.next_payment, self.next_payment + m)
        self.next_payment += m
        b = self.book
        return {
            "payment_id": _prefixed("P", ids, 11),
            "loan_id": _prefixed("L", b.serial[loan], 9),
            "payment_date": np.full(m, day, dtype=np.int64),
            "amount": amount,
            "currency": pc.take(pa.array(cat.CURRENCIES), pa.array(b.ccy[loan])),
            "channel": pc.take(pa.array(cat.CHANNELS), pa.array(channel)),
            "is_reversal": pc.take(pa.array(["false", "true"]), pa.array(reversal.astype(np.int64))),
        }

    def _loans_snapshot(self, day):
        b = self.book
        idx = np.flatnonzero(b.active)
        k = b.settled(idx)
        due_before = b.due_count(idx, day, inclusive=False)
        dpd = np.where(k < due_before, day - b.due(idx, k), 0)
        overdue = np.maximum(b.A[idx] * due_before - b.paid[idx], 0)
        j = np.maximum(k, due_before)
        next_due = np.where((j < b.n[idx]) & (b.legal[idx] == 0), b.due(idx, j), NULL_DAY)
        status = np.select(
            [b.legal[idx] == 2, b.legal[idx] == 1, dpd > VENCIDO_AFTER[b.ctype[idx]]],
            [cat.CASTIGADO, cat.JUDICIAL, cat.VENCIDO],
            b.base[idx],
        )
        dept = b.branch[idx] // 100
        dept_codes = pa.array([d[0] for d in cat.DEPARTMENTS])
        branch = pc.binary_join_element_wise(
            "AG", pc.take(dept_codes, pa.array(dept)),
            pc.utf8_lpad(pa.array(b.branch[idx] % 100).cast(pa.string()), 2, "0"), "",
        )
        return {
            "loan_id": _prefixed("L", b.serial[idx], 9),
            "customer_id": customer_id(b.cust[idx] + 1),
            "credit_type": pc.take(pa.array(cat.CREDIT_TYPES), pa.array(b.ctype[idx])),
            "product_code": pc.take(pa.array(cat.PRODUCT_CODES), pa.array(b.product[idx])),
            "currency": pc.take(pa.array(cat.CURRENCIES), pa.array(b.ccy[idx])),
            "disbursement_date": b.disb[idx],
            "maturity_date": b.due(idx, b.n[idx] - 1),
            "original_amount": b.original[idx],
            "outstanding_principal": b.principal(idx, k),
            "overdue_amount": overdue,
            "installment_amount": b.A[idx],
            "next_due_date": next_due,
            "days_past_due": dpd,
            "accounting_status": pc.take(pa.array(cat.ACCOUNTING_STATUSES), pa.array(status)),
            "guarantee_type": pc.take(pa.array(cat.GUARANTEES), pa.array(b.guarantee[idx])),
            "branch_code": branch,
        }
