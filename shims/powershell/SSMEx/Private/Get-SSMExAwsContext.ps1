function Get-SSMExAwsContext {
    <#
    .SYNOPSIS
    Decides the region, the profile and the credential variables handed to ssmex.

    .DESCRIPTION
    Region: -Region, else the AWS Tools shell default when AWS Tools is loaded, else none,
    so ssmex resolves it (AWS_REGION, AWS_DEFAULT_REGION, the profile).

    Credentials: a -ProfileName that AWS Tools keeps in its own .NET credential store, or
    the shell credentials set with Set-AWSCredential, are resolved here with
    Get-AWSCredential, because neither ssmex nor session-manager-plugin can read them.
    They go to ssmex in AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN
    for the child process only. Any other -ProfileName is passed on by name for ssmex to
    resolve from the shared AWS config files. A label of $StoredAWSCredentials such as
    'Supplied Key Parameters' is never passed on as a profile name.

    Returns an object with Region, ProfileName, Environment (variable name to value, $null
    meaning "remove for the child") and CredentialSource (a description for -WhatIf).
    #>
    [CmdletBinding()]
    [OutputType([pscustomobject])]
    param(
        [string]$ProfileName,
        [string]$Region
    )

    $toolsLoaded = Test-SSMExAWSToolsLoaded

    $resolvedRegion = $null
    if ($Region) {
        $resolvedRegion = $Region
    }
    elseif ($toolsLoaded) {
        $default = Get-DefaultAWSRegion
        if ($default -and $default.Region) {
            $resolvedRegion = [string]$default.Region
        }
        else {
            $stored = Get-Variable -Name 'StoredAWSRegion' -Scope Global -ValueOnly -ErrorAction SilentlyContinue
            if ($stored) {
                $resolvedRegion = [string]$stored
            }
        }
    }

    $credentials = $null
    $credentialSource = $null
    $profileForSsmex = $null
    if ($ProfileName) {
        $inNetStore = $false
        if ($toolsLoaded) {
            $inNetStore = [bool](Get-AWSCredential -ListProfileDetail |
                    Where-Object { $_.ProfileName -eq $ProfileName -and $_.StoreTypeName -eq 'NetSDKCredentialsFile' })
        }
        if ($inNetStore) {
            $credentials = (Get-AWSCredential -ProfileName $ProfileName).GetCredentials()
            $credentialSource = "profile $ProfileName in the AWS Tools credential store"
        }
        else {
            $profileForSsmex = $ProfileName
        }
    }
    elseif ($toolsLoaded -and (Get-Variable -Name 'StoredAWSCredentials' -Scope Global -ValueOnly -ErrorAction SilentlyContinue)) {
        $shellCredentials = Get-AWSCredential
        if ($shellCredentials) {
            $credentials = $shellCredentials.GetCredentials()
            $credentialSource = 'the AWS Tools shell credentials (Set-AWSCredential)'
        }
    }

    $environment = [ordered]@{}
    if ($credentials) {
        $environment['AWS_ACCESS_KEY_ID'] = [string]$credentials.AccessKey
        $environment['AWS_SECRET_ACCESS_KEY'] = [string]$credentials.SecretKey
        $environment['AWS_SESSION_TOKEN'] = if ($credentials.UseToken) { [string]$credentials.Token } else { $null }
        # A profile named in the environment could be one only AWS Tools knows, which
        # ssmex would reject before it ever looks at the keys.
        $environment['AWS_PROFILE'] = $null
        $environment['AWS_DEFAULT_PROFILE'] = $null
    }

    [pscustomobject]@{
        Region           = $resolvedRegion
        ProfileName      = $profileForSsmex
        Environment      = $environment
        CredentialSource = $credentialSource
    }
}
