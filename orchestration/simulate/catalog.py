"""Reference data behind the simulated portfolio: what a mid-size Peruvian lender books.

Everything here is plain data (tuples and small dicts), so a reader can check the
assumptions in one place: the credit-type mix, the products of each type and their
amounts, terms and rates, the share in dollars, guarantees, payment channels, the
geography (INEI ubigeo codes) and the Spanish names customers carry.

The figures are plausible orders of magnitude for a Peruvian caja / mid-size bank
(SBS credit types, TEA ranges seen in published tariffs), not statistics of a real lender.
"""

from __future__ import annotations

# ---------------------------------------------------------------------------------------
# Contract enums (contract section 1). Index = integer code used in the simulation arrays.
CREDIT_TYPES = (
    "corporativo",
    "gran_empresa",
    "mediana_empresa",
    "pequena_empresa",
    "microempresa",
    "consumo_revolvente",
    "consumo_no_revolvente",
    "hipotecario",
)
CORP, GRAN, MEDIANA, PEQUENA, MICRO, REVOLVENTE, NO_REVOLVENTE, HIPOTECARIO = range(8)
BUSINESS_TYPES = (CORP, GRAN, MEDIANA, PEQUENA)  # borrowers that are companies (RUC 20 mostly)

CURRENCIES = ("PEN", "USD")
PEN, USD = 0, 1

ACCOUNTING_STATUSES = ("vigente", "reprogramado", "refinanciado", "vencido", "judicial", "castigado")
VIGENTE, REPROGRAMADO, REFINANCIADO, VENCIDO, JUDICIAL, CASTIGADO = range(6)

GUARANTEES = ("ninguna", "preferida", "preferida_muy_rapida_realizacion")

CHANNELS = (
    "agencia",
    "agente",
    "banca_movil",
    "banca_internet",
    "debito_automatico",
    "transferencia",
    "recaudadora",
)

DOCUMENT_TYPES = ("DNI", "CE", "RUC", "PAS")
DNI, CE, RUC, PAS = range(4)

# Days past due after which the whole credit is booked as `vencido` (SBS accounting
# rules: 15 days for corporate/large/medium companies, 90 for mortgages, 30 otherwise).
VENCIDO_AFTER_DAYS = (15, 15, 15, 30, 30, 30, 30, 90)

