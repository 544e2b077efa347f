"""pyrunc.launcher: the installed command's entry point and the fast launcher it writes."""
import os
import subprocess
import sys

from pyrunc import launcher


def test_the_written_launcher_starts_isolated_and_runs_pyrunc(tmp_path):
    out = tmp_path / "pyrunc"
    out.write_text("pip's script\n")
    assert subprocess.run([sys.executable, "-m", "pyrunc.launcher", str(out)],
                          capture_output=True, text=True).returncode == 0
    text = out.read_text()
    assert text.startswith(f"#!{os.path.realpath(sys.executable)} -IS\n")
    assert os.access(out, os.X_OK)
    proc = subprocess.run([str(out), "--version"], capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0 and proc.stdout.startswith("pyrunc version"), proc.stderr
    # the path it set: this pyrunc and this cffi, nothing from site processing
    code = text.replace("from pyrunc.cli import main",
                        "import pyrunc, cffi; print(pyrunc.__file__, cffi.__file__, "
                        "'site' in sys.modules); sys.exit(0)")
    script = tmp_path / "probe-launcher"
    script.write_text(code)
    script.chmod(0o755)
    mine = subprocess.run([str(script)], capture_output=True, text=True).stdout.split()
    import cffi
    import pyrunc
    assert mine == [pyrunc.__file__, cffi.__file__, "False"]


def test_the_entry_point_exits_with_the_status_and_flushes(tmp_path):
    code = ("import sys; sys.argv = ['pyrunc', 'start', 'nosuch']; "
            "from pyrunc.launcher import main; main()")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=dict(os.environ, PYRUNC_ROOT=str(tmp_path)))
    assert proc.returncode == 1
    assert proc.stderr == "pyrunc: start nosuch: container nosuch does not exist\n"


def test_usage_without_an_output_path():
    assert launcher.run([]) == 2
