"""Spanish labels for codes the report shows to collections managers and auditors.

These are reference names (INEI department codes, SBS credit types and debtor categories),
not business rules: an unknown code is shown as the code itself, never dropped.
"""

from __future__ import annotations

# INEI department code (first two digits of the ubigeo) -> name.
DEPARTMENTS = {
    "01": "Amazonas",
    "02": "Áncash",
    "03": "Apurímac",
    "04": "Arequipa",
    "05": "Ayacucho",
    "06": "Cajamarca",
    "07": "Callao",
    "08": "Cusco",
    "09": "Huancavelica",
    "10": "Huánuco",
    "11": "Ica",
    "12": "Junín",
    "13": "La Libertad",
    "14": "Lambayeque",
    "15": "Lima",
    "16": "Loreto",
    "17": "Madre de Dios",
    "18": "Moquegua",
    "19": "Pasco",
    "20": "Piura",
    "21": "Puno",
    "22": "San Martín",
    "23": "Tacna",
    "24": "Tumbes",
    "25": "Ucayali",
}

# SBS credit types (Res. SBS 11356-2008).
CREDIT_TYPES = {
    "corporativo": "Corporativo",
    "gran_empresa": "Gran empresa",
    "mediana_empresa": "Mediana empresa",
    "pequena_empresa": "Pequeña empresa",
    "microempresa": "Microempresa",
    "consumo_revolvente": "Consumo revolvente",
    "consumo_no_revolvente": "Consumo no revolvente",
    "hipotecario": "Hipotecario para vivienda",
}

SBS_CATEGORIES = {
    "NOR": "Normal",
    "CPP": "Con problemas potenciales",
    "DEF": "Deficiente",
    "DUD": "Dudoso",
    "PER": "Pérdida",
}

# Outcomes of the roll-rate classification (see orchestration/report/data.py).
ROLL_OUTCOMES = {
    "empeoro": "Empeoró (tramo de mayor atraso)",
    "se_mantuvo": "Se mantuvo en su tramo",
    "mejoro": "Mejoró (tramo menor, aún vencido)",
    "curo": "Se curó (0 días de atraso)",
    "salio": "Salió de la cartera",
}

MIGRATION_SPECIAL = {"NUEVO": "NUEVO (no estaba)", "SALIDA": "SALIDA (ya no está)"}


def department(code: str | None) -> str:
    if code is None:
        return "Sin departamento"
    name = DEPARTMENTS.get(str(code))
    return f"{code} {name}" if name else str(code)


def credit_type(code: str | None) -> str:
    return CREDIT_TYPES.get(str(code), str(code))


def sbs_category(code: str | None) -> str:
    name = SBS_CATEGORIES.get(str(code))
    return f"{code} – {name}" if name else str(code)
