"""pytest plugin: run databroker-pack's own test suite against pack-stream's drop-in commands.

Loaded with ``-p dropin_plugin`` by scripts/upstream-tests.sh in ``pack-stream`` mode,
before the suite's conftest.py is imported, so that:

* conftest's ``unpack_inplace`` (imported from ``databroker_pack._unpack``) runs the
  ``databroker-unpack inplace PATH NAME`` found first on PATH -- pack-stream's drop-in --
  and returns the path it prints (``Placed configuration file at ...``), as the Python
  function returns it;
* test_strict.py is skipped: it calls the Python function ``copy_external_files``
  directly, with no command line in between, so there is nothing of pack-stream's
  for it to exercise (pack-stream's ``--strict`` copying is tested in test/dropin.test.ts).
"""
import re
import shutil
import subprocess

import pytest
import databroker_pack._unpack


def _unpack_inplace_via_cli(path, name, merge=True):
    exe = shutil.which("databroker-unpack")
    args = [exe, "inplace", str(path), name]
    if not merge:
        args.append("--no-merge")
    p = subprocess.run(args, capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} exited {p.returncode}: {p.stderr.strip()}")
    m = re.search(r"^Placed configuration file at (.+)$", p.stdout, re.M)
    if not m:
        raise RuntimeError(f"{' '.join(args)} printed no 'Placed configuration file at': {p.stdout!r}")
    return m.group(1)


databroker_pack._unpack.unpack_inplace = _unpack_inplace_via_cli


def pytest_report_header(config):
    return [f"drop-in: databroker-pack = {shutil.which('databroker-pack')}, databroker-unpack = {shutil.which('databroker-unpack')}"]


def pytest_collection_modifyitems(config, items):
    skip = pytest.mark.skip(reason="calls the Python function copy_external_files, not a command: not applicable to the drop-in")
    for item in items:
        if item.module.__name__.endswith("test_strict"):
            item.add_marker(skip)
