#!/usr/bin/env python3
"""Generate a catalog of REAL bluesky RunEngine output for pack-stream.

The sample catalog shipped in the repository was produced with:

    $(bash scripts/pyenv.sh) scripts/make_catalog.py examples/catalog --corpus small

(add --force to regenerate over an existing one; with the same --seed and the
same pinned packages every uid and file name comes out identical, only the
``time`` fields change), and the larger interop corpus (generated at test time,
never committed) with:

    $(bash scripts/pyenv.sh) scripts/make_catalog.py /tmp/corpus-msgpack --corpus full
    $(bash scripts/pyenv.sh) scripts/make_catalog.py /tmp/corpus-jsonl --corpus full --format jsonl

Usage:

    python scripts/make_catalog.py OUT [--format msgpack|jsonl] [--corpus small|full]
                                       [--seed N] [--force] [--no-verify]

What it writes:

    OUT/catalog.yml            intake catalog, one source named ``example``
    OUT/documents/<uid>.msgpack (or .jsonl), one file per run, written by
                               suitcase-msgpack / suitcase-jsonl exactly as a
                               bluesky RunEngine subscription would write them
    OUT/external/...           NPY_SEQ image files written by ophyd.sim's
                               SynSignalWithRegistry

The runs come from a bluesky RunEngine driving ophyd.sim devices.  The image
detector's ``save_path`` is a fixed, recognisable absolute path
(``/tmp/pack-stream-example-images``, and ``/tmp/pack-stream-example-images-b``
for the second detector of the full corpus), so Resource documents carry that
``root`` exactly as real data carries the detector's save directory.  The
``save_func`` redirects the actual file writes into ``OUT/external/`` (so
concurrent generations never collide and nothing is left behind in /tmp), and
``catalog.yml`` maps each root to its folder under ``OUT`` through
``root_map``.  Note that databroker 1.2.5 does NOT resolve a relative
``root_map`` value against the catalog file (``event_model.Filler`` does
``os.path.join(root, resource_path)``, so it would be relative to the current
working directory); the value is therefore written as the intake template
``{{ CATALOG_DIR }}external``, and ``metadata.relative_root_map`` records the
plain relative form (``external``) for readers that do not render templates.
intake (<= 0.6.4, ``intake.catalog.local.get_dir``) renders ``CATALOG_DIR``
as the absolute directory WITH a trailing ``/``, hence no ``/`` after the
template (``{{ CATALOG_DIR }}/x`` would give ``/dir//x``, which then leaks
into databroker-pack's root_map and external-file manifests).

Determinism: ``--seed`` seeds ``random``/``numpy`` and replaces
``uuid.uuid4`` with a seeded generator, so start/descriptor/event/resource
uids, NPY_SEQ file stems and file names are identical between regenerations.
Timestamps (``time``) are real wall-clock times and do change.
"""
import argparse
import os
import random
import shutil
import sys
import tempfile
import uuid
from pathlib import Path

IMAGE_ROOT = "/tmp/pack-stream-example-images"
IMAGE_ROOT_B = "/tmp/pack-stream-example-images-b"


