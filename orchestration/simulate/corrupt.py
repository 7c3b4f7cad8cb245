"""Bad rows on purpose, so ingest and quality can be tested against known answers.

Each bad row is an *extra* row (a copy of a real row with one rule broken) inserted at a
random line, so the rest of the file is byte-for-byte what a clean run writes: removing
the manifest's injected lines gives back the clean file. Injected rows get identifiers
from ranges the simulation never uses (loans L8xxxxxxxx, customers C8xxxxxxx, payments
P8xxxxxxxxxx), except the ``duplicated_id`` kind, which reuses a real id on purpose; its
manifest also lists the real row sharing the key (``"injected": false``), since the
contract quarantines both. Values stay parseable in numeric and date columns unless the
kind is a type error (``not_a_number``, ``not_a_date``, ``bad_boolean``).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from orchestration.simulate.extracts import DATE_FORMATS, Dialect

KINDS = {
    "loans": (
        "bad_enum", "negative_amount", "duplicated_id", "unknown_customer", "maturity_before_disbursement",
        "too_many_decimals", "not_a_number", "not_a_date", "out_of_range",
    ),
    "payments": (
        "bad_enum", "negative_amount", "duplicated_id", "unknown_loan", "payment_date_not_d", "too_many_decimals",
    ),
    "customers": ("bad_document", "bad_enum", "duplicated_id", "bad_ubigeo", "bad_boolean"),
}
ID_COLUMN = {"loans": "loan_id", "payments": "payment_id", "customers": "customer_id"}
BAD_ENUMS = {
    "credit_type": "consumo", "currency": "EUR", "accounting_status": "moroso",
    "guarantee_type": "aval", "channel": "ventanilla", "document_type": "LE",
}


class Injector:
    """Inserts about ``share`` bad rows per file and remembers where (for the manifest)."""

    def __init__(self, seed: int, share: float):
        self.seed, self.share = seed, share
        self.next_id = {"loans": 800_000_000, "customers": 80_000_000, "payments": 80_000_000_000}
        self.earlier_payments: list[tuple[str, str]] = []  # (payment_id, date) of earlier dates
        self.entries: list[dict] = []
        self.cursor = {extract: 0 for extract in KINDS}  # kinds rotate across dates: small files see them all

    def _fresh(self, extract: str) -> str:
        n = self.next_id[extract]
        self.next_id[extract] += 1
        return {"loans": f"L{n:09d}", "customers": f"C{n:08d}", "payments": f"P{n:011d}"}[extract]

    def inject(self, i: int, day: dt.date, extract: str, table: pa.Table, dialect: Dialect,
               file_name: str, protected_ids: pa.Array | None = None) -> pa.Table:
        """Return ``table`` with bad rows inserted; ``protected_ids`` are ids whose rows must
        not be the victim of a duplicated key (loans paid on D, customers with loans)."""
        rng = np.random.default_rng([self.seed, 11, i, list(KINDS).index(extract)])
        n = table.num_rows
        n_bad = int(np.floor(self.share * n + rng.random())) if n else 0
        if n_bad == 0:
            if extract == "payments":
                self._remember(rng, table, day)
            return table
        kinds = KINDS[extract]
        start = self.cursor[extract]
        self.cursor[extract] += n_bad
        id_col = ID_COLUMN[extract]
        eligible = np.arange(n)
        if protected_ids is not None and len(protected_ids):
            mask = np.asarray(pc.is_in(table[id_col], value_set=protected_ids).to_numpy(zero_copy_only=False))
            if (~mask).any():
                eligible = np.flatnonzero(~mask)
        eligible = rng.permutation(eligible)
        used_originals = 0
        rows, notes = [], []
        for j, row in enumerate(table.take(pa.array(rng.integers(0, n, n_bad))).to_pylist()):
            kind = kinds[(start + j) % len(kinds)]
            original = None
            if kind == "duplicated_id":
                if extract == "payments" and self.earlier_payments:
                    pid, first_day = self.earlier_payments[int(rng.integers(len(self.earlier_payments)))]
                    row[id_col] = pid
                    column, detail = id_col, f"payment_id already used on {first_day}"
                elif used_originals < len(eligible):
                    original = int(eligible[used_originals])
                    used_originals += 1
                    row[id_col] = table[id_col][original].as_py()
                    column, detail = id_col, "same key as another row of the file"
                else:  # no row left to collide with: break a value instead
                    kind = "negative_amount" if extract != "customers" else "bad_enum"
            if kind != "duplicated_id":
                row[id_col] = self._fresh(extract)
                column, detail = getattr(self, f"_{extract}")(rng, kind, row, day, dialect, j)
            rows.append(row)
            notes.append((kind, column, row[column], detail, original))

        total = n + n_bad
        bad_pos = np.sort(rng.choice(total, n_bad, replace=False))
        good_pos = np.setdiff1d(np.arange(total), bad_pos, assume_unique=True)
        order = np.empty(total, dtype=np.int64)
        order[bad_pos] = n + np.arange(n_bad)
        order[good_pos] = np.arange(n)
        bad = pa.Table.from_pylist(rows, schema=table.schema)
        out = pa.concat_tables([table, bad]).take(pa.array(order))
        for pos, (kind, column, value, detail, original) in zip(bad_pos, notes):
            self.entries.append(dict(date=day.isoformat(), file=file_name, line=int(pos) + 2, kind=kind,
                                     column=column, value=value, detail=detail, injected=True))
            if original is not None:
                self.entries.append(dict(date=day.isoformat(), file=file_name, line=int(good_pos[original]) + 2,
                                         kind=kind, column=column, value=value,
                                         detail=f"original row sharing the key with line {int(pos) + 2}",
                                         injected=False))
        if extract == "payments":
            self._remember(rng, table, day)
        return out

    def _remember(self, rng, table, day):
        """Keep a few real payment ids of each date: later dates reuse them as duplicates."""
        if table.num_rows:
            for k in rng.integers(0, table.num_rows, min(20, table.num_rows)):
                self.earlier_payments.append((table["payment_id"][int(k)].as_py(), day.isoformat()))

    # ---- one bad row per kind: modify ``row`` in place, return (column, what is wrong) --------
    @staticmethod
    def _nudge(value: str, j: int) -> str:
        """Add a third decimal; alternate up/down so the file's total stays within a cent."""
        step = Decimal("0.001") if (j % 2 == 0 or Decimal(value) <= 0) else Decimal("-0.001")
        return f"{Decimal(value) + step:.3f}"

    def _loans(self, rng, kind, row, day, dialect, j):
        fmt = DATE_FORMATS[dialect.date_format]
        if kind == "bad_enum":
            column = ("credit_type", "currency", "accounting_status", "guarantee_type")[int(rng.integers(4))]
            row[column] = BAD_ENUMS[column]
            return column, "value outside the contract's enum"
        if kind == "negative_amount":
            column = ("outstanding_principal", "original_amount")[int(rng.integers(2))]
            row[column] = "-" + row[column]
            return column, "negative amount"
        if kind == "unknown_customer":
            row["customer_id"] = self._fresh("customers")
            return "customer_id", "customer not in customers.csv"
        if kind == "maturity_before_disbursement":
            disb = dt.datetime.strptime(row["disbursement_date"], fmt).date()
            row["maturity_date"] = (disb - dt.timedelta(days=int(rng.integers(1, 366)))).strftime(fmt)
            return "maturity_date", "maturity_date before disbursement_date"
        if kind == "too_many_decimals":
            column = ("outstanding_principal", "installment_amount", "overdue_amount")[int(rng.integers(3))]
            row[column] = self._nudge(row[column], j)
            return column, "money with more than 2 decimals"
        if kind == "not_a_number":
            row["days_past_due"] = "n/d"
            return "days_past_due", "not an integer (type error)"
        if kind == "not_a_date":
            row["next_due_date"] = f"{day.year}-02-30" if dialect.date_format == "iso" else f"30/02/{day.year}"
            return "next_due_date", "not a calendar date (type error)"
        if kind == "out_of_range":
            row["days_past_due"] = str(-int(rng.integers(1, 30)))
            return "days_past_due", "days_past_due outside 0..10000"
        raise AssertionError(kind)

    def _payments(self, rng, kind, row, day, dialect, j):
        if kind == "bad_enum":
            column = ("channel", "currency")[int(rng.integers(2))]
            row[column] = BAD_ENUMS[column]
            return column, "value outside the contract's enum"
        if kind == "negative_amount":
            row["amount"] = "-" + row["amount"]
            return "amount", "amount not > 0"
        if kind == "unknown_loan":
            row["loan_id"] = self._fresh("loans")
            return "loan_id", "loan in no snapshot"
        if kind == "payment_date_not_d":
            other = day - dt.timedelta(days=int(rng.integers(1, 6)))
            row["payment_date"] = dialect.format_date(other)
            return "payment_date", "payment_date is not the drop's date"
        if kind == "too_many_decimals":
            row["amount"] = self._nudge(row["amount"], j)
            return "amount", "money with more than 2 decimals"
        raise AssertionError(kind)

    def _customers(self, rng, kind, row, day, dialect, j):
        if kind == "bad_document":
            variant = int(rng.integers(4))
            doc_type, number = (
                ("DNI", f"{int(rng.integers(0, 10**7)):07d}"),  # 7 digits
                ("DNI", f"{int(rng.integers(0, 10**7)):07d}K"),  # letter inside
                ("RUC", f"30{int(rng.integers(0, 10**9)):09d}"),  # RUC must start 10/15/17/20
                ("CE", f"{int(rng.integers(0, 10**5)):05d}"),  # CE needs 9-12 characters
            )[variant]
            row["document_type"], row["document_number"] = doc_type, number
            return "document_number", f"{doc_type} number of the wrong shape"
        if kind == "bad_enum":
            row["document_type"] = BAD_ENUMS["document_type"]
            return "document_type", "value outside the contract's enum"
        if kind == "bad_ubigeo":
            u = row["ubigeo"]
            row["ubigeo"] = u[1:] if u.startswith("0") else u[:5]  # a spreadsheet ate a digit
            return "ubigeo", "ubigeo is not 6 digits"
        if kind == "bad_boolean":
            row["digital_contact_consent"] = "si"
            return "digital_contact_consent", "not a boolean (type error)"
        raise AssertionError(kind)
