"""cityos.bulk: the settings change inside the block only, and nested blocks restore theirs."""

from __future__ import annotations

import gc

import pytest
from numpy._core.multiarray import _get_madvise_hugepage, _set_madvise_hugepage

from cityos.bulk import bulk_work


@pytest.fixture
def settings():
    """Collector on and huge-page advice on before the test; what was there put back after."""
    was_gc, was_advice = gc.isenabled(), _get_madvise_hugepage()
    gc.enable()
    _set_madvise_hugepage(True)
    yield
    _set_madvise_hugepage(was_advice)
    (gc.enable if was_gc else gc.disable)()


def test_inside_and_after(settings):
    with bulk_work():
        assert not gc.isenabled()
        assert not _get_madvise_hugepage()
    assert gc.isenabled()
    assert _get_madvise_hugepage()


def test_nested_restores_each_level(settings):
    with bulk_work():
        with bulk_work():
            pass
        assert not gc.isenabled()
        assert not _get_madvise_hugepage()
    assert gc.isenabled() and _get_madvise_hugepage()


def test_restored_after_an_error(settings):
    with pytest.raises(ValueError), bulk_work():
        raise ValueError("boom")
    assert gc.isenabled() and _get_madvise_hugepage()


def test_a_disabled_collector_stays_disabled(settings):
    gc.disable()
    with bulk_work():
        pass
    assert not gc.isenabled()
