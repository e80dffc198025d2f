"""Run one notebook's code cells in a sandboxed kernel and collect its captures.

Nothing the kernel says is trusted: outputs are kept only for the student's
feedback (and capped); what counts is the capture directory, judged later.
"""

import asyncio
import functools
import json
import os
import shutil
import signal
import stat
import subprocess
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field

import bleach
import nbformat
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from traitlets import Bool, Dict, Unicode

from grader import cgroups, sandbox

STDERR_TAIL_BYTES = 4000


@dataclass
class Execution:
    """What happened while running a notebook (for feedback only, never for scores)."""

    events: list = field(default_factory=list)
    seconds: float = 0.0
    kernel_stderr_tail: str = ""
    cell_seconds: dict = field(default_factory=dict)  # {cell index: wall-clock seconds}
    sandbox_peak_bytes: int | None = None  # all the sandbox's processes and tmpfs together (cgroup hosts only)
    kernel_started: bool = False  # the kernel answered; before that no student code has run
    stopped_past_quota: bool = False  # a folder held more than its quota: the kernel was killed


class KernelDidNotStart(RuntimeError):
    """The sandboxed kernel never answered: a fault of the host or the grader, never of the student's
    code (none has run yet), so the submission is "not graded", never scored zero."""


KERNEL_START_ATTEMPTS = 2  # a loaded host can miss the start-up deadline once


class SandboxedKernelManager(AsyncKernelManager):
    """Starts the kernel through the sandbox launcher; sockets are Unix sockets (no network).

    The kernel binds its sockets in a folder it shares with the host (it must
    create them), where, once it runs student code, it could swap them for
    links to any Unix socket on the host. So, before any student code runs,
    each socket is hard-linked into `private_dir`, a folder the sandbox cannot
    reach, and the grader's every connection (and reconnection) goes there.
    """

    sandbox_spec = Dict()
    unsafe = Bool(False)
    private_dir = Unicode("")
    _linked = False

    def format_kernel_cmd(self, extra_arguments=None):
        cmd = super().format_kernel_cmd(extra_arguments)
        if self.unsafe:
            return cmd
        if os.geteuid() == 0:  # the kernel, as the sandbox user, must read it
            os.chown(self.connection_file, self.sandbox_spec["uid"], self.sandbox_spec["uid"])
        if self.sandbox_spec["backend"] == "user":
            cmd = sandbox.user_kernel_command(cmd)
        return sandbox.launcher_command(self.sandbox_spec, cmd)

    def _make_url(self, channel):
        if not self.private_dir:
            return super()._make_url(channel)
        return f"ipc://{os.path.join(self.private_dir, 'kernel')}-{getattr(self, channel + '_port')}"

    def client(self, **kwargs):
        self._link_sockets()
        if self.private_dir:
            kwargs["ip"] = os.path.join(self.private_dir, "kernel")
        return super().client(**kwargs)

    def _connect_control_socket(self):
        self._link_sockets()
        super()._connect_control_socket()

    def _link_sockets(self, timeout=120):
        """Wait for the kernel's sockets, then link them into `private_dir` (regular sockets only)."""
        if not self.private_dir or self._linked:
            return
        deadline = time.monotonic() + timeout
        for channel in ("shell", "iopub", "stdin", "control", "hb"):
            port = getattr(self, channel + "_port")
            path = f"{self.ip}-{port}"
            while not os.path.lexists(path):
                process = getattr(self.provisioner, "process", None)
                if time.monotonic() > deadline or (process is not None and process.poll() is not None):
                    raise RuntimeError(f"the kernel did not open its {channel} socket")
                time.sleep(0.05)
            if not stat.S_ISSOCK(os.lstat(path).st_mode):
                raise RuntimeError(f"the kernel's {channel} socket is not a socket")
            os.link(path, os.path.join(self.private_dir, f"kernel-{port}"), follow_symlinks=False)
        self._linked = True
        if os.geteuid() == 0:
            # The kernel folder is root's again: the sandbox can add nothing to it. Its group
            # (the sandbox's) keeps reading them: the kernel rereads its connection file just
            # after binding its sockets, and no other user (another slot, under the user
            # backend) reads either.
            gid = self.sandbox_spec["uid"]
            for path, mode in ((self.connection_file, 0o640), (os.path.dirname(self.connection_file), 0o750)):
                os.chown(path, 0, gid)
                os.chmod(path, mode)


