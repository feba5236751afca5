"""A function job's payload and the runner that executes it on the node.

* :mod:`cluster.payload.function`: this side. Pickle the call with dill (by value for
  functions of modules the node cannot import), write the runner beside it, read the result.
* :mod:`cluster.payload.runner`: the node side. Standard library and dill only: its source
  is copied verbatim into ``<name>_func.<suffix>.py`` next to the payload, so a node without
  ``cluster`` installed runs it with ``python <that file>``. It also holds the package's one
  atomic write (temporary file, fsync, rename) and the checked open of pickles.

Nothing is imported here, so importing the runner loads nothing else of ``cluster``.
"""
