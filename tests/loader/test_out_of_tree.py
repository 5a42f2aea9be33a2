"""A third-party plugin built without the source tree.

Installs this build to a temporary prefix (`cmake --install --prefix`), copies
examples/event_counter outside the repository and builds it twice against the
INSTALLED package only: with CMake (find_package(Pyoco) +
pyoco_add_plugin_module) and with its plain Makefile (pkg-config). Each time
the compiler's dependency output must show the pyoco headers came from the
prefix and nothing from the source or build tree. Then the INSTALLED binary
loads it (and the installed rest plugin) over real HTTP on --port 0: a run
submitted with POST /runs and driven to COMPLETED moves the example's
counters, and `pyoco plugins list` shows it; a bad `route` stops the server
with the file, line and key. Finally, copies of the example built for another
ABI (major + 1, minor + 1) are refused with a message that says which ABI the
plugin wants and which the server speaks."""
import json
import os
import re
import shutil
import subprocess
import tempfile

import pyoco_test
from pyoco_test import BUILD_DIR, SOURCE_DIR, Server, check, run_tests

EXAMPLE = os.path.join(SOURCE_DIR, "examples", "event_counter")
REPO = os.path.realpath(SOURCE_DIR)
BUILD = os.path.realpath(BUILD_DIR)


def sh(cmd, cwd=None, env=None, timeout=60):
    e = dict(os.environ)
    e.update(env or {})
    p = subprocess.run(cmd, cwd=cwd, env=e, capture_output=True, text=True,
                       timeout=timeout)
    check(p.returncode == 0, "command failed:", " ".join(cmd),
          "\n" + p.stdout + p.stderr)
    return p.stdout + p.stderr


def no_tree_paths(text, what):
    """`text` (a compile line, a .d file) must not mention the repo or build."""
    for tree in (REPO, BUILD):
        check(tree not in text, what, "mentions", tree, ":\n" + text)


def headers_from_prefix(depfile, prefix):
    """The pyoco headers the compiler actually read are the installed ones."""
    with open(depfile) as f:
        deps = f.read()
    no_tree_paths(deps, depfile)
    inc = os.path.join(prefix, "include", "pyoco")
    for h in ("plugin.h", "events.h", "types.h"):
        check(os.path.join(inc, h) in deps, depfile, "does not use", inc, h,
              ":\n" + deps)


def exported_symbols(so):
    out = sh(["nm", "-D", "--defined-only", so])
    return sorted(f[2] for f in (line.split() for line in out.splitlines())
                  if len(f) == 3)


class Env:
    """One temp dir (outside the repo) holding the prefix and the builds."""

    def __init__(self):
        self.tmp = os.path.realpath(tempfile.mkdtemp(prefix="pyoco-oot-"))
        for tree in (REPO, BUILD):
            check(os.path.commonpath([self.tmp, tree]) != tree,
                  "temp dir", self.tmp, "is inside", tree)
        self.prefix = os.path.join(self.tmp, "prefix")
        out = sh(["cmake", "--install", BUILD, "--prefix", self.prefix])
        self.install_log = out
        self.bin = os.path.join(self.prefix, "bin", "pyoco")
        self.pcdir = os.path.join(self.prefix, "lib", "pkgconfig")
        self.plugindir = os.path.join(self.prefix, "lib", "pyoco", "plugins")
        for p in (self.bin, os.path.join(self.plugindir, "rest.so"),
                  os.path.join(self.pcdir, "pyoco.pc"),
                  os.path.join(self.prefix, "include", "pyoco", "plugin.h"),
                  os.path.join(self.prefix, "lib", "cmake", "Pyoco",
                               "PyocoConfig.cmake"),
                  os.path.join(self.prefix, "lib", "cmake", "Pyoco",
                               "PyocoConfigVersion.cmake"),
                  os.path.join(self.prefix, "lib", "cmake", "Pyoco",
                               "PyocoPlugin.cmake")):
            check(os.path.exists(p), "not installed:", p)
        # The ABI the installed headers describe (pyoco.pc says it too).
        with open(os.path.join(self.prefix, "include", "pyoco",
                               "plugin.h")) as f:
            h = f.read()
        self.abi = tuple(int(re.search(r"#define PYOCO_ABI_%s (\d+)" % w,
                                       h).group(1)) for w in ("MAJOR", "MINOR"))
        self.abi_str = "%d.%d" % self.abi

    def copy_example(self, name):
        dst = os.path.join(self.tmp, name)
        shutil.copytree(EXAMPLE, dst, ignore=shutil.ignore_patterns(
            "build*", "*.so", "*.o", "*.d"))
        return dst

    def pkg_env(self):
        # Searched before the system dirs: a pyoco.pc elsewhere cannot win
        # (and the dependency files below prove which headers were used).
        return {"PKG_CONFIG_PATH": self.pcdir}

    def cleanup(self):
        shutil.rmtree(self.tmp, ignore_errors=True)


