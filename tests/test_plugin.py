"""Plugin version parsing, known problems and the launch vector, without a network."""

import json
import os

import pytest

from ssmex.plugin import Plugin, build_launch, find_plugin, known_problems, parse_version, read_plugin
from ssmex.errors import SsmexError


@pytest.mark.parametrize(
    "text,expected",
    [("1.2.764.0\n", (1, 2, 764, 0)), (" 1 . 2 . 3 ", (1, 2, 3)), ("1", (1,)), ("1.2.3.4.5", None), ("v1.2", None), ("", None)],
)
def test_parse_version_as_aws_cli(text, expected):
    assert parse_version(text) == expected


def test_version_with_missing_parts_compares_padded():
    assert not Plugin("p", "1.2.497", parse_version("1.2.497")).takes_environment
    assert Plugin("p", "1.2.498", parse_version("1.2.498")).takes_environment
    assert Plugin("p", "2", parse_version("2")).takes_environment


def test_windows_only_problem_reported_on_windows():
    assert any("Windows consoles" in problem for problem in known_problems((1, 2, 779, 0), os_name="nt"))
    assert not any("Windows consoles" in problem for problem in known_problems((1, 2, 779, 0), os_name="posix"))


def test_launch_drops_extra_response_keys():
    plugin = Plugin("/bin/plugin", "1.2.814.0", (1, 2, 814, 0))
    response = {"SessionId": "s-1", "TokenValue": "tok", "StreamUrl": "wss://x", "ResponseMetadata": {}}

    launch = build_launch(plugin, response, {"Target": "i-1"}, "us-east-1", None, "https://ssm.us-east-1.amazonaws.com", {})

    assert launch.argv == ["/bin/plugin", "AWS_SSM_START_SESSION_RESPONSE", "us-east-1", "StartSession", "", '{"Target": "i-1"}', "https://ssm.us-east-1.amazonaws.com"]
    assert json.loads(launch.environment["AWS_SSM_START_SESSION_RESPONSE"]) == {"SessionId": "s-1", "TokenValue": "tok", "StreamUrl": "wss://x"}


def test_missing_explicit_plugin_names_origin(tmp_path):
    with pytest.raises(SsmexError, match=r"does not exist.*--plugin|--plugin.*does not exist"):
        find_plugin(str(tmp_path / "nope"), environ={})


def test_search_lists_every_location(tmp_path):
    locations = [str(tmp_path / "a" / "session-manager-plugin"), str(tmp_path / "b" / "session-manager-plugin")]
    with pytest.raises(SsmexError) as raised:
        find_plugin(None, environ={"PATH": str(tmp_path)}, locations=locations)
    for location in locations:
        assert location in str(raised.value)


def write_plugin(path, version):
    path.write_text(f"#!/bin/sh\necho {version}\necho ran >> {path}.runs\n")
    path.chmod(0o755)


def test_version_is_cached_until_plugin_changes(tmp_path):
    plugin_path = tmp_path / "session-manager-plugin"
    write_plugin(plugin_path, "1.2.700.0")

    first = read_plugin(str(plugin_path))
    second = read_plugin(str(plugin_path))
    write_plugin(plugin_path, "1.2.814.0")
    os.utime(plugin_path, ns=(1, 1))
    upgraded = read_plugin(str(plugin_path))

    assert first.version == second.version == (1, 2, 700, 0)
    assert upgraded.version == (1, 2, 814, 0)
    assert (tmp_path / "session-manager-plugin.runs").read_text().count("ran") == 2
