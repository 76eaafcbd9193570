// The generated API (`Authenticator`, `Approval`, `CoreError`, `Keystore`, `Bank`, ...) comes with
// `import Sleutel`, so that an app imports one module for the core and its iOS parts.
@_exported import SleutelCore
