"""The test suite's own output: `pytest -q` prints the progress and the results, not xdist's start-up
status or a library's deprecation notice (pytest.ini, conftest.pytest_sessionstart)."""
import subprocess
import sys

from conftest import PROJECT


def test_pytest_q_prints_no_xdist_start_up_lines_and_no_warnings(tmp_path):
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-n", "2", "-p", "no:cacheprovider",
                             "tests/test_usage_errors.py::test_the_smallest_image_size_is_the_models",
                             "tests/test_server.py::test_photos_queued_together_share_one_model_call_of_at_most_batch_size"],
                            cwd=PROJECT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    output = result.stdout + result.stderr
    assert "bringing up nodes" not in output and "created:" not in output, output
    assert "warning" not in output.lower() and "passed" in output, output  # Starlette's TestClient notice filtered
