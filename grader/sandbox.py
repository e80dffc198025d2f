"""The bubblewrap sandbox a student's kernel runs in.

What the kernel sees: the system's /usr and /etc read-only, the Python
installation and virtualenv read-only, a private tmpfs scratch directory as its
working directory (holding only copies of the released support files), a
directory for its kernel sockets, and one writable capture directory. It has
no network (its own empty network namespace), its own PID/IPC/UTS namespaces,
no capabilities, and runs as a dedicated unprivileged user per worker slot
when the grader runs as root. Resource limits (rlimits) bound memory, CPU
time, processes and file size of each process; a control group per sandbox
(`cgroups.py`, where the host offers one) bounds the memory and processes of
all of them together; wall-clock limits are enforced by the caller.

The course directory, the gradebook, source notebooks, other submissions and
the grader's reference code are simply not mounted.
"""

import ctypes
import fcntl
import json
import os
import resource
import shutil
import stat
import subprocess
import sys
import sysconfig
import tempfile
from dataclasses import asdict, dataclass

# Worker slot n runs as uid base + n. Two graders on one host (two courses, or
# parallel test processes) need disjoint ranges: the process limit is per uid.
SANDBOX_UID_BASE = int(os.environ.get("GRADER_SANDBOX_UID_BASE", "61000"))
CLONE_NEWNS, MS_BIND, MS_REC, MS_PRIVATE = 0x00020000, 4096, 16384, 1 << 18
SCRATCH = "/scratch"
CAPTURE = "/capture"
MAX_CAPTURE_BYTES = 64 * 2**20  # one capture file; larger ones are rejected
MAX_CAPTURE_MEMBERS = 64  # arrays in one capture file (a case records a few calls' outputs)


class SandboxUnavailable(RuntimeError):
    pass


@dataclass(frozen=True)
class Limits:
    """Per-notebook limits, sized so a small Keras training loop fits on a laptop CPU."""

    memory_bytes: int = 6 * 2**30       # per process: RLIMIT_DATA (heap, anonymous maps) + the tmpfs below
    cpu_seconds: int = 900              # RLIMIT_CPU, all threads together
    processes: int = 256                # RLIMIT_NPROC for the sandbox user (threads count)
    file_bytes: int = 256 * 2**20       # RLIMIT_FSIZE: largest file it may write
    scratch_bytes: int = 512 * 2**20    # size of the tmpfs working directory
    tmp_bytes: int = 256 * 2**20        # size of each of the private tmpfs /tmp and /dev/shm
    capture_bytes: int = 64 * 2**20     # the capture and kernel folders (shared with the host) together
    output_bytes: int = 2 * 2**20       # notebook outputs kept, all cells together
    cell_seconds: int = 300             # wall clock per cell
    notebook_seconds: int = 900         # wall clock per notebook

    def data_bytes(self):
        """RLIMIT_DATA: the memory budget less the tmpfs the sandbox can fill (they are memory too)."""
        data = self.memory_bytes - self.scratch_bytes - 2 * self.tmp_bytes
        if data < 2**28:
            raise ValueError(f"memory_bytes {self.memory_bytes} leaves under 256 MiB beside the "
                             "sandbox's tmpfs (scratch_bytes + 2 x tmp_bytes); raise it or shrink those")
        return data


