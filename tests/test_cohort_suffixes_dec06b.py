"""One table of text suffixes (recommender.cohort.TEXT_SUFFIXES): `score`, `train` and
`validate` read every compressed CSV or TSV that `batch-score` reads (found: read_cohort took
``.csv.gz`` but refused ``.tsv.gz``, ``.bz2`` and ``.zst``), and write_cohort writes them as
they are read back (a ``.tsv.gz`` tab-separated, a ``.zst`` without the zstandard package)."""

from __future__ import annotations

import bz2
import gzip

import pandas as pd
import pytest

from recommender.cohort import TEXT_SUFFIXES, open_decompressed, read_cohort, write_cohort
from recommender.errors import InputError
from test_cohort_helpers import clean_cohort

COMPRESSED = [s for s in TEXT_SUFFIXES if s.count(".") == 2]


def test_the_table_holds_csv_and_tsv_each_plain_and_compressed_three_ways():
    assert set(TEXT_SUFFIXES) == {
        f"{kind}{codec}" for kind in (".csv", ".tsv") for codec in ("", ".gz", ".bz2", ".zst")
    }


@pytest.mark.parametrize("suffix", COMPRESSED)
def test_a_compressed_text_cohort_reads_as_its_plain_text(tmp_path, suffix):
    plain = write_cohort(clean_cohort(), tmp_path / f"plain{suffix[:4]}")
    written = write_cohort(clean_cohort(), tmp_path / f"cohort{suffix}")
    with open_decompressed(written) as handle:  # compressed, and separated as its name says
        header = handle.read(10)
    assert header.startswith(b"person_id" + (b"\t" if suffix.startswith(".tsv") else b","))
    assert written.read_bytes() != plain.read_bytes()
    pd.testing.assert_frame_equal(read_cohort(written), read_cohort(plain))


@pytest.mark.parametrize(("suffix", "compress"), [(".tsv.gz", gzip), (".csv.bz2", bz2)])
def test_a_file_compressed_elsewhere_is_read_through(tmp_path, suffix, compress):
    plain = write_cohort(clean_cohort(), tmp_path / f"plain{suffix[:4]}")
    path = tmp_path / f"export{suffix}"
    path.write_bytes(compress.compress(plain.read_bytes()))
    pd.testing.assert_frame_equal(read_cohort(path), read_cohort(plain))


def test_an_unknown_suffix_names_every_accepted_one(tmp_path):
    with pytest.raises(InputError, match="unknown file type") as caught:
        read_cohort(tmp_path / "cohort.csv.lz4")
    said = str(caught.value)
    assert "cohort.csv.lz4" in said
    assert all(part in said for part in (".csv", ".tsv", ".gz", ".bz2", ".zst", ".parquet"))
