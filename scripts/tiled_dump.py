#!/usr/bin/env python3
"""Dump Bluesky runs as one comparable JSON structure, from a Tiled server or from a pack.

    $(bash scripts/tiled-env.sh) scripts/tiled_dump.py server URL API_KEY UID...   # tiled's Python client
    $(bash scripts/pyenv.sh)     scripts/tiled_dump.py pack CATALOG_YML UID...     # databroker 1.2.5 (intake)

Prints {uid: {"start", "stop", "streams": {name: {"seq_num", "time",
"data": {key: column}, "timestamps": {key: column}}}}} on stdout. External
data keys hold the arrays (the server's array node, or the pack's filled
events stacked), as nested lists. Timestamps are those the server keeps
(``ts_<key>`` columns): Tiled keeps none for external keys, so they are left
out on both sides.
"""
import json
import math
import sys


def clean(v):
    """JSON-safe, keeping NaN comparable as a string."""
    if hasattr(v, "tolist"):
        v = v.tolist()
    if isinstance(v, float) and math.isnan(v):
        return "NaN"
    if isinstance(v, (list, tuple)):
        return [clean(x) for x in v]
    if isinstance(v, dict):
        return {k: clean(x) for k, x in v.items()}
    return v


def from_server(url, api_key, uids):
    from tiled.client import from_uri

    client = from_uri(url, api_key=api_key, structure_clients="numpy")
    out = {}
    for uid in uids:
        node = client[uid]
        md = node.metadata
        streams = {}
        for name in node:
            stream = node[name]
            parts = stream.base if hasattr(stream, "base") else stream
            table = parts["internal"].read()
            data, ts = {}, {}
            for col in table.columns:
                if col in ("seq_num", "time") or col.startswith("__index"):
                    continue
                if col.startswith("ts_"):
                    ts[col[3:]] = clean(table[col].to_numpy())
                else:
                    data[col] = clean(table[col].to_numpy())
            for key in parts:
                if key != "internal":
                    data[key] = clean(parts[key].read())
            streams[name] = {
                "seq_num": clean(table["seq_num"].to_numpy()),
                "time": clean(table["time"].to_numpy()),
                "data": data,
                "timestamps": ts,
            }
        out[uid] = {"start": clean(dict(md["start"])), "stop": clean(dict(md.get("stop") or {})), "streams": streams}
    return out


def from_pack(catalog_yml, uids):
    import intake
    import numpy as np

    cat = intake.open_catalog(catalog_yml)["packed_catalog"]
    out = {}
    for uid in uids:
        run = cat[uid]
        descs, streams, start, stop = {}, {}, None, None
        for name, doc in run.canonical(fill="yes"):
            if name == "start":
                start = doc
            elif name == "stop":
                stop = doc
            elif name == "descriptor":
                descs[doc["uid"]] = doc
            elif name == "event_page":
                desc = descs[doc["descriptor"]]
                s = streams.setdefault(desc["name"], {"seq_num": [], "time": [], "data": {}, "timestamps": {}, "_ext": set()})
                for k, d in desc["data_keys"].items():
                    if d.get("external"):
                        s["_ext"].add(k)
                s["seq_num"].extend(doc["seq_num"])
                s["time"].extend(doc["time"])
                for k, col in doc["data"].items():
                    s["data"].setdefault(k, []).extend(col)
                for k, col in doc["timestamps"].items():
                    s["timestamps"].setdefault(k, []).extend(col)
        for s in streams.values():
            for k in s.pop("_ext"):
                s["data"][k] = np.stack([np.asarray(x) for x in s["data"][k]])
                s["timestamps"].pop(k, None)
        out[uid] = {"start": clean(dict(start)), "stop": clean(dict(stop or {})), "streams": clean(streams)}
    return out


def main(argv):
    mode = argv[1]
    if mode == "server":
        result = from_server(argv[2], argv[3], argv[4:])
    elif mode == "pack":
        result = from_pack(argv[2], argv[3:])
    else:
        raise SystemExit(f"unknown mode {mode}")
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main(sys.argv)
