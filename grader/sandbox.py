"""The sandbox a student's kernel runs in: bubblewrap, or (where bubblewrap cannot
start) a separate unprivileged user with a seccomp filter.

bubblewrap ("bwrap"). What the kernel sees: the system's /usr and /etc read-only, the Python
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

The user backend ("user"), for containers that forbid user namespaces
(Gradescope's, many Kubernetes spawners'): the kernel runs as the worker
slot's own system user (created on first use; root only), with the same
rlimits, in a new session, in a private working directory holding copies of
the support files, under a seccomp filter that refuses every socket but a Unix
one. It shares the host's file system, /tmp, PID namespace and Unix sockets:
the grader's files are kept from it by permissions (`close_to_sandbox`), and
every process and /tmp file of the slot's user is removed after each notebook.

`choose_backend` picks one (GRADER_SANDBOX=auto|bwrap|user, or the caller's
choice): bubblewrap when it starts here, else the user backend.
"""

import ctypes
import errno
import fcntl
import json
import os
import pwd
import resource
import shutil
import signal
import socket
import stat
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import asdict, dataclass

# Worker slot n runs as uid base + n. Two graders on one host (two courses, or
# parallel test processes) need disjoint ranges: the process limit is per uid.
SANDBOX_UID_BASE = int(os.environ.get("GRADER_SANDBOX_UID_BASE", "61000"))
CLONE_NEWNS, MS_BIND, MS_REC, MS_PRIVATE = 0x00020000, 4096, 16384, 1 << 18
PR_SET_PDEATHSIG = 1
REAP_SECONDS = 30  # how long killed sandbox processes may stay zombies before the host is blamed
BACKENDS = ("bwrap", "user")
BACKEND_VARIABLE = "GRADER_SANDBOX"  # auto (the default), bwrap or user
# World-writable folders the user backend's kernel can write to; emptied of its files after each notebook.
SHARED_TMP = ("/tmp", "/var/tmp", "/dev/shm")
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


def _closed_folder(path):
    """The first folder on the way to `path` that other users cannot pass; None if every one lets them."""
    parts = os.path.realpath(path).split("/")
    for i in range(1, len(parts)):
        folder = "/".join(parts[:i]) or "/"
        if not os.stat(folder).st_mode & 0o001:
            return folder
    return None


def _reachable_by_others(path):
    return _closed_folder(path) is None


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


def sandbox_env(seed, scratch=SCRATCH, capture=CAPTURE, tmp="/tmp"):
    """The kernel's whole environment (nothing of the grader's leaks in)."""
    return {
        "HOME": scratch, "TMPDIR": tmp, "PATH": f"{sys.prefix}/bin:/usr/bin:/bin",
        "IPYTHONDIR": f"{scratch}/.ipython", "MPLCONFIGDIR": f"{scratch}/.matplotlib",
        "JUPYTER_RUNTIME_DIR": tmp, "PYTHONDONTWRITEBYTECODE": "1", "MPLBACKEND": "Agg",
        "KERAS_BACKEND": os.environ.get("KERAS_BACKEND", "tensorflow"),
        "TF_CPP_MIN_LOG_LEVEL": "2", "OMP_NUM_THREADS": "1",
        "GRADER_SEED": str(seed), "GRADER_CAPTURE_DIR": capture,
    }


def launcher_command(spec, kernel_cmd):
    """Command that starts `kernel_cmd` in the sandbox described by `spec` (a dict)."""
    # Run as a script: this file needs only the standard library (and, for the
    # user backend, pyseccomp), wherever it is installed.
    return [sys.executable, os.path.abspath(__file__), json.dumps(spec), "--", *kernel_cmd]


def set_rlimits(limits):
    """The sandbox's rlimits, on this process and whatever it execs (both backends)."""
    for rlimit, value in ((resource.RLIMIT_DATA, limits.data_bytes()),
                          (resource.RLIMIT_CPU, limits.cpu_seconds),
                          (resource.RLIMIT_NPROC, limits.processes),
                          (resource.RLIMIT_FSIZE, limits.file_bytes),
                          (resource.RLIMIT_CORE, 0),
                          # No POSIX message queue: one outlives its notebook and has no file to remove.
                          (resource.RLIMIT_MSGQUEUE, 0)):
        resource.setrlimit(rlimit, (value, value))


def join_cgroup(spec):
    """Move this launcher into the sandbox's control group, if the host gave it one (both backends)."""
    if spec.get("cgroup"):  # before the rlimits and the uid change: joining needs root
        import cgroups  # beside this file: the launcher runs as a script, with this folder on sys.path

        cgroups.SandboxCgroup.from_spec(spec["cgroup"]).join()


