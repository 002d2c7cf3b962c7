"""Snakemake's real command line, started by fork from a process that has imported it already.

`python -m snakemake ...` spends ~1.4 of its ~1.9 CPU-s importing Snakemake; the suite runs it
about 30 times (dry runs, lint, report, the tiny pipeline), mostly to read a job list. A *zygote*
(this file run as a script: a fresh interpreter that imports ``snakemake.cli`` and nothing of
mgrl) forks once per call; the child changes to the working folder, points file descriptors 1 and 2
at files and runs ``snakemake.cli.main(args)``, exactly what ``python -m snakemake args`` runs, so
the Snakefile, its imports of the copied ``src/`` and every job are those of a separate run; only
the import is shared. The result is a ``subprocess.CompletedProcess`` like ``subprocess.run``'s.

One zygote per pytest process (started on first use, stopped at exit); calls are serial. Runs that
a test must kill or run through SLURM (tests/test_kill_resume.py, tests/test_slurm.py) still start
``python -m snakemake`` as a process of their own.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path


def _serve() -> None:
    """The zygote: one JSON request per line on stdin, one JSON reply per line on stdout."""
    import snakemake.cli

    replies = os.fdopen(os.dup(1), "w")
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:  # the child: a `python -m snakemake` run with the import already done
            code = 1
            try:
                os.dup2(os.open(os.devnull, os.O_RDONLY), 0)  # not the zygote's request pipe
                os.chdir(request["cwd"])
                sys.path[0] = request["cwd"]  # as `python -m` puts the working folder first
                for fd, name in ((1, "stdout"), (2, "stderr")):
                    os.dup2(os.open(request[name], os.O_WRONLY | os.O_CREAT | os.O_TRUNC), fd)
                sys.argv = ["snakemake", *request["args"]]
                try:
                    snakemake.cli.main(request["args"])
                    code = 0
                except SystemExit as stop:  # as the interpreter would exit
                    if isinstance(stop.code, int) or stop.code is None:
                        code = stop.code or 0
                    else:
                        print(stop.code, file=sys.stderr)
            except BaseException:
                import traceback

                traceback.print_exc()
            finally:
                import logging

                logging.shutdown()  # Snakemake logs through a handler thread: drain it
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        replies.write(json.dumps({"returncode": os.waitstatus_to_exitcode(status)}) + "\n")
        replies.flush()


class _Zygote:
    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, __file__], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        self.folder = Path(tempfile.mkdtemp(prefix="forked-snakemake-"))
        atexit.register(self.stop)

    def run(self, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
        out, err = self.folder / "stdout", self.folder / "stderr"
        request = {"args": [str(a) for a in args], "cwd": str(cwd), "stdout": str(out),
                   "stderr": str(err)}
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        reply = self.proc.stdout.readline()
        if not reply:
            raise RuntimeError(f"the Snakemake zygote ended (exit {self.proc.wait()})")
        code = json.loads(reply)["returncode"]
        return subprocess.CompletedProcess(["snakemake", *request["args"]], code,
                                           out.read_text(errors="replace"),
                                           err.read_text(errors="replace"))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()  # the zygote's loop ends with its input
            self.proc.wait(timeout=60)
        shutil.rmtree(self.folder, ignore_errors=True)


_ZYGOTE: list[_Zygote] = []


def run_snakemake(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """``subprocess.run([python, -m, snakemake, *args], cwd=cwd, capture_output=True, text=True)``,
    forked from this process's zygote (same environment: the zygote inherits it at start)."""
    if not _ZYGOTE or _ZYGOTE[0].proc.poll() is not None:
        _ZYGOTE[:] = [_Zygote()]
    return _ZYGOTE[0].run(args, cwd)


if __name__ == "__main__":
    _serve()
