"""Install the ``cluster`` and ``xenon_backend`` packages and the ``cluster`` command."""
from setuptools import setup

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
    install_requires=['grpcio>=1.66', 'protobuf>=5.26', 'dill>=0.3.8', 'psutil>=5.9'],
    extras_require={
        'test': ['pytest>=7', 'grpcio-tools>=1.66'],
        'bench': ['dask[distributed]', 'submitit'],
        'docs': ['sphinx'],
    },
    entry_points={'console_scripts': ['cluster = cluster.cli:main']},
    classifiers=[
        'Programming Language :: Python :: 3',
        *[f'Programming Language :: Python :: 3.{minor}' for minor in range(9, 14)],
        'Topic :: System :: Distributed Computing',
    ],
)
