"""A throw-away single-node Slurm cluster on localhost, for tests of the Slurm executor.

It runs Debian's own daemons (munged, mariadbd, slurmdbd, slurmctld, slurmd) from a configuration written
into a fresh temporary folder, on ports the kernel hands out, with every socket, pid file, spool and log
inside that folder: it cannot clash with a real cluster or with another test run on the same machine.
Accounting (slurmdbd on a private mariadbd) is part of it because ``sacct`` is how a job that ended
without a result (cancelled, killed) is told apart from one still running once it has left the queue.

Every daemon is a child of this process started with a parent-death signal, so a test run that is killed
takes its cluster with it; :meth:`SlurmCluster.stop` stops them in order and then kills whatever is left
carrying this cluster's marker in its environment (job steps included), and nothing else.

Needs root (slurmd runs jobs as the submitting user and must be able to switch to it) and the packages
in :data:`PACKAGES`; ``.ci/run`` installs them.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

#: Debian packages the cluster needs (``apt-get install -y`` them; ``.ci/run`` does).
PACKAGES = ("slurm-wlm", "munge", "slurmdbd", "mariadb-server")
#: Programs looked for on PATH to decide whether the packages are installed.
PROGRAMS = ("munged", "mariadbd", "slurmdbd", "slurmctld", "slurmd", "sbatch", "srun", "squeue", "sacct", "scontrol")
#: Environment variable every daemon (and so every job step) carries: how stop() finds what is left.
MARKER = "BENCH_TEST_SLURM_CLUSTER"
PARTITION = "bench"
NODE = "benchnode"


class ClusterError(RuntimeError):
    """The test cluster did not come up (the message names the log to read)."""


def missing_programs() -> list[str]:
    return [p for p in PROGRAMS if shutil.which(p) is None]


def install_packages(timeout_s: float = 600) -> None:
    """``apt-get install`` the packages (root only); quiet unless it fails."""
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    cmd = ["apt-get", "install", "-y", "-q", *PACKAGES]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout_s)
    if r.returncode != 0:
        r = subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, text=True, timeout=timeout_s)
        r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout_s)
    if r.returncode != 0:
        raise ClusterError(f"apt-get install {' '.join(PACKAGES)} failed: {r.stderr.strip()[-500:]}")


def unavailable_reason() -> str | None:
    """Why a cluster cannot start here, or None."""
    if os.geteuid() != 0:
        return "the Slurm test cluster needs root (slurmd starts jobs as the submitting user)"
    missing = missing_programs()
    if missing:
        return (f"Slurm test cluster programs missing: {', '.join(missing)} "
                f"(apt-get install -y {' '.join(PACKAGES)}, or set BENCH_SLURM_INSTALL=1 to let the tests do it)")
    return None


def _free_ports(n: int) -> list[int]:
    """``n`` distinct TCP ports free on 127.0.0.1 now (held open together so they differ)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """preexec_fn: the kernel sends SIGTERM to this daemon when the test process dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def _node_hardware() -> str:
    """``slurmd -C``'s hardware line without its NodeName (sockets, cores, threads, memory as detected)."""
    out = subprocess.run(["slurmd", "-C"], capture_output=True, text=True, timeout=30, check=True).stdout
    line = out.splitlines()[0]
    return " ".join(w for w in line.split() if not w.startswith("NodeName="))


