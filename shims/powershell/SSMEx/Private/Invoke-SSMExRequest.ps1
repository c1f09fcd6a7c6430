function Invoke-SSMExRequest {
    <#
    .SYNOPSIS
    Runs one request through "ssmex invoke" and returns the JSON it prints, parsed.

    .DESCRIPTION
    The request travels as base64 of UTF-8 JSON in $env:SSMEX_REQUEST and the only
    argument is the word "invoke", so Windows PowerShell 5.1 and every
    $PSNativeCommandArgumentPassing mode of PowerShell 7 hand ssmex the same thing.
    The .exe is called directly with the call operator, never through cmd.exe.

    -Environment adds variables for the child only: each is set before the call and put
    back as it was afterwards; a $null value removes the variable for the child.

    With -Interactive, ssmex keeps the console (for a shell session) and nothing is
    returned. Otherwise stdout is parsed as JSON, "warning:" lines on stderr become
    warnings, other lines verbose (or debug with -DebugOutput) messages, and a non-zero
    exit status becomes a terminating error carrying ssmex's one-sentence message.
    #>
    [Diagnostics.CodeAnalysis.SuppressMessageAttribute('PSUseDeclaredVarsMoreThanAssignments', '',
        Justification = 'The preference variables set here govern the native call below.')]
    [CmdletBinding()]
    [OutputType([pscustomobject])]
    param(
        [Parameter(Mandatory)]
        [string]$Command,

        [System.Collections.IDictionary]$Parameters = @{},

        [System.Collections.IDictionary]$Environment = @{},

        [switch]$Render,

        [switch]$Interactive,

        [switch]$DebugOutput
    )

    $executable = Find-SSMExExecutable

    $request = [ordered]@{
        command    = $Command
        parameters = $Parameters
        whatIf     = [bool]$Render
    }
    # -Depth: ConvertTo-Json stops at depth 2 by default, which would flatten -Parameter.
    $json = ConvertTo-Json -InputObject $request -Depth 10 -Compress
    $encoded = [System.Convert]::ToBase64String([System.Text.Encoding]::UTF8.GetBytes($json))

    $variables = [ordered]@{ SSMEX_REQUEST = $encoded }
    foreach ($name in $Environment.Keys) {
        $variables[[string]$name] = $Environment[$name]
    }
    $saved = @{}
    foreach ($name in $variables.Keys) {
        $saved[$name] = [System.Environment]::GetEnvironmentVariable($name)
    }

    # Native stderr must not stop the function; the exit status decides success below.
    $ErrorActionPreference = 'Continue'
    $PSNativeCommandUseErrorActionPreference = $false
    if ($DebugOutput -and $DebugPreference -eq 'Inquire') {
        $DebugPreference = 'Continue'
    }

    $output = @()
    try {
        foreach ($name in $variables.Keys) {
            [System.Environment]::SetEnvironmentVariable($name, $variables[$name])
        }
        if ($Interactive) {
            & $executable 'invoke'
        }
        else {
            $output = @(& $executable 'invoke' 2>&1)
        }
        $exitCode = $LASTEXITCODE
    }
    finally {
        foreach ($name in $saved.Keys) {
            [System.Environment]::SetEnvironmentVariable($name, $saved[$name])
        }
    }

    $stdout = New-Object -TypeName 'System.Collections.Generic.List[string]'
    $errorLines = New-Object -TypeName 'System.Collections.Generic.List[string]'
    foreach ($item in $output) {
        if ($item -is [System.Management.Automation.ErrorRecord]) {
            $line = $item.Exception.Message
            if ($line -like 'warning: *') {
                Write-Warning -Message $line.Substring(9)
            }
            elseif ($line -like 'error: *') {
                $errorLines.Add($line.Substring(7))
            }
            elseif ($DebugOutput) {
                Write-Debug -Message $line
            }
            else {
                Write-Verbose -Message $line
            }
        }
        else {
            $stdout.Add([string]$item)
        }
    }

    if ($exitCode -ne 0) {
        if ($errorLines.Count -gt 0) {
            $message = $errorLines -join ' '
        }
        elseif ($Interactive) {
            $message = "ssmex exited with status $exitCode; its message is above."
        }
        else {
            $message = "ssmex exited with status $exitCode without a message; run the command again with -Debug."
        }
        $exception = [System.InvalidOperationException]::new($message)
        $exception.Data['ExitCode'] = $exitCode
        throw [System.Management.Automation.ErrorRecord]::new($exception, "SSMEx.ExitStatus$exitCode", 'NotSpecified', $Command)
    }

    $text = ($stdout -join "`n").Trim()
    if ($text) {
        ConvertFrom-Json -InputObject $text
    }
}
