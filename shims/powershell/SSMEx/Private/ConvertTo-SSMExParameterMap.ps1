function ConvertTo-SSMExParameterMap {
    <#
    .SYNOPSIS
    Converts a -Parameter hashtable to names with lists of strings, as StartSession takes them.

    .DESCRIPTION
    Each value may be one value or an array. Numbers become strings with the invariant
    culture, so 3389 is "3389" whatever the user's locale.
    #>
    [CmdletBinding()]
    [OutputType([System.Collections.Specialized.OrderedDictionary])]
    param(
        [Parameter(Mandatory)]
        [System.Collections.IDictionary]$Parameter
    )

    $map = [ordered]@{}
    foreach ($name in $Parameter.Keys) {
        $values = New-Object -TypeName 'System.Collections.Generic.List[string]'
        foreach ($item in @($Parameter[$name])) {
            if ($null -eq $item) {
                continue
            }
            $values.Add([System.Convert]::ToString($item, [System.Globalization.CultureInfo]::InvariantCulture))
        }
        # ToArray gives a plain string[]; an array that went through the pipeline can carry
        # extra properties that Windows PowerShell 5.1's ConvertTo-Json would serialize.
        $map[[string]$name] = $values.ToArray()
    }
    $map
}
