"""Customers: documents, Spanish names, contact data and where they live.

Built column by column with NumPy and pyarrow compute (no per-customer Python), so a
million customers take a couple of seconds. Document numbers come from a bijection of
the customer's serial number, so they are unique without bookkeeping and still look
random.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from orchestration.simulate import catalog as cat

CUSTOMER_COLUMNS = (
    "customer_id",
    "document_type",
    "document_number",
    "full_name",
    "phone",
    "email",
    "ubigeo",
    "digital_contact_consent",
)

_DEPT_SHARES = np.array([d[2] for d in cat.DEPARTMENTS], dtype=float)
_DEPT_SHARES /= _DEPT_SHARES.sum()
# every district of every department, flattened, with the department's capital twice as likely
_DISTRICTS = [(i, code) for i, d in enumerate(cat.DEPARTMENTS) for code in d[3]]
_DISTRICT_CODES = pa.array([code for _, code in _DISTRICTS])
_DISTRICT_DEPT = np.array([i for i, _ in _DISTRICTS])
_DISTRICT_FIRST = np.array([np.flatnonzero(_DISTRICT_DEPT == i)[0] for i in range(len(cat.DEPARTMENTS))])
_DISTRICT_COUNT = np.bincount(_DISTRICT_DEPT)


def customer_id(serial: np.ndarray) -> pa.Array:
    return _prefixed("C", serial, 8)


def _prefixed(prefix: str, serial: np.ndarray, width: int) -> pa.Array:
    digits = pc.utf8_lpad(pa.array(np.asarray(serial, dtype=np.int64)).cast(pa.string()), width, "0")
    return pc.binary_join_element_wise(prefix, digits, "")


def _pick(values: tuple, idx: np.ndarray) -> pa.Array:
    return pc.take(pa.array(values), pa.array(np.asarray(idx, dtype=np.int64)))


def _digits(numbers: np.ndarray, width: int) -> pa.Array:
    return pc.utf8_lpad(pa.array(np.asarray(numbers, dtype=np.int64)).cast(pa.string()), width, "0")


def _scramble(serial: np.ndarray, modulus: int, mult: int, offset: int) -> np.ndarray:
    """A bijection of [0, modulus): unique numbers that do not look sequential."""
    return (serial.astype(np.int64) * mult + offset) % modulus


def _ruc_check_digit(first10: np.ndarray) -> np.ndarray:
    """SUNAT's module-11 check digit of a RUC (weights 5,4,3,2,7,6,5,4,3,2)."""
    weights = np.array([5, 4, 3, 2, 7, 6, 5, 4, 3, 2], dtype=np.int64)
    powers = 10 ** np.arange(9, -1, -1, dtype=np.int64)
    digits = (first10[:, None] // powers) % 10
    check = 11 - (digits @ weights) % 11
    return np.where(check == 10, 0, np.where(check == 11, 1, check))


def make_customers(rng: np.random.Generator, serial: np.ndarray, primary_type: np.ndarray, salt: int):
    """Customers for the given serial numbers, shaped by the credit type of their first loan.

    Returns (table of CUSTOMER_COLUMNS as text, department index per customer).
    ``salt`` (derived from the seed) shifts the document-number bijections so two seeds
    give different documents.
    """
    n = len(serial)
    u = rng.random(n)
    company = np.isin(primary_type, [cat.CORP, cat.GRAN, cat.MEDIANA]) | (
        (primary_type == cat.PEQUENA) & (u < 0.65)
    )
    person_business = ((primary_type == cat.PEQUENA) & ~company) | (
        (primary_type == cat.MICRO) & (u < 0.45)
    )
    # document type and RUC prefix
    doc_type = np.full(n, cat.DNI, dtype=np.int8)
    ruc_prefix = np.full(n, 10, dtype=np.int64)
    doc_type[company | person_business] = cat.RUC
    ruc_prefix[company] = 20
    v = rng.random(n)
    ruc_prefix[person_business & (v < 0.03)] = 15
    ruc_prefix[person_business & (v >= 0.03) & (v < 0.045)] = 17
    plain_person = ~company & ~person_business
    doc_type[plain_person & (v < 0.027)] = cat.CE
    doc_type[plain_person & (v >= 0.027) & (v < 0.035)] = cat.PAS

    dni = _scramble(serial, 100_000_000, 61_803_397, salt % 100_000_000)
    body8 = np.where(
        ruc_prefix == 20,
        10_000_000 + _scramble(serial, 90_000_000, 41_234_567, salt % 90_000_000),
        dni,
    )
    first10 = ruc_prefix * 100_000_000 + body8
    ruc = first10 * 10 + _ruc_check_digit(first10)
    ce = _scramble(serial, 10_000_000, 7_654_321, salt % 10_000_000)
    pas_letter = rng.integers(0, 22, n)
    pas_digits = rng.integers(0, 100_000_000, n)

    doc_number = pc.if_else(
        pa.array(doc_type == cat.RUC),
        _digits(ruc, 11),
        pc.if_else(
            pa.array(doc_type == cat.CE),
            pc.binary_join_element_wise("00", _digits(ce, 7), ""),
            pc.if_else(
                pa.array(doc_type == cat.PAS),
                pc.binary_join_element_wise(_pick(tuple("ABCDEFGHJKLMNPRSTUVWXY"), pas_letter), _digits(pas_digits, 8), ""),
                _digits(dni, 8),
            ),
        ),
    )

    # names: "José Luis Peña Quispe" for persons, "Inversiones Núñez S.A.C." for companies
    female = rng.random(n) < 0.5
    nf, nm, ns = len(cat.FEMALE_NAMES), len(cat.MALE_NAMES), len(cat.SURNAMES)
    given = rng.integers(0, 10_000, (n, 2))
    first_f, first_m = given[:, 0] % nf, given[:, 0] % nm
    second_f, second_m = given[:, 1] % nf, given[:, 1] % nm
    names_all = cat.FEMALE_NAMES + cat.MALE_NAMES
    first_idx = np.where(female, first_f, nf + first_m)
    second_idx = np.where(female, second_f, nf + second_m)
    has_second = (rng.random(n) < 0.4) & (second_idx != first_idx)
    sur = rng.integers(0, ns, (n, 2))
    display = tuple(x[0] for x in names_all)
    ascii_ = tuple(x[1] for x in names_all)
    sur_display = tuple(x[0] for x in cat.SURNAMES)
    sur_ascii = tuple(x[1] for x in cat.SURNAMES)
    second = pc.if_else(pa.array(has_second), _pick(display, second_idx), pa.nulls(n, pa.string()))
    person_name = pc.binary_join_element_wise(
        _pick(display, first_idx), second, _pick(sur_display, sur[:, 0]), _pick(sur_display, sur[:, 1]), " ",
        null_handling="skip",
    )
    pref = rng.integers(0, len(cat.COMPANY_PREFIXES), n)
    suffix = rng.choice(len(cat.COMPANY_SUFFIXES), size=n, p=cat.COMPANY_SUFFIX_SHARES)
    partner = pc.if_else(
        pa.array(rng.random(n) < 0.3),
        pc.binary_join_element_wise("&", _pick(sur_display, sur[:, 1]), " "),
        pa.nulls(n, pa.string()),
    )
    company_name = pc.binary_join_element_wise(
        _pick(tuple(p[0] for p in cat.COMPANY_PREFIXES), pref),
        _pick(sur_display, sur[:, 0]),
        partner,
        _pick(cat.COMPANY_SUFFIXES, suffix),
        " ",
        null_handling="skip",
    )
    full_name = pc.if_else(pa.array(company), company_name, person_name)

    # contact data
    phone_ok = rng.random(n) < np.where(company, 0.95, 0.92)
    phone = pc.if_else(
        pa.array(phone_ok),
        pc.binary_join_element_wise("9", _digits(rng.integers(0, 100_000_000, n), 8), ""),
        pa.nulls(n, pa.string()),
    )
    has_email = rng.random(n) < np.where(company, 0.85, 0.55)
    number_tail = pc.if_else(
        pa.array(rng.random(n) < 0.6), _digits(rng.integers(0, 100, n), 2), pa.array([""] * n)
    )
    person_email = pc.binary_join_element_wise(
        _pick(ascii_, first_idx), ".", _pick(sur_ascii, sur[:, 0]), number_tail, "@",
        _pick(cat.EMAIL_DOMAINS, rng.integers(0, len(cat.EMAIL_DOMAINS), n)), "",
    )
    company_email = pc.binary_join_element_wise(
        "contacto@", _pick(tuple(p[1] for p in cat.COMPANY_PREFIXES), pref),
        _pick(sur_ascii, sur[:, 0]), ".com.pe", "",
    )
    email = pc.if_else(
        pa.array(has_email), pc.if_else(pa.array(company), company_email, person_email), pa.nulls(n, pa.string())
    )
    consent = rng.random(n) < np.where(has_email, 0.74, 0.55)

    # where they live
    dept = rng.choice(len(cat.DEPARTMENTS), size=n, p=_DEPT_SHARES)
    count = _DISTRICT_COUNT[dept]
    k = rng.integers(0, 10_000, n) % (count + 1)  # k == count also means the capital district
    k = np.where(k >= count, 0, k)
    ubigeo = pc.take(_DISTRICT_CODES, pa.array(_DISTRICT_FIRST[dept] + k))

    table = pa.table(
        {
            "customer_id": customer_id(serial),
            "document_type": _pick(cat.DOCUMENT_TYPES, doc_type),
            "document_number": doc_number,
            "full_name": full_name,
            "phone": phone,
            "email": email,
            "ubigeo": ubigeo,
            "digital_contact_consent": _pick(("false", "true"), consent.astype(np.int64)),
        }
    )
    return table, dept
