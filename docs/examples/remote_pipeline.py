"""A small pipeline run on a remote cluster: ``python remote_pipeline.py PROFILE``.

PROFILE is a profile of ~/.cluster with ``remote = ssh://...`` (default: hpc).
"""
import sys

import cluster


def word_count(text):
    """Runs on the cluster: this function travels by value, this file stays here."""
    return len(text.split())


def main(profile='hpc'):
    lines = ['the quick brown fox', 'jumps over', 'the lazy dog']
    host = cluster.submit('hostname', profile=profile)
    counts = [cluster.submit(word_count, (line,), profile=profile) for line in lines]
    report = cluster.submit('echo all counted', profile=profile, depends=counts)
    print('ran on', host.get()[1].strip())
    print('words:', sum(job.get() for job in counts))
    print(report.get()[1].strip())
    for job in [host, report, *counts]:
        job.clean(delete_outputs=True)   # remote files and local copies


if __name__ == '__main__':
    main(*sys.argv[1:])
