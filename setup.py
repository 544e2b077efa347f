"""Generates the cffi binding modules (pure Python, ABI mode) into the package at build time."""
import os
import runpy

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildWithBindings(build_py):
    def run(self):
        here = os.path.dirname(os.path.abspath(__file__))
        runpy.run_path(os.path.join(here, "native", "build.py"))["build"](
            os.path.join(here, "pyrunc"))
        super().run()


setup(cmdclass={"build_py": BuildWithBindings})