# ---------------------------------------------------------------------------------------
# Products. One row per product:
# (code, credit_type, share of loans, median amount PEN, log-sd of amount, min PEN, max PEN,
#  term months min, term months max, TEA min, TEA max, USD share,
#  guarantee shares (ninguna, preferida, preferida_muy_rapida_realizacion),
#  late-payment propensity (relative), payment channel profile)
PRODUCTS = (
    ("TARJETA", REVOLVENTE, 0.250, 2_500, 0.85, 300, 40_000, 24, 48, 0.55, 1.10, 0.15, (1.0, 0.0, 0.0), 1.30, "retail"),
    ("PERSONAL", NO_REVOLVENTE, 0.150, 8_000, 0.75, 1_000, 80_000, 12, 60, 0.22, 0.55, 0.12, (0.93, 0.0, 0.07), 1.00, "retail"),
    ("CONVENIO", NO_REVOLVENTE, 0.080, 12_000, 0.60, 2_000, 90_000, 24, 72, 0.13, 0.24, 0.0, (1.0, 0.0, 0.0), 0.35, "payroll"),
    ("VEHICULAR", NO_REVOLVENTE, 0.030, 55_000, 0.45, 20_000, 250_000, 36, 72, 0.10, 0.16, 0.45, (0.15, 0.85, 0.0), 0.70, "retail"),
    ("MYPE_CAPITAL", MICRO, 0.140, 6_000, 0.70, 500, 20_000, 6, 24, 0.30, 0.65, 0.03, (0.92, 0.08, 0.0), 1.45, "micro"),
    ("MYPE_ACTIVO", MICRO, 0.055, 11_000, 0.50, 2_000, 20_000, 12, 36, 0.25, 0.50, 0.03, (0.80, 0.20, 0.0), 1.25, "micro"),
    ("CAPITAL_TRABAJO", PEQUENA, 0.060, 45_000, 0.70, 20_000, 300_000, 6, 36, 0.18, 0.35, 0.25, (0.65, 0.30, 0.05), 1.05, "business"),
    ("ACTIVO_FIJO", PEQUENA, 0.030, 90_000, 0.60, 25_000, 300_000, 24, 60, 0.15, 0.28, 0.30, (0.40, 0.55, 0.05), 0.90, "business"),
    ("HIPOTECARIO", HIPOTECARIO, 0.030, 320_000, 0.50, 90_000, 1_800_000, 120, 300, 0.07, 0.11, 0.45, (0.0, 1.0, 0.0), 0.45, "mortgage"),
    ("MIVIVIENDA", HIPOTECARIO, 0.035, 190_000, 0.35, 60_000, 480_000, 120, 300, 0.08, 0.12, 0.0, (0.0, 1.0, 0.0), 0.55, "mortgage"),
    ("CAPITAL_TRABAJO_ME", MEDIANA, 0.015, 900_000, 0.70, 300_000, 8_000_000, 12, 48, 0.09, 0.16, 0.50, (0.45, 0.40, 0.15), 0.70, "corporate"),
    ("LEASING", MEDIANA, 0.008, 700_000, 0.60, 200_000, 6_000_000, 24, 60, 0.09, 0.15, 0.60, (0.0, 1.0, 0.0), 0.60, "corporate"),
    ("COMEX", GRAN, 0.004, 6_000_000, 0.70, 1_500_000, 40_000_000, 6, 36, 0.07, 0.11, 0.75, (0.50, 0.30, 0.20), 0.40, "corporate"),
    ("PRESTAMO_CORPORATIVO", CORP, 0.002, 30_000_000, 0.60, 8_000_000, 150_000_000, 12, 84, 0.06, 0.09, 0.70, (0.60, 0.25, 0.15), 0.25, "corporate"),
)
PRODUCT_CODES = tuple(p[0] for p in PRODUCTS)

# Chance that an installment is paid late (per monthly cycle) at relative propensity 1.0.
# With the mix above the portfolio-wide figure is about 5% of current loans a month.
BASE_LATE_PER_CYCLE = 0.045

# Payment channel shares per channel profile, in CHANNELS order.
CHANNEL_PROFILES = {
    "retail": (0.12, 0.16, 0.36, 0.12, 0.10, 0.04, 0.10),
    "payroll": (0.02, 0.01, 0.03, 0.02, 0.90, 0.01, 0.01),
    "micro": (0.48, 0.28, 0.14, 0.02, 0.01, 0.01, 0.06),
    "business": (0.30, 0.05, 0.10, 0.30, 0.05, 0.20, 0.00),
    "mortgage": (0.12, 0.04, 0.16, 0.20, 0.45, 0.03, 0.00),
    "corporate": (0.05, 0.00, 0.00, 0.35, 0.00, 0.60, 0.00),
}
PROFILE_NAMES = tuple(CHANNEL_PROFILES)