def _install_seeded_uuid4(seed):
    rng = random.Random(seed)  # seed is a str: "<corpus>:<N>"

    def uuid4():
        return uuid.UUID(int=rng.getrandbits(128), version=4)

    uuid.uuid4 = uuid4


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", help="output directory")
    p.add_argument("--format", choices=["msgpack", "jsonl"], default="msgpack")
    p.add_argument("--corpus", choices=["small", "full"], default="small")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--force",
        action="store_true",
        help="replace OUT/catalog.yml, OUT/documents and OUT/external if present",
    )
    p.add_argument("--no-verify", action="store_true", help="skip the databroker read-back check")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    out = Path(args.out).absolute()
    targets = [out / "catalog.yml", out / "documents", out / "external"]
    if any(t.exists() for t in targets):
        if not args.force:
            sys.exit(f"{out} already holds a catalog; pass --force to replace it")
        for t in targets:
            if t.is_dir():
                shutil.rmtree(t)
            elif t.exists():
                t.unlink()
    (out / "documents").mkdir(parents=True, exist_ok=True)
    (out / "external").mkdir(parents=True, exist_ok=True)

    # Import everything first (some modules, e.g. opentelemetry and xarray,
    # call uuid4() at import time, and some imports happen lazily on the
    # RunEngine thread), then seed, so that uids are reproducible.
    import numpy as np
    import bluesky.plan_stubs  # noqa: F401
    import bluesky.plans  # noqa: F401
    import bluesky.preprocessors  # noqa: F401
    import dask.array  # noqa: F401
    import event_model  # noqa: F401
    import suitcase.jsonl  # noqa: F401
    import suitcase.msgpack  # noqa: F401
    import xarray  # noqa: F401
    from bluesky import RunEngine  # noqa: F401

    # ophyd.sim builds its demo hardware at import time, and its `img` calls
    # mkdtemp(); keep that out of the real /tmp.
    with tempfile.TemporaryDirectory() as scratch:
        saved = tempfile.tempdir
        tempfile.tempdir = scratch
        try:
            import ophyd.sim  # noqa: F401
        finally:
            tempfile.tempdir = saved

    _install_seeded_uuid4(f"{args.corpus}:{args.seed}")
    random.seed(args.seed)
    np.random.seed(args.seed)

    runs = generate(out, args)
    write_catalog_yml(out, args)
    summary(runs)
    if not args.no_verify:
        verify(out, args, runs)
    return 0


# ---------------------------------------------------------------------------
# devices


class Devices:
    def __init__(self, out, np):
        from ophyd import Signal
        from ophyd.sim import DirectImage, Syn2DGauss, SynAxis, SynGauss

        self.np = np
        self.out = out
        self.motor = SynAxis(name="motor", labels={"motors"})
        self.motor1 = SynAxis(name="motor1", labels={"motors"})
        self.motor2 = SynAxis(name="motor2", labels={"motors"})
        self.motor3 = SynAxis(name="motor3", labels={"motors"})
        self.det = SynGauss("det", self.motor, "motor", center=0, Imax=1, sigma=1, labels={"detectors"})
        self.det1 = SynGauss("det1", self.motor1, "motor1", center=0, Imax=5, sigma=0.5, labels={"detectors"})
        self.det2 = SynGauss("det2", self.motor2, "motor2", center=1, Imax=2, sigma=2, labels={"detectors"})
        self.det4 = Syn2DGauss(
            "det4", self.motor1, "motor1", self.motor2, "motor2", center=(0, 0), Imax=1, labels={"detectors"}
        )
        self.noisy_det = SynGauss(
            "noisy_det", self.motor, "motor", center=0, Imax=1, noise="uniform", sigma=1,
            noise_multiplier=0.1, labels={"detectors"},
        )
        # An "area detector" that keeps its (small) image inside the event.
        counter = iter(range(10**9))
        self.direct_img = DirectImage(
            func=lambda: np.arange(16, dtype=np.int32).reshape(4, 4) + next(counter),
            name="direct", labels={"detectors"},
        )
        self.direct_img.img.name = "direct_img"
        # Plain soft signals for exotic event values.
        self.whole = Signal(name="whole", value=1.0)
        self.count_i = Signal(name="count_i", value=0)
        self.flag = Signal(name="flag", value=False)
        self.label = Signal(name="label", value="")
        self.vector = Signal(name="vector", value=[0.0, 0.0, 0.0])
        self.np_i64 = Signal(name="np_i64", value=np.int64(0))
        self.np_f32 = Signal(name="np_f32", value=np.float32(0))

    def image_detector(self, name, root, subdir, shape=(10, 10), dtype="float64"):
        """ophyd.sim.SynSignalWithRegistry with save_path=root (what ends up
        in Resource.root) whose file writes are redirected into OUT/subdir."""
        from ophyd.sim import SynSignalWithRegistry

        np = self.np
        dest = self.out / subdir
        dest.mkdir(parents=True, exist_ok=True)
        frames = iter(range(10**9))
        n_pix = int(np.prod(shape))

        def image():
            # SynSignal calls func once at construction for the initial
            # readback; after that, triggered frame k (the k-th datum of the
            # run, file <stem>_k.npy), pixel i (C order) = k*1000 + i, easy to
            # check after a round trip.  Use each detector in one run only.
            k = next(frames) - 1
            if k < 0:
                return np.zeros(shape, dtype=dtype)
            return (np.arange(n_pix) + 1000 * k).astype(dtype).reshape(shape)

        def save(path, array):
            rel = os.path.relpath(path, root)
            assert not rel.startswith(".."), (path, root)
            np.save(dest / rel, array, allow_pickle=False)

        return SynSignalWithRegistry(
            func=image, name=name, labels={"detectors"}, save_path=root, save_func=save
        )


