"""The interval passes' rules and bars, each fixed before its draws were scored.

This record is the pre-registration: its commits are cited as such, so it is kept as written
(it was the module doc of ``bench.interval_replay`` until that module was split). The values
each pass fixed (``GAP_Z``, ``DR_FLOOR_Z``, ...), the leads eligible for adoption, the rule
they are judged against and the bar (``passes_bar``) live here with it; the rules themselves
are in ``bench.interval_rules``.

Rules compared on seeds 7-12 (fixed, with the bar below, before any cohort of those seeds was
scored: commit a038fc0, where the names were ``shipped``, ``lead-a``, ``lead-b``):

- ``third-pass`` (shipped from the third to the fifth pass): scale = the bootstrap ratio
  floored at 1 (``interval_scale_``); extra = max(undetected x scale, ½ disagreement) + the
  held-out bias of the residuals as they are.
- ``shipped`` (the fourth pass's lead a, "no double count + residuals winsorized at
  2.5/97.5 %", adopted by the fifth pass): the residuals ρ = ψ − τ̂_oof of each arm are clipped
  at their own 2.5 % and 97.5 % quantiles (rows where ρ and the ranking are finite;
  ``np.quantile``'s linear rule) before the held-out bias is computed (``BIAS_Z`` and
  ``DISAGREEMENT_WEIGHT`` 0.5 each); for an arm given one effect for everyone, extra =
  max(undetected x scale, ½ disagreement, slope term) + average term, elsewhere
  ½ disagreement + average + slope. The scale as before (``_intervals.extra_variance``).
- ``lead-b`` (the variance scale allowed below 1): scale = the bootstrap's raw per-arm ratio
  of squared error to jackknife variance, with no floor (a non-finite ratio takes the pooled
  one, as ``calibrate_scale`` does); everything else as ``third-pass``, the undetected spread
  times this scale.
- ``lead-a+b``: both, reported only (not eligible for adoption: it was not a recorded lead).

Sixth pass (fixed, with its bar, before any cohort of the confirmation seeds 13-18 was
captured; explored on seeds 7-12 only): one lead, ``held-out-gap``.

- ``held-out-gap`` (the heterogeneity of an arm given one effect for everyone read off the
  selection's own held-out losses): for such an arm (``undetected_variance`` > 0) the extra
  variance is max(slope term, max(g, 0)) + average term, where g is the one-effect candidate's
  out-of-fold doubly robust loss minus that of the best personalized candidate (the
  captured ``candidate_gap`` of the candidate with ``candidate_constant``; not finite: 0).
  Out of fold the pseudo-outcome's noise is independent of both effects, so
  g estimates E[(τ − c)²] − E[(τ − f)²]: the spread of the truth around the constant that the
  best personalized candidate captures, with no noise term, where the undetected spread
  (the challenger's own out-of-fold variance, noise included) and ½ disagreement (distance
  between candidates) measure the candidates, not the truth. The undetected spread and the
  disagreement no longer enter such an arm. Personalized arms, the scale, the slope and
  average terms (winsorized residuals) are the shipped rule's, unchanged.
- The bar (as the fifth pass's, against ``shipped``): on the confirmation draws (seeds 13-18,
  13 families; IHDP has no such draws) the lead meets the acceptance (coverage 86-94 %, no
  arm below 80 %, width / needed at most 1.2) on more families than ``shipped``, and over
  ``RESAMPLINGS`` resamplings of each family's draws (the same for every rule) it is better
  than ``shipped`` at least twice as often as worse and by at least 0.2 in the share, and its
  E[count] exceeds ``shipped``'s by at least 0.2.
- On tuning seeds 7-12 (where it was found, so not evidence): 8 families against 7,
  E[count] 6.63 against 5.73, better / worse 0.67 / 0.09.
- Outcome on the confirmation seeds 13-18: 9 families against 9, E[count] 8.08 against
  7.94, better / worse 0.33 / 0.29: the bar is not met, the lead is not adopted (``shipped``
  stays the library's rule; docs/benchmarks.md, sixth pass).

Seventh pass (fixed, with its bar, before any cohort of the confirmation seeds 19-24 was
captured; ``GAP_Z`` chosen on the already-seen seeds 7-18 only): one lead, ``gap-upper``.

- ``gap-upper`` (the sixth pass's gap with its own uncertainty): for an arm given one effect
  for everyone (``undetected_variance`` > 0) the extra variance is
  max(½ disagreement, slope term, max(g + ``GAP_Z`` se(g), 0)) + average term. g is the
  captured ``candidate_gap`` of the one-effect candidate (``candidate_constant``): its
  out-of-fold doubly robust loss minus that of the best personalized candidate of the arm
  (any learner, the lowest loss, as the selection's ``plausible`` set is ranked); se(g) is
  the captured ``candidate_gap_se``: the standard deviation (ddof 1) of the per-row
  difference of the two squared out-of-fold losses over the square root of the training
  rows, as the selection's ``_clearly_worse`` computes it. If g or se(g) is not finite the
  bound counts as 0. The undetected spread (× scale) no longer enters such an arm: where g
  is estimated sharply (large arms) the bound reads the truth's spread, and where it is not
  (small arms, causalml-1-small) the bound grows with se(g) and ½ disagreement stays as a
  floor. Personalized arms, the scale and the winsorized slope and average terms are the
  shipped rule's, unchanged.
- ``GAP_Z`` = 0: chosen on the seen draws (tuning 7-12 and confirmation 13-18 pooled,
  twelve draws per family, 300 resamplings, against ``shipped``: 7 families, E[count] 7.21).
  First tried z = 0.5, 1, 1.645, 2: 7 families each, E[count] 7.05, 6.88, 6.74, 6.70 (every one
  below ``shipped``: the bound widens causalml-1-small, 94.7 % -> 95.6-97.9 %); then, after
  seeing those, z = 0.25 and 0: 7.21 and 7.32 (better / worse 0.19 / 0.09 at 0). So the lead
  as replayed is max(½ disagreement, slope term, max(g, 0)) + average term: the sixth pass's
  ``held-out-gap`` with ½ disagreement kept as a floor for small arms, where g is noisy. On the
  seen draws it brings no family in (it lifts six-arm-smooth's worst arm, 87.8 -> 90.7 %, and
  six-arm-step-obs's, 87.6 -> 90.5 %, families that already met the acceptance), so it is
  not expected to pass; the fresh draws judge it as fixed here.
- The bar (the sixth pass's, against ``shipped``): on the fresh draws (seeds 19-24, 13
  families; IHDP has none) the lead meets the acceptance (coverage 86-94 %, no arm below
  80 %, width / needed at most 1.2) on more families than ``shipped``; over ``RESAMPLINGS``
  resamplings it is better at least twice as often as worse and by at least 0.2 in the
  share; and its E[count] exceeds ``shipped``'s by at least 0.2.
- Only if it passes: it is scored once on the held-out draws (seeds 101-106, IHDP's ten;
  captured by the sixth pass with ``candidate_gap_se``). It is adopted only if there it meets
  the acceptance on more families than ``shipped`` (6 of 14) and its E[count] is not lower.
- Outcome on the fresh seeds 19-24 (first and only run, after commit 183c4a5): 6 families
  against 6, E[count] 5.53 against 4.98, better / worse 0.51 / 0.05. The resampling criteria
  hold but the count does not: the bar is not met and the lead is not adopted (``shipped``
  stays; it was not scored on the held-out draws). docs/benchmarks.md, seventh pass.

Eighth pass (fixed, with its bar, before any cohort of the fresh seeds 25-30 was captured;
form and z chosen on seen seeds only): one lead, ``dr-floor``.

- ``dr-floor`` (the seventh pass's next candidate): per arm, the doubly robust estimate of the
  chosen effect's mean squared error out of fold, MSE = mean((ψ − τ̂_oof)² − r²), r² the
  pseudo-outcome's own noise per training row (1{T ∈ {a, control}} (y − μ_T)² / e_T²; the
  capture's new per-row fields), and its standard error (``dr_error``). Every person's
  variance of the arm is at least F = max(MSE − ``DR_FLOOR_Z`` se, 0) (``DR_FLOOR_HOW`` =
  "person"; the scale, extra variance and average-effect floor are the shipped rule's).
- What the tuning draws showed before the choice: row by row, (ψ − τ̂)² − r² = d² + 2 d r with
  d the cross-fitted plug-in μ_a − μ_0 minus τ̂, so the noise cancels exactly, but the
  estimate's expectation is E[(τ − τ̂)²] − E[δ²], δ the plug-in's own error: it is the DR loss
  gap between the chosen effect and the T-learner plug-in of the same outcome models, not
  the chosen effect's squared error. On seeds 7-12 it is negative on 165 of 168 arms (nw-c
  −0.37 on average against a test squared error of 0.025): positive on 3 arms, above the
  shipped variance on 1 (six-arm-step-obs seed 10 arm 1, an arm given one effect for
  everyone over a heterogeneous truth: there τ̂ is the constant and the estimate reads the
  spread the plug-in captures, as the sixth pass's gap did).
- Form and z: on seeds 7-12 (and 7-18 pooled) "person" and "arm" (the typical variance
  topped up to F) give the same figures; z = 0, 1, 1.645, −1, −2 on 7-12: 7 families each,
  E[count] 5.99, 5.73, 5.73, 5.78, 5.53 against ``shipped``'s 5.73 (better / worse at z = 0:
  0.26 / 0.00); pooled 7-18 (12 draws a family, captured afresh with the new fields):
  z = 0, 0.5, 1: 7 families each, E[count] 7.18, 7.21, 7.21 against ``shipped``'s 7 and
  7.21 (the seventh pass's figures for ``shipped`` on these draws, reproduced), better /
  worse at z = 0: 0.01 / 0.04; the estimate is negative on 329 of 336 arms and above the
  shipped variance on 2 (the second, causalml-1-small seed 17, widened a covered draw). z = 0: at
  z ≥ 0.5 the lead is ``shipped`` on every seen draw, and a negative z (a floor above the
  estimate) has no ground.
- Expected: not to pass (it binds on 2 of 336 seen arms); fixed here so that the fresh draws
  judge it as the brief asked, and record whether the estimate's sign replicates.
- The bar (the sixth and seventh passes', against ``shipped``): on the fresh draws (seeds
  25-30, 13 families; IHDP has none) the lead meets the acceptance on more families than
  ``shipped``; over ``RESAMPLINGS`` resamplings it is better at least twice as often as worse
  and by at least 0.2 in the share; its E[count] exceeds ``shipped``'s by at least 0.2. The
  fresh seeds are captured seed by seed (every family of 25, then 26, ...); if the session's
  time runs out, the seeds completed by then are the fresh draws (at least three, else no
  verdict). Only if it passes: scored once on held-out draws (seeds 101-106, IHDP's ten,
  captured afresh), adopted only if there it meets the acceptance on more families than
  ``shipped`` and its E[count] is not lower.
- Outcome on the fresh seeds 25-30 (first and only run, after commit 4b69e22, all six seeds
  captured): 6 families against 6, E[count] 5.06 against 5.06, better / worse 0.00 / 0.00:
  the estimate was negative on 163 of 168 arms and above the shipped variance on none, so
  the lead's intervals are the shipped ones. The bar is not met and the lead is not adopted
  (``shipped`` stays; no held-out draw was captured). docs/benchmarks.md, eighth pass.

Ninth pass (fixed, with its bar, before any cohort of the fresh seeds 31-36 was captured;
explored on seen seeds 7-10 only, captured afresh with the new bootstrap-world fields): one
lead, ``world-floor``.

- ``world-floor`` (the eighth pass's lead b, the plug-in's error read where the truth is
  known): the eighth pass's DR estimate of an arm's squared error out of fold, D = MSE − E[δ²]
  in expectation (``dr_error``), misses what the outcome models get wrong. In each of the
  parametric bootstrap's worlds the truth (the planted chosen effect) is known, so what the
  same estimate misses there is measured: κ* = mean((τ̂*_oof − τ*)²) − D*, the refitted
  chosen effect's squared error out of fold minus the world's own DR estimate of it (the
  capture's ``world_oof_mse`` − ``world_dr``, averaged over the shipped replicates). Every
  person's variance of the arm is at least F = max(D + κ*, 0) (``world_correction`` "gap",
  ``world_floor_rule(0.0, "gap")``; the scale, extra variance and average-effect floor are the
  shipped rule's). A parametric-bootstrap bias correction of the DR estimate: where the world
  is as hard as the data the floor is the squared error; where the world is easier (a hard
  baseline it does not copy) κ* is too small and the floor does not bind.
- How it was chosen (seen seeds 7-10, 13 families x 4, 300 resamplings, against
  ``shipped``: 4 families, E[count] 4.16). Eight rules were replayed: rival-world scales
  (``rival_scale_rule``: max 4 / 4.58, mean 5 / 4.31, max over rougher rivals 5 / 4.84, and
  the same replacing ½ disagreement 4 / 4.70 and 5 / 4.50), the floor with κ* = the world's
  plug-in error E[δ*²] (``world_correction`` "plugin": 5 / 4.58) and this one (7 / 5.57,
  better / worse 0.79 / 0.05). On seeds 7-9 alone the rival-world max and mean led (7 / 5.38
  and 7 / 5.41, this one 6 / 5.25): the choice among eight on four draws is itself noisy,
  and this lead's figures on 7-10 flatter it. It brings in nw-d (83.8 -> 86.7 %) and
  causalml-4 (84.3 -> 86.6 %), keeps econml-ihdp-b (89.3 -> 93.5 %, width 1.16) and lifts
  six-arm-step-obs's worst arm (77.7 -> 90.1 %); it widens econml-ihdp-a (already 98.6 %,
  width 1.91 -> 4.25: κ* reads the heavy tails). z = 0: not tuned. It also needs no extra
  fit (the shipped replicates' worlds hold everything), where a rival world doubles the
  bootstrap.
- The bar (the sixth to eighth passes', against ``shipped``): on the fresh draws (seeds 31-36,
  13 families; IHDP has none) the lead meets the acceptance on more families than
  ``shipped``; over ``RESAMPLINGS`` resamplings it is better at least twice as often as worse
  and by at least 0.2 in the share; its E[count] exceeds ``shipped``'s by at least 0.2. The
  fresh seeds are captured seed by seed (every family of 31, then 32, ...); the seeds
  completed by 17:08 UTC of this session are the fresh draws (at least three, else no
  verdict). ``rival-max`` is replayed beside it, reported only (not eligible).
- Adopted into ``recommender/uplift/_intervals.py`` only if it passes and the fit time at
  n = 20,000 stays within issue 14's limit (at most half CausalForestDML's) and root PEHE
  within ±3 % (the point estimates do not change). No held-out draw is captured by this pass.
- Outcome on the fresh seeds 31-36 (first and only run, after commit bf61572, all six seeds
  captured by 16:47 UTC): 8 families against ``shipped``'s 8, E[count] 6.78 against 6.31,
  better / worse 0.48 / 0.06. The resampling criteria hold but the count does not: the bar
  is not met and the lead is not adopted (``shipped`` stays). It brought nw-d in (83.7 ->
  86.9 %) and lifted causalml-4 (88.8 -> 91.0 %) as on the seen draws, and pushed two-arm-50k
  out (90.6 -> 94.2 %: its one under-covered draw, 78 %, rose to 89 % and a covered one
  widened). ``rival-max``: 7 families, E[count] 5.59, better / worse 0.18 / 0.55 (it widens
  nw-b to 1.45 times the needed width). docs/benchmarks.md, ninth pass (drafted in the
  lead's notes).

Tenth pass (fixed, with its bar, before any cohort of the fresh seeds 37-42 was captured;
explored on seen seeds 7-16 and 31-36 only, captured afresh with the per-replicate world
fields, without the rival world): one lead, ``stable-floor``.

- ``stable-floor`` (the ninth pass's floor where it is steady): F = max(D + κ̄*, 0) as in
  ``world-floor``, applied to an arm only if (i) κ̄*'s standard error between the bootstrap's
  replicates (sd, ddof 1, over √R) is at most D's own standard error (one replicate: its
  spread is not known, no floor: cohorts over 10,000 rows, where the ninth pass's floor
  pushed two-arm-50k over 94 %), and (ii) the floor is told apart from 0: D + κ̄* ≥ 2 se(F),
  se(F)² = se(D)² + se(κ̄*)² (``stable_floor_rule("between", 0.0, 1.0, 2.0)``). The scale,
  extra variance and average-effect floor are the shipped rule's. g = 1 and t = 2 were not
  tuned (t = 1.645 was replayed beside).
- How it was chosen: on 13 seen draws (7-13, 31-36; 300 resamplings, against ``shipped``:
  8 families, E[count] 7.12) none of the candidates meets the acceptance on more families
  (7 each: nw-b, at 92-94 % and width 1.16, tips out in most resamplings under any floor).
  E[count]: ``world-floor`` 7.27, the gate on the replicates' spread alone 7.54, on the rows'
  spread 7.61 (it floors two-arm-50k: 82 % of resamplings meet against 100 %), floor told
  apart from 0 alone (t = 2) 7.58, this lead 7.59 (better / worse 0.51 / 0.10, the fewest
  worse, the smallest distance from 90 %: 3.5 points); a floor shrunk by se(F) 7.02. On the
  first ten seen draws (7-10, 31-36) every gate had 8 families against 7 (this lead 7.91,
  0.77 / 0.01). Chosen as the highest E[count] among the rules that leave two-arm-50k alone.
  Checked on all 16 seen draws (7-16, 31-36) before committing: ``shipped`` 7 families,
  E[count] 7.19; this lead 8 / 7.90 (better / worse 0.63 / 0.04), the floor told apart from
  0 alone 8 / 7.82, the replicates' gate alone 7 / 7.76, the rows' gate 7 / 7.73,
  ``world-floor`` 7 / 7.46. On 7-13 and 31-36 it had one family fewer than ``shipped``: the
  count is within a family's noise either way.
- The bar (the sixth to ninth passes', against ``shipped``): on the fresh draws (seeds
  37-42, 13 families; IHDP has none) the lead meets the acceptance on more families than
  ``shipped``; over ``RESAMPLINGS`` resamplings it is better at least twice as often as worse
  and by at least 0.2 in the share; its E[count] exceeds ``shipped``'s by at least 0.2; the
  fit time at n = 20,000 stays within issue 14's limit. The fresh seeds are captured seed by
  seed; the seeds completed by 19:45 UTC of this session are the fresh draws (at least three,
  else no verdict). ``world-floor`` is replayed beside it, reported only (not eligible).
- Adopted into ``recommender/uplift/_intervals.py`` only if it passes (the point estimates do
  not change). No held-out draw is captured by this pass.
- Outcome on the fresh seeds 37-42 (first and only run, after commit 9b6bafa, all six seeds
  captured by 19:11 UTC): 8 families against ``shipped``'s 7, E[count] 6.98 against 6.27,
  better / worse 0.71 / 0.00; fit time at n = 20,000 rct 6.0-6.1 s CPU against 6.2-6.3 s
  before (alternating runs of ``bench.coverage --interval-cost``; the forest's 15.2 s). The
  bar is met: adopted (``_intervals.error_floor``, ``UpliftModel.error_floor_``). It brings
  nw-d in (83.1 -> 86.5 %) and leaves two-arm-50k as it was (94.1 %, out with both).
  ``world-floor``: 8 families, E[count] 6.70, better / worse 0.47 / 0.11 (it pushes
  two-arm-50k to 95.5 %). From here ``shipped`` is this rule and ``fifth-pass`` the rule it
  replaced (the verdict's table was made with the names of the time: ``shipped`` there is
  ``fifth-pass``). docs/benchmarks.md, tenth pass (drafted in the lead's notes).
- Scored once on the held-out draws after the adoption (seeds 101-106, IHDP's ten, captured
  afresh with ``--no-rival-world``): 6 of 14 families, as ``fifth-pass`` (which reproduces its
  own held-out table), E[count] 4.85 against 4.16, better / worse 0.58 / 0.03.

Eleventh pass (fixed, with its bar, before any cohort of the fresh seeds 59-64 was captured;
explored on seen seeds 43-58 only, captured afresh for this pass): one lead, ``larger-extra``.

- ``larger-extra``: the shipped rule (``stable-floor``), except that a personalized arm's
  extra variance is max(½ disagreement, slope term) + average term instead of
  ½ disagreement + slope term + average term. Why: on the seen draws the families that fail
  by over-covering with a personalized arm (nw-a at 95.9-96.7 %, width 1.22-1.29 the needed;
  nw-b at 94.1 % on seeds 43-50) carry both terms, and the jackknife times the bootstrap scale
  alone is already about the squared error there (nw-a, seeds 44-49: 0.004-0.020 against
  0.006-0.017). The slope term reads a shrinkage along the chosen effect's own ordering; a
  plausible candidate less shrunk than the chosen one lies along that same ordering, so where
  the shrinkage is what tells them apart the two terms count one distance twice: the argument
  that made the fifth pass take the largest of its three terms for an arm given one effect
  for everyone. Where the candidates differ in shape, not along the ordering, the max
  undercounts: the fresh draws decide. Arms given one effect for everyone, the scale, the
  average-effect floor and the error floor (every person's whole variance at least F, now
  against the new extra) are unchanged. No fit changes, so no fit time changes.
- How it was chosen: five variants replayed on the seen seeds 43-58 (scratch
  ``bench/out/intervals11/choose.py``): a gate on the error floor relative to the world's
  correction, F ≥ ρ κ̄* (ρ = ⅓, ½: nw-b's floor, F = D + κ̄* with D ≈ −κ̄*, overshoots its
  squared error), the larger extra, and both. On 43-50: ``shipped`` 9 families, E[count]
  7.97; the larger extra 11 / 9.02 (better / worse 0.69 / 0.03); the gate alone 9 / 8.10-8.16;
  both 11 / 9.35. On 51-58: 9 / 7.23 for every variant (the larger extra 0.25 / 0.24). On
  all sixteen: ``shipped`` 9 / 8.57 (mean distance of coverage from 90 %: 3.2 points), the
  larger extra 10 / 8.95 (0.35 / 0.02, distance 2.6), both 10 / 9.06 (0.44 / 0.03), the gate
  alone 9 / 8.60. The gate adds little and a constant; the simpler rule is the lead.
- The bar (the sixth to tenth passes', against ``shipped``): on the fresh draws (seeds 59-64,
  13 families; IHDP has none) the lead meets the acceptance on more families than
  ``shipped``; over ``RESAMPLINGS`` resamplings it is better at least twice as often as
  worse and by at least 0.2 in the share; its E[count] exceeds ``shipped``'s by at least 0.2.
  (No fit time changes.) The fresh seeds are captured seed by seed; the seeds completed by
  23:40 UTC of this session (2026-12-04) are the fresh draws (at least three, else no
  verdict). The gated variant (``max+rel0.5`` in the scratch script) is not eligible.
- Adopted into ``recommender/uplift/_intervals.py`` (``extra_variance``) only if it passes
  (the point estimates do not change). Then new held-out draws are captured (seeds 201-206,
  never run before, and IHDP's ten) and scored once with both rules.
- Outcome on the fresh seeds 59-64 (first and only run, after commit 43626ce; all six seeds
  captured by 22:48 UTC): 8 families against ``shipped``'s 9, E[count] 7.14 against 7.13,
  better / worse 0.32 / 0.30. The bar is not met: not adopted (``shipped`` stays the
  library's rule), so no held-out draw was captured. It brought nw-a to the line (97.0 ->
  95.4 %, width 1.27 -> 1.19) and cost six-arm-step-obs its worst arm (84.6 -> 78.8 %): the
  sum is what covers a six-arm step effect's worst arm, as the "where the candidates differ
  in shape" caveat above allowed. ``fifth-pass``, replayed beside: 7 families, E[count] 5.73,
  worse than ``shipped`` in 0.91 of the resamplings (nw-d 84.5 %, causalml-4 85.1 %): the
  tenth pass's gain replicated on draws it never saw. docs/benchmarks.md, eleventh pass.

After the eleventh pass (no lead registered; seen seeds 65-76 only, no fresh draw used): the
capture keeps each world's own held-out bias terms (``replicate_bias_average``,
``replicate_bias_slope``), and ``world-net-slope`` / ``world-net-slope-z1`` replay the slope
term net of them. Neither met the acceptance on more seen families than ``shipped`` (8 and 9
against 9), so neither was fixed as a lead. docs/benchmarks.md, "after the eleventh pass". A
next pass's draws start at seed 77.

Bar for adopting a lead (written before scoring): on the new tuning draws it meets the
acceptance (coverage 86-94 %, no arm below 80 %, width / needed at most 1.2) on more families
than ``third-pass``, and over ``RESAMPLINGS`` resamplings of each family's draws (the same for
every rule) it is better than ``third-pass`` at least twice as often as worse and by at least
0.2 in share.
"""

