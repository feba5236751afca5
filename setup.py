"""Install the ``cluster`` and ``xenon_backend`` packages and the ``cluster`` command."""
import importlib.util
import os

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))


class BuildPyWithXenonStubs(build_py):
    """Generate xenon_backend's gRPC stubs when protos/xenon.proto is there.

    The proto comes from the jar: ``python -m xenon_backend.build`` fetches both.
    """

    def run(self):
        if os.path.exists(os.path.join(HERE, 'protos', 'xenon.proto')):
            path = os.path.join(HERE, 'xenon_backend', 'build.py')
            spec = importlib.util.spec_from_file_location('xenon_backend_build', path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            module.generate_stubs()
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
    packages=['cluster', 'cluster.batch', 'xenon_backend', 'xenon_backend.proto'],
    install_requires=GRPC_FLOORS + ['dill>=0.3.8', 'psutil>=5.9'],
    extras_require={
        'test': ['pytest>=7'] + TOOLS_FLOORS,
        'bench': ['dask[distributed]', 'submitit'],
        'docs': ['sphinx'],
    },
    entry_points={'console_scripts': ['cluster = cluster.cli:main']},
    cmdclass={'build_py': BuildPyWithXenonStubs},
    classifiers=[
        'Programming Language :: Python :: 3',
        *[f'Programming Language :: Python :: 3.{minor}' for minor in range(9, 14)],
        'Topic :: System :: Distributed Computing',
    ],
)
