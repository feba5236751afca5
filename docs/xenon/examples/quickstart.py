"""Quick start: put a script on a remote machine over SFTP, run it over SSH, read the result.

    python quickstart.py USER@HOST:PORT PRIVATE_KEY

The key must be ed25519 or ECDSA. Host keys are not checked here (see the quick start
chapter for strict checking with known_hosts).
"""
import sys

import xenon_backend as xenon


def main(destination, key_file):
    user, _, location = destination.partition('@')
    credential = xenon.CertificateCredential(certfile=key_file, username=user)
    no_host_check = {'strictHostKeyChecking': 'false', 'loadKnownHosts': 'false'}

    xenon.init()
    with xenon.FileSystem.create(
            'sftp', location, credential=credential,
            properties={f'xenon.adaptors.filesystems.sftp.{k}': v
                        for k, v in no_host_check.items()}) as remote:
        script = remote.get_working_directory() / 'xenon-hello.sh'
        if remote.exists(script):
            remote.delete(script)
        remote.write_to_file(script, [b'#!/bin/sh\n', b'echo "Hello from $(hostname)"\n'])

        with xenon.Scheduler.create(
                'ssh', location, credential=credential,
                properties={f'xenon.adaptors.schedulers.ssh.{k}': v
                            for k, v in no_host_check.items()}) as scheduler:
            description = xenon.JobDescription(executable='/bin/sh', arguments=[str(script)],
                                               stdout='xenon-hello.out')
            job = scheduler.submit_batch_job(description)
            status = scheduler.wait_until_done(job)
            print(f'job {job.id}: {status.state}, exit code {status.exit_code}')

        output = remote.get_working_directory() / 'xenon-hello.out'
        print(b''.join(remote.read_from_file(output)).decode(), end='')
        remote.delete(script)
        remote.delete(output)


if __name__ == '__main__':
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