@dataclass
class SlurmCluster:
    """A running cluster: ``env`` (SLURM_CONF and the marker) is what a client needs."""

    root: Path
    partition: str = PARTITION
    node: str = NODE
    env: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    procs: list[tuple[str, subprocess.Popen]] = field(default_factory=list)
    leftovers_killed: list[int] = field(default_factory=list)  # pids stop() had to SIGKILL

    @property
    def conf(self) -> Path:
        return self.root / "etc" / "slurm.conf"

    def log(self, name: str) -> Path:
        return self.root / "log" / f"{name}.log"

    def run(self, *cmd: str, timeout: float = 30, check: bool = True) -> subprocess.CompletedProcess:
        """A Slurm client command against this cluster."""
        r = subprocess.run(list(cmd), env={**os.environ, **self.env}, capture_output=True, text=True,
                           timeout=timeout)
        if check and r.returncode != 0:
            raise ClusterError(f"{' '.join(cmd)} exited {r.returncode}: {r.stderr.strip()}")
        return r

    # -- start -------------------------------------------------------------------------------------------------

    def _spawn(self, name: str, cmd: list[str], **kw) -> subprocess.Popen:
        out = open(self.root / "log" / f"{name}.out", "ab")  # noqa: SIM115 - the daemon holds it
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                             env={**os.environ, **self.env}, preexec_fn=_die_with_parent, **kw)
        out.close()
        self.procs.append((name, p))
        return p

    def _wait(self, what: str, ok, timeout: float, log: str) -> None:
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            for name, p in self.procs:
                if p.poll() is not None:
                    raise ClusterError(f"{name} exited with {p.returncode} while waiting for {what}; "
                                       f"see {self.root / 'log'}/{name}.*")
            with contextlib.suppress(subprocess.TimeoutExpired, OSError):
                if ok():
                    return
            time.sleep(0.1)
        raise ClusterError(f"timed out after {timeout:.0f} s waiting for {what}; see {log}")

    def start(self, timeout: float = 60) -> None:
        t_all = time.monotonic()
        host = socket.gethostname().split(".")[0]
        for d in ("etc", "log", "db", "ctld", "spool", "munge"):
            (self.root / d).mkdir(parents=True, exist_ok=True)
        ctld_port, slurmd_port, dbd_port, db_port = _free_ports(4)
        munge_sock = self.root / "munge" / "munge.sock"
        self.env = {"SLURM_CONF": str(self.conf), MARKER: str(self.root)}

        # munged: its own key and socket, as user munge (it refuses insecure ownership).
        t = time.monotonic()
        mdir = self.root / "munge"
        key = mdir / "munge.key"
        key.write_bytes(os.urandom(1024))
        for p in (mdir, key):
            shutil.chown(p, "munge", "munge")
        key.chmod(0o400)
        mdir.chmod(0o755)  # clients must reach the socket; the key itself stays 0400
        self._spawn("munged", ["munged", "-F", f"--socket={munge_sock}", f"--key-file={key}",
                               f"--pid-file={mdir / 'munged.pid'}", f"--log-file={mdir / 'munged.log'}",
                               f"--seed-file={mdir / 'munged.seed'}"], user="munge", group="munge", extra_groups=[])

        def munge_ok() -> bool:
            enc = subprocess.run(["munge", "-n", "-S", str(munge_sock)], capture_output=True, timeout=5)
            return enc.returncode == 0 and subprocess.run(
                ["unmunge", "-S", str(munge_sock)], input=enc.stdout, capture_output=True, timeout=5).returncode == 0

        self._wait("munged", munge_ok, timeout, str(mdir / "munged.log"))
        self.timings["munged_s"] = time.monotonic() - t

        # mariadbd: an empty data folder, no grant tables (nothing but this test can reach 127.0.0.1:port).
        t = time.monotonic()
        db = self.root / "db"
        db_sock = db / "mysql.sock"
        self._spawn("mariadbd", ["mariadbd", "--no-defaults", f"--datadir={db / 'data'}", "--user=root",
                                 "--skip-grant-tables", "--skip-log-bin", f"--socket={db_sock}",
                                 f"--port={db_port}", "--bind-address=127.0.0.1", f"--pid-file={db / 'pid'}",
                                 f"--log-error={self.log('mariadbd')}", "--innodb-buffer-pool-size=16M",
                                 "--innodb-log-file-size=4M", "--skip-name-resolve"])
        (db / "data").mkdir(exist_ok=True)
        self._wait("mariadbd", lambda: _port_open(db_port), timeout, str(self.log("mariadbd")))
        self.timings["mariadbd_s"] = time.monotonic() - t

        auth = f"AuthType=auth/munge\nAuthInfo=socket={munge_sock},cred_expire=10\n"
        dbd_conf = self.root / "etc" / "slurmdbd.conf"
        dbd_conf.write_text(
            f"{auth}DbdHost={host}\nDbdAddr=127.0.0.1\nDbdPort={dbd_port}\nSlurmUser=root\n"
            f"LogFile={self.log('slurmdbd')}\nPidFile={self.root / 'slurmdbd.pid'}\n"
            f"StorageType=accounting_storage/mysql\nStorageHost=127.0.0.1\nStoragePort={db_port}\n"
            f"StorageUser=slurm\nStoragePass=unused\nStorageLoc=slurm_acct_db\nDebugLevel=info\n")
        dbd_conf.chmod(0o600)
        self.conf.write_text(_slurm_conf(
            host=host, auth=auth, munge_sock=munge_sock, ctld_port=ctld_port, slurmd_port=slurmd_port,
            dbd_port=dbd_port, root=self.root, node=self.node, partition=self.partition, hardware=_node_hardware()))

        t = time.monotonic()
        self._spawn("slurmdbd", ["slurmdbd", "-D"])
        self._wait("slurmdbd", lambda: _port_open(dbd_port), timeout, str(self.log("slurmdbd")))
        self.timings["slurmdbd_s"] = time.monotonic() - t

        t = time.monotonic()
        self._spawn("slurmctld", ["slurmctld", "-D", "-i", "-f", str(self.conf)])
        self._wait("slurmctld", lambda: self.run("scontrol", "ping", timeout=5, check=False).returncode == 0,
                   timeout, str(self.log("slurmctld")))
        self.timings["slurmctld_s"] = time.monotonic() - t

        t = time.monotonic()
        self._spawn("slurmd", ["slurmd", "-D", "-N", self.node, "-f", str(self.conf)])

        def node_idle() -> bool:
            r = self.run("sinfo", "-h", "-n", self.node, "-o", "%T", timeout=5, check=False)
            return r.returncode == 0 and r.stdout.strip() == "idle"

        self._wait(f"node {self.node} idle", node_idle, timeout, str(self.log("slurmd")))
        self.timings["slurmd_s"] = time.monotonic() - t

        # The accounting side must answer too: the backend reads ended jobs from sacct.
        t = time.monotonic()
        self._wait("sacct", lambda: self.run("sacct", "-n", "-X", timeout=5, check=False).returncode == 0,
                   timeout, str(self.log("slurmdbd")))
        self.timings["sacct_s"] = time.monotonic() - t
        self.timings["start_s"] = time.monotonic() - t_all

    # -- stop --------------------------------------------------------------------------------------------------

    def stop(self, timeout: float = 20) -> None:
        """Cancel every job, stop the daemons newest first, kill what is left with our marker."""
        t_all = time.monotonic()
        alive = {n for n, p in self.procs if p.poll() is None}
        if {"slurmctld", "slurmd"} <= alive:
            with contextlib.suppress(Exception):
                self.run("scancel", "--user", _user(), timeout=10, check=False)
                deadline = time.monotonic() + timeout
                while time.monotonic() < deadline:
                    r = self.run("squeue", "-h", "-o", "%i", timeout=5, check=False)
                    if r.returncode != 0 or not r.stdout.strip():
                        break
                    time.sleep(0.2)
        for _name, p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(timeout=timeout)
        self.procs.clear()
        self.leftovers_killed = _kill_marked(str(self.root))
        self.timings["stop_s"] = time.monotonic() - t_all


