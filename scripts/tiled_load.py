#!/usr/bin/env python3
"""Load a running Tiled server with REAL bluesky RunEngine runs through TiledWriter.

    $(bash scripts/tiled-env.sh) scripts/tiled_load.py URL --api-key KEY --detector-dir DIR

URL is the Tiled server (http://127.0.0.1:PORT); DIR must be under one of the
server's readable storage roots, because TiledWriter registers the detector
files it finds there. Prints one JSON object on stdout:

    {"runs": [{"uid": ..., "key": ..., "scan_id": ...}, ...]}

The runs (ophyd.sim devices, bluesky 1.15.1's RunEngine, bluesky-tiled-plugins'
TiledWriter, the same path a beamline takes when it writes into Tiled):

- ``count_scalar``: count of two scalar detectors;
- ``scan_baseline``: scan of det vs motor with a baseline stream (two streams);
- ``count_npy``: ophyd.sim's image detector writing NPY_SEQ files (one .npy per frame);
- ``scan_hdf5``: an area-detector-like device writing its frames into one HDF5
  file (legacy resource spec ``AD_HDF5``, ``/entry/data/data``, one frame per point),
  stepped against a motor;
- ``count_array``: a 20-element array per event (kept by Tiled in an array node of its own).

Everything else goes to stderr.
"""
import argparse
import json
import os
import sys
import tempfile
import uuid
from pathlib import Path


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("url")
    p.add_argument("--api-key", required=True)
    p.add_argument("--detector-dir", required=True)
    p.add_argument("--repeat", type=int, default=1, help="load the set of runs this many times")
    p.add_argument("--points", type=int, default=5, help="points per scan / frames per image run")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    detector_dir = Path(args.detector_dir).resolve()
    detector_dir.mkdir(parents=True, exist_ok=True)
    # ophyd.sim mkdtemp()s at import time: keep that out of the system /tmp.
    os.environ["TMPDIR"] = tempfile.mkdtemp(dir=detector_dir.parent, prefix="ophyd-tmp-")

    import h5py
    import numpy as np
    import bluesky.plans as bp
    import bluesky.preprocessors as bpp
    from bluesky import RunEngine
    from bluesky_tiled_plugins import TiledWriter
    from ophyd import Component, Device, Signal
    from ophyd.sim import SynGauss, SynSignal, SynSignalWithRegistry, motor, motor1, motor2, det, noisy_det
    from tiled.client import from_uri

    np.random.seed(7)
    client = from_uri(args.url, api_key=args.api_key)
    RE = RunEngine({})
    RE.subscribe(TiledWriter(client))

    def npy_detector(name, shape=(6, 8)):
        root = detector_dir / "npy"
        root.mkdir(exist_ok=True)
        return SynSignalWithRegistry(
            func=lambda: np.random.random(shape),
            name=name,
            labels={"detectors"},
            save_path=str(root),
        )

    class HDF5Detector(Device):
        """Frames appended to one HDF5 file per run, announced as an AD_HDF5
        resource (as areaDetector's HDF5 plugin does)."""

        image = Component(Signal, value=0, kind="hinted")

        def __init__(self, *a, root, shape=(5, 7), **kw):
            super().__init__(*a, **kw)
            self._root = Path(root)
            self._shape = shape
            self._file = None
            self._asset_docs = []

        def stage(self):
            self._root.mkdir(parents=True, exist_ok=True)
            rel = f"{uuid.uuid4().hex}.h5"
            self._path = self._root / rel
            self._file = h5py.File(self._path, "w")
            self._ds = self._file.create_dataset(
                "/entry/data/data", shape=(0, *self._shape), maxshape=(None, *self._shape), dtype="uint16"
            )
            self._resource_uid = str(uuid.uuid4())
            self._asset_docs.append(("resource", {
                "uid": self._resource_uid, "spec": "AD_HDF5", "root": str(self._root),
                "resource_path": rel, "resource_kwargs": {"frame_per_point": 1}, "path_semantics": "posix",
            }))
            self._n = 0
            return super().stage()

        def unstage(self):
            if self._file is not None:
                self._file.close()
                self._file = None
            return super().unstage()

        def trigger(self):
            frame = (np.arange(np.prod(self._shape)).reshape(self._shape) + 100 * self._n).astype("uint16")
            self._ds.resize(self._n + 1, axis=0)
            self._ds[self._n] = frame
            self._file.flush()
            datum_id = f"{self._resource_uid}/{self._n}"
            self._asset_docs.append(("datum", {
                "resource": self._resource_uid, "datum_id": datum_id, "datum_kwargs": {"point_number": self._n},
            }))
            self._n += 1
            self.image.put(datum_id)
            return super().trigger()

        def describe(self):
            d = super().describe()
            d[self.image.name].update(
                {"shape": [*self._shape], "dtype": "array", "dtype_numpy": "<u2", "external": "FILESTORE:"}
            )
            return d

        def collect_asset_docs(self):
            items, self._asset_docs = self._asset_docs, []
            yield from items

    # More than 16 elements per event: TiledWriter keeps it in an array node of its own.
    spectrum = SynSignal(func=lambda: np.random.random(20), name="spectrum", labels={"detectors"})
    img = npy_detector("img")
    h5det = HDF5Detector(name="h5det", root=detector_dir / "hdf5")
    h5det.image.name = "h5det_image"

    n = args.points
    plans = [
        ("count_scalar", lambda: bp.count([det, noisy_det], num=n, md={"purpose": "scalars"})),
        ("scan_baseline", lambda: bpp.baseline_wrapper(
            bp.scan([det], motor, -1, 1, n, md={"purpose": "baseline", "sample": "Si(111)"}), [motor1, motor2])),
        ("count_npy", lambda: bp.count([img, det], num=n, md={"purpose": "NPY_SEQ images"})),
        ("scan_hdf5", lambda: bp.scan([h5det, det], motor, 0, 1, n, md={"purpose": "AD_HDF5 images"})),
        ("count_array", lambda: bp.count([spectrum, det], num=n, md={"purpose": "a 20-element array per event"})),
    ]
    runs = []
    for _ in range(args.repeat):
        for key, plan in plans:
            (uid,) = RE(plan())
            runs.append({"uid": uid, "key": key, "scan_id": client[uid].metadata["start"]["scan_id"]})
            print(f"tiled_load: {key} {uid}", file=sys.stderr)
    json.dump({"runs": runs}, sys.stdout)
    print()


if __name__ == "__main__":
    main()