def open_untrusted(path):
    """A binary file object for a regular file the sandbox wrote; never follows a link.

    A symlink planted in the capture directory (to the gradebook, say) would
    otherwise be read by the grader and echoed into the student's feedback.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    f = os.fdopen(fd, "rb")
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        f.close()
        raise ValueError("capture is not a regular file")
    return f


def system_binds():
    """Read-only paths the kernel needs: the OS, the Python install and the virtualenv."""
    paths = ["/usr", "/etc", sys.base_prefix, sys.prefix]
    for lib in ("/lib", "/lib64", "/bin", "/sbin"):
        if os.path.exists(lib) and not os.path.islink(lib):
            paths.append(lib)
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        paths.append(os.path.realpath(sysconfig.get_paths()[key]))
    # Interpreter symlinks may point into another prefix (pyenv, conda).
    paths.append(os.path.dirname(os.path.dirname(os.path.realpath(sys.executable))))
    unique = []
    for path in sorted(set(p for p in paths if os.path.exists(p))):
        if not any(path.startswith(u.rstrip("/") + "/") for u in unique):
            unique.append(path)
    return unique


def symlinked_roots():
    """/lib -> usr/lib style links recreated inside the sandbox."""
    return {p: os.readlink(p) for p in ("/lib", "/lib64", "/bin", "/sbin") if os.path.islink(p)}


_HELD_SLOT = []


def slot_directory():
    """The folder of this machine's slot lock files, checked for use by this user.

    Root's graders share one per uid range (their sandboxes run as the slots'
    uids); any other user's sandboxes run as that user, so each user has a
    folder of their own and never meets root's (mode 0700) one.
    """
    name = f"grader-slots-{SANDBOX_UID_BASE}" + ("" if os.geteuid() == 0 else f"-uid{os.geteuid()}")
    directory = os.path.join(tempfile.gettempdir(), name)
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        if not os.access(directory, os.R_OK | os.W_OK | os.X_OK):
            raise PermissionError(f"[Errno 13] Permission denied: {directory!r}")
    except OSError as error:
        raise SandboxUnavailable(
            f"the sandbox slot folder {directory} cannot be used by this user ({error}); another "
            "user made it. Remove it, or set GRADER_SANDBOX_UID_BASE to another number (its name "
            "follows it; as root, a uid range of its own) or TMPDIR to a folder of your own.") from None
    return directory


def claim_slot(max_slots=1024):
    """This process's worker slot: the lowest one that no live process on this machine holds.

    The slot is held through an flock until the process exits, so grading
    processes of any number of graders (local pools, Ray workers) never
    share a sandbox uid, whose process limit they would otherwise share.
    """
    if not _HELD_SLOT:
        directory = slot_directory()
        for slot in range(max_slots):
            handle = open(os.path.join(directory, f"{slot}.lock"), "w")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            _HELD_SLOT.append((slot, handle))
            break
        else:
            raise SandboxUnavailable(f"all {max_slots} sandbox slots on this machine are in use")
    return _HELD_SLOT[0][0]


def sandbox_uid(slot):
    return SANDBOX_UID_BASE + slot if os.geteuid() == 0 else os.geteuid()


def bwrap_args(*, runtime_dir, capture_dir, support_files, env, limits, sources):
    """bubblewrap's argument list (without the command).

    `sources` maps each read-only path inside the sandbox to where bwrap reads it from.
    """
    # The private /tmp first: the read-only binds then land on top of it, so a
    # Python environment that lives under /tmp (a clone in /tmp) stays visible.
    args = ["bwrap", "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL",
            "--hostname", "sandbox", "--clearenv", "--size", str(limits.tmp_bytes), "--tmpfs", "/tmp"]
    for path in system_binds():
        args += ["--ro-bind", sources.get(path, path), path]
    for link, target in symlinked_roots().items():
        args += ["--symlink", target, link]
    # bwrap's /dev is a tmpfs of half the host's memory: only the sized /dev/shm stays writable.
    args += ["--proc", "/proc", "--dev", "/dev", "--size", str(limits.tmp_bytes), "--tmpfs", "/dev/shm",
             "--remount-ro", "/dev", "--size", str(limits.scratch_bytes), "--tmpfs", SCRATCH,
             "--bind", runtime_dir, runtime_dir, "--bind", capture_dir, CAPTURE]
    for name, path in support_files.items():
        args += ["--ro-bind", sources.get(path, path), f"{SCRATCH}/{name}"]
    args += ["--chdir", SCRATCH]
    for key, value in env.items():
        args += ["--setenv", key, value]
    return args


def _reachable_by_others(path):
    """True when every directory on the way to `path` lets any user through."""
    parts = os.path.realpath(path).split("/")
    for i in range(1, len(parts)):
        directory = "/".join(parts[:i]) or "/"
        if not os.stat(directory).st_mode & 0o001:
            return False
    return True


def _stage_unreachable(paths, staging_dir):
    """Bind paths the sandbox user cannot reach (e.g. Python under /root) into `staging_dir`.

    The binds are made in a private mount namespace of this launcher only, so
    the host never sees them; bwrap, running as the sandbox user, then mounts
    them from there. Returns {original path: staged path}.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNS) != 0:
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNS) failed")
    if libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None) != 0:
        raise OSError(ctypes.get_errno(), "making mounts private failed")
    staged = {}
    for i, path in enumerate(paths):
        target = os.path.join(staging_dir, str(i))
        os.makedirs(target, exist_ok=True) if os.path.isdir(path) else open(target, "a").close()
        if libc.mount(path.encode(), target.encode(), None, MS_BIND | MS_REC, None) != 0:
            raise OSError(ctypes.get_errno(), f"bind of {path} failed")
        staged[path] = target
    return staged


