function Start-EC2RDPClient {
    <#
    .SYNOPSIS
    Opens Remote Desktop directly to a Windows instance, with its password from the key pair.

    .DESCRIPTION
    Start-EC2RDPClient runs "ssmex ec2-rdp": it gets the instance's Windows password with
    the key pair's private key and starts the Remote Desktop client against the instance's
    public address, without Session Manager. The instance's RDP port must be reachable from this
    computer. Use Start-SSMRDPClient when it is not.

    .PARAMETER InstanceId
    The id of the Windows instance, such as i-0123456789abcdef0.

    .PARAMETER PemFile
    The private key (.pem) of the key pair the instance was launched with; it decrypts the
    Administrator password.

    .PARAMETER Port
    The RDP port on the instance. The default is 3389.

    .PARAMETER NoLaunch
    Print the address and user instead of starting the Remote Desktop client.

    .PARAMETER ProfileName
    The AWS profile to use, resolved as in Start-SSMSessionEx.

    .PARAMETER Region
    The AWS region; without it, the AWS Tools default region or ssmex's own lookup.

    .PARAMETER Ec2EndpointUrl
    An EC2 endpoint URL for the instance lookup and the password, instead of the one the
    SDK resolves.

    .EXAMPLE
    Start-EC2RDPClient -InstanceId i-0123456789abcdef0 -PemFile .\admin-key.pem

    Connects with Remote Desktop to the instance's public address.

    .EXAMPLE
    Start-EC2RDPClient i-0123456789abcdef0 -PemFile C:\keys\admin-key.pem -Port 3390 -NoLaunch

    Checks that RDP answers on port 3390 and prints the address and user for another client.

    .EXAMPLE
    Start-SSMSessionEx -Target i-0123456789abcdef0

    A shell through Session Manager instead of RDP; see Start-SSMSessionEx.

    .EXAMPLE
    Start-SSMSessionEx -Target i-0123456789abcdef0 -DocumentName AWS-StartPortForwardingSessionToRemoteHost -Parameter @{ host = '10.0.1.25'; portNumber = 3389; localPortNumber = 33389 } -PassThru

    Reaches RDP on a host behind the instance through a Session Manager port forward.

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

        [switch]$NoLaunch,

        [ValidateNotNullOrEmpty()]
        [string]$ProfileName,

        [ValidateNotNullOrEmpty()]
        [string]$Region,

        [ValidateNotNullOrEmpty()]
        [string]$Ec2EndpointUrl
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
            if ($NoLaunch) { $request['NoLaunch'] = $true }
            if ($context.ProfileName) { $request['ProfileName'] = $context.ProfileName }
            if ($context.Region) { $request['Region'] = $context.Region }
            if ($Ec2EndpointUrl) { $request['Ec2EndpointUrl'] = $Ec2EndpointUrl }
            $debugOutput = $PSBoundParameters.ContainsKey('Debug')
            if ($debugOutput) { $request['Debug'] = $true }

            $action = Get-SSMExActionText -Command 'Start-EC2RDPClient' -Parameters $request -Environment $context.Environment -CredentialSource $context.CredentialSource
            if ($PSCmdlet.ShouldProcess($action, "Run $action?", 'Start-EC2RDPClient')) {
                Invoke-SSMExRequest -Command 'Start-EC2RDPClient' -Parameters $request -Environment $context.Environment -Interactive -DebugOutput:$debugOutput
            }
        }
        catch {
            $PSCmdlet.ThrowTerminatingError($_)
        }
    }
}
