function Test-SSMExAWSToolsLoaded {
    <#
    .SYNOPSIS
    Returns whether a module of AWS Tools for PowerShell is loaded in this session.

    .DESCRIPTION
    Only a loaded module counts: the module never imports AWS Tools itself, because that
    takes seconds and the user may not want it.
    #>
    [CmdletBinding()]
    [OutputType([bool])]
    param()

    [bool](Get-Module -Name 'AWS.Tools.Common', 'AWSPowerShell', 'AWSPowerShell.NetCore')
}