def sandbox_env(seed, scratch=SCRATCH, capture=CAPTURE):
    """The kernel's whole environment (nothing of the grader's leaks in)."""
    return {
        "HOME": scratch, "TMPDIR": "/tmp", "PATH": f"{sys.prefix}/bin:/usr/bin:/bin",
        "IPYTHONDIR": f"{scratch}/.ipython", "MPLCONFIGDIR": f"{scratch}/.matplotlib",
        "JUPYTER_RUNTIME_DIR": "/tmp", "PYTHONDONTWRITEBYTECODE": "1", "MPLBACKEND": "Agg",
        "KERAS_BACKEND": os.environ.get("KERAS_BACKEND", "tensorflow"),
        "TF_CPP_MIN_LOG_LEVEL": "2", "OMP_NUM_THREADS": "1",
        "GRADER_SEED": str(seed), "GRADER_CAPTURE_DIR": capture,
    }


def launcher_command(spec, kernel_cmd):
    """Command that starts `kernel_cmd` in the sandbox described by `spec` (a dict)."""
    # Run as a script: this file needs only the standard library, wherever it is installed.
    return [sys.executable, os.path.abspath(__file__), json.dumps(spec), "--", *kernel_cmd]


def exec_sandboxed(spec, command):
    """Set rlimits, drop to the sandbox uid and exec bwrap (this process becomes the sandbox)."""
    limits = Limits(**spec["limits"])
    sources = {}
    if os.geteuid() == 0:
        unreachable = [p for p in system_binds() + list(spec["support_files"].values())
                       if not _reachable_by_others(p)]
        if unreachable:
            sources = _stage_unreachable(unreachable, os.path.join(spec["runtime_dir"], "binds"))
    args = bwrap_args(runtime_dir=spec["runtime_dir"], capture_dir=spec["capture_dir"],
                      support_files=spec["support_files"], env=spec["env"], limits=limits,
                      sources=sources)
    if spec.get("cgroup"):  # before the rlimits and the uid change: joining needs root
        import cgroups  # beside this file: the launcher runs as a script, with this folder on sys.path

        cgroups.SandboxCgroup.from_spec(spec["cgroup"]).join()
    for rlimit, value in ((resource.RLIMIT_DATA, limits.data_bytes()),
                          (resource.RLIMIT_CPU, limits.cpu_seconds),
                          (resource.RLIMIT_NPROC, limits.processes),
                          (resource.RLIMIT_FSIZE, limits.file_bytes),
                          (resource.RLIMIT_CORE, 0)):
        resource.setrlimit(rlimit, (value, value))
    if os.geteuid() == 0:
        uid = str(spec["uid"])
        args = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", *args]
    os.execvp(args[0], args + ["--", *command])


def check_available():
    """Raise SandboxUnavailable (saying what to install or enable) unless bwrap runs here."""
    slot_directory()
    if shutil.which("bwrap") is None:
        raise SandboxUnavailable(
            "bubblewrap (bwrap) is not installed. Install it (Debian/Ubuntu: "
            "`apt-get install bubblewrap`, or `make system-deps`), or pass "
            "--unsafe-no-sandbox to run student code without isolation.")
    with tempfile.TemporaryDirectory(prefix="grader-probe-") as probe:
        os.chmod(probe, 0o755)  # the sandbox user must reach the directories inside
        runtime, capture = os.path.join(probe, "runtime"), os.path.join(probe, "capture")
        for path in (runtime, capture):
            os.mkdir(path)
            if os.geteuid() == 0:
                os.chown(path, sandbox_uid(0), sandbox_uid(0))
        spec = dict(runtime_dir=runtime, capture_dir=capture, support_files={}, env={},
                    limits=asdict(Limits()), uid=sandbox_uid(0))
        result = subprocess.run(launcher_command(spec, ["/bin/true"]), capture_output=True,
                                text=True, timeout=60)
    if result.returncode != 0:
        raise SandboxUnavailable(
            f"bubblewrap cannot create a sandbox here: {result.stderr.strip()[-500:]}. "
            "It needs unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1, "
            "user.max_user_namespaces > 0) or a setuid bwrap. Fix that, or pass "
            "--unsafe-no-sandbox to run student code without isolation.")


if __name__ == "__main__":
    separator = sys.argv.index("--")
    exec_sandboxed(json.loads(sys.argv[1]), sys.argv[separator + 1:])