def _user() -> str:
    import pwd

    return pwd.getpwuid(os.geteuid()).pw_name


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _kill_marked(value: str) -> list[int]:
    """SIGKILL every process whose environment has ``MARKER=value`` (job steps of this cluster); their pids."""
    needle = f"{MARKER}={value}".encode()
    killed = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == os.getpid():
            continue
        try:
            env = (d / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if needle in env:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(d.name), signal.SIGKILL)
                killed.append(int(d.name))
    return killed


def _slurm_conf(*, host: str, auth: str, munge_sock: Path, ctld_port: int, slurmd_port: int, dbd_port: int,
                root: Path, node: str, partition: str, hardware: str) -> str:
    # Each setting below is one a single-node test cluster on a container without systemd needs:
    # cgroup plugins fail there ("cgroup namespace 'freezer' not mounted"); cons_tres + CR_Core lets jobs
    # share the node by cores (the default hands each job the whole node); batch_sched_delay=0 and
    # KillWait=5 and cred_expire=10 (in AuthInfo) turn seconds of waiting per job, kill and requeue
    # into a fraction of that.
    return f"""\
ClusterName=benchtest
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
{auth}SlurmUser=root
SlurmdUser=root
StateSaveLocation={root / 'ctld'}
SlurmdSpoolDir={root / 'spool'}/%n
SlurmctldPidFile={root / 'slurmctld.pid'}
SlurmdPidFile={root / 'slurmd.pid'}
SlurmctldLogFile={root / 'log' / 'slurmctld.log'}
SlurmdLogFile={root / 'log' / 'slurmd.log'}
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0,sched_interval=2,bf_interval=2
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
KillWait=5
MinJobAge=300
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort={dbd_port}
AccountingStoragePass={munge_sock}
JobCompType=jobcomp/none
NodeName={node} NodeHostname={host} NodeAddr=127.0.0.1 {hardware} State=UNKNOWN
PartitionName={partition} Nodes={node} Default=YES MaxTime=INFINITE State=UP
"""


@contextlib.contextmanager
def running_cluster(base: str | None = None, keep: bool = False) -> Iterator[SlurmCluster]:
    """Start a cluster in a new folder under ``base`` (default /tmp: socket paths must stay short), stop it after.

    ``keep`` leaves the folder (configuration and logs) in place for a post-mortem.
    """
    root = Path(tempfile.mkdtemp(prefix="bench-slurm-", dir=base or "/tmp"))
    root.chmod(0o755)  # munged runs as user munge and must reach its folder
    cluster = SlurmCluster(root=root)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        if not keep:
            shutil.rmtree(root, ignore_errors=True)