# ---------------------------------------------------------------------------------------
# Geography: the 25 departments (INEI code, share of customers, districts as 6-digit ubigeo)
# and how many branches the lender has in each. Lima and Callao dominate, as in any
# Peruvian portfolio.
DEPARTMENTS = (
    ("01", "Amazonas", 0.005, ("010101", "010201", "010701"), 1),
    ("02", "Áncash", 0.028, ("020101", "021801", "021809", "020105"), 3),
    ("03", "Apurímac", 0.006, ("030101", "030201"), 1),
    ("04", "Arequipa", 0.062, ("040101", "040103", "040104", "040112", "040122", "040129", "040126"), 5),
    ("05", "Ayacucho", 0.010, ("050101", "050115", "050401"), 1),
    ("06", "Cajamarca", 0.022, ("060101", "060801", "060601"), 2),
    ("07", "Callao", 0.060, ("070101", "070102", "070103", "070105", "070106"), 4),
    ("08", "Cusco", 0.038, ("080101", "080104", "080105", "080108", "081101"), 3),
    ("09", "Huancavelica", 0.004, ("090101", "090701"), 1),
    ("10", "Huánuco", 0.014, ("100101", "100601", "100111"), 1),
    ("11", "Ica", 0.026, ("110101", "110501", "110201", "110112"), 2),
    ("12", "Junín", 0.042, ("120101", "120114", "120107", "120401", "120601"), 3),
    ("13", "La Libertad", 0.054, ("130101", "130102", "130105", "130111", "130109", "130401"), 4),
    ("14", "Lambayeque", 0.044, ("140101", "140105", "140112", "140301", "140201"), 3),
    ("15", "Lima", 0.420, (
        "150101", "150103", "150105", "150108", "150110", "150112", "150114", "150115",
        "150117", "150118", "150121", "150122", "150125", "150128", "150130", "150131",
        "150132", "150133", "150135", "150136", "150137", "150140", "150141", "150142",
        "150143", "150501", "150801", "151001", "150601",
    ), 24),
    ("16", "Loreto", 0.016, ("160101", "160108", "160113"), 2),
    ("17", "Madre de Dios", 0.004, ("170101", "170301"), 1),
    ("18", "Moquegua", 0.006, ("180101", "180301"), 1),
    ("19", "Pasco", 0.004, ("190101", "190301"), 1),
    ("20", "Piura", 0.056, ("200101", "200104", "200105", "200601", "200401", "200701"), 4),
    ("21", "Puno", 0.022, ("210101", "211101", "210501"), 2),
    ("22", "San Martín", 0.020, ("220101", "220901", "220910", "220501"), 2),
    ("23", "Tacna", 0.010, ("230101", "230110", "230108"), 1),
    ("24", "Tumbes", 0.006, ("240101", "240301"), 1),
    ("25", "Ucayali", 0.012, ("250101", "250105", "250107"), 1),
)

