; Inno Setup 6.3+ script: a setup .exe for the one-folder bundle in dist\tlgui.
; Built by packaging\build_windows.ps1, which runs PyInstaller first and sets
; TLGUI_VERSION. By hand (from the repo root, after the PyInstaller step):
;   set TLGUI_VERSION=0.1.0
;   iscc packaging\windows\tlgui.iss
; Relative paths below are relative to this file's folder (the default SourceDir).

#define AppVersion GetEnv("TLGUI_VERSION")
#if AppVersion == ""
  #error Set TLGUI_VERSION (build_windows.ps1 does).
#endif
#define BundleDir "..\..\dist\tlgui"
#if !FileExists(BundleDir + "\tlgui.exe")
  #error dist\tlgui\tlgui.exe is missing: run the PyInstaller step first (build_windows.ps1).
#endif

[Setup]
; AppId identifies the app for upgrades and the uninstaller; never change it.
AppId={{6F0D3C52-8B1E-4B7A-9C55-3E2B7A1D9F40}
AppName=tlgui
AppVersion={#AppVersion}
AppVerName=tlgui {#AppVersion}
AppPublisher=tlgui contributors
AppComments=Train an image classifier from folders of labelled photos, offline.
; Per-user install without admin rights by default (lab accounts rarely have them);
; the dialog lets an administrator install for all users instead.
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=dialog
DefaultDirName={autopf}\tlgui
DefaultGroupName=tlgui
DisableProgramGroupPage=yes
; TensorFlow ships only 64-bit binaries.
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
MinVersion=10.0
OutputDir=..\..\dist
OutputBaseFilename=tlgui-{#AppVersion}-windows-x64-setup
SetupIconFile=..\..\resources\tlgui.ico
UninstallDisplayIcon={app}\tlgui.exe
UninstallDisplayName=tlgui {#AppVersion}
WizardStyle=modern
Compression=lzma2/max
SolidCompression=yes
LZMAUseSeparateProcess=yes
; Close a running tlgui before files are replaced or removed.
CloseApplications=yes

[Languages]
Name: "english"; MessagesFile: "compiler:Default.isl"

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked

[Files]
; The whole bundle, weights included (in _internal\weights).
Source: "{#BundleDir}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs
Source: "..\..\docs\install.md"; DestDir: "{app}"; DestName: "INSTALL.md"; Flags: ignoreversion

[Icons]
Name: "{autoprograms}\tlgui"; Filename: "{app}\tlgui.exe"; WorkingDir: "{userdocs}"; Comment: "Train an image classifier from folders of photos"
Name: "{autoprograms}\tlgui self-test"; Filename: "{cmd}"; Parameters: "/k ""{app}\tlgui.exe"" --self-test"; WorkingDir: "{userdocs}"; Comment: "Check that tlgui works on this computer (about a minute)"
Name: "{autodesktop}\tlgui"; Filename: "{app}\tlgui.exe"; WorkingDir: "{userdocs}"; Tasks: desktopicon

[Run]
Filename: "{app}\tlgui.exe"; Description: "{cm:LaunchProgram,tlgui}"; Flags: nowait postinstall skipifsilent

[UninstallDelete]
; Weight files a user added beside the program (tlgui looks in {app}\weights too), and
; anything Python or Qt wrote into the bundle at run time. User data (runs, cache, logs)
; lives in the user's profile and is kept.
Type: filesandordirs; Name: "{app}\weights"
Type: filesandordirs; Name: "{app}\_internal"
Type: dirifempty; Name: "{app}"
