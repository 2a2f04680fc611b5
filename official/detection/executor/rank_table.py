"""Ascend rank tables (HCCL `RANK_TABLE_FILE`, format version 1.0).

    {"server_count": "1",
     "server_list": [{"server_id": "<host ip>",
                      "device": [{"device_id": "0", "device_ip": "<NPU ip>", "rank_id": "0"},
                                 ...]}],
     "status": "completed", "version": "1.0"}

Each device runs one training process whose RANK_ID is the table's `rank_id` and whose
DEVICE_ID / ASCEND_DEVICE_ID is the `device_id`; RANK_SIZE counts the devices of all
servers. The launch scripts call

    python -m official.detection.executor.rank_table --rank_table_file=F --server_index=I

to check a table and list the ranks this server starts (`rank_size=N`, then one
`<rank_id> <device_id>` line per local device). Pure Python, no TensorFlow.
"""

import argparse
import collections
import json
import sys

Device = collections.namedtuple("Device", ["device_id", "device_ip", "rank_id"])
Server = collections.namedtuple("Server", ["server_id", "devices"])


class RankTableError(ValueError):
    """A rank table that HCCL would reject; the message names the file and the entry."""


def _int_field(entry, key, where):
    try:
        return int(entry[key])
    except KeyError:
        raise RankTableError(f"{where}: missing {key!r}") from None
    except (TypeError, ValueError):
        raise RankTableError(f"{where}: {key}={entry[key]!r} is not an integer") from None


def parse_rank_table(table, source="rank table"):
    """Checks a decoded v1.0 table; returns its servers in order.

    Raises:
      RankTableError: wrong version or status, counts that disagree, rank ids that are
        not 0..N-1, or a device listed twice on a server.
    """
    if not isinstance(table, dict):
        raise RankTableError(f"{source}: expected a JSON object, got {type(table).__name__}")
    if table.get("version") != "1.0":
        raise RankTableError(
            f"{source}: version {table.get('version')!r} is not supported; expected '1.0'"
        )
    if table.get("status") != "completed":
        raise RankTableError(f"{source}: status must be 'completed', got {table.get('status')!r}")
    server_list = table.get("server_list")
    if not isinstance(server_list, list) or not server_list:
        raise RankTableError(f"{source}: 'server_list' must be a non-empty list")
    server_count = _int_field(table, "server_count", source)
    if server_count != len(server_list):
        raise RankTableError(
            f"{source}: server_count is {server_count} but server_list has {len(server_list)} "
            "servers"
        )
    servers = []
    for s, server in enumerate(server_list):
        where = f"{source}: server_list[{s}]"
        if not server.get("server_id"):
            raise RankTableError(f"{where}: missing 'server_id' (the server's IP address)")
        devices = []
        for d, device in enumerate(server.get("device") or []):
            entry = f"{where}.device[{d}]"
            if not device.get("device_ip"):
                raise RankTableError(f"{entry}: missing 'device_ip'")
            devices.append(
                Device(
                    _int_field(device, "device_id", entry),
                    device["device_ip"],
                    _int_field(device, "rank_id", entry),
                )
            )
        if not devices:
            raise RankTableError(f"{where}: lists no 'device'")
        ids = [device.device_id for device in devices]
        if len(set(ids)) != len(ids):
            raise RankTableError(f"{where}: a device_id appears twice: {ids}")
        servers.append(Server(server["server_id"], devices))
    ranks = sorted(device.rank_id for server in servers for device in server.devices)
    if ranks != list(range(len(ranks))):
        raise RankTableError(f"{source}: rank_id values must be 0..{len(ranks) - 1}, got {ranks}")
    return servers


def load_rank_table(path):
    """Reads and checks the rank table file at `path`; returns its servers."""
    try:
        with open(path, encoding="utf-8") as stream:
            table = json.load(stream)
    except OSError as exc:
        raise RankTableError(f"cannot read rank table {path!r}: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise RankTableError(f"rank table {path!r} is not valid JSON: {exc}") from exc
    return parse_rank_table(table, f"rank table {path}")


def local_ranks(servers, server_index):
    """[(rank_id, device_id)] of the server at `server_index`, in device order."""
    if not 0 <= server_index < len(servers):
        raise RankTableError(
            f"server index {server_index} is outside the table's {len(servers)} servers"
        )
    return [(d.rank_id, d.device_id) for d in servers[server_index].devices]


def main(argv=None):
    parser = argparse.ArgumentParser(description="Check a rank table; list a server's ranks.")
    parser.add_argument("--rank_table_file", required=True)
    parser.add_argument("--server_index", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        servers = load_rank_table(args.rank_table_file)
        ranks = local_ranks(servers, args.server_index)
    except RankTableError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"rank_size={sum(len(server.devices) for server in servers)}")
    for rank_id, device_id in ranks:
        print(f"{rank_id} {device_id}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
