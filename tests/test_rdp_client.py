"""Choosing the RDP client and what each kind of client is given."""

from __future__ import annotations

import signal

import pytest

from ssmex import interrupts, rdp
from ssmex.errors import SsmexError


def executable(folder, name):
    path = folder / name
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return path


def test_override_variable_wins(tmp_path):
    client = executable(tmp_path, "my-client")

    found = rdp.find_client({"SSMEX_RDP_CLIENT": str(client), "PATH": ""}, platform="win32")

    assert found == rdp.RdpClient("freerdp", str(client))


def test_override_missing_one_sentence(tmp_path):
    with pytest.raises(SsmexError) as raised:
        rdp.find_client({"SSMEX_RDP_CLIENT": str(tmp_path / "absent"), "PATH": ""}, platform="linux")

    assert "SSMEX_RDP_CLIENT" in raised.value.message


def test_linux_prefers_freerdp3(tmp_path):
    executable(tmp_path, "xfreerdp")
    newer = executable(tmp_path, "xfreerdp3")

    found = rdp.find_client({"PATH": str(tmp_path)}, platform="linux")

    assert found.path == str(newer)


def test_linux_without_client_names_package(tmp_path):
    with pytest.raises(SsmexError) as raised:
        rdp.find_client({"PATH": str(tmp_path)}, platform="linux")

    assert "FreeRDP" in raised.value.message
    assert "--no-launch" in raised.value.message


def test_windows_uses_mstsc():
    found = rdp.find_client({"PATH": "", "SystemRoot": r"C:\Windows"}, platform="win32")

    assert found.kind == "mstsc"
    assert found.path.endswith("mstsc.exe")


def test_freerdp_argv_has_no_password():
    target = rdp.RdpTarget("localhost", 33389, password="Secret-In-Stdin-Only")
    argv = rdp.freerdp_argv(rdp.RdpClient("freerdp", "/usr/bin/xfreerdp3"), target)

    assert argv == ["/usr/bin/xfreerdp3", "/u:Administrator", "/v:localhost:33389", "/from-stdin:force"]
    assert "Secret-In-Stdin-Only" not in " ".join(argv)
    assert rdp.freerdp_input(target) == "\nSecret-In-Stdin-Only\n"


def test_rdp_file_has_no_password():
    text = rdp.rdp_file_text(rdp.RdpTarget("localhost", 33390, password="Secret-Never-In-File"))

    assert "full address:s:localhost:33390" in text
    assert "username:s:Administrator" in text
    assert "Secret-Never-In-File" not in text


def test_ipv6_address_is_bracketed():
    assert rdp.RdpTarget("2001:db8::5", 3389).address == "[2001:db8::5]:3389"


def test_sigterm_becomes_interrupt():
    before = signal.getsignal(signal.SIGTERM)

    with pytest.raises(KeyboardInterrupt):
        with interrupts.termination_signals_interrupt():
            signal.raise_signal(signal.SIGTERM)

    assert signal.getsignal(signal.SIGTERM) == before


def test_interrupts_held_ignores_second_ctrl_c():
    before = signal.getsignal(signal.SIGINT)

    with interrupts.interrupts_held():
        signal.raise_signal(signal.SIGINT)
        signal.raise_signal(signal.SIGTERM)

    assert signal.getsignal(signal.SIGINT) == before
