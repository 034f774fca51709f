"""Two wordings: ``recommender allocate`` names what of the catalog it planned with (its costs
and places, less those ``--cost`` and ``--capacity`` gave), and the gate's counts of rows have
thousands separators, as the rest of the command line's do."""

from __future__ import annotations

import numpy as np
import pytest
from service_fixtures import champion_home, copy_champion  # noqa: F401 - fixtures
from test_catalog_change_dec06b import under  # noqa: F401 - a fixture
from test_renamed_paths_dec06d import cohort_file  # noqa: F401 - a fixture

from recommender.errors import InputError
from recommender.registry import gate_decision


def test_allocate_says_which_costs_and_places_of_the_catalog_it_used(
    under,  # noqa: F811
    cohort_file,  # noqa: F811
    tmp_path,
    capsys,
):
    from recommender.catalog import load_catalog
    from recommender.cli import main

    under(lambda data: None)
    catalog = load_catalog()

    def first_line(*options):
        args = ["allocate", "--data", str(cohort_file), "--out", str(tmp_path / "plan.csv")]
        assert main([*args, "--budget", "40000", *options]) == 0
        return capsys.readouterr().out.splitlines()[0]

    assert first_line().endswith(
        f"intervention catalog {catalog.version} (sha256 {catalog.sha256}) "
        f"(its costs and places) -> {tmp_path / 'plan.csv'}"
    )
    said = first_line("--capacity", "coaching=20")
    assert "(its costs and places)" not in said
    assert "(its costs; its places but --capacity's for coaching)" in said
    every = ",".join(f"{arm}=500" for arm in catalog.treatment_arms)
    said = first_line("--capacity", every, "--cost", "coaching=5")
    assert "(its costs but --cost's for coaching; the places --capacity gave)" in said


def test_the_gates_counts_of_rows_have_thousands_separators():
    rng = np.random.default_rng(0)
    challenger = rng.normal(-1.0, 1.0, size=3002)
    decision = gate_decision(challenger, challenger + 0.5, champion_version="1")
    assert "on 3,002 held-out rows" in decision.reason and "3002" not in decision.reason
    with pytest.raises(InputError, match="valued on 3,001 rows and the challenger on 3,002"):
        gate_decision(challenger, challenger[:-1], champion_version="1")