def exec_sandboxed(spec, command):
    """Set rlimits, drop to the sandbox uid and exec bwrap (this process becomes the sandbox)."""
    if spec.get("backend") == "user":
        exec_as_user(spec, command)
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
    join_cgroup(spec)
    set_rlimits(limits)
    if os.geteuid() == 0:
        uid = str(spec["uid"])
        args = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", *args]
    os.execvp(args[0], args + ["--", *command])


# --- The user backend: a separate unprivileged user, seccomp, no namespaces needed ---------


def network_filter():
    """A seccomp filter that refuses (EPERM) every socket but a Unix one.

    The kernel's ZeroMQ sockets are Unix sockets (transport ipc), so it keeps
    those; AF_INET, AF_INET6, AF_NETLINK, AF_PACKET and the rest are refused.
    io_uring is refused too: it can open sockets without the socket() call.
    Syscalls of another architecture (32-bit ones on x86-64) kill the process
    (libseccomp's default for a foreign architecture).
    """
    import pyseccomp as seccomp  # ctypes over Debian's libseccomp2

    refuse = seccomp.ERRNO(errno.EPERM)
    rules = seccomp.SyscallFilter(seccomp.ALLOW)
    for call in ("socket", "socketpair"):
        rules.add_rule(refuse, call, seccomp.Arg(0, seccomp.NE, socket.AF_UNIX))
    rules.add_rule(refuse, "io_uring_setup")
    return rules


# ipykernel listens on tcp://127.0.0.1 for the output of forked child processes (its
# IOPub pipe), and libzmq aborts when that socket is refused. Under the user backend the
# kernel takes ipykernel's own fallback for a pipe that cannot bind instead: output
# printed by forked children is not forwarded (the kernel's own output is).
KERNEL_WITHOUT_TCP_PIPE = ("from ipykernel import iostream, kernelapp\n"
                           "iostream.IOPubThread._setup_pipe_in = lambda self: setattr(self, '_pipe_flag', False)\n"
                           "kernelapp.launch_new_instance()")


def user_kernel_command(kernel_cmd):
    """`kernel_cmd` (python -m ipykernel_launcher ...) with ipykernel's TCP pipe left out."""
    for i in range(len(kernel_cmd) - 1):
        if kernel_cmd[i:i + 2] == ["-m", "ipykernel_launcher"]:
            return kernel_cmd[:i] + ["-c", KERNEL_WITHOUT_TCP_PIPE] + kernel_cmd[i + 2:]
    raise SandboxUnavailable(f"the kernel command {kernel_cmd} does not start ipykernel_launcher; the user "
                             "sandbox starts only ipykernel kernels")


def _expose(paths):
    """Make `paths` reachable by other users in a private mount namespace of this launcher.

    A Python installed under a closed folder (a pyenv under /root, mode 0700)
    cannot be run by the sandbox user. Each closed folder on the way is covered
    (here only) by an empty tmpfs that lets others through, and the paths are
    bound back into it; the rest of the closed folder is hidden. This needs
    CAP_SYS_ADMIN: where the container lacks it, install Python where others
    can read it (/usr, /opt) instead.
    """
    libc = ctypes.CDLL(None, use_errno=True)

    def check(result, what):
        if result != 0:
            raise OSError(ctypes.get_errno(), f"{what} failed ({os.strerror(ctypes.get_errno())}); "
                          f"{paths[0]} is closed to other users, so the user sandbox cannot run this "
                          "Python: install it where every user can read it (/usr, /opt) or open its folders "
                          "to others (chmod o+x)")
    check(libc.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
    check(libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None), "making mounts private")
    held = {path: os.open(path, os.O_PATH) for path in paths}  # still reachable once covered
    closed = sorted({_closed_folder(path) for path in paths})
    for folder in closed:
        if not any(folder.startswith(c + "/") for c in closed):
            check(libc.mount(b"none", folder.encode(), b"tmpfs", 0, b"mode=755"), f"covering {folder}")
    for path, fd in held.items():
        os.makedirs(path, exist_ok=True) if stat.S_ISDIR(os.fstat(fd).st_mode) else open(path, "a").close()
        check(libc.mount(f"/proc/self/fd/{fd}".encode(), path.encode(), None, MS_BIND | MS_REC, None),
              f"binding {path}")
        os.close(fd)


