"""Read lines from stdin, answer each with its rot13 encoding, until stdin ends."""
import codecs
import sys

for line in sys.stdin:
    print(codecs.encode(line.rstrip('\n'), 'rot_13'), flush=True)
