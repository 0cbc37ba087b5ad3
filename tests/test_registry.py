"""The generic registry: round trips, the one unknown-name message, the duplicate policy."""

import doctest
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

import workbench.registry
from workbench.errors import WorkbenchError
from workbench.registry import Registry

NAMES = st.text(min_size=1, max_size=12)
NAME_SETS = st.sets(NAMES, min_size=1, max_size=8)


def _filled(names) -> Registry[object]:
    registry: Registry[object] = Registry("widget")
    for i, name in enumerate(names):
        registry.add(name, object(), parity=i % 2)
    return registry


@given(NAME_SETS)
def test_names_round_trip_sorted(names):
    registry: Registry[object] = Registry("widget")
    objects = {name: registry.add(name, object()) for name in names}
    assert registry.names() == list(registry) == sorted(names)
    assert len(registry) == len(names)
    assert all(registry.get(n) is registry[n] is objects[n] and n in registry for n in names)
    assert registry.items() == [(n, objects[n]) for n in sorted(names)]


@given(NAME_SETS, NAMES)
def test_unknown_name_lists_every_known_name_sorted(names, missing):
    registry = _filled(names - {missing})
    with pytest.raises(WorkbenchError) as error:
        registry.get(missing)
    known = ", ".join(sorted(names - {missing})) or "none"
    assert str(error.value) == f"unknown widget {missing!r}; known: {known}"
    assert missing not in registry


@given(NAME_SETS)
def test_a_taken_name_is_refused_and_the_first_entry_kept(names):
    registry = _filled(names)
    for name in names:
        first = registry.get(name)
        with pytest.raises(WorkbenchError, match=f"widget {re.escape(repr(name))} is already"):
            registry.add(name, object(), parity=registry.metadata(name)["parity"])
        assert registry.get(name) is first
    assert registry.names() == sorted(names)


def test_the_same_object_again_is_a_no_op_but_not_with_other_metadata():
    registry: Registry[type] = Registry("widget")

    @registry.register("a", size=1)
    class A:
        pass

    assert registry.register("a", size=1)(A) is A and registry.names() == ["a"]
    with pytest.raises(WorkbenchError, match=r"widget 'a' is already registered \(.*\.A\)"):
        registry.add("a", A, size=2)


@given(NAME_SETS)
def test_filters_on_metadata_and_predicate(names):
    registry = _filled(names)
    even = registry.names(parity=0)
    assert even == sorted(n for n in names if registry.metadata(n)["parity"] == 0)
    assert registry.names(parity=0, colour="red") == []
    assert registry.names(where=lambda obj: obj is registry.get(even[0])) == even[:1]


def test_metadata_is_read_only_and_unknown_names_raise():
    registry: Registry[int] = Registry("widget")
    registry.add("one", 1, threat="linf")
    with pytest.raises(TypeError):
        registry.metadata("one")["threat"] = "l2"  # type: ignore[index]
    with pytest.raises(WorkbenchError, match="unknown widget 'two'; known: one"):
        registry.metadata("two")


@pytest.mark.parametrize("name", ["", None, 3])
def test_names_must_be_non_empty_strings(name):
    with pytest.raises(WorkbenchError, match="widget name: must be a non-empty string"):
        Registry("widget").add(name, 1)


def test_unhashable_lookup_is_an_unknown_name():
    registry: Registry[int] = Registry("widget")
    assert ["a"] not in registry
    with pytest.raises(WorkbenchError, match=r"unknown widget \['a'\]; known: none"):
        registry.get(["a"])  # type: ignore[arg-type]


def test_docstring_examples_run():
    result = doctest.testmod(workbench.registry)
    assert result.attempted > 0 and result.failed == 0
