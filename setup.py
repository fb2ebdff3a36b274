"""The one compiled part of cityos: the OSM PBF block decoder (``cityos._pbf``).

It is optional: where it cannot be compiled (no C compiler), ``cityos import`` reads OSM files
with pyosmium alone, as it reads XML and extracts larger than memory.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "cityos._pbf",
            ["src/cityos/_pbf.c"],
            optional=True,
            extra_compile_args=["-O3", "-std=c99", "-Wall", "-Wextra", "-fno-fast-math"],
            libraries=["m"],
        )
    ]
)
