"""Package definition. Dataflow stages this file with --setup_file, so workers install the same pins."""

import pathlib

import setuptools

HERE = pathlib.Path(__file__).parent


def read_requirements(name: str) -> list[str]:
    lines = (HERE / name).read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith(("#", "-r"))]


setuptools.setup(
    name="pairtrain",
    version="0.1.0",
    description="Train text-pair classifiers with Apache Beam, tf.Transform and Keras",
    long_description=(HERE / "README.md").read_text() if (HERE / "README.md").exists() else "",
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10,<3.13",
    packages=setuptools.find_packages(include=["pairtrain", "pipeline", "trainer"]),
    install_requires=read_requirements("requirements.txt"),
    entry_points={"console_scripts": ["pairtrain = pairtrain.cli:main"]},
)
