"""The real Helsinki bundle, imported once for the network tests."""

from __future__ import annotations

import pytest

import cityos
from tests.conftest import import_expecting


@pytest.fixture(scope="package")
def helsinki(tmp_path_factory: pytest.TempPathFactory) -> cityos.Bundle:
    return import_expecting(tmp_path_factory.mktemp("hel") / "b", osm=cityos.demo_osm_path())
