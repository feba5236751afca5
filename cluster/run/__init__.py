"""Where work runs: this machine or a remote cluster.

* :mod:`cluster.run.shell`: ``cmd``, the one way the package runs a program here, and
  ``which``, ``open_zipped``, ``split_file`` (all importable from ``cluster.run``).
* :mod:`cluster.run.errors`: every exception the package raises; a :class:`ClusterError`.
* :mod:`cluster.run.storage`: :class:`Store`, where a job's files live, and the local one.
* :mod:`cluster.run.remote`: a cluster over SSH through Xenon: connection, remote shell,
  remote store. Nothing of it loads before a remote profile is used.
* :mod:`cluster.run.place`: the one place that decides where a job goes (store and batch
  system) from ``qtype``, ``profile`` and ``remote``.
"""
from __future__ import annotations

from .shell import Command, cmd, open_zipped, split_file, which

__all__ = ['Command', 'cmd', 'which', 'open_zipped', 'split_file']
