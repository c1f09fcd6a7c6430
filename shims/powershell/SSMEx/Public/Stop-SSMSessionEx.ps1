function Stop-SSMSessionEx {
    <#
    .SYNOPSIS
    Ends background sessions: stops their plugin process and calls TerminateSession.

    .DESCRIPTION
    Stop-SSMSessionEx runs "ssmex sessions stop" for each session id, given by name or by
    the pipeline (any object with a SessionId property, such as the output of
    Get-SSMSessionEx or Start-SSMSessionEx -PassThru). ssmex uses the profile, region and
    endpoint recorded when the session started. A session that fails to stop is reported
    as a non-terminating error, and the others are still stopped.

    .PARAMETER SessionId
    The ids of the sessions to end.

    .PARAMETER All
    End every recorded background session.

    .EXAMPLE
    Stop-SSMSessionEx -SessionId alice-0a1b2c3d4e5f6a7b8

    Ends one session.

    .EXAMPLE
    $forward = Start-SSMSessionEx i-0123456789abcdef0 AWS-StartPortForwardingSession -Parameter @{ portNumber = 3389; localPortNumber = 33389 } -PassThru
    $forward | Stop-SSMSessionEx

    Starts a port forward and ends it through the pipeline.

    .EXAMPLE
    Get-SSMSessionEx | Where-Object Target -eq i-0123456789abcdef0 | Stop-SSMSessionEx -Confirm

    Ends the sessions to one instance, asking for each one and showing the ssmex command.

    .EXAMPLE
    Stop-SSMSessionEx -All

    Ends every recorded background session, such as port forwards to remote hosts and
    RDP tunnels.

    .OUTPUTS
    None.
    #>
    [CmdletBinding(SupportsShouldProcess, DefaultParameterSetName = 'ById')]
    param(
        [Parameter(Mandatory, Position = 0, ValueFromPipeline, ValueFromPipelineByPropertyName, ParameterSetName = 'ById')]
        [ValidateNotNullOrEmpty()]
        [string[]]$SessionId,

        [Parameter(Mandatory, ParameterSetName = 'All')]
        [switch]$All
    )

    process {
        $debugOutput = $PSBoundParameters.ContainsKey('Debug')
        $requests = @()
        if ($All) {
            $requests += , ([ordered]@{ All = $true })
        }
        else {
            foreach ($id in $SessionId) {
                $requests += , ([ordered]@{ SessionId = @($id) })
            }
        }

        foreach ($request in $requests) {
            if ($debugOutput) { $request['Debug'] = $true }
            try {
                $action = Get-SSMExActionText -Command 'Stop-SSMSessionEx' -Parameters $request
                if ($PSCmdlet.ShouldProcess($action, "Run $action?", 'Stop-SSMSessionEx')) {
                    Invoke-SSMExRequest -Command 'Stop-SSMSessionEx' -Parameters $request -DebugOutput:$debugOutput | Out-Null
                }
            }
            catch {
                $PSCmdlet.WriteError($_)
            }
        }
    }
}
