@ssmex.exe Get-SSMSessionEx %*