# ---------------------------------------------------------------------------
# plans


def plans_small(d):
    import bluesky.plans as bp
    import bluesky.preprocessors as bpp

    img = d.image_detector("img", IMAGE_ROOT, "external")
    return [
        dict(key="count_det", plan=bp.count([d.det], num=3), md={"purpose": "scalar count"}),
        dict(
            key="scan_baseline",
            plan=bpp.baseline_wrapper(bp.scan([d.det], d.motor, -1, 1, 5), [d.motor1, d.motor2]),
            md={"purpose": "scan of det vs motor with a baseline stream", "sample": "Si(111)"},
        ),
        dict(key="count_image", plan=bp.count([img, d.det], num=4),
             md={"purpose": "NPY_SEQ image detector (10x10 float64 frames)"}),
        dict(key="rel_scan", plan=bp.rel_scan([d.det1], d.motor1, -0.5, 0.5, 3), md={"purpose": "rel_scan"}),
    ]


def plans_full(d):
    import bluesky.plan_stubs as bps
    import bluesky.plans as bp
    import bluesky.preprocessors as bpp
    from bluesky.utils import RequestAbort

    np = d.np
    img = d.image_detector("img", IMAGE_ROOT, "external")
    img_b = d.image_detector("img_b", IMAGE_ROOT_B, "external/b", shape=(6, 8), dtype="uint16")
    baseline = [d.motor1, d.motor2, d.motor3]

    def aborting():
        @bpp.run_decorator(md={})
        def inner():
            for i in range(3):
                yield from bps.mv(d.motor, i)
                yield from bps.trigger_and_read([d.det, d.motor])
            raise RequestAbort()

        yield from inner()

    def failing():
        @bpp.run_decorator(md={})
        def inner():
            for i in range(2):
                yield from bps.mv(d.motor, -i)
                yield from bps.trigger_and_read([d.det, d.motor])
            raise ValueError("simulated failure inside the plan")

        yield from inner()

    def whole_floats():
        # events whose data values are whole-number floats (and other exotic
        # values), in two interleaved streams
        values = [1.0, 0.0, -0.0, 2.0, 1e16, -3.0, float("nan")]

        @bpp.run_decorator(md={})
        def inner():
            for i, v in enumerate(values):
                # Soft signals updated directly, as a control system would;
                # (bps.mv would wait forever for NaN == NaN).
                d.whole.put(v)
                d.count_i.put([0, 1, -1, 2**31, 2**53 + 1, 2**62, -(2**62)][i])
                d.flag.put(bool(i % 2))
                d.label.put(["a", "Müller", "温度", "🧪", "", "x" * 40, "q\"\\"][i])
                d.vector.put([float(i), 0.5 * i, -1.0])
                d.np_i64.put(np.int64(i * 10))
                d.np_f32.put(np.float32(i + 0.5))
                yield from bps.trigger_and_read(
                    [d.whole, d.count_i, d.flag, d.label, d.vector, d.np_i64, d.np_f32])
                if i % 3 == 0:
                    yield from bps.trigger_and_read([d.whole], name="secondary")

        yield from inner()

    nan = float("nan")
    weird_md = {
        "purpose": "exotic start metadata",
        "operator": "Müller",
        "sample": {"name": "温度 sensor 🧪", "composition": ["Fe", "Ni"], "mass_mg": 12.0},
        "emoji": "🔬🧪✨",
        "nested": {"a": [1, 2, {"b": None, "c": [[], {}]}], "d": {"e": {"f": "deep"}}},
        "nan_value": nan,
        "inf_values": [float("inf"), float("-inf")],
        # int64 range only: msgpack and JSON could take 2**64-1, but BSON cannot
        # (pymongo: "MongoDB can only handle up to 8-byte ints"), and this corpus
        # must also survive databroker-unpack mongo_normalized.
        "big_ints": [2**31, 2**32, 2**40, 2**53, 2**53 + 1, 2**62, 2**63 - 1, -(2**63)],
        "big_int": 2**62,
        "whole_floats": [1.0, 0.0, -0.0, 1e16, -2.0, 1e21, 123456789.0],
        "other_floats": [0.1, 1e-7, 5e-324, 1.5e300, 2.5e-5],
        "empty_dict": {},
        "empty_list": [],
        "empty_string": "",
        "bools": [True, False, None],
        "escapes": "tab\there\nnewline \"quoted\" back\\slash \x7f \x01",
        "long_string": "pack-stream " * 30,
        "many_keys": {f"k{i:02d}": i for i in range(20)},
    }

    return [
        dict(key="count_det", plan=bp.count([d.det], num=5), md={"purpose": "scalar count"}),
        dict(
            key="scan_baseline",
            plan=bpp.baseline_wrapper(bp.scan([d.det, d.noisy_det], d.motor, -1, 1, 7), baseline),
            md={"purpose": "scan with baseline"},
        ),
        dict(
            key="grid_scan",
            plan=bpp.baseline_wrapper(
                bp.grid_scan([d.det4], d.motor1, -1, 1, 3, d.motor2, -1, 1, 4, snake_axes=True), [d.motor3]),
            md={"purpose": "grid_scan with baseline"},
        ),
        dict(
            key="rel_scan_multi",
            plan=bp.rel_scan([d.det1, d.det2], d.motor1, -1, 1, d.motor2, 0, 2, 5),
            md={"purpose": "rel_scan of two motors"},
        ),
        dict(key="count_image", plan=bp.count([img, d.det], num=7),
             md={"purpose": "NPY_SEQ images, 7 datums (datum pages of 5 + 2)"}),
        dict(
            key="scan_image_baseline",
            plan=bpp.baseline_wrapper(bp.scan([img_b, d.det], d.motor, 0, 1, 3), [d.motor1]),
            md={"purpose": "NPY_SEQ uint16 images from a second root, with baseline"},
        ),
        dict(key="count_direct_image", plan=bp.count([d.direct_img], num=3),
             md={"purpose": "array data stored inside events (numpy ndarray)"}),
        dict(key="list_scan", plan=bp.list_scan([d.det], d.motor, [0.0, 1.0, 2.0, -1.0]),
             md={"purpose": "list_scan"}),
        dict(key="aborted", plan=aborting(), md={"purpose": "run aborted via RequestAbort"}),
        dict(key="failed", plan=failing(), md={"purpose": "run failing with an exception"}),
        dict(key="exotic_metadata", plan=bp.count([d.det], num=2), md=weird_md),
        dict(key="whole_float_events", plan=whole_floats(),
             md={"purpose": "events with whole-number floats, big ints, numpy scalars, two streams"}),
        dict(key="empty_run", plan=bpp.run_wrapper(iter([]), md={}),
             md={"purpose": "run with no descriptors or events"}),
        dict(key="no_stop", plan=bp.count([d.det], num=2), md={"purpose": "stop document lost (simulated crash)"},
             drop_stop=True),
    ]


