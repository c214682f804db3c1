"""Sessions import files: exact records from CSV and JSON, and whole-file rejection naming line/row and column."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clarion.sources.model import Session
from clarion.sources.sessions_file import SessionsFileError, load_sessions_file, normalise_mac, parse_sessions

CSV = """mac,ips,user,sgt,switch,port,vlan,start,profile
AA-BB-CC-00-11-22,10.10.20.31;2001:DB8::0001,alice,4,sw-access-1,GigabitEthernet1/0/12,20,2024-05-01T10:15:30.123Z,Windows10-Workstation
aabb.cc00.1133,,,,,,,1714558530123,
"""

ALICE = Session(
    mac="aa:bb:cc:00:11:22",
    ips=("10.10.20.31", "2001:db8::1"),
    username="alice",
    sgt=4,
    switch_id="sw-access-1",
    interface="GigabitEthernet1/0/12",
    vlan=20,
    endpoint_profile="Windows10-Workstation",
    timestamp_ms=1714558530123,
    source="file",
)
BARE = Session(mac="aa:bb:cc:00:11:33", timestamp_ms=1714558530123, source="file")


def test_csv_rows_become_exact_sessions() -> None:
    assert parse_sessions(CSV) == [ALICE, BARE]


def test_json_array_and_wrapped_object_give_the_same_sessions() -> None:
    rows = [
        {
            "mac": "AA:BB:CC:00:11:22",
            "ips": ["10.10.20.31", "2001:db8::1"],
            "user": "alice",
            "sgt": 4,
            "switch": "sw-access-1",
            "port": "GigabitEthernet1/0/12",
            "vlan": 20,
            "start": "2024-05-01T12:15:30.123+02:00",
            "profile": "Windows10-Workstation",
        },
        {"mac": "aabbcc001133", "start": 1714558530123},
    ]
    assert parse_sessions(json.dumps(rows)) == [ALICE, BARE]
    assert parse_sessions(json.dumps({"sessions": rows}).encode()) == [ALICE, BARE]


def test_every_bad_value_is_reported_with_line_and_column_and_nothing_is_imported() -> None:
    text = CSV + "zz:zz,10.0.0.300,bob,70000,sw1,Gi1/0/1,0,1714558530,\n" + "aa:bb:cc:00:11:44,,,,,,,,\n"
    with pytest.raises(SessionsFileError) as err:
        parse_sessions(text, source="export.csv")
    got = [(e.where, e.column) for e in err.value.errors]
    assert got == [("line 4", "mac"), ("line 4", "ips"), ("line 4", "sgt"), ("line 4", "vlan"), ("line 4", "start")]
    message = str(err.value)
    assert message.startswith("export.csv: rejected, 5 error(s), nothing imported:")
    assert "line 4, column 'sgt': 70000 is out of range for SGT (0..65535)" in message
    assert (
        "line 4, column 'start': '1714558530' is before 2000-01-01 as epoch milliseconds (looks like epoch seconds)"
        in message
    )
    assert "'10.0.0.300' is not an IPv4/IPv6 address" in message


def test_json_errors_name_the_row() -> None:
    rows = [{"mac": "aa:bb:cc:00:11:22"}, {"mac": "aa:bb:cc:00:11:23", "colour": "red"}, {"ips": "10.0.0.1"}, 5]
    with pytest.raises(SessionsFileError) as err:
        parse_sessions(json.dumps(rows))
    assert [str(e) for e in err.value.errors] == [
        "row 2, column 'colour': unknown column; accepted: mac, ips, user, sgt, switch, port, vlan, start, profile",
        "row 3, column 'mac': is required",
        "row 4, column '-': expected an object, got int",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "line 1, column '-': empty file: expected a header line"),
        ("ips,user\n10.0.0.1,a\n", "line 1 (header), column 'mac': required column is missing"),
        ("mac,user,host\n", "line 1 (header), column 'host': unknown column"),
        ("mac,user\naa:bb:cc:00:11:22\n", "line 2, column '-': 1 fields, the header has 2"),
        ('mac,user\n"aa:bb:cc:00:11:22\n', "malformed CSV"),
        ("mac,start\naa:bb:cc:00:11:22,2024-05-01T10:15:30\n", "has no UTC offset"),
        ('{"sessions": 3}', 'expected a JSON array or {"sessions": [...]}'),
        ("[{]", "invalid JSON"),
    ],
)
def test_structural_errors(text: str, expected: str) -> None:
    with pytest.raises(SessionsFileError, match=None) as err:
        parse_sessions(text)
    assert expected in str(err.value)


def test_limits_on_size_rows_and_encoding(tmp_path: Path) -> None:
    with pytest.raises(SessionsFileError, match="bytes, the limit is 100"):
        parse_sessions(CSV, max_bytes=100)
    many = "mac\n" + "".join(f"02:00:00:00:00:{i:02x}\n" for i in range(5))
    with pytest.raises(SessionsFileError, match="line 5, column '-': more than 3 sessions in one file"):
        parse_sessions(many, max_rows=3)
    with pytest.raises(SessionsFileError, match="byte 6, column '-': not UTF-8 text"):
        parse_sessions(b"mac\naa\xff\n")
    big = tmp_path / "big.csv"
    big.write_text(CSV)
    with pytest.raises(SessionsFileError, match=r"big\.csv: rejected"):
        load_sessions_file(big, max_bytes=10)


def test_load_file_uses_extension_and_strips_bom(tmp_path: Path) -> None:
    path = tmp_path / "nac.CSV"
    path.write_bytes(b"\xef\xbb\xbf" + CSV.encode())
    assert load_sessions_file(path) == [ALICE, BARE]


def test_error_list_is_capped_but_counted() -> None:
    text = "mac\n" + "nope\n" * 120
    with pytest.raises(SessionsFileError) as err:
        parse_sessions(text)
    assert len(err.value.errors) == 50
    assert "rejected, 120 error(s)" in str(err.value)
    assert "... and 110 more" in str(err.value)


def test_mac_forms() -> None:
    assert normalise_mac("AABB.CCDD.EEFF") == "aa:bb:cc:dd:ee:ff"
    with pytest.raises(ValueError, match="not a MAC address"):
        normalise_mac("aa:bb:cc:dd:ee")
