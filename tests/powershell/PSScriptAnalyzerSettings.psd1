# PSScriptAnalyzer settings for the SSMEx module, used by the Pester tests in this folder.
@{
    # Information-level rules are left out: PSUseOutputTypeCorrectly cannot see the
    # PSTypeName of a [pscustomobject] and would report every typed output object.
    Severity     = @('Error', 'Warning')

    IncludeDefaultRules = $true

    Rules        = @{
        # The module promises Windows PowerShell 5.1 and PowerShell 7; syntax from newer
        # versions only, such as ?? or the ternary operator, must not slip in.
        PSUseCompatibleSyntax = @{
            Enable         = $true
            TargetVersions = @('5.1', '7.0')
        }
    }
}