# ---------------------------------------------------------------------------
# generation


def generate(out, args):
    import numpy as np
    from bluesky import RunEngine

    if args.format == "msgpack":
        from suitcase.msgpack import Serializer
    else:
        from suitcase.jsonl import Serializer

    documents = out / "documents"
    d = Devices(out, np)
    specs = plans_small(d) if args.corpus == "small" else plans_full(d)

    RE = RunEngine({})
    RE.md["beamline_id"] = "pack-stream-demo"
    RE.md["owner"] = "pack-stream"

    state = {"drop_stop": False, "serializer": None}
    runs = []

    # One serializer per run, fed the documents exactly as the RunEngine emits
    # them (event, datum, ...).  event_model.RunRouter is deliberately NOT used:
    # it turns event/datum into event_page/datum_page before its callbacks see
    # them, so suitcase-jsonl files would never contain plain event/datum rows
    # (suitcase-msgpack packs them into 1-row pages itself either way).
    def per_run(name, doc):
        if name == "start":
            state["serializer"] = Serializer(str(documents), file_prefix="{start[uid]}")
            runs[-1]["uid"] = doc["uid"]
        serializer = state["serializer"]
        if name == "stop":
            state["serializer"] = None
            if state["drop_stop"]:
                serializer.close()
                return
        serializer(name, doc)

    RE.subscribe(per_run)

    for spec in specs:
        runs.append({"key": spec["key"], "uid": None})
        state["drop_stop"] = spec.get("drop_stop", False)
        md = dict(spec["md"], pack_stream_example=spec["key"])
        try:
            RE(spec["plan"], **md)
        except Exception as exc:  # the 'failed' and 'aborted' runs
            print(f"[{spec['key']}] plan ended with {type(exc).__name__}: {exc}", file=sys.stderr)
    return runs


