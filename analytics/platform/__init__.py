"""The floor every app stands on: tenancy (orgs, tokens), the API conventions (auth, scoping, errors,
windows, contracts, routes), the collectors of per-app schedules, demo data and retention, admin helpers.

It imports nothing from ``analytics`` outside this package, nor from any higher app
(``tests/test_layering.py`` checks): the domain modules import it, never the reverse.
"""
