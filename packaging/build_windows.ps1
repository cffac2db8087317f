# Builds the Windows installer: dist\tlgui\ (one-folder bundle, weights inside) and
# dist\tlgui-<version>-windows-x64-setup.exe (Inno Setup: Start-menu entry, uninstaller).
#
#   powershell -ExecutionPolicy Bypass -File packaging\build_windows.ps1 [-WeightsDir DIR]
#
# WeightsDir: folder of backbone weight files to bundle. Default: $env:TLGUI_WEIGHTS_DIR,
# else ..\shared\weights\models beside the repo. Python: -Python, else $env:PYTHON, else
# .venv\Scripts\python.exe, else a new build\venv with the project installed from PyPI.
# Needs Inno Setup 6.3 or later (iscc.exe on PATH or in its default folder).
param(
    [string]$WeightsDir = "",
    [string]$Python = "",
    [switch]$SkipSelfTest
)
$ErrorActionPreference = "Stop"
Set-StrictMode -Version Latest

$Repo = Split-Path -Parent $PSScriptRoot
Set-Location $Repo
$Start = Get-Date

function Invoke-Checked {
    param([string]$Exe, [string[]]$Arguments)
    & $Exe @Arguments
    if ($LASTEXITCODE -ne 0) { throw "$Exe $($Arguments -join ' ') failed with exit code $LASTEXITCODE" }
}

if (-not $Python) { $Python = $env:PYTHON }
if (-not $Python) {
    if (Test-Path (Join-Path $Repo ".venv\Scripts\python.exe")) {
        $Python = Join-Path $Repo ".venv\Scripts\python.exe"
    } else {
        $Python = Join-Path $Repo "build\venv\Scripts\python.exe"
        if (-not (Test-Path $Python)) {
            Write-Host "creating build\venv (first build only)"
            Invoke-Checked "py" @("-3.11", "-m", "venv", "build\venv")
        }
        Invoke-Checked $Python @("-m", "pip", "install", "--quiet", "--upgrade", "pip")
        Invoke-Checked $Python @("-m", "pip", "install", "--quiet", ".[export,package]")
    }
}

$Iscc = Get-Command "iscc.exe" -ErrorAction SilentlyContinue
if ($Iscc) { $Iscc = $Iscc.Source } else {
    $Iscc = Join-Path ${env:ProgramFiles(x86)} "Inno Setup 6\ISCC.exe"
    if (-not (Test-Path $Iscc)) {
        throw "Inno Setup 6 (iscc.exe) not found: install it from https://jrsoftware.org/isinfo.php or with 'choco install innosetup'"
    }
}

# Windows PowerShell drops empty-string arguments, so pass --weights only when given.
$BundleArgs = @("packaging\build.py", "bundle")
if ($WeightsDir) { $BundleArgs += @("--weights", $WeightsDir) }
Invoke-Checked $Python $BundleArgs

if (-not $SkipSelfTest) {
    # The bundle must work before it is packed: train, export, reload, predict, offline.
    # Without TLGUI_WEIGHTS_DIR, which the app would search before its own weights.
    Remove-Item Env:TLGUI_WEIGHTS_DIR -ErrorAction SilentlyContinue
    Invoke-Checked (Join-Path $Repo "dist\tlgui\tlgui.exe") @("--self-test")
}

$env:TLGUI_VERSION = (& $Python packaging\build.py version).Trim()
Invoke-Checked $Iscc @("/Q", "packaging\windows\tlgui.iss")

$Setup = "dist\tlgui-$($env:TLGUI_VERSION)-windows-x64-setup.exe"
$Minutes = [math]::Round(((Get-Date) - $Start).TotalMinutes, 1)
Write-Host ""
Write-Host "built in $Minutes min"
Invoke-Checked $Python @("packaging\build.py", "size", "dist\tlgui", $Setup)
