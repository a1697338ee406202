"""The web console, served under /console: sign-in (password, MFA), the event history, RAM users, groups,
AccessKeys and account settings. Server-rendered pages; every change is the API action itself, run through
dispatch as the signed-in principal and audited as a `ConsoleOperation` event."""
