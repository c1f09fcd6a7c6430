function Get-SSMSessionEx {
    <#
    .SYNOPSIS
    Gets the background sessions started with Start-SSMSessionEx -PassThru.

    .DESCRIPTION
    Get-SSMSessionEx lists the sessions ssmex has recorded on this computer for this user,
    alive or gone, from "ssmex sessions list --json". Pipe them to Stop-SSMSessionEx to end
    them.

    .PARAMETER SessionId
    Returns only the sessions with these ids. Wildcards are allowed.

    .EXAMPLE
    Get-SSMSessionEx

    Lists every recorded background session with its target, document, local port and
    whether its plugin process is alive.

    .EXAMPLE
    Get-SSMSessionEx | Where-Object { -not $_.Alive } | Stop-SSMSessionEx

    Cleans up the sessions whose plugin process has exited.

    .EXAMPLE
    Start-SSMSessionEx i-0123456789abcdef0 AWS-StartPortForwardingSession -Parameter @{ portNumber = 22; localPortNumber = 2222 } -PassThru | Out-Null
    Get-SSMSessionEx | Format-Table SessionId, Target, LocalPort

    Starts a port forward in the background and shows it.

    .EXAMPLE
    Get-SSMSessionEx -SessionId 'alice-*' | Stop-SSMSessionEx -WhatIf

    Shows which ssmex commands would end the sessions of alice, without running them.

    .OUTPUTS
    SSMEx.BackgroundSession objects with SessionId, Target, DocumentName, ProcessId,
    LocalPort, StartTime, Region, Endpoint, Profile, StreamUrl, Alive and LogFile.
    #>
    [CmdletBinding()]
    [OutputType('SSMEx.BackgroundSession')]
    param(
        [Parameter(Position = 0, ValueFromPipeline, ValueFromPipelineByPropertyName)]
        [SupportsWildcards()]
        [string[]]$SessionId
    )

    begin {
        try {
            $debugOutput = $PSBoundParameters.ContainsKey('Debug')
            $request = [ordered]@{}
            if ($debugOutput) { $request['Debug'] = $true }
            # ConvertFrom-Json returns a JSON array as one object in Windows PowerShell 5.1;
            # the loop below unrolls it on both editions.
            $records = Invoke-SSMExRequest -Command 'Get-SSMSessionEx' -Parameters $request -DebugOutput:$debugOutput
            $sessions = foreach ($record in $records) {
                foreach ($item in $record) {
                    $item.PSObject.TypeNames.Insert(0, 'SSMEx.BackgroundSession')
                    $item
                }
            }
        }
        catch {
            $PSCmdlet.ThrowTerminatingError($_)
        }
        $seen = @{}
    }

    process {
        foreach ($session in $sessions) {
            if ($seen.ContainsKey($session.SessionId)) {
                continue
            }
            $wanted = -not $SessionId
            foreach ($pattern in $SessionId) {
                if ($session.SessionId -like $pattern) {
                    $wanted = $true
                }
            }
            if ($wanted) {
                $seen[$session.SessionId] = $true
                $session
            }
        }
    }
}
