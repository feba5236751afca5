"""The ``qsub`` family's shared arguments (Torque and Grid Engine take ``-a`` and ``-V``
alike): a mixin that goes before :class:`~cluster.batch.base.BatchSystem` among the
bases of such a system."""
from __future__ import annotations

import datetime
import re
from typing import Any, List


_NOW = re.compile(r'now(?:\+(\d+)([a-z]+))?')


def begin_stamp(value: str) -> str:
    """The ``[[CC]YY]MMDDhhmm.SS`` form (``qsub -a``) of a normalised begin time
    (``hhmm.SS`` for a time of day); ``now+N<units>`` becomes an absolute time, now."""
    if re.fullmatch(r'\d{2}:\d{2}:\d{2}', value):
        hour, minute, second = value.split(':')
        return f'{hour}{minute}.{second}'
    now = _NOW.fullmatch(value)
    if now:
        count, unit = now.groups()
        delta = datetime.timedelta(**{unit or 'seconds': int(count or 0)})
        moment = datetime.datetime.now().replace(microsecond=0) + delta
    else:
        moment = datetime.datetime.fromisoformat(value)
    return moment.strftime('%Y%m%d%H%M.%S')


class QsubArguments:
    """``begin`` in ``qsub -a`` form, ``export`` ALL as ``-V`` and NONE as nothing."""

    @classmethod
    def arguments(cls, name: str, value: Any) -> List[str]:
        if name == 'begin':
            value = begin_stamp(value)
        elif name == 'export':
            items = value.split(',')
            rest = ','.join(item for item in items if item not in ('ALL', 'NONE'))
            return (['-V'] if 'ALL' in items else []) + (
                super().arguments(name, rest) if rest else [])  # type: ignore[misc]
        return super().arguments(name, value)  # type: ignore[misc]
