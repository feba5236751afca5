"""cluster.logme: the seed's log() on top of logging."""
import io
import logging

import pytest

from cluster import logme


def test_log_writes_level_and_message_without_colour_off_a_terminal():
    stream = io.StringIO()
    logme.log('hello', 'warn', logfile=stream)
    line = stream.getvalue()
    assert 'WARNING --> hello' in line and '\033[' not in line


def test_log_respects_min_level(tmp_path):
    path = tmp_path / 'log.txt'
    logme.log('hidden', 'debug', logfile=str(path))
    logme.log('shown', 'error', logfile=str(path))
    logme.log('also shown', 'debug', logfile=str(path), min_level='debug')
    text = path.read_text()
    assert 'hidden' not in text and 'shown' in text and 'also shown' in text


def test_log_colours_only_a_terminal():
    class Tty(io.StringIO):
        def isatty(self):
            return True
    stream = Tty()
    logme.log('tty', 'info', logfile=stream)
    assert '\033[' in stream.getvalue()


def test_log_reaches_the_logging_module(caplog):
    with caplog.at_level(logging.INFO, logger='cluster.logme'):
        logme.log('through logging', 'info', logfile=io.StringIO())
    assert 'through logging' in caplog.text


def test_bad_level_is_named():
    with pytest.raises(ValueError, match="unknown log level 'loud'"):
        logme.log('x', 'loud', logfile=io.StringIO())