def write_catalog_yml(out, args):
    import yaml

    ext = args.format
    root_map = {IMAGE_ROOT: "{{ CATALOG_DIR }}external"}
    relative_root_map = {IMAGE_ROOT: "external"}
    if args.corpus == "full":
        root_map[IMAGE_ROOT_B] = "{{ CATALOG_DIR }}external/b"
        relative_root_map[IMAGE_ROOT_B] = "external/b"
    versions = {}
    for mod in ["bluesky", "ophyd", "event_model", "databroker", "msgpack", "numpy"]:
        try:
            versions[mod] = __import__(mod).__version__
        except Exception:
            pass
    source = {
        "description": f"pack-stream example catalog ({args.corpus} corpus) of bluesky RunEngine output",
        "driver": f"bluesky-{ext}-catalog",
        "args": {
            "paths": ["{{ CATALOG_DIR }}documents/*." + ext],
            "root_map": root_map,
        },
        "metadata": {
            "relative_paths": [f"./documents/*.{ext}"],
            "relative_root_map": relative_root_map,
            "generated_by": {
                "library": "pack-stream scripts/make_catalog.py",
                "corpus": args.corpus,
                "format": ext,
                "seed": args.seed,
                "versions": versions,
            },
        },
    }
    with open(out / "catalog.yml", "w") as f:
        yaml.dump({"sources": {"example": source}}, f)


def summary(runs):
    for r in runs:
        print(f"  {r['key']:<22} {r['uid']}", file=sys.stderr)


# ---------------------------------------------------------------------------
# verification with databroker


def verify(out, args, runs):
    import intake
    import numpy as np

    cat = intake.open_catalog(str(out / "catalog.yml"))["example"]
    uids = set(cat)
    expected = {r["uid"] for r in runs}
    assert uids == expected, (sorted(uids), sorted(expected))
    n_docs = 0
    for r in runs:
        run = cat[r["uid"]]
        names = [name for name, _ in run.canonical(fill="no")]
        n_docs += len(names)
        assert names[0] == "start", names[:1]
        if r["key"] == "no_stop":
            assert "stop" not in names and run.metadata["stop"] is None
        else:
            assert names[-1] == "stop", names[-1:]
        if r["key"] in ("count_image", "scan_image_baseline"):
            field = "img" if r["key"] == "count_image" else "img_b"
            data = run.primary.read()[field].values
            assert data.ndim == 3 and data.shape[0] >= 3, data.shape
            n_pix = data[0].size
            for k, frame in enumerate(data):
                assert np.array_equal(frame.ravel(), np.arange(n_pix) + 1000 * k), (field, k)
    statuses = {r["key"]: (cat[r["uid"]].metadata["stop"] or {}).get("exit_status") for r in runs}
    if args.corpus == "full":
        assert statuses["aborted"] == "abort", statuses
        assert statuses["failed"] == "fail", statuses
    print(f"verified {len(uids)} runs, {n_docs} canonical documents; exit statuses {statuses}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