def exec_as_user(spec, command):
    """Set rlimits, become the slot's sandbox user, refuse network sockets and exec the kernel
    in its private working directory (this process becomes the kernel)."""
    unreachable = [p for p in system_binds() if not _reachable_by_others(p)]
    if unreachable:
        _expose(unreachable)
    join_cgroup(spec)
    set_rlimits(Limits(**spec["limits"]))
    if os.getsid(0) != os.getpid():  # jupyter_client usually starts it in a session of its own
        os.setsid()  # no controlling terminal to inject keystrokes into
    uid = spec["uid"]
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    # Set after the uid change, which clears it: the kernel dies with the grader's worker.
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    os.chdir(spec["work_dir"])
    os.umask(0o077)  # what it writes to the shared /tmp is not readable by another slot's kernel
    network_filter().load()  # also sets no_new_privs: setuid programs gain nothing
    os.execve(command[0], command, spec["env"])


def _as_user(uid, function):
    """Run `function()` in a child process that has become `uid`; return what it returned (JSON)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read_end)
            os.setgroups([])
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
            os.write(write_end, json.dumps(function()).encode())
            os._exit(0)
        except BaseException:  # noqa: BLE001 - a forked child must never return into the caller
            os._exit(1)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        answer = pipe.read()
    _, status = os.waitpid(pid, 0)
    if status != 0:
        raise RuntimeError(f"the check as uid {uid} failed (status {status})")
    return json.loads(answer)


def _process_state(pid):
    """(real uid, state letter) of the process `pid`; None once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            fields = dict(line.split(":", 1) for line in f if ":" in line)
    except (OSError, ValueError):
        return None
    return int(fields["Uid"].split()[0]), fields["State"].strip()[:1]


def _real_uid(pid):
    """The real uid of the live process `pid`; None once it is gone or a zombie (nothing to kill)."""
    state = _process_state(pid)
    return None if state is None or state[1] in ("Z", "X") else state[0]


def _processes_of(uid, zombies=False):
    """Pids of `uid`'s live processes (and, with `zombies`, of those killed but not yet reaped)."""
    uid_of = (lambda pid: (_process_state(pid) or (None,))[0]) if zombies else _real_uid
    return [int(name) for name in os.listdir("/proc") if name.isdigit() and uid_of(int(name)) == uid]


def end_user_processes(uid, rounds=200, reap_seconds=REAP_SECONDS):
    """SIGKILL every process of the sandbox `uid`, then wait until they are reaped.

    A fork bomb's children outlive their kernel. The uid is this worker's slot
    alone (`claim_slot`), so nothing else runs as it. Each process is pinned by
    a pidfd before its uid is checked, so a reused pid is never signalled;
    rounds repeat until none is left. Killed processes stay zombies until their
    new parent (the host's init) reaps them, and a zombie still counts toward
    the uid's RLIMIT_NPROC: the next kernel in this slot, another student's,
    would start with fewer processes and threads than its limit (its messages
    broke when a thread could not start). So this returns only once none is left.
    """
    for _ in range(rounds):
        pids = _processes_of(uid)
        if not pids:
            break
        for pid in pids:
            try:
                handle = os.pidfd_open(pid)
            except ProcessLookupError:
                continue
            try:
                if _real_uid(pid) == uid:
                    signal.pidfd_send_signal(handle, signal.SIGKILL)
            except ProcessLookupError:
                pass
            finally:
                os.close(handle)
        time.sleep(0.01)
    else:
        raise RuntimeError(f"processes of the sandbox uid {uid} kept appearing after {rounds} rounds of SIGKILL")
    deadline = time.monotonic() + reap_seconds
    while zombies := _processes_of(uid, zombies=True):  # only zombies by now
        if time.monotonic() > deadline:
            raise SandboxUnavailable(
                f"{len(zombies)} killed processes of the sandbox uid {uid} were not reaped within "
                f"{reap_seconds} s (they still count toward the next kernel's process limit); the "
                "host's init does not reap orphans: run the grader under one that does "
                "(docker run --init, tini)")
        time.sleep(0.02)


# System V IPC objects outlive their processes (bubblewrap's IPC namespace ends them with the
# sandbox; the user backend shares the host's): /proc/sysvipc's table, its id column, and
# the function that removes one (IPC_RMID = 0).
SYSV_IPC = {"shm": ("shmid", lambda libc, ident: libc.shmctl(ident, 0, None)),
            "sem": ("semid", lambda libc, ident: libc.semctl(ident, 0, 0)),
            "msg": ("msqid", lambda libc, ident: libc.msgctl(ident, 0, None))}


