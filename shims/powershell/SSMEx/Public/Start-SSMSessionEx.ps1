function Start-SSMSessionEx {
    <#
    .SYNOPSIS
    Starts a Session Manager session through ssmex: a shell, a port forward or any session document.

    .DESCRIPTION
    Start-SSMSessionEx does what Start-SSMSession from AWS Tools for PowerShell does, and
    then hands the session to session-manager-plugin correctly: the session token never
    appears on a command line, -Parameter is a hashtable rather than hand-quoted JSON, the
    endpoint is the one the SDK resolves, and credentials from the AWS Tools credential
    store or Set-AWSCredential reach ssmex in its environment.

    The function runs the ssmex executable (from the module's bin folder, $env:SSMEX_EXE or
    PATH) and passes it the request as base64 JSON in $env:SSMEX_REQUEST, so it behaves the
    same in Windows PowerShell 5.1 and in every $PSNativeCommandArgumentPassing mode.

    Without -PassThru the session runs in this console until it ends. With -PassThru the
    plugin runs in the background and the session is returned; end it with
    Stop-SSMSessionEx.

    .PARAMETER Target
    The instance id (i-...) or managed node id (mi-...) to connect to.

    .PARAMETER DocumentName
    The session document, such as AWS-StartPortForwardingSession,
    AWS-StartPortForwardingSessionToRemoteHost or AWS-StartSSHSession. Without it the
    session is a shell (SSM-SessionManagerRunShell).

    .PARAMETER Parameter
    The document's parameters as a hashtable. Each value is one value or an array, for
    example @{ portNumber = 3389; localPortNumber = 33389 }. Numbers are sent as strings.

    .PARAMETER Reason
    The reason for the session, 1 to 256 characters, shown in the session history.

    .PARAMETER ProfileName
    The AWS profile to use. A profile in the AWS Tools credential store is resolved with
    Get-AWSCredential; any other profile is read by ssmex from the shared AWS config files.
    Without it, the shell credentials of AWS Tools (Set-AWSCredential) are used when AWS
    Tools is loaded, else ssmex's own lookup (environment, default profile, SSO).

    .PARAMETER Region
    The AWS region, such as eu-west-1. Without it, the AWS Tools default region
    (Set-DefaultAWSRegion) when AWS Tools is loaded, else ssmex's own lookup.

    .PARAMETER PassThru
    Start the plugin in the background, wait until the session is ready and return it.

    .PARAMETER EndpointUrl
    An SSM endpoint URL to use instead of the one the SDK resolves, such as a VPC endpoint.

    .PARAMETER Ec2EndpointUrl
    An EC2 endpoint URL for looking up a -Target given as a Name tag value, instead of the
    one the SDK resolves.
    .PARAMETER PluginPath
    The session-manager-plugin executable to run. Without it, ssmex uses SSMEX_PLUGIN,
    PATH, then the installers' locations.
    .PARAMETER Client
    What runs the session: Plugin (session-manager-plugin), Native (ssmex's own client,
    which needs no plugin installed) or Auto (the plugin when it is found, else Native).
    Without it, $env:SSMEX_CLIENT, then Auto.

    .EXAMPLE
    Start-SSMSessionEx -Target i-0123456789abcdef0

    Opens a shell on the instance in this console.

    .EXAMPLE
    $rdp = Start-SSMSessionEx i-0123456789abcdef0 AWS-StartPortForwardingSession -Parameter @{ portNumber = 3389; localPortNumber = 33389 } -PassThru
    mstsc.exe /v:localhost:33389
    $rdp | Stop-SSMSessionEx

    Forwards local port 33389 to the instance's RDP port in the background, connects with
    Remote Desktop, then ends the session.

    .EXAMPLE
    Start-SSMSessionEx -Target i-0123456789abcdef0 -DocumentName AWS-StartPortForwardingSessionToRemoteHost -Parameter @{ host = 'db.internal.example'; portNumber = 5432; localPortNumber = 15432 } -Reason 'schema migration' -PassThru

    Forwards local port 15432 through the instance to a database that only the instance
    can reach, and records the reason in the session history.

    .EXAMPLE
    Set-AWSCredential -ProfileName ops-store; Start-SSMSessionEx -Target i-0123456789abcdef0 -Region eu-west-1

    Uses the profile ops-store from the AWS Tools credential store, which ssmex receives
    as keys in its environment.

    .EXAMPLE
    Start-SSMRDPClient -InstanceId i-0123456789abcdef0 -PemFile .\key.pem

    For Remote Desktop with the instance's Windows password, see Start-SSMRDPClient.

    .OUTPUTS
    None without -PassThru. With -PassThru, an SSMEx.StartedSession object with SessionId,
    Session (an SSMEx.Session with SessionId, Target, DocumentName, StreamUrl and
    LocalPort; never the token) and Process (the System.Diagnostics.Process of the
    background plugin).
    #>
    [CmdletBinding(SupportsShouldProcess)]
    [OutputType('SSMEx.StartedSession')]
    param(
        [Parameter(Mandatory, Position = 0)]
        [ValidateNotNullOrEmpty()]
        [string]$Target,

        [Parameter(Position = 1)]
        [ValidateNotNullOrEmpty()]
        [string]$DocumentName,

        [System.Collections.IDictionary]$Parameter,

        [ValidateLength(1, 256)]
        [string]$Reason,

        [ValidateNotNullOrEmpty()]
        [string]$ProfileName,

        [ValidateNotNullOrEmpty()]
        [string]$Region,

        [switch]$PassThru,

        [ValidateNotNullOrEmpty()]
        [string]$EndpointUrl,

        [ValidateNotNullOrEmpty()]
        [string]$Ec2EndpointUrl,

        [ValidateNotNullOrEmpty()]
        [string]$PluginPath,

        [ValidateSet('Auto', 'Plugin', 'Native')]
        [string]$Client
    )

    try {
        $context = Get-SSMExAwsContext -ProfileName $ProfileName -Region $Region

        $request = [ordered]@{ Target = $Target }
        if ($DocumentName) { $request['DocumentName'] = $DocumentName }
        if ($PSBoundParameters.ContainsKey('Parameter')) { $request['Parameter'] = ConvertTo-SSMExParameterMap -Parameter $Parameter }
        if ($Reason) { $request['Reason'] = $Reason }
        if ($context.ProfileName) { $request['ProfileName'] = $context.ProfileName }
        if ($context.Region) { $request['Region'] = $context.Region }
        if ($PassThru) { $request['PassThru'] = $true }
        if ($EndpointUrl) { $request['EndpointUrl'] = $EndpointUrl }
        if ($Ec2EndpointUrl) { $request['Ec2EndpointUrl'] = $Ec2EndpointUrl }
        # A relative path means the current PowerShell location, which ssmex does not know.
        if ($PluginPath) { $request['PluginPath'] = $PSCmdlet.GetUnresolvedProviderPathFromPSPath($PluginPath) }
        if ($Client) { $request['Client'] = $Client.ToLowerInvariant() }
        $debugOutput = $PSBoundParameters.ContainsKey('Debug')
        if ($debugOutput) { $request['Debug'] = $true }

        $action = Get-SSMExActionText -Command 'Start-SSMSessionEx' -Parameters $request -Environment $context.Environment -CredentialSource $context.CredentialSource
        if (-not $PSCmdlet.ShouldProcess($action, "Run $action?", 'Start-SSMSessionEx')) {
            return
        }

        if (-not $PassThru) {
            Invoke-SSMExRequest -Command 'Start-SSMSessionEx' -Parameters $request -Environment $context.Environment -Interactive -DebugOutput:$debugOutput
            return
        }

        $record = Invoke-SSMExRequest -Command 'Start-SSMSessionEx' -Parameters $request -Environment $context.Environment -DebugOutput:$debugOutput
        $process = Get-Process -Id $record.ProcessId -ErrorAction SilentlyContinue
        if (-not $process) {
            Write-Warning -Message "The plugin process $($record.ProcessId) of session $($record.SessionId) has already exited."
        }
        $session = [pscustomobject]@{
            PSTypeName   = 'SSMEx.Session'
            SessionId    = $record.SessionId
            Target       = $record.Target
            DocumentName = $record.DocumentName
            StreamUrl    = $record.StreamUrl
            LocalPort    = $record.LocalPort
        }
        [pscustomobject]@{
            PSTypeName = 'SSMEx.StartedSession'
            SessionId  = $record.SessionId
            Session    = $session
            Process    = $process
        }
    }
    catch {
        $PSCmdlet.ThrowTerminatingError($_)
    }
}
