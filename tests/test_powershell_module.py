"""The SSMEx PowerShell module, checked without PowerShell: every file parses with the
tree-sitter PowerShell grammar, and the parse trees show the module's rules are kept.

Running the functions needs PowerShell, so the Pester tests in tests/powershell/ do that.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

tree_sitter = pytest.importorskip("tree_sitter")
tree_sitter_powershell = pytest.importorskip("tree_sitter_powershell")

ROOT = Path(__file__).resolve().parent.parent
MODULE = ROOT / "shims" / "powershell" / "SSMEx"
PUBLIC = sorted((MODULE / "Public").glob("*.ps1"))
POWERSHELL_FILES = sorted(
    path for pattern in ("*.ps1", "*.psm1", "*.psd1") for folder in (ROOT / "shims", ROOT / "tests" / "powershell") for path in folder.rglob(pattern)
)
# Functions that change something, so -WhatIf and -Confirm must work on them.
WITH_EFFECTS = {"Start-SSMSessionEx", "Stop-SSMSessionEx", "Start-SSMRDPClient", "Start-EC2RDPClient"}
PARSER = tree_sitter.Parser(tree_sitter.Language(tree_sitter_powershell.language()))


def parse(source: bytes):
    return PARSER.parse(source).root_node


def nodes(node, kind: str):
    if node.type == kind:
        yield node
    for child in node.children:
        yield from nodes(child, kind)


def syntax_problems(source: bytes) -> list[str]:
    """Return the ERROR and MISSING nodes of a parse, with their line numbers."""
    problems = []

    def walk(node):
        if node.type == "ERROR" or node.is_missing:
            kind = "missing" if node.is_missing else "error"
            problems.append(f"line {node.start_point[0] + 1}: {kind} at {node.text[:60]!r}")
        for child in node.children:
            walk(child)

    walk(parse(source))
    return problems


def native_call_problems(source: bytes) -> list[str]:
    """Return calls that route arguments through a command line PowerShell cannot pass intact."""
    problems = []
    for command in nodes(parse(source), "command"):
        name_node = next((child for child in command.children if child.type in ("command_name", "command_name_expr")), None)
        if name_node is None:
            continue
        name = name_node.text.decode().strip("'\"").lower()
        arguments = command.text.decode().lower()
        # -ArgumentList may be shortened to any prefix such as -Args or -a.
        if name in ("start-process", "saps", "start") and re.search(r"\s-a\w*", arguments):
            problems.append(f"Start-Process with an argument list: {command.text.decode()[:80]}")
        if name.endswith((".cmd", ".bat")) or name in ("cmd", "cmd.exe"):
            problems.append(f"runs through cmd.exe: {command.text.decode()[:80]}")
    return problems


@pytest.mark.parametrize("path", POWERSHELL_FILES, ids=lambda path: str(path.relative_to(ROOT)))
def test_powershell_file_parses(path):
    assert syntax_problems(path.read_bytes()) == []


@pytest.mark.parametrize(
    "snippet",
    [
        b"function Broken {\n    param([string]$Name\n    $Name\n}\n",
        b"if ($ready {\n    'go'\n}\n",
        b"$map = @{ portNumber = 3389\n",
        b"function Half {\n    [CmdletBinding()]\n    param()\n",
    ],
)
def test_syntax_check_catches_broken_snippet(snippet):
    assert syntax_problems(snippet) != []


def test_module_files_found():
    names = {path.name for path in POWERSHELL_FILES}

    assert {"SSMEx.psd1", "SSMEx.psm1", "Start-SSMSessionEx.ps1"} <= names
    assert len(PUBLIC) == 5


def public_function(path: Path):
    functions = list(nodes(parse(path.read_bytes()), "function_statement"))
    assert len(functions) == 1, f"{path.name} must define exactly one function"
    return functions[0]


def help_text(function) -> str:
    comments = [child.text.decode() for child in function.children if child.type == "comment"]
    assert comments, "comment-based help must open the function body"
    return comments[0]


def declared_parameters(function) -> list[str]:
    blocks = list(nodes(function, "param_block"))
    assert len(blocks) == 1
    return [variable.text.decode()[1:] for parameter in nodes(blocks[0], "script_parameter") for variable in parameter.children if variable.type == "variable"]


def attribute_texts(function) -> list[str]:
    block = next(nodes(function, "param_block"))
    attribute_list = next(child for child in block.children if child.type == "attribute_list")
    return [attribute.text.decode() for attribute in attribute_list.children if attribute.type == "attribute"]


@pytest.mark.parametrize("path", PUBLIC, ids=lambda path: path.stem)
def test_public_function_named_after_file(path):
    function = public_function(path)
    name = next(child for child in function.children if child.type == "function_name").text.decode()

    assert name == path.stem


@pytest.mark.parametrize("path", PUBLIC, ids=lambda path: path.stem)
def test_public_function_is_advanced(path):
    attributes = attribute_texts(public_function(path))
    binding = [text for text in attributes if text.lower().startswith("[cmdletbinding")]

    assert len(binding) == 1
    if path.stem in WITH_EFFECTS:
        assert "SupportsShouldProcess" in binding[0]


@pytest.mark.parametrize("path", PUBLIC, ids=lambda path: path.stem)
def test_public_function_has_full_help(path):
    function = public_function(path)
    text = help_text(function)
    documented = re.findall(r"^\s*\.PARAMETER\s+(\w+)\s*$", text, re.MULTILINE)

    assert re.search(r"^\s*\.SYNOPSIS\s*$", text, re.MULTILINE)
    assert re.search(r"^\s*\.DESCRIPTION\s*$", text, re.MULTILINE)
    assert re.search(r"^\s*\.OUTPUTS\s*$", text, re.MULTILINE)
    assert documented == declared_parameters(function)
    assert len(re.findall(r"^\s*\.EXAMPLE\s*$", text, re.MULTILINE)) >= 4


def test_help_examples_cover_shell_forwards_and_rdp():
    text = help_text(public_function(MODULE / "Public" / "Start-SSMSessionEx.ps1"))

    assert re.search(r"^\s*Start-SSMSessionEx -Target i-\w+\s*$", text, re.MULTILINE)
    assert "AWS-StartPortForwardingSession " in text
    assert "AWS-StartPortForwardingSessionToRemoteHost" in text
    assert "Start-SSMRDPClient" in text


@pytest.mark.parametrize("name", ["Start-SSMSessionEx", "Get-SSMSessionEx"])
def test_output_objects_are_typed(name):
    source = (MODULE / "Public" / f"{name}.ps1").read_text()
    declared = re.search(r"\[OutputType\('([\w.]+)'\)\]", source)

    assert declared
    assert f"'{declared.group(1)}'" in source.split("[OutputType", 1)[1].split(")]", 1)[1]


def manifest_entries() -> dict[str, object]:
    """Read the manifest's top-level keys: strings and arrays of strings."""
    tree = parse((MODULE / "SSMEx.psd1").read_bytes())
    table = next(nodes(tree, "hash_literal_expression"))
    body = next(child for child in table.children if child.type == "hash_literal_body")
    entries: dict[str, object] = {}
    for entry in body.children:
        if entry.type != "hash_entry":
            continue
        key = entry.children[0].text.decode()
        strings = [literal.text.decode()[1:-1] for literal in nodes(entry.children[-1], "string_literal")]
        if "@(" in entry.children[-1].text.decode():
            entries[key] = strings
        else:
            entries[key] = strings[0] if len(strings) == 1 else entry.children[-1].text.decode()
    return entries