def user_ipc_objects(uid):
    """[(table, id)] of the System V IPC objects on the host that `uid` owns or made."""
    found = []
    for table, (id_column, _) in SYSV_IPC.items():
        try:
            with open(f"/proc/sysvipc/{table}") as f:
                header, *rows = [line.split() for line in f]
        except OSError:
            continue
        column = {name: index for index, name in enumerate(header)}
        found += [(table, int(row[column[id_column]])) for row in rows
                  if uid in (int(row[column["uid"]]), int(row[column["cuid"]]))]
    return found


def remove_user_ipc(uid):
    """Remove the System V shared memory, semaphores and message queues the sandbox `uid` owns or
    made: a segment would keep its memory after the notebook (none of the sandbox's limits
    bounds it once the processes are gone), for every student graded after on this host."""
    libc = ctypes.CDLL(None, use_errno=True)
    for table, ident in user_ipc_objects(uid):
        SYSV_IPC[table][1](libc, ident)  # already gone: EINVAL, nothing to do


def remove_user_leftovers(uid, keep=()):
    """What the sandbox `uid` left on the shared host after its processes ended: its files in the
    shared temporary folders (`keep` stays) and its System V IPC objects."""
    remove_user_files(uid, keep)
    remove_user_ipc(uid)


def remove_user_files(uid, keep=()):
    """Remove what the sandbox `uid` left in the shared temporary folders (the next notebook in
    this slot, another student's, runs as the same uid and would read it); `keep` stays."""
    for folder in SHARED_TMP:
        if not os.path.isdir(folder):
            continue
        for entry in os.scandir(folder):
            try:  # other programs' files come and go in the shared folders meanwhile
                if entry.path in keep or entry.stat(follow_symlinks=False).st_uid != uid:
                    continue
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path, ignore_errors=True)
                else:
                    os.unlink(entry.path)
            except FileNotFoundError:
                pass


def ensure_sandbox_user(uid):
    """The system account of the sandbox `uid`, created on first use (no home, no login shell).

    A uid that already belongs to another account is refused: the user
    backend kills every process of its uid after each notebook and the kernel
    could read that account's files.
    """
    name = f"grader-sandbox-{uid}"
    for _ in range(50):  # workers starting at once contend for /etc/passwd's lock
        try:
            owner = pwd.getpwuid(uid).pw_name
        except KeyError:
            try:
                subprocess.run(["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent",
                                "--shell", "/usr/sbin/nologin", "--user-group", "--uid", str(uid), name],
                               capture_output=True)
            except FileNotFoundError:
                raise SandboxUnavailable("useradd is not installed (Debian: the passwd package); the user "
                                         f"sandbox needs it to create its account {name}") from None
            time.sleep(0.1)
            continue
        if owner != name:
            raise SandboxUnavailable(
                f"uid {uid} belongs to the account {owner!r}; the user sandbox runs kernels as uids "
                f"{SANDBOX_UID_BASE} + worker slot. Set GRADER_SANDBOX_UID_BASE to the start of a free "
                "range of uids (e.g. 61000).")
        return name
    raise SandboxUnavailable(f"could not create the sandbox account {name} (useradd --system --uid {uid} "
                             f"{name}); create it, or set GRADER_SANDBOX_UID_BASE to uids with such accounts")


def _openable(paths):
    return [path for path in paths if _try_open(path)]


def _try_open(path):
    try:
        if os.path.isdir(path):
            os.listdir(path)
        else:
            with open(path, "rb") as f:
                f.read(1)
    except OSError:
        return False
    return True


def close_to_sandbox(paths, uid=None):
    """`chmod o=` each of the grader's files or folders (the sandbox users are "others"), then
    check, as a sandbox user, that none of them can be read; raise SandboxUnavailable if one can."""
    uid = sandbox_uid(0) if uid is None else uid
    for path in paths:
        os.chmod(path, stat.S_IMODE(os.stat(path).st_mode) & ~0o007)
    readable = _as_user(uid, lambda: _openable(paths))
    if readable:
        raise SandboxUnavailable(
            f"the sandbox user (uid {uid}) can still read {', '.join(readable)} after chmod o=; the user "
            "sandbox would show it to students. Give it to root (chown) or move it out of the sandbox "
            "users' groups, or use bubblewrap.")


