"""Read lines from stdin, answer each with its rot13 encoding, until stdin ends."""
import codecs
import sys

for line in sys.stdin:
    # one write per answer, flushed at once: the reader gets it in one piece
    sys.stdout.write(codecs.encode(line.rstrip('\n'), 'rot_13') + '\n')
    sys.stdout.flush()