ENV = None


def env():
    global ENV
    if ENV is None:
        ENV = Env()
    return ENV


def build_with_cmake(e):
    src = e.copy_example("ec-cmake")
    bdir = os.path.join(src, "build")
    sh(["cmake", "-S", src, "-B", bdir, "-DCMAKE_PREFIX_PATH=" + e.prefix,
        "-DCMAKE_BUILD_TYPE=Release"], env=e.pkg_env())
    out = sh(["cmake", "--build", bdir, "--verbose"], env=e.pkg_env())
    with open(os.path.join(bdir, "CMakeCache.txt")) as f:
        cache = f.read()
    m = re.search(r"^Pyoco_DIR:PATH=(.*)$", cache, re.M)
    check(m and m.group(1) == os.path.join(e.prefix, "lib", "cmake", "Pyoco"),
          "find_package(Pyoco) used", m and m.group(1))
    compile_lines = [l for l in out.splitlines() if " -c " in l]
    check(compile_lines, "no compile line in:\n" + out)
    for line in compile_lines:
        no_tree_paths(line, "cmake compile line")
        check(os.path.join(e.prefix, "include") in line, line)
        check("-fvisibility=hidden" in line, line)
    link = [l for l in out.splitlines() if "event_counter.so" in l and "-o" in l]
    check(link and "-Wl,--no-undefined" in link[0], "link line", link)
    deps = [os.path.join(dp, f) for dp, _, fs in os.walk(bdir) for f in fs
            if f.endswith(".c.o.d")]
    check(len(deps) == 1, deps)
    headers_from_prefix(deps[0], e.prefix)
    so = os.path.join(bdir, "event_counter.so")
    check(exported_symbols(so) == ["pyoco_plugin_entry"], exported_symbols(so))
    return bdir


def build_with_make(e, src=None):
    src = src or e.copy_example("ec-make")
    depfile = os.path.join(src, "headers.d")
    out = sh(["make", "-C", src, "CFLAGS=-O2 -MD -MF " + depfile],
             env=e.pkg_env())
    line = [l for l in out.splitlines() if "-shared" in l]
    check(line, "no compile line in:\n" + out)
    no_tree_paths(line[0], "make compile line")
    check("-I" + os.path.join(e.prefix, "include") in line[0], line[0])
    check("-fvisibility=hidden" in line[0], line[0])
    check("-Wl,--no-undefined" in line[0], line[0])
    headers_from_prefix(depfile, e.prefix)
    return src


def test_package_files():
    e = env()
    out = sh(["pkg-config", "--cflags", "--libs", "pyoco"], env=e.pkg_env())
    check("-I" + os.path.join(e.prefix, "include") in out, out)
    check("-ljansson" in out, out)
    pd = sh(["pkg-config", "--variable=plugindir", "pyoco"], env=e.pkg_env())
    check(pd.strip() == e.plugindir, pd)
    v = sh([e.bin, "--version"])
    abi = sh(["pkg-config", "--variable=abi_major", "pyoco"], env=e.pkg_env())
    abi_minor = sh(["pkg-config", "--variable=abi_minor", "pyoco"],
                   env=e.pkg_env())
    check("%s.%s" % (abi.strip(), abi_minor.strip()) == e.abi_str, abi, e.abi)
    check("plugin ABI %s)" % e.abi_str in v, v, e.abi)
    # Nothing of the build or the source tree leaks into the package files.
    for dp, _, fs in os.walk(os.path.join(e.prefix, "lib")):
        for f in fs:
            if f.endswith((".cmake", ".pc")):
                with open(os.path.join(dp, f)) as fh:
                    no_tree_paths(fh.read(), os.path.join(dp, f))


