"""How the suite runs (tests/conftest.py): the budget (a test over 30 CPU seconds without a
one-line reason in its docstring fails; with the reason, or under the budget, it passes) and the
tests pytest-xdist keeps on one worker."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

import tests.conftest as conftest
from flows.settings import REPO_DIR


def slow_with_reason():
    """Does a lot.

    Why over 30 s: three real refreshes, one per curator change.
    """


def slow_without_reason():
    """Does a lot (and says nothing about why it takes long)."""


def test_over_the_budget_needs_the_reason_line():
    assert conftest.over_budget(slow_without_reason.__doc__, 31.0) is not None
    assert "31 CPU seconds" in conftest.over_budget(slow_without_reason.__doc__, 31.0)
    assert conftest.over_budget(None, 31.0) is not None
    assert conftest.over_budget(slow_with_reason.__doc__, 31.0) is None
    assert conftest.over_budget(slow_without_reason.__doc__, 29.0) is None
    assert conftest.over_budget("Why over 30 s:", 31.0) is not None  # a reason, not the words
    assert conftest.over_budget("Three refreshes (> 30 s: each rebuilds).", 31.0) is None
    assert conftest.over_budget("Three refreshes (> 30 s:).", 31.0) is not None


def burn(seconds: float) -> None:
    deadline = conftest.cpu_seconds() + seconds
    while conftest.cpu_seconds() < deadline:
        sum(range(10_000))


@pytest.mark.parametrize("function, fails", [(slow_without_reason, True),
                                             (slow_with_reason, False)])
def test_the_hook_fails_a_test_over_the_budget_that_does_not_say_why(monkeypatch, function,
                                                                     fails):
    monkeypatch.setattr(conftest, "SLOW_TEST_CPU_SECONDS", 0.05)
    hook = conftest.pytest_runtest_call(SimpleNamespace(function=function))
    next(hook)
    burn(0.1)
    started = time.monotonic()
    if fails:
        with pytest.raises(pytest.fail.Exception, match="does not say why"):
            hook.send(None)
    else:
        with pytest.raises(StopIteration):
            hook.send(None)
    assert time.monotonic() - started < 5


def test_the_tests_of_a_shared_session_fixture_go_to_one_worker():
    for group, members in conftest.SAME_WORKER.items():
        for member in members:
            path, _, test = member.partition("::")
            assert (REPO_DIR / path).is_file(), f"{group}: {path} is gone (renamed?)"
            if test:  # one test of the file: it is in the group, its neighbours are not
                assert f"def {test}(" in (REPO_DIR / path).read_text(), f"{member} is gone"
                assert conftest.worker_group(member) == group
                assert conftest.worker_group(f"{member}[param-1]") == group
                assert conftest.worker_group(f"{member}_more") == f"{member}_more"
                continue
            assert conftest.worker_group(f"{path}::test_x") == group
            assert conftest.worker_group(f"{path}::test_y[param-1]") == group
    other = "tests/integration/test_pipeline.py::test_a_rerun"
    assert conftest.worker_group(other) == other  # every other test is a unit of its own
