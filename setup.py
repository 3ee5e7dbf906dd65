"""Build step only (metadata lives in pyproject.toml): ship experiments/ inside the package.

The repository keeps one folder of experiments, ``experiments/``, where
users, docs and tests find them. A wheel needs them inside the package, so
``build_py`` copies ``experiments/*.json`` to ``chaosagenkit/experiments/``
in the build tree. An editable install reads ``experiments/`` in place
(``chaosagenkit.builtin_suite.experiments_dir``).
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

EXPERIMENTS = Path(__file__).resolve().parent / "experiments"


class BuildPyWithExperiments(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        target = Path(self.build_lib) / "chaosagenkit" / "experiments"
        self.mkpath(str(target))
        for source in sorted(EXPERIMENTS.glob("*.json")):
            self.copy_file(str(source), str(target / source.name))


setup(cmdclass={"build_py": BuildPyWithExperiments})
