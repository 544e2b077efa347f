"""Generates the cffi binding modules (pure Python, ABI mode) into the package at build time,
and copies the article's examples into it (pyrunc/examples/article: `pyrunc demo` reads
them), so that an installed pyrunc has what the repository has."""
import os
import runpy
import shutil

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildWithBindings(build_py):
    def run(self):
        here = os.path.dirname(os.path.abspath(__file__))
        runpy.run_path(os.path.join(here, "native", "build.py"))["build"](
            os.path.join(here, "pyrunc"))
        super().run()
        target = os.path.join(self.build_lib, "pyrunc", "examples", "article")
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(os.path.join(here, "examples", "article"), target,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


setup(cmdclass={"build_py": BuildWithBindings})
