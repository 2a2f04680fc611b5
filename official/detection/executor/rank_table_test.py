"""rank_table.py: the shipped 8-device table, several servers, every error, the CLI."""

import copy
import json
import os

import pytest

from official.detection.executor import rank_table
from official.detection.executor.rank_table import RankTableError

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
SHIPPED = os.path.join(REPO, "configs", "rank_table_8p.json")


def _table(servers=1, devices=2):
    server_list = []
    for s in range(servers):
        server_list.append(
            {
                "server_id": f"10.0.0.{s + 1}",
                "device": [
                    {
                        "device_id": str(d),
                        "device_ip": f"192.168.{100 + d}.{101 + s}",
                        "rank_id": str(s * devices + d),
                    }
                    for d in range(devices)
                ],
            }
        )
    return {
        "server_count": str(servers),
        "server_list": server_list,
        "status": "completed",
        "version": "1.0",
    }


def test_shipped_table_has_eight_ranks_on_one_server():
    servers = rank_table.load_rank_table(SHIPPED)
    assert len(servers) == 1
    assert rank_table.local_ranks(servers, 0) == [(i, i) for i in range(8)]
    assert len({device.device_ip for device in servers[0].devices}) == 8


def test_two_servers_number_their_ranks_on():
    servers = rank_table.parse_rank_table(_table(servers=2, devices=8))
    assert rank_table.local_ranks(servers, 1) == [(8 + d, d) for d in range(8)]
    with pytest.raises(RankTableError, match="server index 2 is outside the table's 2 servers"):
        rank_table.local_ranks(servers, 2)


def _broken(change):
    table = copy.deepcopy(_table())
    change(table)
    return table


@pytest.mark.parametrize(
    "table, message",
    [
        ([], "expected a JSON object, got list"),
        (_broken(lambda t: t.update(version="2.0")), "version '2.0' is not supported"),
        (_broken(lambda t: t.update(status="init")), "status must be 'completed', got 'init'"),
        (_broken(lambda t: t.update(server_list=[])), "'server_list' must be a non-empty list"),
        (_broken(lambda t: t.update(server_count="2")), "server_count is 2 but server_list has 1"),
        (_broken(lambda t: t.update(server_count="one")), "server_count='one' is not an integer"),
        (
            _broken(lambda t: t["server_list"][0].pop("server_id")),
            r"server_list\[0\]: missing 'server_id'",
        ),
        (
            _broken(lambda t: t["server_list"][0]["device"][1].pop("device_ip")),
            r"server_list\[0\].device\[1\]: missing 'device_ip'",
        ),
        (
            _broken(lambda t: t["server_list"][0]["device"][1].pop("rank_id")),
            r"device\[1\]: missing 'rank_id'",
        ),
        (
            _broken(lambda t: t["server_list"][0].update(device=[])),
            r"server_list\[0\]: lists no 'device'",
        ),
        (
            _broken(lambda t: t["server_list"][0]["device"][1].update(device_id="0")),
            r"a device_id appears twice: \[0, 0\]",
        ),
        (
            _broken(lambda t: t["server_list"][0]["device"][1].update(rank_id="5")),
            r"rank_id values must be 0..1, got \[0, 5\]",
        ),
    ],
)
def test_bad_tables(table, message):
    with pytest.raises(RankTableError, match=message):
        rank_table.parse_rank_table(table)


def test_unreadable_files(tmp_path):
    with pytest.raises(RankTableError, match="cannot read rank table"):
        rank_table.load_rank_table(str(tmp_path / "missing.json"))
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(RankTableError, match="is not valid JSON"):
        rank_table.load_rank_table(str(bad))


def test_cli_lists_this_servers_ranks(tmp_path, capsys):
    path = tmp_path / "table.json"
    path.write_text(json.dumps(_table(servers=2, devices=2)))
    assert rank_table.main([f"--rank_table_file={path}", "--server_index=1"]) == 0
    assert capsys.readouterr().out.splitlines() == ["rank_size=4", "2 0", "3 1"]
    assert rank_table.main([f"--rank_table_file={path}", "--server_index=5"]) == 1
    assert "server index 5 is outside" in capsys.readouterr().err
