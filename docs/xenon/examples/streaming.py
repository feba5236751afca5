"""Talk to a running job: send it lines one at a time, read each answer before the next.

Run from this directory (the job runs ``python rot13.py`` there):

    python streaming.py
"""
import queue

import xenon_backend as xenon

END = object()  # put this on the queue to close the job's stdin


def stdin_from(lines_to_send):
    """Bytes for the job's stdin, taken from a queue until END arrives."""
    while True:
        item = lines_to_send.get()
        if item is END:
            return
        yield item.encode()


def next_answer(output_stream):
    """The job's next line of stdout (output may arrive in pieces of any size)."""
    answer = b''
    while not answer.endswith(b'\n'):
        answer += output_stream.next().stdout
    return answer.decode()


def main():
    xenon.init()
    lines = ['Gur dhvpx oebja sbk', 'whzcf bire', 'gur ynml qbt.']
    description = xenon.JobDescription(executable='python', arguments=['rot13.py'],
                                       queue_name='multi')
    lines_to_send = queue.Queue()
    with xenon.Scheduler.create(adaptor='local') as scheduler:
        job, output_stream = scheduler.submit_interactive_job(
            description=description, stdin_stream=stdin_from(lines_to_send))
        try:
            for line in lines:
                lines_to_send.put(line + '\n')
                print(f'sent:     {line}')
                print(f'received: {next_answer(output_stream).rstrip()}')
        finally:
            lines_to_send.put(END)
        status = scheduler.wait_until_done(job)
        print(f'job {job.id} ended with exit code {status.exit_code}')


if __name__ == '__main__':
    main()