def test_manifest_exports_exactly_public_files():
    entries = manifest_entries()

    assert sorted(entries["FunctionsToExport"]) == sorted(path.stem for path in PUBLIC)
    assert entries["CmdletsToExport"] == []
    assert entries["AliasesToExport"] == []
    assert entries["VariablesToExport"] == []


def test_manifest_declares_editions_and_version():
    entries = manifest_entries()

    assert entries["PowerShellVersion"] == "5.1"
    assert entries["CompatiblePSEditions"] == ["Desktop", "Core"]
    assert entries["RootModule"] == "SSMEx.psm1"


def test_bin_folder_holds_no_executable():
    assert sorted(path.name for path in (MODULE / "bin").iterdir()) == ["README.md"]


@pytest.mark.parametrize("path", sorted(MODULE.rglob("*.ps*1")), ids=lambda path: path.name)
def test_no_argument_list_or_cmd_wrapper(path):
    assert native_call_problems(path.read_bytes()) == []


@pytest.mark.parametrize(
    "snippet",
    [
        b"Start-Process -FilePath $exe -ArgumentList $arguments -Wait\n",
        b"Start-Process $exe -Args 'invoke'\n",
        b"& 'C:\\tools\\ssmex.cmd' invoke\n",
        b"ssmex.cmd invoke\n",
        b"cmd.exe /c ssmex invoke\n",
    ],
)
def test_native_call_check_catches_bad_call(snippet):
    assert native_call_problems(snippet) != []


def test_executable_called_only_with_invoke():
    calls = []
    for path in sorted(MODULE.rglob("*.ps1")):
        for command in nodes(parse(path.read_bytes()), "command"):
            if any(child.type == "command_invokation_operator" for child in command.children):
                calls.append(command.text.decode())

    assert calls
    assert set(calls) == {"& $executable 'invoke'", "& $executable 'invoke' 2>&1"}


def test_secrets_never_on_command_line():
    source = (MODULE / "Private" / "Invoke-SSMExRequest.ps1").read_text()

    assert "SetEnvironmentVariable($name, $saved[$name])" in source
    for path in sorted(MODULE.rglob("*.ps1")):
        text = path.read_text()
        assert "TokenValue" not in text
        assert not re.search(r"--(secret|token|access-key)", text, re.IGNORECASE)


def test_fake_ssmex_records_what_it_was_handed(tmp_path):
    import subprocess
    import sys

    from ssmex.request import Request, encode_request

    record = tmp_path / "runs.jsonl"
    request = Request("Start-SSMSessionEx", {"Target": "i-0123456789abcdef0", "PassThru": True})
    environment = {
        "PATH": "/usr/bin:/bin",
        "SSMEX_REQUEST": encode_request(request),
        "AWS_ACCESS_KEY_ID": "AKIAFAKE",
        "FAKE_SSMEX_RECORD": str(record),
        "FAKE_SSMEX_PROCESS_ID": "4242",
        "FAKE_SSMEX_STDERR": "warning: something",
        "FAKE_SSMEX_EXIT": "3",
    }
    fake = ROOT / "tests" / "powershell" / "fake_ssmex" / "fake_ssmex.py"

    completed = subprocess.run([sys.executable, str(fake), "invoke"], env=environment, capture_output=True, text=True, timeout=60)

    assert completed.returncode == 3
    assert completed.stderr == "warning: something\n"
    assert json.loads(completed.stdout)["ProcessId"] == 4242
    run = json.loads(record.read_text())
    assert run["argv"][1:] == ["invoke"]
    assert run["request"]["parameters"]["Target"] == "i-0123456789abcdef0"
    assert run["environment"]["AWS_ACCESS_KEY_ID"] == "AKIAFAKE"