class CappedClient(NotebookClient):
    """nbclient that keeps at most `output_cap` bytes of outputs for the whole notebook.

    Every byte an output message would add to the notebook counts, including
    display updates (`update_display_data`, or a `display_id` shown again),
    which rewrite every earlier output with that id. Comm messages (widget
    state and binary buffers) are dropped unread: no widget is needed to grade.
    """

    output_cap = 2**20
    output_seen = 0
    output_truncated = False
    _current_cell_index = None  # where a display update that passes the cap puts its notice

    def _over_cap(self, size, outs):
        """Count `size` more bytes; True (after a one-time notice in `outs`) when past the cap."""
        self.output_seen += size
        if self.output_seen <= self.output_cap:
            return False
        if not self.output_truncated:
            self.output_truncated = True
            outs.append(nbformat.v4.new_output(
                "stream", name="stderr", text=f"[grader: output beyond {self.output_cap} bytes discarded]\n"))
        return True

    def output(self, outs, msg, display_id, cell_index):
        if self._over_cap(len(json.dumps(msg["content"])), outs):
            return None
        return super().output(outs, msg, display_id, cell_index)

    def _update_display_id(self, display_id, msg):
        shown = sum(len(indices) for indices in self._display_id_map.get(display_id, {}).values())
        outs = self.nb.cells[self._current_cell_index].outputs if self._current_cell_index is not None else []
        if shown and self._over_cap(shown * len(json.dumps(msg["content"].get("data", {}))), outs):
            return
        super()._update_display_id(display_id, msg)

    def handle_comm_msg(self, outs, msg, cell_index):
        return None

    async def async_execute_cell(self, cell, cell_index, *args, **kwargs):
        self._current_cell_index = cell_index
        return await super().async_execute_cell(cell, cell_index, *args, **kwargs)


# What of an output staff may see: no scripts, event handlers, or JavaScript outputs.
KEPT_MIME_TYPES = {"text/plain", "text/html", "text/markdown", "text/latex", "image/png", "image/jpeg",
                   "image/gif", "application/json"}
HTML_TAGS = {"a", "abbr", "b", "blockquote", "br", "caption", "code", "div", "em", "h1", "h2", "h3", "h4",
             "h5", "h6", "hr", "i", "img", "li", "ol", "p", "pre", "span", "strong", "sub", "sup", "table",
             "tbody", "td", "tfoot", "th", "thead", "tr", "ul"}
HTML_ATTRIBUTES = {"*": ["class", "title", "align"], "a": ["href"], "img": ["src", "alt", "width", "height"],
                   "td": ["colspan", "rowspan"], "th": ["colspan", "rowspan"], "table": ["border"]}


def sanitise_outputs(nb):
    """Make the executed notebook's outputs inert before anyone opens them.

    HTML and Markdown go through bleach's allow-list (scripts, styles, forms,
    iframes and every on* handler removed; links only to http(s) and
    mailto); other rich types than KEPT_MIME_TYPES
    (application/javascript, SVG, widget views, ...) are dropped.
    """
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data")
            if data is None:
                continue
            dropped = sorted(set(data) - KEPT_MIME_TYPES)
            for mime in dropped:
                del data[mime]
            for mime in ("text/html", "text/markdown"):
                if mime in data:
                    text = data[mime] if isinstance(data[mime], str) else "".join(data[mime])
                    data[mime] = bleach.clean(text, tags=HTML_TAGS, attributes=HTML_ATTRIBUTES,
                                              protocols={"http", "https", "mailto"}, strip=True)
            if dropped and not data:
                data["text/plain"] = f"[grader: {', '.join(dropped)} output removed]"


class StreamTail:
    """A pipe for the kernel's stderr, read to its end in a thread that keeps only its last
    `size` bytes: nothing is written to the host's disk, and memory stays bounded."""

    def __init__(self, size=STDERR_TAIL_BYTES):
        self.size, self.tail = size, b""
        self.read_end, self.write_end = os.pipe()
        self.thread = threading.Thread(target=self._drain, daemon=True)
        self.thread.start()

    def _drain(self):
        while chunk := os.read(self.read_end, 2**16):
            self.tail = (self.tail + chunk)[-self.size:]
        os.close(self.read_end)

    def close(self):
        """The last bytes, once every writer (this process, the kernel) has closed the pipe."""
        os.close(self.write_end)
        self.thread.join(timeout=10)
        return self.tail.decode(errors="replace")


