"""The published figures on what the interventions do: trial and meta-analysis effects of
coaching, mindfulness, peer groups, resilience training and Balint groups, by role.
"""

from __future__ import annotations

from recommender.simulate._calibration_study import (
    _ALL_ARMS,
    _MID,
    _N_AND_P,
    _P,
    _P_AND_R,
    _R,
    Study,
    _trial,
)
from recommender.simulate._measures import (
    control_share_of_gap,
    high_burnout,
    net_change,
    net_share_change,
    role_difference,
    smd,
    treated_change,
    treated_share_change,
)

__all__ = ["INTERVENTION_STUDIES"]

_WEST_2016_GAP = (
    "not reproduced: the pooled before-after change of mostly uncontrolled studies, whose "
    "participants were often enrolled for distress, includes their regression to the mean; a "
    "random simulated cohort worsens under usual care (Dyrbye 2019's controls: +1.5), so its "
    "treated physicians change less before-after"
)

INTERVENTION_STUDIES: tuple[Study, ...] = (
    # Interventions -------------------------------------------------------------------
    Study(
        "Dyrbye 2019: coaching, physicians 5-30 y",
        "net EE change (points)",
        _P,
        _trial("coaching"),
        net_change("ee", "coaching"),
        -6.7,
        1.5,
        None,
        "Dyrbye 2019 JAMA Intern Med (-5.2 vs +1.5)",
        select=_MID,
    ),
    Study(
        "Dyrbye 2019: coaching, physicians 5-30 y",
        "net change in % with EE >= 27 (points)",
        _P,
        _trial("coaching"),
        net_share_change("coaching"),
        -29.3,
        8.0,
        None,
        "Dyrbye 2019 JAMA Intern Med (-29.3 %, 95 % CI -34.0 to -24.6)",
        select=_MID,
        gap=(
            "not reproduced: every simulated person's expected EE effect is bounded by the "
            "trial's own mean (-6.7), and in a cohort of all mid-career physicians (not the "
            "trial's self-selected 12 % of invitees, whose baseline mix is not reported) that "
            "moves the high-EE share about 18 points, not 29"
        ),
    ),
    Study(
        "Dyrbye 2019: coaching, physicians 5-30 y",
        "net change in % burnout, EE >= 27 or DP >= 10 (points)",
        _P,
        _trial("coaching"),
        net_share_change("coaching", high_burnout),
        -22.0,
        8.0,
        None,
        "Dyrbye 2019 JAMA Intern Med (-22.0 %, 95 % CI -25.2 to -18.7)",
        select=_MID,
    ),
    Study(
        "Collett 2025: coaching, physicians and residents",
        "EE SMD",
        _P_AND_R,
        _trial("coaching"),
        smd("ee", "coaching"),
        -0.37,
        0.15,
        None,
        "Collett 2025 Ann Intern Med meta-analysis (reported among physicians; residents "
        "simulated with them is our reading, the abstract does not say)",
    ),
    Study(
        "Collett 2025: coaching, physicians and residents",
        "DP SMD",
        _P_AND_R,
        _trial("coaching"),
        smd("dp", "coaching"),
        -0.30,
        0.15,
        None,
        "Collett 2025 Ann Intern Med meta-analysis (reported among physicians; residents "
        "simulated with them is our reading, the abstract does not say)",
    ),
    Study(
        "Mindfulness, nurses",
        "net EE change (points)",
        _N_AND_P,
        _trial("mindfulness"),
        lambda f: net_change("ee", "mindfulness")(f[f["role"] == "nurse"]),
        -4.3,
        1.5,
        None,
        "Wang 2023 Front Psychiatry (reported as 'SMD -4.27, 95 % CI -5.94 to -2.59'; read as MBI points)",
    ),
    Study(
        "Mindfulness, nurses",
        "net DP change (points)",
        _N_AND_P,
        _trial("mindfulness"),
        lambda f: net_change("dp", "mindfulness")(f[f["role"] == "nurse"]),
        -2.9,
        1.0,
        None,
        "Wang 2023 Front Psychiatry (reported as 'SMD -2.89, 95 % CI -4.24 to -1.54'; read as MBI points)",
    ),
    Study(
        "Mindfulness, physicians",
        "EE SMD (small)",
        _N_AND_P,
        _trial("mindfulness"),
        lambda f: smd("ee", "mindfulness")(f[f["role"] == "physician"]),
        -0.26,
        0.24,
        None,
        "Fendel 2021 Acad Med (between-group SMD -0.26, 95 % CI -0.50 to -0.03)",
    ),
    Study(
        "Mindfulness, nurses vs physicians",
        "net EE change, nurses minus physicians (points)",
        _N_AND_P,
        _trial("mindfulness"),
        role_difference(net_change("ee", "mindfulness"), "nurse", "physician"),
        0.0,
        None,
        "<",
        "Collett 2025 (nurses gain more from mindfulness than physicians); Fendel 2021",
    ),
    Study(
        "Mindfulness, nurses vs physicians",
        "EE SMD, nurses minus physicians",
        _N_AND_P,
        _trial("mindfulness"),
        role_difference(smd("ee", "mindfulness"), "nurse", "physician"),
        0.0,
        None,
        "<",
        "Collett 2025 (nurses pooled SMD -0.90; Wang 2023's EE figure, read as MBI points as "
        "the simulator reads it, implies about -0.45)",
    ),
    Study(
        "West 2021: peer groups, physicians",
        "net change in % burnout (points)",
        _P,
        _trial("peer_group"),
        net_share_change("peer_group", high_burnout),
        -14.6,
        8.0,
        None,
        "West 2021 Mayo Clin Proc (overall burnout -12.7 % vs +1.9 %, 12 months)",
    ),
    Study(
        "Peer groups, physicians",
        "net EE change (points; small)",
        _P,
        _trial("peer_group"),
        net_change("ee", "peer_group"),
        -1.5,
        1.5,
        None,
        "*assumption* (small; no mean EE difference from usual care is published for the groups)",
    ),
    Study(
        "West 2014: peer groups, physicians",
        "DP SMD minus EE SMD (DP improves more)",
        _P,
        _trial("peer_group"),
        lambda f: smd("dp", "peer_group")(f) - smd("ee", "peer_group")(f),
        0.0,
        None,
        "<",
        "West 2014 JAMA Intern Med (high DP fell at 12 months; EE did not differ)",
    ),
    Study(
        "Resilience training, whole cohort",
        "net EE change (points)",
        None,
        _trial("resilience_training"),
        net_change("ee", "resilience_training"),
        -1.5,
        0.5,
        None,
        "*assumption* (-1 to -2; the trials of this training report stress and resilience, not MBI "
        "scores)",
    ),
    Study(
        "Balint groups, residents",
        "net EE change (points; modest)",
        _R,
        _trial("balint_group"),
        net_change("ee", "balint_group"),
        -2.5,
        1.5,
        None,
        "*assumption* (modest; the one resident trial reports test statistics, not differences)",
    ),
    Study(
        "Huang 2020: Balint groups, residents",
        "share of the EE gap from usual care worsening",
        _R,
        _trial("balint_group"),
        control_share_of_gap("balint_group"),
        0.5,
        None,
        ">",
        "Huang 2020 Front Psychiatry (36 first-year residents: controls' EE rose, t = 2.31, "
        "p = .034; the Balint arm's fall was not significant, t = -1.32)",
    ),
    Study(
        "Residents, individual interventions",
        "EE SMD",
        _R,
        _trial("coaching", "mindfulness", "resilience_training"),
        smd("ee", "any"),
        -0.25,
        0.10,
        None,
        "2024 meta-analysis of resident interventions",
    ),
    Study(
        "Residents, individual interventions",
        "DP SMD",
        _R,
        _trial("coaching", "mindfulness", "resilience_training"),
        smd("dp", "any"),
        -0.17,
        0.10,
        None,
        "2024 meta-analysis of resident interventions",
    ),
    # West 2016 pooled the before-after change of the intervention arms of 52 studies, mostly
    # uncontrolled; it is not a difference from usual care, so it is compared with the simulated
    # before-after change of the treated physicians (drift and regression included).
    Study(
        "West 2016: pooled interventions, physicians",
        "before-after EE change in the treated (points)",
        _P,
        _ALL_ARMS,
        treated_change("ee", "any"),
        -2.65,
        0.98,
        None,
        "West 2016 Lancet (23.82 to 21.17, -2.65, 95 % CI -3.64 to -1.67; pooled pre-post)",
        gap=_WEST_2016_GAP,
    ),
    Study(
        "West 2016: pooled interventions, physicians",
        "before-after DP change in the treated (points)",
        _P,
        _ALL_ARMS,
        treated_change("dp", "any"),
        -0.64,
        0.49,
        None,
        "West 2016 Lancet (9.05 to 8.41, -0.64, 95 % CI -1.14 to -0.15; pooled pre-post; the "
        "band is the CI, whose small end the simulation reaches for the reason the EE change "
        "is not reproduced)",
    ),
    Study(
        "West 2016: pooled interventions, physicians",
        "before-after change in % burnout in the treated (points)",
        _P,
        _ALL_ARMS,
        treated_share_change("any", high_burnout),
        -10.0,
        6.0,
        None,
        "West 2016 Lancet (54 % to 44 %; pooled pre-post)",
        gap=_WEST_2016_GAP,
    ),
)
