"""Extract generator: landing folders of a plausible Peruvian loan portfolio (contract section 1).

Only the CLI (``cartera generate`` / ``cartera demo``) imports this package; the pipeline
never does. Modules:

- ``catalog``   products, amounts, rates, channels, geography, names (the assumptions)
- ``people``    customers (documents, names, contact data, ubigeo)
- ``portfolio`` the loan book simulated day by day (schedules, payments, roll and cure)
- ``extracts``  text formatting, CSV dialects, ``_control.csv``
- ``corrupt``   rule-breaking rows on request, recorded in ``_generator_manifest.json``
- ``generate``  :func:`generate_landing`, the entry point
"""

from orchestration.simulate.generate import MANIFEST_FILE, generate_landing

__all__ = ["generate_landing", "MANIFEST_FILE"]
