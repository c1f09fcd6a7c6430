function Get-SSMExActionText {
    <#
    .SYNOPSIS
    Returns the text -WhatIf and -Confirm show: the exact ssmex command, secrets redacted.

    .DESCRIPTION
    ssmex renders its own command line (a request with whatIf set), so what is shown is
    what runs. That costs one more start of ssmex, so it happens only when the text will
    be shown: under -WhatIf, or when $ConfirmPreference is at or below the command's
    impact of Medium. Credentials handed over in the environment are listed by name, with
    the secret key and session token redacted.
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param(
        [Parameter(Mandatory)]
        [string]$Command,

        [System.Collections.IDictionary]$Parameters = @{},

        [System.Collections.IDictionary]$Environment = @{},

        [string]$CredentialSource
    )

    $shown = $WhatIfPreference -or ($ConfirmPreference -eq 'Low') -or ($ConfirmPreference -eq 'Medium')
    if (-not $shown) {
        return "ssmex invoke ($Command)"
    }

    $rendered = Invoke-SSMExRequest -Command $Command -Parameters $Parameters -Render
    $text = $rendered.CommandLine
    if ($Environment.Contains('AWS_ACCESS_KEY_ID')) {
        $text += " with AWS_ACCESS_KEY_ID=$($Environment['AWS_ACCESS_KEY_ID']), AWS_SECRET_ACCESS_KEY=<redacted>"
        if ($Environment['AWS_SESSION_TOKEN']) {
            $text += ' and AWS_SESSION_TOKEN=<redacted>'
        }
        $text += " from $CredentialSource in its environment"
    }
    $text
}
