@{
    RootModule           = 'SSMEx.psm1'
    ModuleVersion        = '0.1.0'
    GUID                 = '1af246df-8780-4c2c-8f89-dc0b6c9d2a02'
    Author               = 'ssmex contributors'
    Copyright            = '(c) ssmex contributors. Licensed under the Apache License 2.0.'
    Description          = 'Start AWS Systems Manager Session Manager sessions from PowerShell through the ssmex executable: no JSON quoting, no token on the command line, AWS Tools credentials and region honoured.'
    PowerShellVersion    = '5.1'
    CompatiblePSEditions = @('Desktop', 'Core')
    FunctionsToExport    = @(
        'Get-SSMSessionEx',
        'Start-EC2RDPClient',
        'Start-SSMRDPClient',
        'Start-SSMSessionEx',
        'Stop-SSMSessionEx'
    )
    CmdletsToExport      = @()
    VariablesToExport    = @()
    AliasesToExport      = @()
    PrivateData          = @{
        PSData = @{
            Tags       = @('AWS', 'SSM', 'SessionManager', 'PortForwarding', 'RDP', 'Windows', 'PSEdition_Desktop', 'PSEdition_Core')
            LicenseUri = 'https://www.apache.org/licenses/LICENSE-2.0'
        }
    }
}
