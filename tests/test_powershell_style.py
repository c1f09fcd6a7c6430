"""PowerShell-style commands typed in a shell, and the sh shims that hand them to ssmex."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import INSTANCE_ID, SECRET_ACCESS_KEY, SESSION_TOKEN
from ssmex.cli.powershell_style import COMMANDS, Command, Parameter, find_command, parse_arguments, ssmex_arguments, require_available
from ssmex.cli.powershell_values import parse_parameter_text
from ssmex.cli.app import build_parser
from ssmex.errors import SsmexError

REGION = "us-east-1"
SHIMS = Path(__file__).resolve().parent.parent / "shims"
START = find_command("Start-SSMSessionEx")


def translate(*words: str) -> list[str]:
    command = find_command(words[0])
    return ssmex_arguments(command, parse_arguments(command, words[1:]))


def usage_error(*words: str) -> str:
    with pytest.raises(SsmexError) as caught:
        translate(*words)
    assert caught.value.exit_code == 2
    return caught.value.message


def test_full_example_translates():
    arguments = translate(
        "Start-SSMSessionEx",
        "-Target",
        INSTANCE_ID,
        "-DocumentName",
        "AWS-StartPortForwardingSession",
        "-Parameter",
        "portNumber=3389,localPortNumber=33389",
        "-PassThru",
    )

    assert arguments == [
        "start-session",
        f"--target={INSTANCE_ID}",
        "--document-name=AWS-StartPortForwardingSession",
        '--parameters={"portNumber": ["3389"], "localPortNumber": ["33389"]}',
        "--pass-thru",
    ]


@pytest.mark.parametrize("name", ["start-ssmsessionex", "START-SSMSESSIONEX", "Start-SsmSessionEx"])
def test_command_name_ignores_case(name):
    assert find_command(name) is START


@pytest.mark.parametrize("written", ["-target", "-TARGET", "-Tar", "-t", "-tArGeT"])
def test_parameter_name_case_and_prefix(written):
    assert translate("Start-SSMSessionEx", written, INSTANCE_ID)[1] == f"--target={INSTANCE_ID}"


@pytest.mark.parametrize(
    "written,matches",
    [
        ("-P", "-Parameter, -ProfileName, -PassThru and -PluginPath"),
        ("-Pa", "-Parameter and -PassThru"),
        ("-D", "-DocumentName and -Debug"),
        ("-r", "-Reason and -Region"),
    ],
)
def test_ambiguous_prefix_rejected(written, matches):
    message = usage_error("Start-SSMSessionEx", "-Target", INSTANCE_ID, written, "x")

    assert f"-{written[1:]} of Start-SSMSessionEx is ambiguous" in message
    assert matches in message


def test_longer_prefix_resolves_ambiguity():
    arguments = translate("Start-SSMSessionEx", INSTANCE_ID, "-Pas", "-Par", "a=1", "-Pro", "dev", "-Pl", "/opt/plugin", "-Rea", "x", "-Reg", "eu-west-1")

    assert "--pass-thru" in arguments
    assert '--parameters={"a": ["1"]}' in arguments
    assert "--profile=dev" in arguments
    assert "--plugin=/opt/plugin" in arguments
    assert "--reason=x" in arguments
    assert "--region=eu-west-1" in arguments


def test_unknown_parameter_lists_valid_ones():
    message = usage_error("Start-SSMSessionEx", "-Target", INSTANCE_ID, "-Token", "abc")

    assert "has no parameter -Token" in message
    assert "-DocumentName" in message


def test_positional_target_and_document():
    arguments = translate("Start-SSMSessionEx", INSTANCE_ID, "AWS-StartSSHSession")

    assert arguments == ["start-session", f"--target={INSTANCE_ID}", "--document-name=AWS-StartSSHSession"]


def test_positional_document_after_named_target():
    arguments = translate("Start-SSMSessionEx", "-Target", INSTANCE_ID, "AWS-StartSSHSession")

    assert "--document-name=AWS-StartSSHSession" in arguments


def test_positional_target_after_named_document():
    arguments = translate("Start-SSMSessionEx", "-DocumentName", "AWS-StartSSHSession", INSTANCE_ID)

    assert arguments[1:3] == [f"--target={INSTANCE_ID}", "--document-name=AWS-StartSSHSession"]


def test_too_many_positional_values_rejected():
    message = usage_error("Start-SSMSessionEx", INSTANCE_ID, "AWS-StartSSHSession", "extra")

    assert "no positional parameter left for 'extra'" in message


def test_missing_target_rejected():
    assert "needs -Target" in usage_error("Start-SSMSessionEx", "-DocumentName", "AWS-StartSSHSession")


def test_missing_value_rejected():
    assert "-Reason of Start-SSMSessionEx needs a value" in usage_error("Start-SSMSessionEx", INSTANCE_ID, "-Reason")


def test_repeated_parameter_rejected():
    assert "was given twice" in usage_error("Start-SSMSessionEx", "-Target", "i-1", "-Target", "i-2")


def test_colon_form_and_switch_values():
    arguments = translate("Start-SSMSessionEx", f"-Target:{INSTANCE_ID}", "-PassThru:$false", "-Reason:a:b")

    assert arguments == ["start-session", f"--target={INSTANCE_ID}", "--reason=a:b"]
    assert "--pass-thru" in translate("Start-SSMSessionEx", INSTANCE_ID, "-PassThru:$true")
    assert "takes $true or $false" in usage_error("Start-SSMSessionEx", INSTANCE_ID, "-PassThru:maybe")


def test_value_starting_with_dash_stays_a_value():
    arguments = translate("Start-SSMSessionEx", INSTANCE_ID, "-Reason", "-not-an-option")

    assert "--reason=-not-an-option" in arguments


def test_double_dash_makes_rest_positional():
    arguments = translate("Start-SSMSessionEx", "--", "-odd-target")

    assert arguments == ["start-session", "--target=-odd-target"]


@pytest.mark.parametrize(
    "text,expected",
    [
        ("@{portNumber=3389}", {"portNumber": ["3389"]}),
        ("@{portNumber=3389; localPortNumber='33389'}", {"portNumber": ["3389"], "localPortNumber": ["33389"]}),
        ('@{ host = "db.internal"; portNumber = 5432 }', {"host": ["db.internal"], "portNumber": ["5432"]}),
        ("@{command='ls','-l'}", {"command": ["ls", "-l"]}),
        ("@{command=@('echo', 'it''s; fine')}", {"command": ["echo", "it's; fine"]}),
        ("@{'odd key'=1\n second=2}", {"odd key": ["1"], "second": ["2"]}),
        ("@{}", {}),
        ("portNumber=3389,localPortNumber=33389", {"portNumber": ["3389"], "localPortNumber": ["33389"]}),
        ('{"portNumber": ["3389"]}', {"portNumber": ["3389"]}),
    ],
)
def test_parameter_text_forms(text, expected):
    assert parse_parameter_text(text) == expected


@pytest.mark.parametrize(
    "text,fragment",
    [
        ("@{portNumber=$port}", "does not evaluate"),
        ('@{host="$(hostname)"}', "does not expand"),
        ("@{portNumber}", "is not of the form key=value"),
        ("@{host='db}", "quote is not closed"),
        ("@{command=@('ls'}", "bracket"),
    ],
)
def test_parameter_text_rejects_expressions(text, fragment):
    with pytest.raises(SsmexError) as caught:
        parse_parameter_text(text)

    assert fragment in caught.value.message


def test_stop_takes_comma_list():
    assert translate("Stop-SSMSessionEx", "a-1,b-2") == ["sessions", "stop", "--", "a-1", "b-2"]
    assert translate("stop-ssmsessionex", "-a") == ["sessions", "stop", "--all"]


@pytest.mark.parametrize("extra", [(), ("-WhatIf",)])
def test_stop_needs_ids_or_all(extra):
    assert usage_error("Stop-SSMSessionEx", *extra) == "Stop-SSMSessionEx needs -SessionId or -All; add one to the command."


def test_rdp_commands_translate():
    assert translate("Start-SSMRDPClient", INSTANCE_ID, "-Pem", "k.pem", "-Port", "3390", "-NoL") == [
        "rdp",
        "--key-file=k.pem",
        "--port=3390",
        "--no-launch",
        "--",
        INSTANCE_ID,
    ]
    assert translate("Start-EC2RDPClient", "-InstanceId", INSTANCE_ID, "-PemFile", "k.pem", "-NoLaunch", "-ec2", "http://127.0.0.1:9") == [
        "ec2-rdp",
        "--key-file=k.pem",
        "--no-launch",
        "--ec2-endpoint-url=http://127.0.0.1:9",
        "--",
        INSTANCE_ID,
    ]
    assert "is not a whole number" in usage_error("Start-SSMRDPClient", INSTANCE_ID, "-PemFile", "k.pem", "-Port", "rdp")


def test_missing_ssmex_command_one_sentence():
    command = Command("Start-Nothing", ("no-such-command",), (Parameter("Target", option="--target"),))

    with pytest.raises(SsmexError) as caught:
        require_available(command, build_parser())

    assert "needs the `ssmex no-such-command` command" in caught.value.message


def test_every_command_maps_to_distinct_name():
    names = [command.name.lower() for command in COMMANDS]

    assert len(names) == len(set(names))


def test_cli_runs_powershell_style_start(run_ssmex, ssm_endpoint, standin, emulator):
    completed = run_ssmex(
        "start-ssmsessionex",
        INSTANCE_ID,
        "AWS-StartPortForwardingSession",
        "-param",
        "@{portNumber=22; localPortNumber=0}",
        "-reg",
        REGION,
        "-end",
        ssm_endpoint.endpoint_url,
        "-reason",
        'a "quoted" reason',
    )

    assert completed.returncode == 0, completed.stderr
    session = emulator.sessions[standin.only_run()["response"]["SessionId"]]
    assert session.document_name == "AWS-StartPortForwardingSession"
    assert session.parameters == {"portNumber": ["22"], "localPortNumber": ["0"]}
    assert session.reason == 'a "quoted" reason'


def test_cli_ambiguous_prefix_exits_with_usage(run_ssmex, emulator):
    completed = run_ssmex("Start-SSMSessionEx", INSTANCE_ID, "-P", "x")

    assert completed.returncode == 2
    assert completed.stderr.startswith("error: The parameter name -P of Start-SSMSessionEx is ambiguous")
    assert completed.stderr.count("\n") == 1
    assert emulator.calls == []


def test_cli_what_if_prints_command(run_ssmex, emulator):
    completed = run_ssmex("Start-SSMSessionEx", INSTANCE_ID, "-Reason", "two words", "-WhatIf")

    assert completed.returncode == 0, completed.stderr
    assert completed.stdout == f"What if: ssmex start-session --target={INSTANCE_ID} '--reason=two words'\n"
    assert emulator.calls == []


@pytest.fixture
def shim_path(tmp_path: Path, standin, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Put the sh shims and an `ssmex` that runs `python -m ssmex` first on PATH."""
    folder = tmp_path / "shim-bin"
    folder.mkdir()
    for name in ("Start-SSMSessionEx", "Get-SSMSessionEx", "Stop-SSMSessionEx"):
        shutil.copy(SHIMS / "sh" / name, folder / name)
    wrapper = folder / "ssmex"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m ssmex "$@"\n')
    for entry in folder.iterdir():
        entry.chmod(entry.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    return folder


def run_shim(*words: str, env: dict | None = None) -> subprocess.CompletedProcess:
    environment = dict(os.environ)
    environment.update(env or {})
    return subprocess.run(list(words), env=environment, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


@pytest.mark.skipif(os.name == "nt", reason="the sh shims need a POSIX shell")
def test_sh_shims_start_list_and_stop(shim_path, ssm_endpoint, standin, emulator):
    started = run_shim(
        "Start-SSMSessionEx",
        "-Target",
        INSTANCE_ID,
        "-DocumentName",
        "AWS-StartPortForwardingSession",
        "-Parameter",
        "portNumber=3389,localPortNumber=0",
        "-Region",
        REGION,
        "-EndpointUrl",
        ssm_endpoint.endpoint_url,
        "-Reason",
        "it's \"quoted\" $HOME `x` 日本",
        "-PassThru",
        env={"STANDIN_MODE": "port"},
    )

    assert started.returncode == 0, started.stderr
    session = json.loads(started.stdout)
    emulated = emulator.sessions[session["SessionId"]]
    assert emulated.parameters == {"portNumber": ["3389"], "localPortNumber": ["0"]}
    assert emulated.reason == "it's \"quoted\" $HOME `x` 日本"
    assert session["LocalPort"] > 0
    for secret in (emulated.token, SECRET_ACCESS_KEY, SESSION_TOKEN):
        assert secret not in started.stdout + started.stderr

    listed = run_shim("Get-SSMSessionEx")
    assert listed.returncode == 0, listed.stderr
    assert [row["SessionId"] for row in json.loads(listed.stdout)] == [session["SessionId"]]

    stopped = run_shim("Stop-SSMSessionEx", session["SessionId"])
    assert stopped.returncode == 0, stopped.stderr
    assert emulated.status == "Terminated"
    assert json.loads(run_shim("Get-SSMSessionEx").stdout) == []


@pytest.mark.skipif(os.name == "nt", reason="the sh shims need a POSIX shell")
def test_sh_shim_passes_errors_through(shim_path, emulator):
    completed = run_shim("Start-SSMSessionEx", "-Token", "abc")

    assert completed.returncode == 2
    assert "Start-SSMSessionEx has no parameter -Token" in completed.stderr
    assert emulator.calls == []


def test_shims_are_one_line():
    for name in ("Start-SSMSessionEx", "Get-SSMSessionEx", "Stop-SSMSessionEx"):
        sh_lines = (SHIMS / "sh" / name).read_text().splitlines()
        assert sh_lines == ["#!/bin/sh", f'exec ssmex {name} "$@"']
        assert os.access(SHIMS / "sh" / name, os.X_OK)
        cmd_text = (SHIMS / "cmd" / f"{name}.cmd").read_bytes()
        assert cmd_text == f"@ssmex.exe {name} %*\r\n".encode("ascii")