def test_compiled_in_plugin_dir():
    """The installed binary searches <CMAKE_INSTALL_PREFIX>/<libdir>/pyoco/
    plugins of its configure step (plus plugin_path): the error for a missing
    plugin names it. Installing elsewhere prints a note saying so."""
    e = env()
    with open(os.path.join(BUILD, "CMakeCache.txt")) as f:
        cache = f.read()
    prefix = re.search(r"^CMAKE_INSTALL_PREFIX:PATH=(.*)$", cache, re.M).group(1)
    libdir = re.search(r"^CMAKE_INSTALL_LIBDIR:PATH=(.*)$", cache, re.M).group(1)
    want = os.path.join(prefix, libdir, "pyoco", "plugins")
    cfg = os.path.join(e.tmp, "missing.yaml")
    with open(cfg, "w") as f:
        f.write("plugins:\n  no_such_plugin_here: {}\n")
    p = subprocess.run([e.bin, "server", "start", "--config", cfg, "--host",
                        "127.0.0.1", "--port", "0"], capture_output=True,
                       text=True, timeout=20, cwd=e.tmp)
    check(p.returncode != 0, p.returncode)
    check(want + "/no_such_plugin_here.so" in p.stdout + p.stderr,
          want, p.stdout + p.stderr)
    if prefix != e.prefix:
        check(want in e.install_log and e.prefix in e.install_log,
              "no install note:\n" + e.install_log)


def test_example_builds_and_runs_from_installed_package():
    e = env()
    cmake_dir = build_with_cmake(e)
    make_dir = build_with_make(e)
    # Both builds load; the CMake one is served, the make one is listed.
    for d in (cmake_dir, make_dir):
        cfg = os.path.join(e.tmp, "list.yaml")
        with open(cfg, "w") as f:
            f.write("plugin_path: [%s, %s]\nplugins:\n  event_counter: {}\n"
                    % (json.dumps(d), json.dumps(e.plugindir)))
        out = sh([e.bin, "plugins", "list", "--config", cfg, "--json"])
        listed = {p["name"]: p for p in json.loads(out)}
        ec = listed.get("event_counter")
        check(ec is not None, out)
        check(ec["file"] == os.path.join(d, "event_counter.so"), ec)
        check(ec["version"] == "1.0.0" and ec["abi"] == e.abi_str, ec)
        check([k["name"] for k in ec["config_keys"]] == ["route"], ec)
        check(listed["rest"]["file"] == os.path.join(e.plugindir, "rest.so"),
              listed["rest"])
        text = sh([e.bin, "plugins", "list", "--config", cfg])
        check("event_counter 1.0.0 (ABI %s)" % e.abi_str in text, text)

    old_bin = pyoco_test.BIN
    pyoco_test.BIN = e.bin  # the INSTALLED server, not the build tree's
    try:
        srv = Server(config={"plugin_path": [cmake_dir, e.plugindir]},
                     plugins={"rest": {},
                              "event_counter": {"route": "/example/events"}},
                     workdir=e.tmp)
        with srv:
            srv.wait_log(r"\[event_counter\] counting events at GET "
                         r"/example/events")
            st, before = srv.json("GET", "/example/events")
            check(st == 200, st, before)
            check(before["by_kind"]["run_submitted"] == 0, before)
            check(before["finished"] == {"COMPLETED": 0, "FAILED": 0,
                                         "CANCELLED": 0}, before)
            st, sub = srv.json("POST", "/runs",
                               {"flow_name": "demo", "params": {"x": 1}})
            check(st == 200 and sub["status"] == "PENDING", st, sub)
            st, poll = srv.json("POST", "/workers/poll", {"worker_id": "w1"})
            check(st == 200 and poll["run_id"] == sub["run_id"], poll)
            st, hb = srv.json("POST", "/runs/%s/heartbeat" % sub["run_id"],
                              {"task_states": {"t1": "SUCCEEDED"},
                               "run_status": "COMPLETED"})
            check(st == 200, st, hb)
            st, after = srv.json("GET", "/example/events")
            check(st == 200, st, after)
            k = after["by_kind"]
            check(k["run_submitted"] == 1, after)
            check(k["run_assigned"] == 1, after)
            check(k["run_finished"] == 1, after)
            # NONE->PENDING, PENDING->COMPLETED
            check(k["run_status"] == 2, after)
            check(after["finished"]["COMPLETED"] == 1, after)
            check(k["http_request"] >= 4, after)  # the 4 requests before
            check(after["total"] > before["total"], before, after)
            check(after["total"] == sum(k.values()), after)
            # the installed rest plugin answered, with the finished run
            st, run = srv.json("GET", "/runs/" + sub["run_id"])
            check(st == 200 and run["status"] == "COMPLETED", run)
        check(srv.proc.returncode == 0, srv.log())
    finally:
        pyoco_test.BIN = old_bin