SHARED_FOLDER_POLL_SECONDS = 0.2
SHARED_FOLDER_MAX_ENTRIES = 1000


def folder_bytes(directory):
    """Bytes held by the files under `directory` (links not followed); inf past too many entries."""
    total, entries = 0, 0
    for root, dirs, files in os.walk(directory):
        for name in dirs + files:
            entries += 1
            if entries > SHARED_FOLDER_MAX_ENTRIES:
                return float("inf")
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


async def _stop_past_quota(km, quotas, execution):
    """Kill the kernel, once, if a group of folders holds more than its quota; True if it did.

    `quotas`: [(folders, quota in bytes, what the folders are, for the message)].
    """
    if execution.stopped_past_quota:
        return True
    for directories, quota, what in quotas:
        if sum(folder_bytes(d) for d in directories) > quota:
            execution.stopped_past_quota = True
            execution.events.append(
                f"the notebook wrote more than {quota // 2**20} MiB (or {SHARED_FOLDER_MAX_ENTRIES} files) "
                f"into its {what}; the kernel was stopped")
            await km.signal_kernel(signal.SIGKILL)
            return True
    return False


async def _enforce_quota(km, quotas, execution):
    """Poll the quotas while cells run, so a notebook is stopped soon after it passes one. A
    poll can come too late for a fast writer: each cell is checked again when it ends."""
    while not await _stop_past_quota(km, quotas, execution):
        await asyncio.sleep(SHARED_FOLDER_POLL_SECONDS)


def _owned_dir(prefix, uid, work_dir):
    path = tempfile.mkdtemp(prefix=prefix, dir=work_dir)
    if os.geteuid() == 0:
        os.chown(path, uid, uid)
    return path


def _working_copy(prefix, support_files, work_dir, uid=None):
    """A fresh working directory holding copies of the support files (read-only, root's, when
    the directory is given to the sandbox `uid`)."""
    path = tempfile.mkdtemp(prefix=prefix, dir=work_dir)
    for name, source in support_files.items():
        shutil.copy(source, os.path.join(path, name))
        if uid is not None:
            os.chmod(os.path.join(path, name), 0o444)
    if uid is not None and os.geteuid() == 0:
        os.chown(path, uid, uid)
    return path


async def _run_cells(client, nb, limits, execution, kernel_kwargs, quotas, after_kernel):
    quota = asyncio.create_task(_enforce_quota(client.km, quotas, execution))
    try:
        await _run_cells_in_kernel(client, nb, limits, execution, kernel_kwargs, quotas)
    finally:  # whatever happened, no sandbox outlives its notebook
        quota.cancel()
        if client.km is not None and client.km.has_kernel:  # nbclient drops km when the client fails
            await client.km.shutdown_kernel(now=True)
        if after_kernel:
            after_kernel()


async def _run_cells_in_kernel(client, nb, limits, execution, kernel_kwargs, quotas):
    deadline = time.monotonic() + limits.notebook_seconds
    async with client.async_setup_kernel(**kernel_kwargs):
        execution.kernel_started = True
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
                cell_started = time.monotonic()
                await client.async_execute_cell(cell, index)
                execution.cell_seconds[index] = round(time.monotonic() - cell_started, 2)
                if await _stop_past_quota(client.km, quotas, execution):
                    execution.events.append(f"the cells after cell {index} were not run")
                    return
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


def run_notebook(nb, **options):
    """Execute `nb` (in place) in a fresh sandboxed kernel; captures land in `capture_dir`.

    Options: `support_files` maps a file name in the kernel's working directory to a
    trusted host path (copies of the released files, never the student's); `seed`,
    `capture_dir`, `limits`, `slot`, `unsafe`; temporary files go under `work_dir`
    (the system's temporary directory by default); `backend`: "bwrap", "user" or
    "auto" (default: $GRADER_SANDBOX, else auto; `sandbox.choose_backend`).
    A kernel that does not start is started afresh, then `KernelDidNotStart` is raised.
    """
    for _ in range(KERNEL_START_ATTEMPTS):
        execution = _run_in_new_kernel(nb, **options)
        if execution.kernel_started:
            return execution
    raise KernelDidNotStart(f"the sandboxed kernel did not start ({KERNEL_START_ATTEMPTS} attempts): "
                            + "; ".join(execution.events) + " " + execution.kernel_stderr_tail[-800:])


