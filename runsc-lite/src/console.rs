//! The terminal hook of the OCI lifecycle: `create`, `run` and `exec` call
//! [`attach`] with `process.terminal` (or `exec --tty`) and
//! `--console-socket`. The pseudo-terminal work (devpts, the line
//! discipline, handing the master to the console socket or bridging it
//! to runsc-lite's own terminal) fills this in; until then a terminal
//! that was asked for is an error, never silently a plain pipe.

use std::path::Path;

/// What the container's process gets as its stdio.
pub enum Stdio {
    /// The caller's own descriptors 0, 1 and 2, inherited.
    Inherited,
}

/// Decide the stdio of a container process. `terminal`: the spec (or
/// `exec --tty`) asks for one; `console_socket`: where the master goes.
pub fn attach(terminal: bool, console_socket: Option<&Path>) -> Result<Stdio, String> {
    match (terminal, console_socket) {
        (false, None) => Ok(Stdio::Inherited),
        (false, Some(s)) => Err(format!(
            "--console-socket {} was given but the process has no terminal (set process.terminal or --tty)",
            s.display()
        )),
        (true, _) => Err("process.terminal is true (or --tty was given), but this runsc-lite does not serve \
                          terminals yet: set process.terminal to false"
            .into()),
    }
}
