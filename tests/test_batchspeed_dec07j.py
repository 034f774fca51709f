"""A batch's exploration draws made faster are the same numbers: the draw positions of many
people at once are draw_position's, bit for bit (assign_many against assign, one person at a
time: tests/test_policy_assign_many.py)."""

import hashlib

import numpy as np
from recommender.policy import draw_position
from recommender.policy._assignment import _draw_positions


def test_draw_positions_are_draw_position_bit_for_bit():
    rng = np.random.default_rng(7)
    hashes = [
        hashlib.sha256(bytes(rng.integers(0, 256, 16).tolist())).hexdigest() for _ in range(3000)
    ]
    hashes += ["", "ä-not-ascii", "p-1"]  # any text: its UTF-8 bytes, as draw_position hashes it
    for cycle in (0, 1, 7, 2026):
        together = _draw_positions(hashes, cycle).tolist()
        alone = [draw_position(h, cycle) for h in hashes]
        assert [x.hex() for x in together] == [x.hex() for x in alone]


def test_integer_to_float_rounds_as_python_does_at_the_halfway_points():
    # The conversion of a 64-bit integer to a float is where numpy and Python could part: the
    # integers one bit past a float's precision, halfway between two floats and either side.
    top = [
        (m << 11) | low
        for m in (2**52, 2**53 - 1, 2**52 + 12345)
        for low in (0x3FF, 0x400, 0x401, 0xC00)
    ]
    values = np.array(top + [2**64 - 1, 2**63, 1, 0], dtype=np.uint64)
    assert (values.astype(float) / 2.0**64).tolist() == [
        int(v) / 2.0**64 for v in top + [2**64 - 1, 2**63, 1, 0]
    ]
