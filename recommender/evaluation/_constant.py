"""When a predicted effect is one effect for everyone: the rule the Qini and the calibration
slope share.

An arm the learner gives one effect for everyone is predicted the same number for every person
only up to rounding (averaged over cross-fitting folds, it differs by about 1e-9 EE points from
person to person). Ranked by that rounding, such an arm scored a Qini whose interval excluded 0
on the model card; the calibration slope already treated it as constant.
"""

from __future__ import annotations

import numpy as np

__all__ = ["CONSTANT_VARIANCE", "is_constant"]

# EE points squared: a spread of a millionth of a point ranks no one.
CONSTANT_VARIANCE = 1e-12


def is_constant(predicted) -> bool:
    """Whether ``predicted`` is one value for everyone, up to rounding.

    Examples
    --------
    >>> is_constant([-2.0, -2.0 + 1e-9]), is_constant([-2.0, -1.9])
    (True, False)
    """
    values = np.asarray(predicted, dtype=float)
    return values.size == 0 or float(np.var(values)) <= CONSTANT_VARIANCE
