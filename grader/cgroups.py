"""One control group per sandbox: the memory and process limits of the whole notebook.

rlimits bound each process alone: four children, each under the per-process
memory limit, can together hold several times the notebook's budget. A
control group counts every process of the sandbox together (and the pages
of its tmpfs, which belong to no process), so the kernel's OOM killer stops
the sandbox at `Limits.memory_bytes` and the pids controller at
`Limits.processes`.

The grader uses the host's cgroup hierarchy where it may write to it:
- cgroup v2 with the memory and pids controllers delegated to the grader's
  own group (a container with its own cgroup namespace, a systemd unit with
  `Delegate=yes`);
- cgroup v1's memory and pids hierarchies (older hosts and container
  runtimes);
otherwise the sandbox has only its rlimits and tmpfs sizes, and the grader
says so once per run (`describe_accounting`).

Groups live under the grader's own group as `grader-sandboxes/<name>`; the
sandbox launcher (still root, before it drops privileges) moves itself in, so
everything the notebook starts is counted; the grader reads the peak and
removes the group when the notebook ends.
"""

import os
import signal
import time

PARENT = "grader-sandboxes"
CGROUP_ROOT = "/sys/fs/cgroup"


def _own_paths():
    """{controller or "" (v2): this process's group path} from /proc/self/cgroup."""
    paths = {}
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            for controller in controllers.split(",") if controllers else [""]:
                paths[controller] = path
    return paths


def _write(path, value):
    with open(path, "w") as f:
        f.write(str(value))


def _read(path):
    with open(path) as f:
        return f.read()


class SandboxCgroup:
    """The group of one sandbox: `directories` holds one folder per hierarchy it is in."""

    def __init__(self, version, directories):
        self.version = version
        self.directories = directories  # {"memory": path, "pids": path} (v1) or {"": path} (v2)

    def to_spec(self):
        return {"version": self.version, "directories": self.directories}

    @classmethod
    def from_spec(cls, spec):
        return cls(spec["version"], spec["directories"])

    def set_limits(self, memory_bytes, processes):
        if self.version == 2:
            folder = self.directories[""]
            _write(os.path.join(folder, "memory.max"), memory_bytes)
            if os.path.exists(os.path.join(folder, "memory.swap.max")):
                _write(os.path.join(folder, "memory.swap.max"), 0)
            _write(os.path.join(folder, "pids.max"), processes)
            return
        memory = self.directories["memory"]
        _write(os.path.join(memory, "memory.limit_in_bytes"), memory_bytes)
        if os.path.exists(os.path.join(memory, "memory.memsw.limit_in_bytes")):  # swap counted too
            _write(os.path.join(memory, "memory.memsw.limit_in_bytes"), memory_bytes)
        if "pids" in self.directories:
            _write(os.path.join(self.directories["pids"], "pids.max"), processes)

    def join(self, pid=None):
        """Move process `pid` (default: this one) into the group; its children follow."""
        for folder in self.directories.values():
            _write(os.path.join(folder, "cgroup.procs"), pid or os.getpid())

    def peak_bytes(self):
        """The most memory the sandbox held at once, or None where the host does not record it."""
        folder = self.directories["" if self.version == 2 else "memory"]
        name = "memory.peak" if self.version == 2 else "memory.max_usage_in_bytes"
        try:
            return int(_read(os.path.join(folder, name)))
        except (OSError, ValueError):
            return None

    def hit_memory_limit(self):
        """Whether the OOM killer stopped a process of the sandbox."""
        if self.version == 2:
            events = _read(os.path.join(self.directories[""], "memory.events")).split()
            return int(dict(zip(events[::2], events[1::2])).get("oom_kill", 0)) > 0
        control = _read(os.path.join(self.directories["memory"], "memory.oom_control")).split()
        killed = dict(zip(control[::2], control[1::2])).get("oom_kill")
        if killed is not None:
            return int(killed) > 0
        return int(_read(os.path.join(self.directories["memory"], "memory.failcnt"))) > 0

    def remove(self):
        """Kill whatever is left in the group and remove it."""
        for folder in self.directories.values():
            if not os.path.isdir(folder):
                continue
            for pid in _read(os.path.join(folder, "cgroup.procs")).split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass
            for _ in range(100):  # the kernel removes a group only once its last process is reaped
                try:
                    os.rmdir(folder)
                    break
                except OSError:
                    time.sleep(0.05)


def _v2_parent():
    """The v2 folder sandbox groups go under, with memory and pids enabled for them, or None."""
    own = _own_paths().get("")
    if own is None or not os.path.exists(os.path.join(CGROUP_ROOT, "cgroup.controllers")):
        return None
    parent = os.path.join(CGROUP_ROOT, own.lstrip("/"), PARENT)
    try:
        os.makedirs(parent, exist_ok=True)
        available = _read(os.path.join(parent, "cgroup.controllers")).split()
        if not {"memory", "pids"} <= set(available):
            return None
        _write(os.path.join(parent, "cgroup.subtree_control"), "+memory +pids")
    except OSError:
        return None
    return parent


def _v1_parents():
    """{"memory": folder, "pids": folder (if mounted)} for sandbox groups in cgroup v1, or None."""
    own = _own_paths()
    parents = {}
    for controller in ("memory", "pids"):
        mount = os.path.join(CGROUP_ROOT, controller)
        if controller not in own or not os.path.exists(os.path.join(mount, "cgroup.procs")):
            continue
        parent = os.path.join(mount, own[controller].lstrip("/"), PARENT)
        try:
            os.makedirs(parent, exist_ok=True)
        except OSError:
            continue
        parents[controller] = parent
    return parents if "memory" in parents else None


def create(name, memory_bytes, processes):
    """A new group `name` with the given limits, or None where the host offers none we may use."""
    parent = _v2_parent()
    if parent is not None:
        group = SandboxCgroup(2, {"": os.path.join(parent, name)})
    else:
        parents = _v1_parents()
        if parents is None:
            return None
        group = SandboxCgroup(1, {controller: os.path.join(folder, name) for controller, folder in parents.items()})
    try:
        for folder in group.directories.values():
            os.makedirs(folder, exist_ok=True)
        group.set_limits(memory_bytes, processes)
    except OSError:
        group.remove()
        return None
    return group


def describe_accounting():
    """How this host bounds a sandbox's memory, in words for the run's log."""
    if _v2_parent() is not None:
        return "cgroup v2 (memory.max and pids.max per sandbox)"
    if _v1_parents() is not None:
        return "cgroup v1 (memory.limit_in_bytes and pids.max per sandbox)"
    return ("rlimits only (no cgroup hierarchy this process may write: each process of a sandbox is bounded, "
            "not their sum)")
