"""Lazy access to the generated stubs, with an error that says how to make them."""
from __future__ import annotations

import functools
import importlib
from types import ModuleType
from typing import Tuple

from .exceptions import XenonServerError

BUILD_HINT = 'run `python -m xenon_backend.build`'  # same words as build.BUILD_HINT


@functools.lru_cache(maxsize=None)
def modules() -> Tuple[ModuleType, ModuleType]:
    """``(xenon_pb2, xenon_pb2_grpc)``; :class:`XenonServerError` when they cannot be imported."""
    try:
        pb2 = importlib.import_module('xenon_backend.proto.xenon_pb2')
        pb2_grpc = importlib.import_module('xenon_backend.proto.xenon_pb2_grpc')
    except ImportError as exc:
        raise XenonServerError('import stubs', None,
                               f'the gRPC stubs of xenon_backend are missing ({exc}): '
                               f'{BUILD_HINT}') from None
    except Exception as exc:  # noqa: BLE001 - the generated grpcio/protobuf version checks
        raise XenonServerError('import stubs', None,
                               f'the gRPC stubs do not fit the installed grpcio/protobuf ({exc}); '
                               f'{BUILD_HINT} --force to regenerate them') from None
    return pb2, pb2_grpc


def pb2() -> ModuleType:
    """The generated ``xenon_pb2`` module (messages)."""
    return modules()[0]


def pb2_grpc() -> ModuleType:
    """The generated ``xenon_pb2_grpc`` module (service stubs)."""
    return modules()[1]
