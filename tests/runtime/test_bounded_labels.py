"""A data-fed label keeps its first values and folds the rest into `other`."""

from __future__ import annotations

import pytest

from services.runtime.bounded_labels import OTHER, BoundedLabels


def test_the_first_values_keep_their_label_and_later_ones_read_other() -> None:
    merchants = BoundedLabels(2)

    seen = [merchants(m) for m in ("m1", "m2", "m3", "m1", "m4", "m2", "m3")]

    assert seen == ["m1", "m2", OTHER, "m1", OTHER, "m2", OTHER]
    assert merchants.kept == {"m1", "m2"}


def test_a_bound_of_zero_names_nobody() -> None:
    merchants = BoundedLabels(0)

    assert {merchants(m) for m in ("m1", "m2")} == {OTHER}


def test_a_negative_bound_is_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        BoundedLabels(-1)
