"""Deliberately broken backends for tests/test_conformance.py, under their historical names.

The faults themselves live with the other planted faults in
:mod:`portable_dl.conformance.mutants`; here three of them are renamed ``broken-*`` so the
tests can plug them in with ``--backend-module broken_backends:<factory>``.
"""

from __future__ import annotations

from portable_dl.conformance.mutants import MUTANTS, broken_backend, namespace_with  # noqa: F401 (re-exported)


def _namespace_of(mutant: str):
    return MUTANTS[mutant].factory().xp


# 1. tanh with a wrong derivative: 1 - tanh(x) instead of 1 - tanh(x)**2.
wrong_tanh_gradient = broken_backend("broken-tanh-gradient", _namespace_of("tanh-gradient-1-minus-y"))

# 2. A broadcasting rule that accepts (m, n) + (m,) by aligning the vector with the rows.
accepts_rows_broadcast = broken_backend("broken-broadcasting", _namespace_of("broadcast-aligns-vector-with-rows"))

# 3. A sum that accumulates float32 in float64 and returns float64.
sum_in_wrong_dtype = broken_backend("broken-sum-dtype", _namespace_of("sum-of-float32-in-float64"))
