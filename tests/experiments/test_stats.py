"""Summary statistics, paired differences and target decisions against scipy and by hand."""

import math
import statistics

import pytest
from scipy import stats as scipy_stats

from workbench.experiments import stats


def test_summary_uses_the_sample_standard_deviation_and_states_n():
    values = [0.8, 0.9, 1.0]
    s = stats.summary(values)
    assert s["mean"] == pytest.approx(0.9)
    assert s["std"] == pytest.approx(0.1)  # sqrt(((-0.1)^2 + 0 + 0.1^2) / (3 - 1))
    assert s["std"] > statistics.pstdev(values)  # the population std understates the spread
    assert s["n"] == 3 and s["values"] == values
    single = stats.summary([0.7])
    assert single["std"] is None and single["n"] == 1
    with pytest.raises(ValueError, match="no values"):
        stats.summary([])


def test_interval_matches_scipy_t_interval_and_the_hand_computed_value():
    values = [1.0, 2.0, 3.0]  # mean 2, s = 1, t(0.975, 2) = 4.302652729911275
    low, high = stats.interval(values)
    assert (low, high) == pytest.approx((2 - 4.302652729911275 / math.sqrt(3),
                                         2 + 4.302652729911275 / math.sqrt(3)))  # fmt: skip
    sample = [0.61, 0.58, 0.66, 0.71, 0.55]
    expected = scipy_stats.t.interval(
        0.95, df=4, loc=statistics.fmean(sample), scale=scipy_stats.sem(sample)
    )
    assert stats.interval(sample) == pytest.approx(list(expected))
    assert stats.interval([0.5]) is None


def test_paired_difference_matches_scipy_ttest_rel():
    a = [0.9405, 0.9610, 0.9573, 0.9935]
    b = [0.8728, 0.9081, 0.8979, 0.9981]
    d = stats.paired_difference(a, b)
    expected = scipy_stats.ttest_rel(a, b).confidence_interval(0.95)
    assert d["interval"] == pytest.approx([expected.low, expected.high])
    assert d["mean"] == pytest.approx(statistics.fmean(x - y for x, y in zip(a, b, strict=True)))
    assert d["n"] == 4 and d["confidence"] == 0.95 and "paired" in d["method"]
    # pairing matters: the same values unpaired give a much wider interval
    unpaired = scipy_stats.ttest_ind(a, b).confidence_interval(0.95)
    assert d["interval"][1] - d["interval"][0] < unpaired.high - unpaired.low
    with pytest.raises(ValueError, match="pair them by seed"):
        stats.paired_difference([1.0, 2.0], [1.0])


@pytest.mark.parametrize(
    ("values", "threshold", "direction", "decision"),
    [
        ([0.88, 0.89, 0.90], 0.85, ">=", "met"),  # the whole interval is above 0.85
        ([0.80, 0.81, 0.82], 0.85, ">=", "missed"),  # entirely below
        ([0.80, 0.85, 0.95], 0.85, ">=", "inconclusive"),  # straddles it
        ([0.05, 0.06, 0.07], 0.0, ">", "met"),
        ([-0.01, 0.0, 0.01], 0.0, ">", "inconclusive"),
        ([0.01, 0.02, 0.03], 0.05, "<=", "met"),
        ([0.10, 0.11, 0.12], 0.05, "<=", "missed"),
    ],
)
def test_decisions_are_taken_on_the_interval(values, threshold, direction, decision):
    result = stats.decide(values, threshold, direction)
    assert result["decision"] == decision
    assert result["rule"] == stats.RULE_INTERVAL
    assert result["interval"] == pytest.approx(stats.interval(values))
    assert result["target"] == f"{direction} {threshold:g}" and result["n"] == 3


def test_a_mean_above_the_target_is_not_met_when_the_interval_reaches_below_it():
    values = [0.84, 0.86, 0.92]  # mean 0.873 >= 0.85, but n = 3 and the spread is wide
    assert statistics.fmean(values) > 0.85
    assert stats.decide(values, 0.85)["decision"] == "inconclusive"


def test_one_measurement_is_decided_by_its_value_and_says_so():
    result = stats.decide([0.816], 0.70)
    assert result["decision"] == "met" and result["interval"] is None
    assert result["rule"] == stats.RULE_POINT
    assert stats.decide([0.6], 0.70)["decision"] == "missed"
    with pytest.raises(ValueError, match="direction"):
        stats.decide([0.6], 0.70, "=>")


def test_formatting_shows_std_and_interval_only_when_they_exist():
    assert stats.pct([0.8, 0.9, 1.0]) == "90.0 ± 10.0"
    assert stats.pct([0.9]) == "90.0"
    assert stats.points(stats.paired_difference([0.9, 0.95], [0.8, 0.85])) == "+10.0 [+10.0, +10.0]"
    assert stats.points(stats.paired_difference([0.9], [0.8])) == "+10.0"
    rows = stats.target_table(
        [{"name": "x >= 85%", "difference": False, **stats.decide([0.80, 0.81, 0.82], 0.85)}]
    )
    assert rows[-1].startswith("| x >= 85% | 81.0 | [") and rows[-1].endswith("| 3 | **missed** |")
    assert stats.RULE_INTERVAL in rows[0]
