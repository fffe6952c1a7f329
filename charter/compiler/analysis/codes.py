"""The analysis codes: W05xx and W06xx are entries of the diagnostics registry
(`charter.language.diagnostics`, documented in docs/errors.md with an analyzed example);
I0599, "inconclusive", is the analysis's own info code and no diagnostic."""

from __future__ import annotations

from charter.language.diagnostics import REGISTRY

INCONCLUSIVE = "I0599"

#: code -> title, for the analysis codes (SARIF rule descriptions)
TITLES: dict[str, str] = {
    **{code: e.title for code, e in REGISTRY.items() if code.startswith(("W05", "W06"))},
    INCONCLUSIVE: "inconclusive: neither proved nor shown by a witness",
}