def check_user_available():
    """Raise SandboxUnavailable (saying what to do) unless the user backend runs here."""
    if os.geteuid() != 0:
        raise SandboxUnavailable(
            "the user sandbox runs each kernel as a separate unprivileged user, which only root can "
            "switch to: run the grader as root (Gradescope's autograder does), or use bubblewrap "
            "(--sandbox bwrap).")
    slot_directory()
    try:
        network_filter()
    except (ImportError, OSError, RuntimeError) as error:
        raise SandboxUnavailable(
            f"the user sandbox needs libseccomp's Python bindings ({type(error).__name__}: {error}): "
            "`pip install pyseccomp` (pinned in pyproject.toml) and Debian's libseccomp2.") from None
    ensure_sandbox_user(sandbox_uid(0))
    probe_code = ("import os, socket\n"
                  "try:\n    socket.socket(socket.AF_INET)\nexcept PermissionError:\n"
                  "    print('refused', os.getuid())")
    _probe({"backend": "user"}, [sys.executable, "-c", probe_code], expect=f"refused {sandbox_uid(0)}",
           problem="the user sandbox cannot start a kernel here", fix="")


def _probe(spec_fields, command, expect, problem, fix):
    """Run `command` through the launcher in a throwaway sandbox; raise SandboxUnavailable unless
    it exits 0 and prints `expect`."""
    with tempfile.TemporaryDirectory(prefix="grader-probe-") as probe:
        os.chmod(probe, 0o755)  # the sandbox user must reach the directories inside
        runtime, capture, work = (os.path.join(probe, name) for name in ("runtime", "capture", "work"))
        for path in (runtime, capture, work):
            os.mkdir(path)
            if os.geteuid() == 0:
                os.chown(path, sandbox_uid(0), sandbox_uid(0))
        spec = dict(runtime_dir=runtime, capture_dir=capture, work_dir=work, support_files={}, env={},
                    limits=asdict(Limits()), uid=sandbox_uid(0), **spec_fields)
        result = subprocess.run(launcher_command(spec, command), capture_output=True, text=True, timeout=60)
    if result.returncode != 0 or expect not in result.stdout:
        raise SandboxUnavailable(f"{problem}: {(result.stderr.strip() or result.stdout.strip())[-500:]}. {fix}")


def check_available():
    """Raise SandboxUnavailable (saying what to install or enable) unless bwrap runs here."""
    slot_directory()
    if shutil.which("bwrap") is None:
        raise SandboxUnavailable(
            "bubblewrap (bwrap) is not installed. Install it (Debian/Ubuntu: "
            "`apt-get install bubblewrap`, or `make system-deps`), or pass "
            "--unsafe-no-sandbox to run student code without isolation.")
    _probe({}, ["/bin/true"], expect="", problem="bubblewrap cannot create a sandbox here",
           fix="It needs unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1, "
               "user.max_user_namespaces > 0) or a setuid bwrap. Fix that, or pass "
               "--unsafe-no-sandbox to run student code without isolation.")


_CHOSEN = {}


def choose_backend(requested=None):
    """(backend, why): "bwrap" or "user", checked once per process.

    `requested`: "bwrap", "user" or "auto" (default: $GRADER_SANDBOX, else
    auto). auto takes bubblewrap when it starts here, else the user backend;
    `why` then says why bubblewrap could not be used ("" otherwise).
    """
    requested = requested or os.environ.get(BACKEND_VARIABLE) or "auto"
    if requested not in (*BACKENDS, "auto"):
        raise SandboxUnavailable(f"unknown sandbox {requested!r} (from --sandbox or {BACKEND_VARIABLE}); "
                                 f"use one of auto, {', '.join(BACKENDS)}")
    if requested not in _CHOSEN:
        if requested == "bwrap":
            check_available()
            _CHOSEN[requested] = ("bwrap", "")
        elif requested == "user":
            check_user_available()
            _CHOSEN[requested] = ("user", "asked for")
        else:
            try:
                check_available()
                _CHOSEN[requested] = ("bwrap", "")
            except SandboxUnavailable as no_bwrap:
                try:
                    check_user_available()
                except SandboxUnavailable as no_user:
                    raise SandboxUnavailable(f"{no_bwrap}\nThe user sandbox cannot be used either: "
                                             f"{no_user}") from None
                _CHOSEN[requested] = ("user", f"bubblewrap cannot start here: {no_bwrap}")
    return _CHOSEN[requested]


def describe_backend(backend, why=""):
    """One line for the console and the log naming the sandbox in use."""
    names = {"bwrap": "bubblewrap (namespaces)", "user": "user (separate unprivileged user + seccomp)"}
    return f"sandbox: {names[backend]}" + (f"; {why}" if why else "")


if __name__ == "__main__":
    separator = sys.argv.index("--")
    exec_sandboxed(json.loads(sys.argv[1]), sys.argv[separator + 1:])