def _run_in_new_kernel(nb, *, support_files, seed, capture_dir, limits=sandbox.Limits(), slot=0,
                       unsafe=False, work_dir=None, backend=None):
    uid = sandbox.sandbox_uid(slot)
    runtime_dir = _owned_dir("grader-kernel-", uid, work_dir)
    scratch = private_dir = group = None
    execution = Execution()
    started = time.monotonic()
    km = SandboxedKernelManager(transport="ipc", ip=os.path.join(runtime_dir, "kernel"),
                                connection_file=os.path.join(runtime_dir, "kernel.json"),
                                unsafe=unsafe)
    quotas = [([runtime_dir, capture_dir], limits.capture_bytes, "capture and kernel folders")]
    after_kernel = leftovers = None  # the user backend's clean-up, after the kernel and after its folders
    if unsafe:
        scratch = _working_copy("grader-unsafe-", support_files, work_dir)
        env = sandbox.sandbox_env(seed, scratch=scratch, capture=capture_dir)
        kernel_kwargs = {"cwd": scratch, "env": env}
    else:
        backend = sandbox.choose_backend(backend)[0]
        group = cgroups.create(f"{uid}-{os.getpid()}-{time.monotonic_ns()}", limits.memory_bytes, limits.processes)
        spec = dict(backend=backend, runtime_dir=runtime_dir, capture_dir=capture_dir,
                    support_files=support_files, limits=asdict(limits), uid=uid,
                    cgroup=group and group.to_spec())
        if backend == "user":
            sandbox.ensure_sandbox_user(uid)
            sandbox.end_user_processes(uid)  # what a grader that crashed left in this slot
            sandbox.remove_user_ipc(uid)
            scratch = _working_copy("grader-work-", support_files, work_dir, uid)
            # No tmpfs bounds its working directory: the worker does, as for the capture folder.
            quotas.append(([scratch], limits.scratch_bytes + limits.tmp_bytes, "working directory"))
            spec.update(work_dir=scratch, support_files={},
                        env=sandbox.sandbox_env(seed, scratch=scratch, capture=capture_dir, tmp=scratch))
            after_kernel = functools.partial(sandbox.end_user_processes, uid)
            leftovers = functools.partial(sandbox.remove_user_leftovers, uid, keep=[capture_dir])
        else:
            spec.update(env=sandbox.sandbox_env(seed))
        km.sandbox_spec = spec
        km.private_dir = private_dir = tempfile.mkdtemp(prefix="grader-sockets-", dir=work_dir)
        kernel_kwargs = {}
    client = CappedClient(nb, km=km, kernel_name="python3", allow_errors=True,
                          shutdown_kernel="immediate", startup_timeout=120,
                          record_timing=False)
    client.output_cap = limits.output_bytes
    stderr = StreamTail()
    kernel_kwargs.update(stdout=subprocess.DEVNULL, stderr=stderr.write_end)
    try:
        asyncio.run(_run_cells(client, nb, limits, execution, kernel_kwargs, quotas, after_kernel))
    except Exception as error:  # a kernel that never started, a protocol error, ...
        execution.events.append(f"the notebook could not be run: {type(error).__name__}: {error}")
    execution.kernel_stderr_tail = stderr.close()
    if group is not None:
        execution.sandbox_peak_bytes = group.peak_bytes()
        if group.hit_memory_limit():
            execution.events.append(f"the notebook's processes together reached its memory limit "
                                    f"({limits.memory_bytes // 2**20} MiB) and the largest was stopped")
        group.remove()
    for directory in (runtime_dir, private_dir, scratch):
        if directory:
            shutil.rmtree(directory, ignore_errors=True)
    if leftovers:
        leftovers()
    sanitise_outputs(nb)
    execution.seconds = round(time.monotonic() - started, 2)
    return execution
