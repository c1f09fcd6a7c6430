function Start-SSMRDPClient {
    <#
    .SYNOPSIS
    Opens Remote Desktop to a Windows instance through a Session Manager port forward.

    .DESCRIPTION
    Start-SSMRDPClient runs "ssmex rdp": it gets the instance's Windows password with the
    key pair's private key, forwards a local port to the instance's RDP port through
    Session Manager, and starts the Remote Desktop client, so the instance needs no open
    inbound port. The password is handed to the client without appearing on a command line.

    .PARAMETER InstanceId
    The id of the Windows instance, such as i-0123456789abcdef0.

    .PARAMETER PemFile
    The private key (.pem) of the key pair the instance was launched with; it decrypts the
    Administrator password.

    .PARAMETER Port
    The RDP port on the instance. The default is 3389.

    .PARAMETER LocalPort
    The local port to forward from. Without it, the first free port from 33389.

    .PARAMETER NoLaunch
    Forward the port and print the address and user instead of starting the Remote Desktop
    client. The forward stays open until you press Ctrl+C.

    .PARAMETER ProfileName
    The AWS profile to use, resolved as in Start-SSMSessionEx.

    .PARAMETER Region
    The AWS region; without it, the AWS Tools default region or ssmex's own lookup.

    .PARAMETER EndpointUrl
    An SSM endpoint URL to use instead of the one the SDK resolves.

    .PARAMETER Ec2EndpointUrl
    An EC2 endpoint URL for the instance lookup and the password, instead of the one the
    SDK resolves.

    .PARAMETER PluginPath
    The session-manager-plugin executable to run.
    .PARAMETER Client
    What runs the session: Plugin (session-manager-plugin), Native (ssmex's own client,
    which needs no plugin installed) or Auto (the plugin when it is found, else Native).
    Without it, $env:SSMEX_CLIENT, then Auto.

    .EXAMPLE
    Start-SSMRDPClient -InstanceId i-0123456789abcdef0 -PemFile .\admin-key.pem

    Connects with Remote Desktop through Session Manager. The forward and the session end
    when the client closes.

    .EXAMPLE
    Start-SSMRDPClient i-0123456789abcdef0 -PemFile C:\keys\admin-key.pem -LocalPort 33389 -NoLaunch

    Forwards local port 33389 to the instance's RDP port for another RDP client.

    .EXAMPLE
    Start-SSMSessionEx -Target i-0123456789abcdef0 -DocumentName AWS-StartPortForwardingSession -Parameter @{ portNumber = 3389; localPortNumber = 33389 } -PassThru

    A plain port forward to RDP without the password step; see Start-SSMSessionEx.

    .EXAMPLE
    Start-SSMRDPClient -InstanceId i-0123456789abcdef0 -PemFile .\admin-key.pem -Port 3390 -ProfileName ops -Region eu-west-1

    Connects to RDP listening on port 3390 with the profile ops.

    .OUTPUTS
    None.
    #>
    [CmdletBinding(SupportsShouldProcess)]
    param(
        [Parameter(Mandatory, Position = 0, ValueFromPipelineByPropertyName)]
        [Alias('Target')]
        [ValidateNotNullOrEmpty()]
        [string]$InstanceId,

        [Parameter(Mandatory)]
        [ValidateNotNullOrEmpty()]
        [string]$PemFile,

        [ValidateRange(1, 65535)]
        [int]$Port = 3389,

        [ValidateRange(0, 65535)]
        [int]$LocalPort,

        [switch]$NoLaunch,

        [ValidateNotNullOrEmpty()]
        [string]$ProfileName,

        [ValidateNotNullOrEmpty()]
        [string]$Region,

        [ValidateNotNullOrEmpty()]
        [string]$EndpointUrl,

        [ValidateNotNullOrEmpty()]
        [string]$Ec2EndpointUrl,

        [ValidateNotNullOrEmpty()]
        [string]$PluginPath,

        [ValidateSet('Auto', 'Plugin', 'Native')]
        [string]$Client
    )

    process {
        try {
            $context = Get-SSMExAwsContext -ProfileName $ProfileName -Region $Region

            # Relative paths mean the current PowerShell location, which ssmex does not know.
            $request = [ordered]@{
                InstanceId = $InstanceId
                PemFile    = $PSCmdlet.GetUnresolvedProviderPathFromPSPath($PemFile)
                Port       = $Port
            }
            if ($PSBoundParameters.ContainsKey('LocalPort')) { $request['LocalPort'] = $LocalPort }
            if ($NoLaunch) { $request['NoLaunch'] = $true }
            if ($context.ProfileName) { $request['ProfileName'] = $context.ProfileName }
            if ($context.Region) { $request['Region'] = $context.Region }
            if ($EndpointUrl) { $request['EndpointUrl'] = $EndpointUrl }
            if ($Ec2EndpointUrl) { $request['Ec2EndpointUrl'] = $Ec2EndpointUrl }
            if ($PluginPath) { $request['PluginPath'] = $PSCmdlet.GetUnresolvedProviderPathFromPSPath($PluginPath) }
            if ($Client) { $request['Client'] = $Client.ToLowerInvariant() }
            $debugOutput = $PSBoundParameters.ContainsKey('Debug')
            if ($debugOutput) { $request['Debug'] = $true }

            $action = Get-SSMExActionText -Command 'Start-SSMRDPClient' -Parameters $request -Environment $context.Environment -CredentialSource $context.CredentialSource
            if ($PSCmdlet.ShouldProcess($action, "Run $action?", 'Start-SSMRDPClient')) {
                Invoke-SSMExRequest -Command 'Start-SSMRDPClient' -Parameters $request -Environment $context.Environment -Interactive -DebugOutput:$debugOutput
            }
        }
        catch {
            $PSCmdlet.ThrowTerminatingError($_)
        }
    }
}
