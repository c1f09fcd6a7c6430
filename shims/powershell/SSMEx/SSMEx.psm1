# Loads the private helpers, then the public functions, one function per file, and exports
# the public ones. The manifest lists the same names, so Get-Command finds them before import.

$script:ModuleRoot = $PSScriptRoot

foreach ($folder in @('Private', 'Public')) {
    $path = Join-Path -Path $PSScriptRoot -ChildPath $folder
    foreach ($file in Get-ChildItem -Path $path -Filter '*.ps1' -File) {
        . $file.FullName
    }
}

$publicPath = Join-Path -Path $PSScriptRoot -ChildPath 'Public'
Export-ModuleMember -Function (Get-ChildItem -Path $publicPath -Filter '*.ps1' -File).BaseName