# ---------------------------------------------------------------------------------------
# Names: (as written, ASCII form used for e-mail addresses). Spanish and Andean names,
# with ñ and accents on purpose: Latin-1 exports must carry them intact.
FEMALE_NAMES = (
    ("María", "maria"), ("Rosa", "rosa"), ("Carmen", "carmen"), ("Ana", "ana"), ("Luz", "luz"),
    ("Juana", "juana"), ("Elena", "elena"), ("Patricia", "patricia"), ("Lucía", "lucia"),
    ("Sofía", "sofia"), ("Milagros", "milagros"), ("Flor", "flor"), ("Gladys", "gladys"),
    ("Verónica", "veronica"), ("Yolanda", "yolanda"), ("Mónica", "monica"), ("Inés", "ines"),
    ("Begoña", "begona"), ("Ángela", "angela"), ("Raquel", "raquel"), ("Julia", "julia"),
    ("Teresa", "teresa"), ("Silvia", "silvia"), ("Marisol", "marisol"), ("Karina", "karina"),
    ("Jessica", "jessica"), ("Valeria", "valeria"), ("Camila", "camila"), ("Ximena", "ximena"),
    ("Rocío", "rocio"), ("Beatriz", "beatriz"), ("Norma", "norma"), ("Haydée", "haydee"),
    ("Noemí", "noemi"), ("Zoila", "zoila"), ("Nélida", "nelida"), ("Dolores", "dolores"),
    ("Fiorella", "fiorella"), ("Gabriela", "gabriela"), ("Natalia", "natalia"),
)
MALE_NAMES = (
    ("José", "jose"), ("Juan", "juan"), ("Luis", "luis"), ("Carlos", "carlos"), ("Jorge", "jorge"),
    ("Víctor", "victor"), ("Miguel", "miguel"), ("César", "cesar"), ("Jesús", "jesus"),
    ("Manuel", "manuel"), ("Pedro", "pedro"), ("Julio", "julio"), ("Raúl", "raul"),
    ("Óscar", "oscar"), ("Martín", "martin"), ("Andrés", "andres"), ("Héctor", "hector"),
    ("Ramón", "ramon"), ("Germán", "german"), ("Simón", "simon"), ("Rubén", "ruben"),
    ("Iván", "ivan"), ("Nicolás", "nicolas"), ("Sebastián", "sebastian"), ("Joaquín", "joaquin"),
    ("Álvaro", "alvaro"), ("Fernando", "fernando"), ("Ricardo", "ricardo"), ("Walter", "walter"),
    ("Alberto", "alberto"), ("Hugo", "hugo"), ("Wilmer", "wilmer"), ("Edwin", "edwin"),
    ("Percy", "percy"), ("Aníbal", "anibal"), ("Efraín", "efrain"), ("Diego", "diego"),
    ("Renzo", "renzo"), ("Gonzalo", "gonzalo"), ("Ángel", "angel"),
)
SURNAMES = (
    ("Quispe", "quispe"), ("Flores", "flores"), ("Sánchez", "sanchez"), ("Rodríguez", "rodriguez"),
    ("García", "garcia"), ("Huamán", "huaman"), ("Mamani", "mamani"), ("Rojas", "rojas"),
    ("Díaz", "diaz"), ("Chávez", "chavez"), ("Vásquez", "vasquez"), ("Ramírez", "ramirez"),
    ("Torres", "torres"), ("Mendoza", "mendoza"), ("Gonzales", "gonzales"), ("Castillo", "castillo"),
    ("Pérez", "perez"), ("López", "lopez"), ("Gutiérrez", "gutierrez"), ("Espinoza", "espinoza"),
    ("Fernández", "fernandez"), ("Ramos", "ramos"), ("Vargas", "vargas"), ("Cruz", "cruz"),
    ("Peña", "pena"), ("Muñoz", "munoz"), ("Ibáñez", "ibanez"), ("Núñez", "nunez"),
    ("Castañeda", "castaneda"), ("Zúñiga", "zuniga"), ("Patiño", "patino"), ("Cáceres", "caceres"),
    ("Gálvez", "galvez"), ("Ñahui", "nahui"), ("Ccori", "ccori"), ("Condori", "condori"),
    ("Apaza", "apaza"), ("Ticona", "ticona"), ("Yupanqui", "yupanqui"), ("Huanca", "huanca"),
    ("Salazar", "salazar"), ("Romero", "romero"), ("Aguilar", "aguilar"), ("Medina", "medina"),
    ("Córdova", "cordova"), ("Ríos", "rios"), ("Benítez", "benitez"), ("Carbajal", "carbajal"),
    ("Valdivia", "valdivia"), ("Paredes", "paredes"), ("Cárdenas", "cardenas"), ("Alarcón", "alarcon"),
    ("Ordóñez", "ordonez"), ("Villanueva", "villanueva"), ("Chumpitaz", "chumpitaz"), ("Tello", "tello"),
    ("Soto", "soto"), ("León", "leon"), ("Calderón", "calderon"), ("Montañez", "montanez"),
)
COMPANY_PREFIXES = (
    ("Inversiones", "inversiones"), ("Comercial", "comercial"), ("Distribuidora", "distribuidora"),
    ("Transportes", "transportes"), ("Constructora", "constructora"), ("Agroindustrias", "agro"),
    ("Servicios Generales", "servicios"), ("Importaciones", "importaciones"), ("Textiles", "textiles"),
    ("Minera", "minera"), ("Corporación", "corporacion"), ("Negociaciones", "negociaciones"),
    ("Ferretería", "ferreteria"), ("Pesquera", "pesquera"), ("Logística", "logistica"),
)
COMPANY_SUFFIXES = ("S.A.C.", "E.I.R.L.", "S.A.", "S.R.L.", "S.A.A.")
COMPANY_SUFFIX_SHARES = (0.55, 0.20, 0.11, 0.12, 0.02)  # S.A.A. (listed) companies are rare
EMAIL_DOMAINS = ("gmail.com", "hotmail.com", "outlook.com", "yahoo.es", "gmail.com", "gmail.com")
