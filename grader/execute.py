"""Run one notebook's code cells in a sandboxed kernel and collect its captures.

Nothing the kernel says is trusted: outputs are kept only for the student's
feedback (and capped); what counts is the capture directory, judged later.
"""

import asyncio
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass, field

import nbformat
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from traitlets import Bool, Dict

from grader import sandbox

STDERR_TAIL_BYTES = 4000


@dataclass
class Execution:
    """What happened while running a notebook (for feedback only, never for scores)."""

    events: list = field(default_factory=list)
    seconds: float = 0.0
    kernel_stderr_tail: str = ""


class SandboxedKernelManager(AsyncKernelManager):
    """Starts the kernel through the sandbox launcher; sockets are Unix sockets (no network)."""

    sandbox_spec = Dict()
    unsafe = Bool(False)

    def format_kernel_cmd(self, extra_arguments=None):
        cmd = super().format_kernel_cmd(extra_arguments)
        if self.unsafe:
            return cmd
        if os.geteuid() == 0:  # the kernel, as the sandbox user, must read it
            os.chown(self.connection_file, self.sandbox_spec["uid"], self.sandbox_spec["uid"])
        return sandbox.launcher_command(self.sandbox_spec, cmd)


class CappedClient(NotebookClient):
    """nbclient that keeps at most `output_cap` bytes of outputs for the whole notebook."""

    output_cap = 2**20

    def output(self, outs, msg, display_id, cell_index):
        self.output_seen = getattr(self, "output_seen", 0) + len(json.dumps(msg["content"]))
        if self.output_seen > self.output_cap:
            if not getattr(self, "output_truncated", False):
                self.output_truncated = True
                notice = nbformat.v4.new_output(
                    "stream", name="stderr",
                    text=f"[grader: output beyond {self.output_cap} bytes discarded]\n")
                outs.append(notice)
                return notice
            return None
        return super().output(outs, msg, display_id, cell_index)


def _owned_dir(prefix, uid, work_dir):
    path = tempfile.mkdtemp(prefix=prefix, dir=work_dir)
    if os.geteuid() == 0:
        os.chown(path, uid, uid)
    return path


async def _run_cells(client, nb, limits, execution, kernel_kwargs):
    try:
        await _run_cells_in_kernel(client, nb, limits, execution, kernel_kwargs)
    finally:  # whatever happened, no sandbox outlives its notebook
        if client.km.has_kernel:
            await client.km.shutdown_kernel(now=True)


async def _run_cells_in_kernel(client, nb, limits, execution, kernel_kwargs):
    deadline = time.monotonic() + limits.notebook_seconds
    async with client.async_setup_kernel(**kernel_kwargs):
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            remaining = deadline - time.monotonic()
            if remaining < 1:
                execution.events.append(
                    f"notebook time limit ({limits.notebook_seconds} s) reached before cell {index}; "
                    "the remaining cells were not run")
                return
            client.timeout = int(min(limits.cell_seconds, remaining))
            try:
                await client.async_execute_cell(cell, index)
            except CellTimeoutError:
                execution.events.append(
                    f"cell {index} ran longer than {client.timeout} s and was stopped; "
                    "the remaining cells were not run")
                return
            except DeadKernelError:
                execution.events.append(
                    f"the kernel died in cell {index} (it exited, crashed or hit a resource limit); "
                    "the remaining cells were not run")
                return


def run_notebook(nb, *, support_files, seed, capture_dir, limits=sandbox.Limits(), slot=0,
                 unsafe=False, work_dir=None):
    """Execute `nb` (in place) in a fresh sandboxed kernel; captures land in `capture_dir`.

    `support_files` maps a file name in the kernel's working directory to a
    trusted host path (copies of the released files, never the student's).
    Temporary files go under `work_dir` (the system's temporary directory by default).
    """
    uid = sandbox.sandbox_uid(slot)
    runtime_dir = _owned_dir("grader-kernel-", uid, work_dir)
    scratch = None
    execution = Execution()
    started = time.monotonic()
    stderr_path = os.path.join(tempfile.mkdtemp(prefix="grader-stderr-", dir=work_dir), "kernel.stderr")
    km = SandboxedKernelManager(transport="ipc", ip=os.path.join(runtime_dir, "kernel"),
                                connection_file=os.path.join(runtime_dir, "kernel.json"),
                                unsafe=unsafe)
    if unsafe:
        scratch = tempfile.mkdtemp(prefix="grader-unsafe-", dir=work_dir)
        for name, path in support_files.items():
            shutil.copy(path, os.path.join(scratch, name))
        env = sandbox.sandbox_env(seed, scratch=scratch, capture=capture_dir)
        kernel_kwargs = {"cwd": scratch, "env": env}
    else:
        env = sandbox.sandbox_env(seed)
        km.sandbox_spec = dict(runtime_dir=runtime_dir, capture_dir=capture_dir,
                               support_files=support_files, env=env,
                               limits=asdict(limits), uid=uid)
        kernel_kwargs = {}
    client = CappedClient(nb, km=km, kernel_name="python3", allow_errors=True,
                          shutdown_kernel="immediate", startup_timeout=120,
                          record_timing=False)
    client.output_cap = limits.output_bytes
    with open(stderr_path, "wb") as stderr:
        kernel_kwargs.update(stdout=subprocess.DEVNULL, stderr=stderr)
        try:
            asyncio.run(_run_cells(client, nb, limits, execution, kernel_kwargs))
        except Exception as error:  # a kernel that never started, a protocol error, ...
            execution.events.append(f"the notebook could not be run: {type(error).__name__}: {error}")
    with open(stderr_path, "rb") as stderr:
        stderr.seek(max(0, os.path.getsize(stderr_path) - STDERR_TAIL_BYTES))
        execution.kernel_stderr_tail = stderr.read().decode(errors="replace")
    shutil.rmtree(os.path.dirname(stderr_path), ignore_errors=True)
    shutil.rmtree(runtime_dir, ignore_errors=True)
    if scratch:
        shutil.rmtree(scratch, ignore_errors=True)
    execution.seconds = round(time.monotonic() - started, 2)
    return execution
