"""Maps the repository's top-level folders onto one ``gridhub`` distribution.

The design card keeps ``connectors/``, ``streams/``, ``schemas/`` and
``simulators/`` at the top of the repository, but installs them as
``gridhub.connectors`` and so on, never as generic names in site-packages.
Everything else lives in ``pyproject.toml``.
"""

from setuptools import find_packages, setup

FOLDERS = ["gridhub", "connectors", "streams", "schemas", "simulators"]

packages: list[str] = []
package_dir: dict[str, str] = {}
for folder in FOLDERS:
    name = "gridhub" if folder == "gridhub" else f"gridhub.{folder}"
    package_dir[name] = folder
    packages.append(name)
    packages += [f"{name}.{sub}" for sub in find_packages(folder)]

setup(packages=packages, package_dir=package_dir)
