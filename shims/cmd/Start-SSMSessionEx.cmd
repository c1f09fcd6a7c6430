@ssmex.exe Start-SSMSessionEx %*
