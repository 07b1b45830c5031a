"""All of qkit's packaging is in pyproject.toml; this file only makes `pip install -e .` install the data
files (the prebuilt JupyterLab extension and the config that enables the server extension), as a wheel does.

setuptools' editable build installs a data category only when the distribution answers `has_data()`, but
distutils names that method `has_data_files()` (pypa/setuptools#3399), so data files were silently skipped.
"""

from setuptools import setup
from setuptools.dist import Distribution


class QkitDistribution(Distribution):
    def has_data(self) -> bool:
        return self.has_data_files()


setup(distclass=QkitDistribution)