def test_example_bad_route_is_refused_clearly():
    """The example's own config check, in the installed server: a route
    that is not a path, or one the rest plugin already serves."""
    e = env()
    src = build_with_make(e, e.copy_example("ec-route"))
    for route, msg in (("nope", r"pyoco\.yaml:5: route must start with '/', "
                                r"got 'nope'"),
                       ("/runs", r"cannot serve /runs: File exists")):
        cfg = os.path.join(src, "pyoco.yaml")
        with open(cfg, "w") as f:
            f.write("plugin_path: [%s, %s]\nplugins:\n  rest: {}\n"
                    "  event_counter:\n    route: %s\n"
                    % (json.dumps(src), json.dumps(e.plugindir), route))
        p = subprocess.run([e.bin, "server", "start", "--config", cfg,
                            "--host", "127.0.0.1", "--port", "0"],
                           capture_output=True, text=True, timeout=20, cwd=src)
        out = p.stdout + p.stderr
        check(p.returncode == 1, p.returncode, out)
        check(re.search(r"plugin 'event_counter' \(.*event_counter\.so\): "
                        r"init failed: .*" + msg, out), msg, out)
        check("listening on" not in out, out)


def test_abi_mismatch_is_refused_clearly():
    """Built against the installed headers but claiming another ABI: the
    installed server refuses it before calling into it, and says why."""
    e = env()
    major, minor = e.abi
    cases = [("PYOCO_ABI_MAJOR + 1", "0", "plugin built for ABI %d.0, this "
              "server speaks %s (majors must match)" % (major + 1, e.abi_str)),
             ("PYOCO_ABI_MAJOR", "PYOCO_ABI_MINOR + 1", "plugin needs ABI "
              "%d.%d, this server speaks %s (upgrade the server)"
              % (major, minor + 1, e.abi_str))]
    for i, (major, minor, msg) in enumerate(cases):
        src = e.copy_example("ec-abi%d" % i)
        path = os.path.join(src, "event_counter.c")
        with open(path) as f:
            code = f.read()
        check("PYOCO_PLUGIN_DESC_INIT," in code, "example changed")
        code = code.replace(
            "PYOCO_PLUGIN_DESC_INIT,",
            ".size = sizeof(pyoco_plugin_desc), .abi_major = %s, "
            ".abi_minor = %s," % (major, minor), 1)
        with open(path, "w") as f:
            f.write(code)
        build_with_make(e, src)
        cfg = os.path.join(src, "pyoco.yaml")
        with open(cfg, "w") as f:
            f.write("plugin_path: [%s, %s]\nplugins:\n  rest: {}\n"
                    "  event_counter: {}\n" % (json.dumps(src),
                                               json.dumps(e.plugindir)))
        p = subprocess.run([e.bin, "server", "start", "--config", cfg,
                            "--host", "127.0.0.1", "--port", "0"],
                           capture_output=True, text=True, timeout=20, cwd=src)
        out = p.stdout + p.stderr
        check(p.returncode == 1, p.returncode, out)
        check("ABI mismatch: " + msg in out, msg, out)
        check("event_counter.so" in out, out)
        check("listening on" not in out, out)
        p = subprocess.run([e.bin, "plugins", "list", "--config", cfg],
                           capture_output=True, text=True, timeout=20)
        check(p.returncode == 1 and "ABI mismatch: " + msg in p.stderr,
              p.returncode, p.stdout, p.stderr)


if __name__ == "__main__":
    try:
        run_tests(globals())
    finally:
        if ENV is not None:
            ENV.cleanup()
