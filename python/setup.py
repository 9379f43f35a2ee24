"""Builds the dogpiled package; its gRPC stubs are generated from ../proto at
build time (see build_stubs.py), so they are never checked in."""
import os
import sys

from setuptools import setup
from setuptools.command.build_py import build_py

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import build_stubs  # noqa: E402


class BuildPyWithStubs(build_py):
    def run(self):
        super().run()
        if not self.dry_run:
            try:
                build_stubs.generate(self.build_lib)
            except RuntimeError as e:
                sys.exit(f"dogpiled: cannot generate the gRPC stubs: {e}")


setup(cmdclass={"build_py": BuildPyWithStubs})