from __future__ import annotations

__all__ = ["RESAMPLINGS", "ELIGIBLE", "BASELINE", "passes_bar"]

RESAMPLINGS = 300


# the seventh pass's z on the gap's standard error (module doc): set before seeds 19-24
GAP_Z = 0.0


# the eighth pass's form and z of the DR floor (module doc): set before seeds 25-30
DR_FLOOR_Z = 0.0
DR_FLOOR_HOW = "person"


# the ninth pass's lead (module doc): set before seeds 31-36
WORLD_FLOOR_Z = 0.0
WORLD_FLOOR_HOW = "gap"


# the leads eligible for adoption, and the rule they are judged against: the eleventh pass's
# (the fifth pass judged ``shipped`` and ``lead-b`` against ``third-pass``: ``--baseline``;
# the sixth to ninth passes' leads ``held-out-gap``, ``gap-upper``, ``dr-floor``,
# ``world-floor`` failed; the tenth pass's ``stable-floor`` was adopted and is ``shipped``)
ELIGIBLE = ("larger-extra",)
BASELINE = "shipped"


def passes_bar(
    count: int, shipped_count: int, better: float, worse: float, expected_gain: float | None = None
) -> bool:
    """The bar written before scoring (module doc); ``expected_gain``, the lead's E[count]
    minus the baseline's, is part of the sixth pass's bar (None: the fifth pass's bar)."""
    gain = expected_gain is None or expected_gain >= 0.2
    return count > shipped_count and better >= 2 * worse and better - worse >= 0.2 and gain
