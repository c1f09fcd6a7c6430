@ssmex.exe Stop-SSMSessionEx %*
