; Inno Setup 6 script for the PneumoScan desktop app (Windows, x64). NOT built or tested in this
; project's CI (Linux only): see docs/install.md. Build the bundle on Windows first, then:
;   python installer\build.py --feed-url https://hub.example.org/feed --root root.json
;   iscc /DAppVersion=0.1.0 /DDist=C:\path\to\dist\pneumoscan installer\windows\pneumoscan.iss
;
; Silent install (hospital IT):
;   pneumoscan-0.1.0-windows-x64-setup.exe /VERYSILENT /SUPPRESSMSGBOXES /NORESTART [/DIR="D:\Apps\PneumoScan"]
;       [/CONFIG="\\server\share\pneumoscan\config.toml"] [/CURRENTUSER] [/LOG="C:\Temp\pneumoscan-setup.log"]
;   /CONFIG copies the admin config to %PROGRAMDATA%\PneumoScan\config.toml (per-machine install) or to
;   the install folder (per-user install, /CURRENTUSER).
; Silent uninstall (keeps the audit log and per-user data unless /PURGE):
;   "%ProgramFiles%\PneumoScan\unins000.exe" /VERYSILENT /SUPPRESSMSGBOXES /NORESTART [/PURGE]

#ifndef AppVersion
  #define AppVersion "0.0.0"
#endif
#ifndef Dist
  #define Dist "..\..\dist\pneumoscan"
#endif

[Setup]
AppId={{6F1C2B0E-4E5A-4B8B-9D7E-2C4D5A9E1F37}
AppName=PneumoScan
AppVersion={#AppVersion}
AppVerName=PneumoScan {#AppVersion}
AppPublisher=PneumoScan
DefaultDirName={autopf}\PneumoScan
DefaultGroupName=PneumoScan
DisableProgramGroupPage=yes
PrivilegesRequired=admin
PrivilegesRequiredOverridesAllowed=dialog commandline
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
OutputDir={#Dist}\..
OutputBaseFilename=pneumoscan-{#AppVersion}-windows-x64-setup
Compression=lzma2
SolidCompression=yes
UninstallDisplayIcon={app}\PneumoScan.exe
CloseApplications=yes

[Languages]
Name: "en"; MessagesFile: "compiler:Default.isl"
Name: "fr"; MessagesFile: "compiler:Languages\French.isl"

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked

[Files]
Source: "{#Dist}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{autoprograms}\PneumoScan"; Filename: "{app}\PneumoScan.exe"
Name: "{autodesktop}\PneumoScan"; Filename: "{app}\PneumoScan.exe"; Tasks: desktopicon

[Run]
Filename: "{app}\PneumoScan.exe"; Description: "{cm:LaunchProgram,PneumoScan}"; Flags: nowait postinstall skipifsilent

[UninstallDelete]
Type: files; Name: "{app}\config.toml"

[Code]
function ParamValue(const Name: String): String;
var
  I: Integer;
  Prefix: String;
begin
  Result := '';
  Prefix := '/' + Name + '=';
  for I := 1 to ParamCount do
    if CompareText(Copy(ParamStr(I), 1, Length(Prefix)), Prefix) = 0 then
      Result := Copy(ParamStr(I), Length(Prefix) + 1, MaxInt);
end;

function HasSwitch(const Name: String): Boolean;
var
  I: Integer;
begin
  Result := False;
  for I := 1 to ParamCount do
    if CompareText(ParamStr(I), '/' + Name) = 0 then
      Result := True;
end;

function ConfigDest: String;
begin
  if IsAdminInstallMode then
    Result := ExpandConstant('{commonappdata}\PneumoScan\config.toml')
  else
    Result := ExpandConstant('{app}\config.toml');
end;

function InitializeSetup: Boolean;
begin
  Result := True;
  if (ParamValue('CONFIG') <> '') and not FileExists(ParamValue('CONFIG')) then
  begin
    SuppressibleMsgBox('The admin config ' + ParamValue('CONFIG') + ' does not exist.', mbCriticalError, MB_OK, IDOK);
    Result := False;
  end;
end;

procedure CurStepChanged(CurStep: TSetupStep);
begin
  if (CurStep = ssPostInstall) and (ParamValue('CONFIG') <> '') then
  begin
    ForceDirectories(ExtractFileDir(ConfigDest));
    if not FileCopy(ParamValue('CONFIG'), ConfigDest, False) then
      Log('Could not copy the admin config to ' + ConfigDest);
  end;
end;

{ /PURGE: also delete the data of the account running the uninstaller (audit log, models, logs, settings) }
{ and the machine-wide admin config. Without it they stay, like every other account's data. }
procedure CurUninstallStepChanged(CurUninstallStep: TUninstallStep);
begin
  if (CurUninstallStep = usPostUninstall) and HasSwitch('PURGE') then
  begin
    DelTree(ExpandConstant('{localappdata}\PneumoScan'), True, True, True);
    DelTree(ExpandConstant('{userappdata}\PneumoScan'), True, True, True);
    if IsAdminInstallMode then
      DelTree(ExpandConstant('{commonappdata}\PneumoScan'), True, True, True);
  end;
end;
