"""Cohort planning at its edges, as a wellness program would send it and as it would send it by
mistake: a solver stopped by its time limit, a plan file of crisis rows only, an interval level
that must be the service's, and options named as the program typed them."""

from __future__ import annotations

from test_policy_planning import _person, _plan, catalog  # noqa: F401  (a fixture)


def test_the_solver_skips_highs_presolve_which_does_not_heed_the_time_limit(catalog, monkeypatch):
    # HiGHS's presolve ran 29 s under a 1 s limit on 50,000 people with places for thousands:
    # every solve of a plan is asked to go without it, with the caller's time limit.
    import scipy.optimize

    real, asked = scipy.optimize.milp, []

    def recording(*args, options=None, **kwargs):
        asked.append(dict(options))
        return real(*args, options=options, **kwargs)

    monkeypatch.setattr(scipy.optimize, "milp", recording)
    people = [_person(i) for i in range(4)]
    plan = _plan(catalog, people, [[-3.0, -1.0, -0.5, -0.2, -0.1]] * 4, time_limit=7.0)
    assert plan.allocation.status == "optimal"
    assert asked and all(o["presolve"] is False and o["time_limit"] == 7.0 for o in asked)
