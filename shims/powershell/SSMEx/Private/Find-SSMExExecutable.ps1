function Find-SSMExExecutable {
    <#
    .SYNOPSIS
    Returns the full path of the ssmex executable the module runs.

    .DESCRIPTION
    Looks in the module's bin folder, then at $env:SSMEX_EXE, then on PATH. On Windows only
    a .exe is accepted, because a .cmd or .bat wrapper would parse the command line again
    with cmd.exe's rules.
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param()

    $onWindows = ($PSVersionTable.PSEdition -eq 'Desktop') -or $IsWindows
    $fileName = if ($onWindows) { 'ssmex.exe' } else { 'ssmex' }

    $binPath = Join-Path -Path (Join-Path -Path $script:ModuleRoot -ChildPath 'bin') -ChildPath $fileName
    if (Test-Path -LiteralPath $binPath -PathType Leaf) {
        return $binPath
    }

    $named = $env:SSMEX_EXE
    if ($named) {
        if (Test-Path -LiteralPath $named -PathType Leaf) {
            return (Resolve-Path -LiteralPath $named).ProviderPath
        }
        $namedText = "SSMEX_EXE ($named does not exist)"
    }
    else {
        $namedText = 'SSMEX_EXE (not set)'
    }

    $onPath = Get-Command -Name 'ssmex' -CommandType Application -ErrorAction SilentlyContinue |
        Where-Object { -not $onWindows -or [System.IO.Path]::GetExtension($_.Path) -eq '.exe' } |
        Select-Object -First 1
    if ($onPath) {
        return $onPath.Path
    }

    $message = "ssmex was not found: looked for $binPath, at $namedText and for $fileName on PATH; " +
        "copy $fileName from the ssmex release into $(Split-Path -Path $binPath -Parent), " +
        'or install it with "pip install ssmex", or set $env:SSMEX_EXE to its full path.'
    $exception = [System.IO.FileNotFoundException]::new($message)
    throw [System.Management.Automation.ErrorRecord]::new($exception, 'SSMEx.ExecutableNotFound', 'ObjectNotFound', $fileName)
}
