"""serve.py's refusals before it serves, as the README promises them: a missing or unloadable model
file, a port in use and an unknown --host are one `error:` line and exit code 2, never a traceback.
(tests/test_server.py serves; here nothing gets that far. In-process through serve.main(argv), and
the port in use once in a fresh Python, as a user sees it.)"""
import socket
import subprocess
import sys

import pytest

from conftest import PROJECT

import serve  # noqa: E402  (conftest puts the scripts on sys.path)


@pytest.fixture
def port_in_use():
    """A port this test listens on: serve.py must find it taken."""
    with socket.create_server(("127.0.0.1", 0)) as taken:
        yield taken.getsockname()[1]


def one_error_line(capsys, argv):
    capsys.readouterr()
    code = serve.main([str(arg) for arg in argv])
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert code == 2 and captured.out == "" and len(lines) == 1 and lines[0].startswith("error: "), (code, captured)
    return lines[0]


def test_a_missing_model_file(capsys, tmp_path):
    line = one_error_line(capsys, ["--port", 0, "--model", tmp_path / "nope.h5"])
    assert line == f"error: {tmp_path / 'nope.h5'} not found: train a model with `python train_CNN.py` or pass --model/--weights"


def test_a_model_file_that_is_not_one(capsys, tmp_path):
    (tmp_path / "model.h5").write_text("not HDF5")
    line = one_error_line(capsys, ["--port", 0, "--model", tmp_path / "model.h5"])
    assert line.startswith(f"error: {tmp_path / 'model.h5'} is not a readable HDF5 model file (")


def test_a_port_in_use(capsys, port_in_use):
    line = one_error_line(capsys, ["--port", port_in_use])
    assert line == (f"error: cannot listen on 127.0.0.1:{port_in_use} (Address already in use): "
                    "pass --port with a free port, or stop the program using it")


def test_an_unknown_host(capsys):
    line = one_error_line(capsys, ["--host", "no-such-host.invalid", "--port", 0])  # .invalid: never a real name (RFC 2606)
    assert line.startswith("error: --host no-such-host.invalid: ") and line.endswith(
        "; pass an address of this machine, such as 127.0.0.1 or 0.0.0.0")


def test_a_port_in_use_as_a_user_sees_it(port_in_use):
    result = subprocess.run([sys.executable, str(PROJECT / "serve.py"), "--port", str(port_in_use)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.splitlines() == [f"error: cannot listen on 127.0.0.1:{port_in_use} (Address already in use): "
                                          "pass --port with a free port, or stop the program using it"], result.stderr


@pytest.mark.parametrize("port", [99999, -5])
def test_a_port_out_of_range_is_a_usage_error_naming_port(capsys, port):
    with pytest.raises(SystemExit) as stopped:
        serve.parse_args(["--port", str(port)])
    assert stopped.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1].endswith(  # "PROG: error: ...", PROG as it was started
        f": error: --port {port}: a port is a number from 1 to 65535 (0 picks a free one)")
