#Requires -Modules @{ ModuleName = 'Pester'; ModuleVersion = '5.5.0' }

# Pester tests of the SSMEx module. A fake ssmex executable (tests/powershell/fake_ssmex,
# installed with pip so that it is a real .exe) records what each function hands it:
# argv as the C runtime split it, the decoded SSMEX_REQUEST and the AWS_* variables.
# Set $env:SSMEX_FAKE_EXE to its path before running; the workflow
# .github/workflows/powershell.yml does.

BeforeDiscovery {
    # $PSNativeCommandArgumentPassing exists from PowerShell 7.3; Windows PowerShell 5.1
    # always behaves as Legacy.
    if ($PSVersionTable.PSVersion -ge [version]'7.3') {
        $PassingModes = @(@{ Mode = 'Legacy' }, @{ Mode = 'Standard' }, @{ Mode = 'Windows' })
    }
    else {
        $PassingModes = @(@{ Mode = 'None' })
    }
}

BeforeAll {
    $ModuleFolder = Join-Path -Path $PSScriptRoot -ChildPath '../../shims/powershell/SSMEx'
    $ModuleManifest = Join-Path -Path $ModuleFolder -ChildPath 'SSMEx.psd1'
    Import-Module -Name $ModuleManifest -Force

    if (-not $env:SSMEX_FAKE_EXE -or -not (Test-Path -LiteralPath $env:SSMEX_FAKE_EXE -PathType Leaf)) {
        throw 'SSMEX_FAKE_EXE does not name the fake ssmex; run "pip install tests/powershell/fake_ssmex" in a virtual environment and set SSMEX_FAKE_EXE to its Scripts\ssmex.exe.'
    }

    # Stand-ins for the AWS Tools commands the module calls, so that Mock can replace them
    # without AWS Tools installed.
    function global:Get-DefaultAWSRegion { $null }
    function global:Get-AWSCredential {
        param([string]$ProfileName, [switch]$ListProfileDetail)
    }

    function Get-FakeRun {
        if (-not (Test-Path -LiteralPath $env:FAKE_SSMEX_RECORD)) {
            return , @()
        }
        , @(Get-Content -LiteralPath $env:FAKE_SSMEX_RECORD -Encoding UTF8 | ForEach-Object { ConvertFrom-Json -InputObject $_ })
    }

    function New-FakeCredential {
        param([string]$AccessKey, [string]$SecretKey, [string]$Token)
        $credentials = [pscustomobject]@{ AccessKey = $AccessKey; SecretKey = $SecretKey; Token = $Token; UseToken = [bool]$Token }
        $wrapper = [pscustomobject]@{ Credentials = $credentials }
        $wrapper | Add-Member -MemberType ScriptMethod -Name GetCredentials -Value { $this.Credentials } -PassThru
    }

    $InstanceId = 'i-0123456789abcdef0'
    $VariableNames = @('SSMEX_EXE', 'SSMEX_REQUEST', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_PROFILE', 'AWS_DEFAULT_PROFILE', 'PATH')
}

BeforeEach {
    $SavedVariables = @{}
    foreach ($name in $VariableNames) {
        $SavedVariables[$name] = [System.Environment]::GetEnvironmentVariable($name)
    }
    foreach ($name in @('AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_PROFILE', 'AWS_DEFAULT_PROFILE', 'SSMEX_REQUEST', 'FAKE_SSMEX_STDOUT', 'FAKE_SSMEX_STDERR', 'FAKE_SSMEX_EXIT')) {
        [System.Environment]::SetEnvironmentVariable($name, $null)
    }
    $env:SSMEX_EXE = $env:SSMEX_FAKE_EXE
    $env:FAKE_SSMEX_RECORD = Join-Path -Path $TestDrive -ChildPath ('runs-{0}.jsonl' -f [guid]::NewGuid())
    $env:FAKE_SSMEX_PROCESS_ID = [string]$PID
    Remove-Variable -Name 'StoredAWSCredentials', 'StoredAWSRegion' -Scope Global -ErrorAction SilentlyContinue
    Mock -ModuleName SSMEx Test-SSMExAWSToolsLoaded { $false }
}

AfterEach {
    foreach ($name in $VariableNames) {
        [System.Environment]::SetEnvironmentVariable($name, $SavedVariables[$name])
    }
}

Describe 'Start-SSMSessionEx with $PSNativeCommandArgumentPassing = <Mode>' -ForEach $PassingModes {
    BeforeAll {
        if ($Mode -ne 'None') {
            $SavedMode = $global:PSNativeCommandArgumentPassing
            $global:PSNativeCommandArgumentPassing = $Mode
        }
        # Built from code points, because Windows PowerShell 5.1 reads a script file without
        # a byte order mark in the ANSI code page.
        $Reason = 'say "hi" to C:\Program Files\ and ' + [char]0x65E5 + [char]0x672C + ' ' +
            [char]::ConvertFromUtf32(0x1F600) + ' with an empty "" pair'
    }

    AfterAll {
        if ($Mode -ne 'None') {
            $global:PSNativeCommandArgumentPassing = $SavedMode
        }
    }

    It 'passes only the word invoke on the command line' {
        Start-SSMSessionEx -Target $InstanceId -DocumentName 'AWS-StartPortForwardingSession' -Parameter @{ portNumber = 3389 } -Reason $Reason -PassThru | Out-Null

        $runs = Get-FakeRun
        $runs.Count | Should -Be 1
        $runs[0].argv.Count | Should -Be 2
        $runs[0].argv[1] | Should -BeExactly 'invoke'
    }

    It 'hands every parameter over intact in SSMEX_REQUEST' {
        $parameter = [ordered]@{ portNumber = 3389; localPortNumber = '33389'; command = @('echo', 'a "b" c', '') }

        Start-SSMSessionEx $InstanceId 'AWS-StartPortForwardingSession' -Parameter $parameter -Reason $Reason -Region 'eu-west-1' -EndpointUrl 'https://vpce.example.invalid' -Client Native -PassThru | Out-Null

        $request = (Get-FakeRun)[0].request
        $request.command | Should -BeExactly 'Start-SSMSessionEx'
        $request.whatIf | Should -BeFalse
        $request.parameters.Target | Should -BeExactly $InstanceId
        $request.parameters.DocumentName | Should -BeExactly 'AWS-StartPortForwardingSession'
        $request.parameters.Reason | Should -BeExactly $Reason
        $request.parameters.Region | Should -BeExactly 'eu-west-1'
        $request.parameters.EndpointUrl | Should -BeExactly 'https://vpce.example.invalid'
        $request.parameters.Client | Should -BeExactly 'native'
        $request.parameters.PassThru | Should -BeTrue
        @($request.parameters.Parameter.portNumber) | Should -Be @('3389')
        @($request.parameters.Parameter.localPortNumber) | Should -Be @('33389')
        @($request.parameters.Parameter.command) | Should -Be @('echo', 'a "b" c', '')
    }

    It 'returns the session and its plugin process with -PassThru' {
        $started = Start-SSMSessionEx -Target $InstanceId -PassThru

        $started.PSObject.TypeNames[0] | Should -BeExactly 'SSMEx.StartedSession'
        $started.SessionId | Should -BeExactly 'fake-0123456789abcdef0'
        $started.Session.PSObject.TypeNames[0] | Should -BeExactly 'SSMEx.Session'
        $started.Session.Target | Should -BeExactly $InstanceId
        $started.Session.DocumentName | Should -BeExactly 'SSM-SessionManagerRunShell'
        $started.Session.StreamUrl | Should -BeLike 'wss://*'
        $started.Session.PSObject.Properties.Name | Should -Not -Contain 'TokenValue'
        $started.Process | Should -BeOfType [System.Diagnostics.Process]
        $started.Process.Id | Should -Be $PID
    }

    It 'runs in the console and returns nothing without -PassThru' {
        $output = Start-SSMSessionEx -Target $InstanceId

        $output | Should -BeNullOrEmpty
        (Get-FakeRun).Count | Should -Be 1
        (Get-FakeRun)[0].request.parameters.PSObject.Properties.Name | Should -Not -Contain 'PassThru'
    }

    It 'shows the ssmex command under -WhatIf and starts nothing' {
        Start-SSMSessionEx -Target $InstanceId -Parameter @{ portNumber = 22 } -WhatIf

        $runs = Get-FakeRun
        $runs.Count | Should -Be 1
        $runs[0].request.whatIf | Should -BeTrue
        $runs[0].argv[1] | Should -BeExactly 'invoke'
    }
}

Describe 'Region and credentials' {
    It 'passes -Region over the AWS Tools default' {
        Mock -ModuleName SSMEx Test-SSMExAWSToolsLoaded { $true }
        Mock -ModuleName SSMEx Get-DefaultAWSRegion { [pscustomobject]@{ Region = 'ap-south-1' } }

        Start-SSMSessionEx -Target $InstanceId -Region 'eu-west-1' -PassThru | Out-Null

        (Get-FakeRun)[0].request.parameters.Region | Should -BeExactly 'eu-west-1'
    }

    It 'uses the AWS Tools default region when AWS Tools is loaded' {
        Mock -ModuleName SSMEx Test-SSMExAWSToolsLoaded { $true }
        Mock -ModuleName SSMEx Get-DefaultAWSRegion { [pscustomobject]@{ Region = 'ap-south-1' } }

        Start-SSMSessionEx -Target $InstanceId -PassThru | Out-Null

        (Get-FakeRun)[0].request.parameters.Region | Should -BeExactly 'ap-south-1'
    }

    It 'leaves the region to ssmex without AWS Tools' {
        Mock -ModuleName SSMEx Get-DefaultAWSRegion { [pscustomobject]@{ Region = 'ap-south-1' } }

        Start-SSMSessionEx -Target $InstanceId -PassThru | Out-Null

        (Get-FakeRun)[0].request.parameters.PSObject.Properties.Name | Should -Not -Contain 'Region'
        Should -Invoke -ModuleName SSMEx Get-DefaultAWSRegion -Times 0 -Exactly
    }

    It 'hands Set-AWSCredential keys over in the environment only' {
        Mock -ModuleName SSMEx Test-SSMExAWSToolsLoaded { $true }
        Mock -ModuleName SSMEx Get-DefaultAWSRegion { $null }
        $global:SSMExTestCredential = New-FakeCredential -AccessKey 'AKIAPESTERKEY0000001' -SecretKey 'pester-secret-key' -Token 'pester-session-token'
        Mock -ModuleName SSMEx Get-AWSCredential { $global:SSMExTestCredential } -ParameterFilter { -not $ListProfileDetail -and -not $ProfileName }
        $global:StoredAWSCredentials = 'Supplied Key Parameters'
        $env:AWS_SECRET_ACCESS_KEY = 'outer-secret'
        $env:AWS_PROFILE = 'outer-profile'

        Start-SSMSessionEx -Target $InstanceId -PassThru | Out-Null

        $run = (Get-FakeRun)[0]
        $run.environment.AWS_ACCESS_KEY_ID | Should -BeExactly 'AKIAPESTERKEY0000001'
        $run.environment.AWS_SECRET_ACCESS_KEY | Should -BeExactly 'pester-secret-key'
        $run.environment.AWS_SESSION_TOKEN | Should -BeExactly 'pester-session-token'
        $run.environment.PSObject.Properties.Name | Should -Not -Contain 'AWS_PROFILE'
        $run.request.parameters.PSObject.Properties.Name | Should -Not -Contain 'ProfileName'
        ($run.argv -join ' ') | Should -Not -Match 'pester-secret|pester-session-token|Supplied Key'
        ($run.request | ConvertTo-Json -Depth 10) | Should -Not -Match 'pester-secret|pester-session-token|Supplied Key'
        $env:AWS_SECRET_ACCESS_KEY | Should -BeExactly 'outer-secret'
        $env:AWS_PROFILE | Should -BeExactly 'outer-profile'
        $env:AWS_ACCESS_KEY_ID | Should -BeNullOrEmpty
        $env:SSMEX_REQUEST | Should -BeNullOrEmpty
    }

    It 'removes a stale session token when the keys have none' {
        Mock -ModuleName SSMEx Test-SSMExAWSToolsLoaded { $true }
        Mock -ModuleName SSMEx Get-DefaultAWSRegion { $null }
        $global:SSMExTestCredential = New-FakeCredential -AccessKey 'AKIAPESTERKEY0000002' -SecretKey 'pester-secret-key' -Token ''
        Mock -ModuleName SSMEx Get-AWSCredential { $global:SSMExTestCredential } -ParameterFilter { -not $ListProfileDetail -and -not $ProfileName }
        $global:StoredAWSCredentials = 'Environment Variables'
        $env:AWS_SESSION_TOKEN = 'stale-token'

        Start-SSMSessionEx -Target $InstanceId -PassThru | Out-Null

        $run = (Get-FakeRun)[0]
        $run.environment.AWS_ACCESS_KEY_ID | Should -BeExactly 'AKIAPESTERKEY0000002'
        $run.environment.PSObject.Properties.Name | Should -Not -Contain 'AWS_SESSION_TOKEN'
        $env:AWS_SESSION_TOKEN | Should -BeExactly 'stale-token'
    }

    It 'resolves a profile of the AWS Tools credential store to keys' {
        Mock -ModuleName SSMEx Test-SSMExAWSToolsLoaded { $true }
        Mock -ModuleName SSMEx Get-DefaultAWSRegion { $null }
        $global:SSMExTestCredential = New-FakeCredential -AccessKey 'AKIAPESTERSTORE00001' -SecretKey 'store-secret' -Token ''
        Mock -ModuleName SSMEx Get-AWSCredential { [pscustomobject]@{ ProfileName = 'store-profile'; StoreTypeName = 'NetSDKCredentialsFile' } } -ParameterFilter { $ListProfileDetail }
        Mock -ModuleName SSMEx Get-AWSCredential { $global:SSMExTestCredential } -ParameterFilter { $ProfileName -eq 'store-profile' }

        Start-SSMSessionEx -Target $InstanceId -ProfileName 'store-profile' -PassThru | Out-Null

        $run = (Get-FakeRun)[0]
        $run.environment.AWS_ACCESS_KEY_ID | Should -BeExactly 'AKIAPESTERSTORE00001'
        $run.request.parameters.PSObject.Properties.Name | Should -Not -Contain 'ProfileName'
    }

    It 'passes a shared-file profile on by name' {
        Mock -ModuleName SSMEx Test-SSMExAWSToolsLoaded { $true }
        Mock -ModuleName SSMEx Get-DefaultAWSRegion { $null }
        Mock -ModuleName SSMEx Get-AWSCredential { [pscustomobject]@{ ProfileName = 'dev'; StoreTypeName = 'SharedCredentialsFile' } } -ParameterFilter { $ListProfileDetail }

        Start-SSMSessionEx -Target $InstanceId -ProfileName 'dev' -PassThru | Out-Null

        $run = (Get-FakeRun)[0]
        $run.request.parameters.ProfileName | Should -BeExactly 'dev'
        $run.environment.PSObject.Properties.Name | Should -Not -Contain 'AWS_ACCESS_KEY_ID'
        Should -Invoke -ModuleName SSMEx Get-AWSCredential -Times 0 -Exactly -ParameterFilter { $ProfileName -eq 'dev' }
    }

    It 'passes -ProfileName on by name without AWS Tools' {
        Start-SSMSessionEx -Target $InstanceId -ProfileName 'dev' -PassThru | Out-Null

        (Get-FakeRun)[0].request.parameters.ProfileName | Should -BeExactly 'dev'
    }
}

Describe 'Errors and messages' {
    It 'raises the one-sentence message of ssmex' {
        $env:FAKE_SSMEX_EXIT = '6'
        $env:FAKE_SSMEX_STDOUT = ''
        $env:FAKE_SSMEX_STDERR = 'error: StartSession failed with TargetNotConnected: i-0123456789abcdef0 is not connected; check that the instance is running.'

        { Start-SSMSessionEx -Target $InstanceId -PassThru } |
            Should -Throw -ExpectedMessage 'StartSession failed with TargetNotConnected*' -ErrorId 'SSMEx.ExitStatus6*'
    }

    It 'reports a failed foreground session by its exit status' {
        $env:FAKE_SSMEX_EXIT = '9'

        { Start-SSMSessionEx -Target $InstanceId } | Should -Throw -ExpectedMessage 'ssmex exited with status 9; its message is above.'
    }

    It 'turns warning lines into warnings' {
        $env:FAKE_SSMEX_STDERR = 'warning: session-manager-plugin 1.2.688.0 stalls on port forwards; update it.'

        $warnings = @(Start-SSMSessionEx -Target $InstanceId -PassThru 3>&1 | Where-Object { $_ -is [System.Management.Automation.WarningRecord] })

        $warnings.Count | Should -Be 1
        $warnings[0].Message | Should -BeExactly 'session-manager-plugin 1.2.688.0 stalls on port forwards; update it.'
    }

    It 'says where it looked when ssmex is missing' {
        $empty = Join-Path -Path $TestDrive -ChildPath 'empty'
        New-Item -ItemType Directory -Path $empty -Force | Out-Null
        $env:SSMEX_EXE = Join-Path -Path $TestDrive -ChildPath 'missing\ssmex.exe'
        $env:PATH = $empty

        { Start-SSMSessionEx -Target $InstanceId } | Should -Throw -ExpectedMessage 'ssmex was not found*missing*on PATH*SSMEX_EXE*' -ErrorId 'SSMEx.ExecutableNotFound*'
    }

    It 'ignores an ssmex.cmd on PATH' {
        $folder = Join-Path -Path $TestDrive -ChildPath 'cmd-only'
        New-Item -ItemType Directory -Path $folder -Force | Out-Null
        Set-Content -LiteralPath (Join-Path -Path $folder -ChildPath 'ssmex.cmd') -Value '@echo never run'
        $env:SSMEX_EXE = $null
        $env:PATH = $folder

        { Start-SSMSessionEx -Target $InstanceId } | Should -Throw -ExpectedMessage 'ssmex was not found*'
    }
}

Describe 'Get-SSMSessionEx' {
    BeforeEach {
        $env:FAKE_SSMEX_STDOUT = '[{"SessionId":"alice-0a1b","Target":"i-0123456789abcdef0","ProcessId":4242,"LocalPort":33389,"Alive":true},' +
            '{"SessionId":"bob-0c2d","Target":"i-0fedcba9876543210","ProcessId":4343,"LocalPort":null,"Alive":false}]'
    }

    It 'returns typed objects from ssmex sessions list' {
        $sessions = @(Get-SSMSessionEx)

        $sessions.Count | Should -Be 2
        $sessions[0].PSObject.TypeNames[0] | Should -BeExactly 'SSMEx.BackgroundSession'
        $sessions[1].SessionId | Should -BeExactly 'bob-0c2d'
        (Get-FakeRun)[0].request.command | Should -BeExactly 'Get-SSMSessionEx'
    }

    It 'filters by session id with wildcards' {
        $sessions = @(Get-SSMSessionEx -SessionId 'alice-*')

        $sessions.Count | Should -Be 1
        $sessions[0].LocalPort | Should -Be 33389
    }

    It 'returns one session from a list of one' {
        $env:FAKE_SSMEX_STDOUT = '[{"SessionId":"alice-0a1b","Alive":true}]'

        $sessions = @(Get-SSMSessionEx)

        $sessions.Count | Should -Be 1
        $sessions[0].SessionId | Should -BeExactly 'alice-0a1b'
    }

    It 'returns nothing when there are no sessions' {
        $env:FAKE_SSMEX_STDOUT = '[]'

        @(Get-SSMSessionEx).Count | Should -Be 0
    }
}

Describe 'Stop-SSMSessionEx' {
    It 'stops each piped session by id' {
        $env:FAKE_SSMEX_STDOUT = '[{"SessionId":"alice-0a1b"},{"SessionId":"bob-0c2d"}]'
        $sessions = @(Get-SSMSessionEx)
        $env:FAKE_SSMEX_STDOUT = ''

        $sessions | Stop-SSMSessionEx

        $stops = @((Get-FakeRun) | Where-Object { $_.request.command -eq 'Stop-SSMSessionEx' })
        $stops.Count | Should -Be 2
        @($stops[0].request.parameters.SessionId) | Should -Be @('alice-0a1b')
        @($stops[1].request.parameters.SessionId) | Should -Be @('bob-0c2d')
    }

    It 'stops every session with -All' {
        Stop-SSMSessionEx -All

        (Get-FakeRun)[0].request.parameters.All | Should -BeTrue
    }

    It 'only renders the command under -WhatIf' {
        Stop-SSMSessionEx -SessionId 'alice-0a1b' -WhatIf

        $runs = Get-FakeRun
        $runs.Count | Should -Be 1
        $runs[0].request.whatIf | Should -BeTrue
    }

    It 'reports a failure without stopping the pipeline' {
        $env:FAKE_SSMEX_EXIT = '2'
        $env:FAKE_SSMEX_STDERR = 'error: No background session alice-0a1b is recorded; see `ssmex sessions list`.'

        Stop-SSMSessionEx -SessionId 'alice-0a1b', 'bob-0c2d' -ErrorVariable failures -ErrorAction SilentlyContinue

        $failures.Count | Should -Be 2
        $failures[0].Exception.Message | Should -BeLike 'No background session alice-0a1b is recorded*'
        (Get-FakeRun).Count | Should -Be 2
    }
}

Describe 'RDP clients' {
    It 'hands Start-SSMRDPClient the full key path and the port' {
        Push-Location -Path $TestDrive
        try {
            Start-SSMRDPClient -InstanceId $InstanceId -PemFile 'admin key.pem' -LocalPort 33389 -NoLaunch -Client Plugin
        }
        finally {
            Pop-Location
        }

        $request = (Get-FakeRun)[0].request
        $request.command | Should -BeExactly 'Start-SSMRDPClient'
        $request.parameters.InstanceId | Should -BeExactly $InstanceId
        $request.parameters.PemFile | Should -BeExactly (Join-Path -Path $TestDrive -ChildPath 'admin key.pem')
        $request.parameters.Port | Should -Be 3389
        $request.parameters.LocalPort | Should -Be 33389
        $request.parameters.NoLaunch | Should -BeTrue
        $request.parameters.Client | Should -BeExactly 'plugin'
    }

    It 'hands Start-EC2RDPClient its parameters' {
        Start-EC2RDPClient $InstanceId -PemFile (Join-Path -Path $TestDrive -ChildPath 'k.pem') -Port 3390 -Region 'eu-west-1'

        $request = (Get-FakeRun)[0].request
        $request.command | Should -BeExactly 'Start-EC2RDPClient'
        $request.parameters.Port | Should -Be 3390
        $request.parameters.Region | Should -BeExactly 'eu-west-1'
        $request.parameters.PSObject.Properties.Name | Should -Not -Contain 'NoLaunch'
    }
}

Describe 'Module' {
    It 'has a valid manifest that exports exactly the Public functions' {
        $manifest = Test-ModuleManifest -Path $ModuleManifest

        $public = (Get-ChildItem -Path (Join-Path -Path $ModuleFolder -ChildPath 'Public') -Filter '*.ps1').BaseName | Sort-Object
        @($manifest.ExportedFunctions.Keys | Sort-Object) | Should -Be @($public)
        $manifest.PowerShellVersion | Should -Be ([version]'5.1')
        @((Get-Command -Module SSMEx).Name | Sort-Object) | Should -Be @($public)
    }

    It 'has complete help for <_>' -ForEach @('Start-SSMSessionEx', 'Get-SSMSessionEx', 'Stop-SSMSessionEx', 'Start-SSMRDPClient', 'Start-EC2RDPClient') {
        $help = Get-Help -Name $_ -Full

        $help.Synopsis | Should -Not -BeNullOrEmpty
        @($help.examples.example).Count | Should -BeGreaterOrEqual 4
        foreach ($parameter in @($help.parameters.parameter)) {
            if ($parameter.name -in @('WhatIf', 'Confirm')) {
                continue
            }
            ($parameter.description | Out-String).Trim() | Should -Not -BeNullOrEmpty -Because "-$($parameter.name) needs a description"
        }
    }

    It 'passes PSScriptAnalyzer with the project settings' {
        $settings = Join-Path -Path $PSScriptRoot -ChildPath 'PSScriptAnalyzerSettings.psd1'

        $findings = @(Invoke-ScriptAnalyzer -Path $ModuleFolder -Recurse -Settings $settings)

        $findings | ForEach-Object { '{0}:{1} {2} {3}' -f $_.ScriptName, $_.Line, $_.RuleName, $_.Message } | Should -BeNullOrEmpty
    }
}
