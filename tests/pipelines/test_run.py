"""The task log kubecycle run keeps: progress and the failing task's error line."""

import io

from kubecycle.pipelines.run import _TaskLog


def test_the_failing_tasks_error_line_is_kept():
    progress = []
    log = _TaskLog(io.StringIO(), lambda task, state: progress.append((task, state)))
    log.write("\x1b[96mExecuting task 'validate-data'\x1b[0m\nTraceback (most recent call last):\n"
              "    kubecycle.errors.DataValidationError: target column 'y' not found\n")
    log.write("Task 'validate-data' finished with status FAILURE\n")
    assert log.kubecycle_error == log.last_error == "target column 'y' not found"
    assert progress == [("validate-data", "started"), ("validate-data", "FAILURE")]
    log.write("ValueError: a plain one, writ")
    log.write("ten in two pieces\n")
    assert log.last_error == "a plain one, written in two pieces"
    assert log.kubecycle_error == "target column 'y' not found"
