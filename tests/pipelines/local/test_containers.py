"""How task containers' logs reach the run log."""

from kubecycle.pipelines.local.containers import whole_lines


def test_a_log_written_in_pieces_comes_out_in_whole_lines():
    # a traceback's last line is written as module, dot and class name, then the message;
    # 'é' arrives split over two chunks
    chunks = [b"Traceback (most recent call last):\n  File", b" \"x.py\"\n",
              b"kubecycle.errors", b".", b"DataValidationError", b": caf\xc3", b"\xa9 missing\n",
              b"no newline at the end"]
    assert list(whole_lines(chunks)) == [
        "Traceback (most recent call last):\n", '  File "x.py"\n',
        "kubecycle.errors.DataValidationError: café missing\n", "no newline at the end"]


def test_an_empty_log_has_no_lines():
    assert list(whole_lines([])) == []
    assert list(whole_lines([b"", b"one\n"])) == ["one\n"]
