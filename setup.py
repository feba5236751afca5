"""Install the ``cluster`` and ``xenon_backend`` packages and the ``cluster`` command."""
import importlib
import os
import sys
import types

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))


def _build_module():
    """``xenon_backend.build`` of this tree, without running ``xenon_backend/__init__.py``
    (which imports the stubs that are not made yet): the package is an empty shell here."""
    shell = types.ModuleType('xenon_backend')
    shell.__path__ = [os.path.join(HERE, 'xenon_backend')]
    saved = {name: sys.modules.pop(name) for name in list(sys.modules)
             if name == 'xenon_backend' or name.startswith('xenon_backend.')}
    sys.modules['xenon_backend'] = shell
    try:
        return importlib.import_module('xenon_backend.build')
    finally:
        for name in [n for n in sys.modules if n == 'xenon_backend' or n.startswith('xenon_backend.')]:
            del sys.modules[name]
        sys.modules.update(saved)


class BuildPyWithXenonStubs(build_py):
    """Generate xenon_backend's gRPC stubs before the modules are collected.

    The proto comes from the xenon-grpc jar, which is fetched from PyPI into the user's
    data directory when it is nowhere to be found (xenon_backend/build.py says where it
    looks; ``$XENON_GRPC_JAR`` names one). grpcio-tools is a build requirement.
    """

    def run(self):
        module = _build_module()
        try:
            module.build_package_stubs()
        except module.BuildError as exc:
            raise SystemExit(f'error: cannot make the gRPC stubs of xenon_backend: {exc}') from None
        super().run()


# The generated stubs demand grpcio >= the grpcio-tools that made them, and protobuf >=
# its gencode version (grpcio-tools 1.85.1: protobuf 7.35.1; 1.80.1, the last for 3.9: 6.31.1).
GRPC_FLOORS = ['grpcio>=1.85.1; python_version>="3.10"', 'grpcio>=1.80.1; python_version<"3.10"',
               'protobuf>=7.35.1; python_version>="3.10"', 'protobuf>=6.31.1; python_version<"3.10"']
TOOLS_FLOORS = ['grpcio-tools>=1.85.1; python_version>="3.10"',
                'grpcio-tools>=1.80.1; python_version<"3.10"']

setup(
    name='cluster',
    version='0.1.0',
    description='Write a pipeline once; run it on a laptop, a Slurm/Torque login node, '
                'or a remote cluster over SSH.',
    long_description=open('README.md').read(),
    long_description_content_type='text/markdown',
    license='MIT',
    python_requires='>=3.9,<3.14',
    packages=find_packages(include=['cluster', 'cluster.*', 'xenon_backend', 'xenon_backend.*']),
    install_requires=GRPC_FLOORS + ['dill>=0.3.8', 'psutil>=5.9', 'platformdirs>=2.5',
                                     'tqdm>=4.60'],
    extras_require={
        'test': ['pytest>=7', 'sphinx'] + TOOLS_FLOORS,   # sphinx: tests/test_docs.py builds docs/
        'bench': ['dask[distributed]', 'dask-jobqueue', 'submitit'],   # benchmarks/' peers
        'docs': ['sphinx'],
    },
    entry_points={'console_scripts': ['cluster = cluster.job.cli:main']},
    cmdclass={'build_py': BuildPyWithXenonStubs},
    classifiers=[
        'Programming Language :: Python :: 3',
        *[f'Programming Language :: Python :: 3.{minor}' for minor in range(9, 14)],
        'Topic :: System :: Distributed Computing',
    ],
)
